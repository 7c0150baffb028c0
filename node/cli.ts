#!/usr/bin/env node
/**
 * `voike`: run nodes (genesis, node, up) and talk to them (mesh, job).
 * Exit status: 0 ok; 1 a job failed or was cancelled, or a runtime failure; 2 bad input.
 */
import './polyfill.js'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { resolveConfig, ConfigError, NODE_FLAGS, parseHostPort, type NodeFlag, type NodeRole } from '../config/index.js'
import { createClient, type VoikeClient } from './client.js'
import type { JobView } from '../actors/scheduler/api.js'
import { runUp } from './up.js'

const USAGE = `voike — a distributed actor grid

Nodes:
  voike genesis [--listen MA] [--api H:P] [--http H:P] [--data DIR] [--database-url URL] [--api-key K]
  voike node --genesis ADDR[,ADDR...] [same flags as genesis]
  voike up --nodes N [--demo] [--base-port P] [--data DIR] [--max-restarts K]
                                                  local grid: Genesis + N-1 supervised child processes

Clients (--api HOST:PORT, default 127.0.0.1:50051; --api-key or VOIKE_API_KEY):
  voike mesh nodes [--json]
  voike job submit fib --n N --segments S [--wait] [--json]
  voike job get ID [--json] | job watch ID [--json] | job cancel ID [--json] | job list [--json]
`

class UsageError extends Error {}

function exitWith (code: number, message?: string): never {
  if (message !== undefined) process.stderr.write(message.endsWith('\n') ? message : message + '\n')
  process.exit(code)
}

function parse (args: string[], options: ParseArgsConfig['options']): { values: Record<string, string | boolean | string[] | undefined>, positionals: string[] } {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true }) as ReturnType<typeof parse>
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

const nodeOptions = Object.fromEntries(Object.keys(NODE_FLAGS).map(k => [k, { type: 'string' as const }]))

