/**
 * `voike up --nodes N [--demo]`: a local grid of Genesis plus N-1 nodes as child processes, on
 * consecutive ports (p2p 4001+i, gRPC 50051+i, HTTP 8080+i; `--base-port` moves them all), data
 * under ./.voike/<name> (`--data`). The nodes are supervised (supervisor.ts): a node that dies is
 * reported and restarted with backoff, at most `--max-restarts` times a minute, then given up
 * while the others keep running. SIGINT/SIGTERM/SIGHUP stop every node; then exit 0.
 */
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { ConfigError } from '../config/index.js'
import { createClient } from './client.js'
import { checkRestartPolicy, DEFAULT_RESTART_POLICY, Supervisor } from './supervisor.js'
import type { JobView } from '../actors/scheduler/api.js'
import { formatMs, formatSegments } from './format.js'

const CLI = fileURLToPath(new URL('./cli.js', import.meta.url))
const MAX_NODES = 32
const READY_TIMEOUT_MS = 60_000
/** A node's own clean shutdown takes at most 5 s (cli.ts); past this, SIGKILL. */
const STOP_GRACE_MS = 6000

export async function runUp (args: string[]): Promise<number | undefined> {
  let values
  try {
    ({ values } = parseArgs({ args, options: { nodes: { type: 'string', default: '3' }, demo: { type: 'boolean' }, 'base-port': { type: 'string' }, data: { type: 'string' }, 'max-restarts': { type: 'string' } }, strict: true }))
  } catch (err) { throw new ConfigError('voike up', (err as Error).message) }
  const nodes = Number(values.nodes)
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES) throw new ConfigError('--nodes', `expected an integer 1-${MAX_NODES}, got ${JSON.stringify(values.nodes)}`)
  const offset = values['base-port'] === undefined ? 0 : Number(values['base-port']) - 4001
  if (!Number.isInteger(offset) || 4001 + offset < 1024 || 8080 + offset + nodes > 65535 || 50051 + offset + nodes > 65535) throw new ConfigError('--base-port', 'expected a port such that all ports fit in 1024-65535')
  const dataRoot = values.data ?? '.voike'
  const maxRestarts = values['max-restarts'] === undefined ? DEFAULT_RESTART_POLICY.maxRestarts : /^\d{1,3}$/.test(values['max-restarts']) ? Number(values['max-restarts']) : NaN
  const policy = checkRestartPolicy({ ...DEFAULT_RESTART_POLICY, maxRestarts })

  const say = (line: string): void => { process.stderr.write(`voike up: ${line}\n`) }
  let exitCode: number | undefined
  let shuttingDown: Promise<void> | undefined
  const sup = new Supervisor({
    cli: CLI,
    env: process.env,
    policy,
    readyTimeoutMs: READY_TIMEOUT_MS,
    stopGraceMs: STOP_GRACE_MS,
    report: say,
    forward: (line) => { process.stderr.write(line + '\n') },
    onAllGone: () => { shutdown('SIGTERM', 1) }
  })
  /** Stops every node, then exits: 0 when asked to (a signal), 1 when no node was left. */
  const shutdown = (signal: NodeJS.Signals, code = 0): void => {
    if (shuttingDown !== undefined) return
    exitCode = code
    process.stderr.write(`\nvoike up: stopping ${sup.running().length} node(s)…\n`)
    shuttingDown = sup.stop(signal === 'SIGHUP' ? 'SIGTERM' : signal)
    shuttingDown.then(() => { process.exit(code) }, () => { process.exit(1) })
  }
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => { shutdown(sig) })

  const ports = (i: number): string[] => ['--listen', `/ip4/127.0.0.1/tcp/${4001 + offset + i}`, '--api', `127.0.0.1:${50051 + offset + i}`, '--http', `127.0.0.1:${8080 + offset + i}`]
  const names = Array.from({ length: nodes }, (_, i) => i === 0 ? 'genesis' : `node-${i}`)
  try {
    const g = await sup.start({ name: 'genesis', args: ['genesis', ...ports(0), '--data', join(dataRoot, 'genesis'), '--name', 'genesis'] })
    const readies = [g, ...await Promise.all(names.slice(1).map(async (name, j) =>
      await sup.start({ name, args: ['node', '--genesis', `127.0.0.1:${4001 + offset}`, ...ports(j + 1), '--data', join(dataRoot, name), '--name', name] })))]
    sup.supervise()
    // The children inherit VOIKE_API_KEY from this environment; the client must carry it too.
    const client = createClient({ address: g.api, apiKey: process.env.VOIKE_API_KEY })
    try {
      const alive = await waitForAlive(client, nodes)
      process.stdout.write(`VOIKE grid up: ${nodes} node(s), all alive\n`)
      for (const [i, r] of readies.entries()) process.stdout.write(`  ${names[i].padEnd(8)} pid ${String(sup.pid(names[i]) ?? '?').padEnd(7)}  ${r.peerId}  http://${r.http}  gRPC ${r.api}\n`)
      if (values.demo === true) await runDemo(client, alive)
      process.stdout.write('Serving. Try: curl http://' + g.http + '/mesh/nodes   (Ctrl-C stops the grid; a node that dies is restarted)\n')
    } finally { client.close() }
  } catch (err) {
    if (shuttingDown !== undefined) { await shuttingDown; return exitCode }
    process.stderr.write(`voike up: ${(err as Error).message}\n`)
    await sup.stop('SIGTERM')
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
