/**
 * `voike up --nodes N [--demo]`: a local grid of Genesis plus N-1 nodes as child processes, on
 * consecutive ports (p2p 4001+i, gRPC 50051+i, HTTP 8080+i), data under ./.voike/<name>.
 * SIGINT/SIGTERM are forwarded; every child is stopped before `up` exits.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { ConfigError } from '../config/index.js'
import { createClient } from './client.js'
import type { JobView } from '../actors/scheduler/api.js'
import { formatMs, formatSegments } from './format.js'

const CLI = fileURLToPath(new URL('./cli.js', import.meta.url))
const MAX_NODES = 32
const READY_TIMEOUT_MS = 60_000

interface Ready { peerId: string, p2p: string[], api: string, http: string }
interface Child { name: string, proc: ChildProcess, ready: Promise<Ready> }

function startChild (name: string, args: string[]): Child {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { VOIKE_LOG_LEVEL: 'warn', ...process.env } })
  proc.stderr?.on('data', (d: Buffer) => { process.stderr.write(d.toString().split('\n').filter(l => l !== '').map(l => `[${name}] ${l}\n`).join('')) })
  const ready = new Promise<Ready>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`${name} was not ready within ${READY_TIMEOUT_MS} ms`)) }, READY_TIMEOUT_MS)
    const lines = createInterface({ input: proc.stdout! })
    lines.on('line', (line) => {
      try {
        const evt = JSON.parse(line) as Ready & { event?: string }
        if (evt.event === 'ready') { clearTimeout(timer); resolve(evt) }
      } catch { process.stdout.write(`[${name}] ${line}\n`) }
    })
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited with status ${code ?? 'signal'} before it was ready`)) })
  })
  ready.catch(() => {})
  return { name, proc, ready }
}

async function stopAll (children: Child[], signal: NodeJS.Signals): Promise<void> {
  await Promise.all(children.map(async (c) => {
    if (c.proc.exitCode !== null || c.proc.signalCode !== null) return
    const exited = new Promise<void>(resolve => c.proc.once('exit', () => { resolve() }))
    c.proc.kill(signal)
    const t = setTimeout(() => { c.proc.kill('SIGKILL') }, 6000)
    await exited
    clearTimeout(t)
  }))
}

export async function runUp (args: string[]): Promise<number | undefined> {
  let values
  try {
    ({ values } = parseArgs({ args, options: { nodes: { type: 'string', default: '3' }, demo: { type: 'boolean' }, 'base-port': { type: 'string' }, data: { type: 'string' } }, strict: true }))
  } catch (err) { throw new ConfigError('voike up', (err as Error).message) }
  const nodes = Number(values.nodes)
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES) throw new ConfigError('--nodes', `expected an integer 1-${MAX_NODES}, got ${JSON.stringify(values.nodes)}`)
  const offset = values['base-port'] === undefined ? 0 : Number(values['base-port']) - 4001
  if (!Number.isInteger(offset) || 4001 + offset < 1024 || 8080 + offset + nodes > 65535 || 50051 + offset + nodes > 65535) throw new ConfigError('--base-port', 'expected a port such that all ports fit in 1024-65535')
  const dataRoot = values.data ?? '.voike'

  const children: Child[] = []
  let shuttingDown = false
  /** Stops every child; exits 0 when asked to stop (a signal), 1 when a failure forced it. */
  const shutdown = (signal: NodeJS.Signals, code = 0): void => {
    if (shuttingDown) return
    shuttingDown = true
    process.stderr.write(`\nvoike up: stopping ${children.length} node(s)…\n`)
    stopAll(children, signal).then(() => { process.exit(code) }, () => { process.exit(1) })
  }
  process.on('SIGINT', () => { shutdown('SIGINT') })
  process.on('SIGTERM', () => { shutdown('SIGTERM') })

  const ports = (i: number): string[] => ['--listen', `/ip4/127.0.0.1/tcp/${4001 + offset + i}`, '--api', `127.0.0.1:${50051 + offset + i}`, '--http', `127.0.0.1:${8080 + offset + i}`]
  try {
    const genesis = startChild('genesis', ['genesis', ...ports(0), '--data', join(dataRoot, 'genesis'), '--name', 'genesis'])
    children.push(genesis)
    const g = await genesis.ready
    for (let i = 1; i < nodes; i++) {
      const name = `node-${i}`
      children.push(startChild(name, ['node', '--genesis', `127.0.0.1:${4001 + offset}`, ...ports(i), '--data', join(dataRoot, name), '--name', name]))
    }
    const readies = await Promise.all(children.map(async c => await c.ready))
    for (const c of children) {
      c.proc.once('exit', (code, sig) => {
        if (shuttingDown) return
        process.stderr.write(`voike up: ${c.name} exited (${code ?? sig}); stopping the grid\n`)
        shutdown('SIGTERM', 1)
      })
    }
    // The children inherit VOIKE_API_KEY from this environment; the client must carry it too.
    const client = createClient({ address: g.api, apiKey: process.env.VOIKE_API_KEY })
    try {
      const alive = await waitForAlive(client, nodes)
      process.stdout.write(`VOIKE grid up: ${nodes} node(s), all alive\n`)
      for (const [i, r] of readies.entries()) process.stdout.write(`  ${children[i].name.padEnd(8)} ${r.peerId}  http://${r.http}  gRPC ${r.api}\n`)
      if (values.demo === true) await runDemo(client, alive)
      process.stdout.write('Serving. Try: curl http://' + g.http + '/mesh/nodes   (Ctrl-C stops the grid)\n')
    } finally { client.close() }
  } catch (err) {
    process.stderr.write(`voike up: ${(err as Error).message}\n`)
    shuttingDown = true // the children's exits below are ours, not failures to react to
    await stopAll(children, 'SIGTERM')
    return 1
  }
  return undefined
}

