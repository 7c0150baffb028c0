/**
 * Where a small job's milliseconds go: a 3-node local grid (Genesis + 2 nodes, real `voike`
 * processes), clients submitting fib jobs over gRPC and watching each to its end; prints
 * submit → result p50/p99 (split into SubmitJob and WatchJob), jobs/s, and the CPU ms per job
 * of every process (from /proc/<pid>/stat) and of the client. Not part of `npm run bench`.
 *
 *   node dist/bench/profile-submit.js [--jobs 600] [--clients 1] [--n 10] [--segments 1]
 *     [--cpu-prof DIR]       Genesis runs with --cpu-prof (written to DIR when it exits)
 *     [--distinct-hosts]     each node gets its own --host-id (no shared-core cap in placement)
 *   node dist/bench/profile-submit.js analyze FILE.cpuprofile
 *     self time by component (innermost recognised frame: mesh, gRPC, store, pool, scheduler...)
 */
import '../node/polyfill.js'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BenchError, PeerProcess, argValue, installCleanupHandlers, killAllPeers } from './proc.js'
import { percentile } from './harness.js'
import { createClient, type VoikeClient } from '../node/client.js'
import { fibInProcess } from '../actors/kinds/fib/arith.js'

const CLI = fileURLToPath(new URL('../node/cli.js', import.meta.url))
const READY_TIMEOUT_MS = 60_000
/** Bounds of the flags. */
const MAX_JOBS = 100_000
const MAX_CLIENTS = 1024
/** Jobs not recorded at the start (JIT, connections). */
const WARMUP_JOBS = 50
/** Linux clock ticks per second for /proc/<pid>/stat (USER_HZ). */
const CLOCK_TICKS_PER_SEC = 100

function intFlag (argv: string[], name: string, def: number, min: number, max: number): number {
  const v = argValue(argv, name)
  if (v === undefined) return def
  const n = Number(v)
  if (!Number.isInteger(n) || n < min || n > max) throw new BenchError('ERR_USAGE', `${name} must be an integer in ${min}..${max}, got ${v}`)
  return n
}

function cpuMsOf (pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 1000 / CLOCK_TICKS_PER_SEC
}