async function runNode (role: NodeRole, args: string[]): Promise<void> {
  const { values, positionals } = parse(args, nodeOptions)
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`)
  const config = resolveConfig(role, values as Partial<Record<NodeFlag, string>>)
  // Imported late so that `voike job …` does not load libp2p.
  const { startNode } = await import('./node.js')
  let node: Awaited<ReturnType<typeof startNode>> | undefined
  const onFatal = (err: Error): void => {
    process.stderr.write(`voike ${role}: fatal: ${err.message}; stopping\n`)
    setTimeout(() => { process.exit(1) }, 4500).unref()
    void (node?.stop() ?? Promise.resolve()).finally(() => { process.exit(1) })
  }
  try {
    node = await startNode(config, { onFatal })
  } catch (err) {
    const e = err as Error & { code?: string }
    if (e.code === 'ERR_DATA_DIR_LOCKED') exitWith(2, `voike ${role}: ${e.message}`)
    const hint = e.code === 'EADDRINUSE' || /EADDRINUSE/.test(e.message) ? ' (address in use: pick another port, or 0 for any free port)' : ''
    exitWith(1, `voike ${role}: failed to start: ${e.message}${hint}`)
  }
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    // Clean shutdown must finish within 5 s; past that, leave anyway.
    setTimeout(() => { exitWith(0, `voike: forced exit 4.5 s after ${signal}`) }, 4500).unref()
    node.stop().then(() => { process.exit(0) }, (err: Error) => { exitWith(1, `voike: shutdown failed: ${err.message}`) })
  }
  process.on('SIGINT', () => { stop('SIGINT') })
  process.on('SIGTERM', () => { stop('SIGTERM') })
  // Under `voike up` (node/supervisor.ts) stdin is a pipe from it: its end means `up` died
  // without stopping us (SIGKILL), and a node nobody supervises any more must not linger.
  if (process.env.VOIKE_STOP_WITH_PARENT === '1') {
    process.stdin.on('end', () => { stop('the end of voike up') })
    process.stdin.on('error', () => { stop('the end of voike up') })
    process.stdin.resume()
  }
  // Last: whoever reads the ready line may signal us at once, so the handlers come first.
  process.stdout.write(JSON.stringify({ event: 'ready', peerId: node.peerId, p2p: node.p2p, api: node.api, http: node.http, role, name: config.name }) + '\n')
}

function clientFrom (values: Record<string, unknown>): VoikeClient {
  const api = (values.api as string | undefined) ?? process.env.VOIKE_API ?? '127.0.0.1:50051'
  try { parseHostPort(api, '--api') } catch (err) { throw new UsageError((err as Error).message) }
  return createClient({ address: api, apiKey: (values['api-key'] as string | undefined) ?? process.env.VOIKE_API_KEY })
}

const clientOptions = { api: { type: 'string' as const }, 'api-key': { type: 'string' as const }, json: { type: 'boolean' as const } }

export function shortId (peerId: string | null): string {
  return peerId === null ? '-' : peerId.length > 16 ? `…${peerId.slice(-8)}` : peerId
}

function printJob (job: JobView, json: boolean): void {
  if (json) {
    const { id, kind, status, error, result, segments } = job
    process.stdout.write(JSON.stringify({ id, kind, status, error, result, segments: segments.map(s => ({ index: s.index, start: s.start, end: s.end, node: s.node, attempts: s.attempts, lost: s.lost, ms: s.ms })) }) + '\n')
    return
  }
  const lines = [`job ${job.id}  ${job.kind}  ${job.status}  ${job.segmentsDone}/${job.segmentsTotal} segments`]
  if (job.error !== null) lines.push(`error: ${job.error}`)
  if (job.segments.length > 0) {
    lines.push('segment  range                 node        attempts  lost  ms')
    for (const s of job.segments) {
      lines.push(`${String(s.index).padStart(7)}  ${`[${s.start}, ${s.end})`.padEnd(20)}  ${shortId(s.node).padEnd(10)}  ${String(s.attempts).padStart(8)}  ${String(s.lost).padStart(4)}  ${s.ms === null ? '-' : s.ms.toFixed(1)}`)
    }
  }
  if (job.result !== null) lines.push(`result: ${JSON.stringify(job.result)}`)
  process.stdout.write(lines.join('\n') + '\n')
}

function jobExit (job: JobView): number {
  return job.status === 'failed' || job.status === 'cancelled' ? 1 : 0
}

/** gRPC errors: INVALID_ARGUMENT (3) and NOT_FOUND (5) are the caller's input → exit 2. */
function grpcExit (err: unknown): never {
  const e = err as { code?: number, details?: string, message: string }
  const message = e.details ?? e.message
  if (e.code === 3 || e.code === 5 || e.code === 16) exitWith(2, `voike: ${message}`)
  if (e.code === 14) exitWith(1, `voike: cannot reach the node's API: ${message}`)
  exitWith(1, `voike: ${message}`)
}

function progressBar (): ((p: { segmentsDone: number, segmentsTotal: number }) => void) & { done: () => void } {
  const tty = process.stderr.isTTY === true
  const fn = (p: { segmentsDone: number, segmentsTotal: number }): void => {
    if (!tty || p.segmentsTotal === 0) return
    const width = 30
    const filled = Math.round(width * p.segmentsDone / p.segmentsTotal)
    process.stderr.write(`\r[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${p.segmentsDone}/${p.segmentsTotal} segments`)
  }
  return Object.assign(fn, { done: () => { if (tty) process.stderr.write('\n') } })
}

function intFlag (values: Record<string, unknown>, name: string): number {
  const v = values[name]
  if (v === undefined) throw new UsageError(`--${name} is required`)
  if (typeof v !== 'string' || !/^-?\d+$/.test(v)) throw new UsageError(`--${name} must be an integer, got ${JSON.stringify(v)}`)
  return Number(v)
}