async function waitForAlive (client: ReturnType<typeof createClient>, n: number): Promise<string[]> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  for (;;) {
    const members = await client.listNodes()
    const alive = members.filter(m => m.status === 'alive')
    if (alive.length >= n) return alive.map(m => m.peerId)
    if (Date.now() > deadline) throw new Error(`only ${alive.length} of ${n} nodes alive after ${READY_TIMEOUT_MS} ms`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

/** The demo: split Fibonacci over the grid, with the table of who ran what. */
async function runDemo (client: ReturnType<typeof createClient>, peers: string[]): Promise<void> {
  const n = 300_000
  const segments = 24
  process.stdout.write(`\nDemo: fib n=${n} in ${segments} cost-balanced segments over ${peers.length} node(s)…\n`)
  const started = performance.now()
  const submitted = await client.submitJob('fib', { n, segments })
  const tty = process.stderr.isTTY === true
  const job: JobView = await client.watchJob(submitted.id, (p) => {
    if (tty) process.stderr.write(`\r  ${p.segmentsDone}/${p.segmentsTotal} segments`)
  })
  if (tty) process.stderr.write('\n')
  const wallMs = performance.now() - started
  // Nodes and durations read as everywhere else (node/format.ts): name (…short id), ms with one decimal.
  const names = new Map((await client.listNodes().catch(() => [])).flatMap(m => m.name === undefined ? [] : [[m.peerId, m.name] as const]))
  process.stdout.write(formatSegments(job, names))
  const byNode = new Map<string, number>()
  for (const s of job.segments) if (s.node !== null) byNode.set(s.node, (byNode.get(s.node) ?? 0) + 1)
  process.stdout.write(`status: ${job.status}; ${byNode.size} node(s) ran segments; wall ${formatMs(wallMs)}\n`)
  process.stdout.write(`result: ${JSON.stringify(job.result)}\n\n`)
}