async function startVoike (name: string, role: 'genesis' | 'node', dir: string, nodeFlags: string[], extra: string[]): Promise<{ peer: PeerProcess, ready: Record<string, unknown> }> {
  const args = [...nodeFlags, CLI, role, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--http', '127.0.0.1:0', '--data', dir, '--name', name, ...extra]
  const peer = new PeerProcess(name, process.execPath, args, { env: { ...process.env, VOIKE_LOG_LEVEL: 'warn' } })
  return { peer, ready: await peer.waitForEvent('ready', READY_TIMEOUT_MS) }
}

async function waitAlive (http: string, count: number): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  for (;;) {
    const ms = await (await fetch(`http://${http}/mesh/nodes`, { signal: AbortSignal.timeout(5000) })).json() as Array<{ status: string }>
    if (ms.filter((m) => m.status === 'alive').length >= count) return
    if (Date.now() > deadline) throw new BenchError('ERR_PEER_TIMEOUT', `${count} members not alive in time`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

async function measure (argv: string[]): Promise<void> {
  const jobs = intFlag(argv, '--jobs', 600, 1, MAX_JOBS)
  const clientCount = intFlag(argv, '--clients', 1, 1, MAX_CLIENTS)
  const n = intFlag(argv, '--n', 10, 0, 1_000_000)
  const segments = intFlag(argv, '--segments', 1, 1, 4096)
  const profDir = argValue(argv, '--cpu-prof')
  const distinct = argv.includes('--distinct-hosts')
  const expected = JSON.stringify(fibInProcess(n))
  const dir = mkdtempSync(join(tmpdir(), 'voike-profile-'))
  const clients: VoikeClient[] = []
  try {
    const hostFlags = (name: string): string[] => distinct ? ['--host-id', `h-${name}`] : []
    const genesis = await startVoike('genesis', 'genesis', join(dir, 'g'),
      profDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profDir}`], hostFlags('genesis'))
    const nodes = await Promise.all([1, 2].map(async (i) => await startVoike(`node-${i}`, 'node', join(dir, `n${i}`), [],
      ['--genesis', (genesis.ready.p2p as string[])[0]!, ...hostFlags(`node-${i}`)])))
    await waitAlive(String(genesis.ready.http), 3)
    for (let i = 0; i < clientCount; i++) clients.push(createClient({ address: String(genesis.ready.api), timeoutMs: 120_000 }))
    const procs = [genesis, ...nodes]
    const submitMs: number[] = []
    const watchMs: number[] = []
    const totalMs: number[] = []
    let next = 0
    let cpu0: number[] = []
    let self0 = process.cpuUsage()
    let t0 = 0
    await Promise.all(clients.map(async (c) => {
      while (next < jobs + WARMUP_JOBS) {
        const i = next++
        if (i === WARMUP_JOBS) { cpu0 = procs.map((p) => cpuMsOf(p.peer.pid)); self0 = process.cpuUsage(); t0 = performance.now() }
        const a = performance.now()
        const { id } = await c.submitJob('fib', { n, segments })
        const b = performance.now()
        const job = await c.watchJob(id)
        const e = performance.now()
        if (job.status !== 'succeeded' || JSON.stringify(job.result) !== expected) throw new BenchError('ERR_JOB', `job ${id}: ${job.status}, wrong or missing result`)
        if (i >= WARMUP_JOBS) { submitMs.push(b - a); watchMs.push(e - b); totalMs.push(e - a) }
      }
    }))
    const wallMs = performance.now() - t0
    const cpu1 = procs.map((p) => cpuMsOf(p.peer.pid))
    const self = process.cpuUsage(self0)
    const p = (xs: number[], q: number): number => Math.round(percentile(Float64Array.from(xs).sort(), q) * 100) / 100
    const round = (x: number): number => Math.round(x * 100) / 100
    process.stdout.write(JSON.stringify({
      jobs, clients: clientCount, n, segments, distinctHosts: distinct,
      jobsPerSec: round(jobs / (wallMs / 1000)),
      totalP50Ms: p(totalMs, 50), totalP99Ms: p(totalMs, 99), submitP50Ms: p(submitMs, 50), watchP50Ms: p(watchMs, 50),
      cpuMsPerJob: Object.fromEntries(procs.map((x, i) => [x.peer.name, round((cpu1[i]! - cpu0[i]!) / jobs)])),
      clientCpuMsPerJob: round((self.user + self.system) / 1000 / jobs)
    }) + '\n')
  } finally {
    for (const c of clients) c.close()
    await killAllPeers()
    rmSync(dir, { recursive: true, force: true })
  }
}

// ---- analyze -----------------------------------------------------------------------------------

interface ProfileNode { id: number, callFrame: { functionName: string, url: string }, children?: number[] }

/** Components by the innermost frame whose function or file matches (first rule wins). */
const COMPONENTS: Array<[string, RegExp]> = [
  ['startup (module loading)', /modules\/(esm|cjs)|compileSourceTextModule|wrapSafe|internalModuleStat/],
  ['store (better-sqlite3)', /\/store\/|better-sqlite3/],
  ['gRPC / HTTP2 / protobuf', /grpc|http2|protobuf|proto-loader/],
  ['mesh (libp2p TCP, Noise, Yamux, frames)', /libp2p|noise|yamux|\/mesh\/|main-event|stream_base_commons|writeBuffer/],
  ['worker pool (Piscina, worker actor)', /piscina|actors\/worker/],
  ['PerfWatch, trust, SWIM', /perfwatch|actors\/trust|swim|membership|detector/],
  ['scheduler and job kinds', /actors\/scheduler|actors\/kinds/],
  ['actor runtime', /actors\/runtime/]
]

function analyze (file: string): void {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[], samples: number[], timeDeltas: number[] }
  const selfUs = new Map<number, number>()
  for (let i = 0; i < prof.samples.length; i++) selfUs.set(prof.samples[i]!, (selfUs.get(prof.samples[i]!) ?? 0) + (prof.timeDeltas[i] ?? 0))
  const byId = new Map(prof.nodes.map((x) => [x.id, x]))
  const totals = new Map<string, number>()
  // Iterative walk (deep stacks): each frame's self time goes to the innermost matching component.
  const stack: Array<[number, string | null]> = [[prof.nodes[0]!.id, null]]
  while (stack.length > 0) {
    const [id, outer] = stack.pop()!
    const node = byId.get(id)!
    const key = `${node.callFrame.functionName} ${node.callFrame.url}`
    const own = COMPONENTS.find(([, re]) => re.test(key))?.[0] ?? outer
    const fn = node.callFrame.functionName
    const label = own ?? (fn.startsWith('(') ? fn : 'other')
    totals.set(label, (totals.get(label) ?? 0) + (selfUs.get(id) ?? 0) / 1000)
    for (const c of node.children ?? []) stack.push([c, own])
  }
  const busy = [...totals].filter(([k]) => k !== '(idle)').reduce((s, [, v]) => s + v, 0)
  process.stdout.write(`busy ${busy.toFixed(0)} ms, idle ${(totals.get('(idle)') ?? 0).toFixed(0)} ms\n`)
  for (const [k, v] of [...totals].sort((a, b) => b[1] - a[1])) {
    if (k !== '(idle)') process.stdout.write(`${v.toFixed(0).padStart(8)} ms ${(100 * v / busy).toFixed(1).padStart(5)}%  ${k}\n`)
  }
}

const argv = process.argv.slice(2)
installCleanupHandlers()
const run = argv[0] === 'analyze'
  ? Promise.resolve().then(() => { if (argv[1] === undefined) throw new BenchError('ERR_USAGE', 'analyze needs a .cpuprofile file'); analyze(argv[1]) })
  : measure(argv)
run.then(() => { process.exitCode = 0 }, async (err: unknown) => {
  process.stderr.write(`profile-submit: ${err instanceof Error ? err.message : String(err)}\n`)
  await killAllPeers()
  process.exitCode = 1
})