async function runJob (args: string[]): Promise<number> {
  const [sub, ...rest] = args
  if (sub === 'submit') {
    const { values, positionals } = parse(rest, { ...clientOptions, n: { type: 'string' }, segments: { type: 'string' }, wait: { type: 'boolean' }, params: { type: 'string' } })
    const kind = positionals[0]
    if (kind === undefined) throw new UsageError('job submit needs a kind, e.g. `voike job submit fib --n 1000 --segments 4`')
    let params: Record<string, unknown>
    if (values.params !== undefined) {
      try { params = JSON.parse(values.params as string) } catch (err) { throw new UsageError(`--params is not JSON: ${(err as Error).message}`) }
    } else if (kind === 'fib') {
      params = { n: intFlag(values, 'n'), segments: values.segments === undefined ? 1 : intFlag(values, 'segments') }
    } else {
      params = {}
    }
    const client = clientFrom(values)
    try {
      let job = await client.submitJob(kind, params)
      if (values.wait === true) {
        const bar = progressBar()
        job = await client.watchJob(job.id, values.json === true ? undefined : bar)
        if (values.json !== true) bar.done()
      }
      printJob(job, values.json === true)
      return values.wait === true ? jobExit(job) : 0
    } catch (err) { grpcExit(err) } finally { client.close() }
  }
  if (sub === 'get' || sub === 'watch' || sub === 'cancel') {
    const { values, positionals } = parse(rest, clientOptions)
    const id = positionals[0]
    if (id === undefined) throw new UsageError(`job ${sub} needs a job id`)
    const client = clientFrom(values)
    try {
      let job: JobView
      if (sub === 'get') job = await client.getJob(id)
      else if (sub === 'cancel') job = await client.cancelJob(id)
      else {
        const bar = progressBar()
        job = await client.watchJob(id, values.json === true ? undefined : bar)
        if (values.json !== true) bar.done()
      }
      printJob(job, values.json === true)
      return sub === 'get' ? 0 : jobExit(job)
    } catch (err) { grpcExit(err) } finally { client.close() }
  }
  if (sub === 'list') {
    const { values } = parse(rest, { ...clientOptions, limit: { type: 'string' }, status: { type: 'string' } })
    const client = clientFrom(values)
    try {
      const jobs = await client.listJobs({ limit: values.limit === undefined ? undefined : intFlag(values, 'limit'), status: values.status as string | undefined })
      if (values.json === true) process.stdout.write(JSON.stringify(jobs.map(j => ({ id: j.id, kind: j.kind, status: j.status, error: j.error, result: j.result, createdAtMs: j.createdAtMs }))) + '\n')
      else for (const j of jobs) process.stdout.write(`${j.id}  ${j.kind.padEnd(6)}  ${j.status.padEnd(9)}  ${j.segmentsDone}/${j.segmentsTotal}  ${new Date(j.createdAtMs).toISOString()}\n`)
      return 0
    } catch (err) { grpcExit(err) } finally { client.close() }
  }
  throw new UsageError(`unknown job command ${JSON.stringify(sub ?? '')}; expected submit, get, watch, cancel or list`)
}

async function runMesh (args: string[]): Promise<number> {
  const [sub, ...rest] = args
  if (sub !== 'nodes') throw new UsageError(`unknown mesh command ${JSON.stringify(sub ?? '')}; expected nodes`)
  const { values } = parse(rest, clientOptions)
  const client = clientFrom(values)
  try {
    const nodes = await client.listNodes()
    if (values.json === true) process.stdout.write(JSON.stringify(nodes) + '\n')
    else process.stdout.write(formatMembers(nodes))
    return 0
  } catch (err) { grpcExit(err) } finally { client.close() }
}

export function formatMembers (nodes: Array<{ peerId: string, status: string, cores: number, isGenesis: boolean, addrs: string[] }>): string {
  const lines = ['peer                                                   status   cores  role     address']
  for (const n of nodes) lines.push(`${n.peerId.padEnd(53)}  ${n.status.padEnd(7)}  ${String(n.cores).padStart(5)}  ${(n.isGenesis ? 'genesis' : 'node').padEnd(7)}  ${n.addrs[0] ?? '-'}`)
  return lines.join('\n') + '\n'
}

async function main (argv: string[]): Promise<number | undefined> {
  const [cmd, ...rest] = argv
  switch (cmd) {
    case 'genesis': await runNode('genesis', rest); return undefined
    case 'node': await runNode('node', rest); return undefined
    case 'up': return await runUp(rest)
    case 'mesh': return await runMesh(rest)
    case 'job': return await runJob(rest)
    case undefined: case 'help': case '--help': case '-h':
      process.stdout.write(USAGE); return 0
    default: throw new UsageError(`unknown command ${JSON.stringify(cmd)}`)
  }
}

main(process.argv.slice(2)).then((code) => {
  if (code !== undefined) process.exitCode = code
}, (err: unknown) => {
  if (err instanceof ConfigError || err instanceof UsageError) exitWith(2, `voike: ${err.message}\n\n${USAGE}`)
  exitWith(1, `voike: ${(err as Error).stack ?? String(err)}`)
})
