/**
 * VOIKE's side of every benchmark: real `voike` processes on 127.0.0.1 (started through the CLI,
 * as a user would), measured with the same settings as the peers (params.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { CliOptions, Session, SystemSpec } from './harness.js'
import { percentile } from './harness.js'
import { BenchError, PeerProcess, rssBytesOf, spawnNodePeer } from './proc.js'
import { IdSource, echoMessage, runEchoSuite, type EchoMessage } from './echo.js'
import {
  BYTES_PER_MB, FIB_METRICS, FIB_N, FOOTPRINT_METRICS, LOCAL_IN_FLIGHT, LOCAL_METRICS, REMOTE_METRICS, SUBMIT_METRICS,
  echoSuiteOptions, idleSettleMs, localTaskTiming, poolThreads, submitSamples
} from './params.js'
import { resolveConfig } from '../config/index.js'
import { startNode, type VoikeNode } from '../node/node.js'
import { createClient, type VoikeClient } from '../node/client.js'
import { createTaskClient } from '../actors/worker/task-client.js'
import { fibInProcess, type FibResult } from '../actors/kinds/fib/arith.js'

const CLI = fileURLToPath(new URL('../node/cli.js', import.meta.url))
const READY_TIMEOUT_MS = 60_000

interface Started { peer: PeerProcess, peerId: string, p2p: string[], api: string, http: string }

/** Starts `voike genesis|node` with port 0 everywhere; resolves at its ready line. */
async function startVoike (name: string, role: 'genesis' | 'node', dataDir: string, extra: string[] = []): Promise<Started> {
  const args = [CLI, role, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--http', '127.0.0.1:0', '--data', dataDir, '--name', name, ...extra]
  const peer = new PeerProcess(name, process.execPath, args, { env: { ...process.env, VOIKE_LOG_LEVEL: 'warn' } })
  try {
    const r = await peer.waitForEvent('ready', READY_TIMEOUT_MS)
    return { peer, peerId: String(r.peerId), p2p: r.p2p as string[], api: String(r.api), http: String(r.http) }
  } catch (err) {
    await peer.kill()
    throw err
  }
}

async function members (http: string): Promise<Array<{ peerId: string, status: string }>> {
  const res = await fetch(`http://${http}/mesh/nodes`, { signal: AbortSignal.timeout(5000) })
  if (!res.ok) throw new BenchError('ERR_PEER', `/mesh/nodes answered ${res.status}`)
  return await res.json() as Array<{ peerId: string, status: string }>
}

async function waitAlive (http: string, count: number): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  while ((await members(http)).filter(m => m.status === 'alive').length < count) {
    if (Date.now() > deadline) throw new BenchError('ERR_PEER_TIMEOUT', `${count} members not alive within ${READY_TIMEOUT_MS} ms`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

/** Temp dirs and processes of one session, cleaned up together. */
export class Resources {
  private readonly dirs: string[] = []
  readonly peers: Started[] = []
  async dir (): Promise<string> { const d = await mkdtemp(join(tmpdir(), 'voike-bench-')); this.dirs.push(d); return d }
  async start (name: string, role: 'genesis' | 'node', extra: string[] = []): Promise<Started> {
    const s = await startVoike(name, role, await this.dir(), extra)
    this.peers.push(s)
    return s
  }
  async close (): Promise<void> {
    await Promise.all(this.peers.map(async p => { await p.peer.kill() }))
    await Promise.all(this.dirs.map(async d => { await rm(d, { recursive: true, force: true }) }))
  }
}

/** Genesis plus two nodes, as `voike up --nodes 3` runs them (default threads: the cores). */
export async function threeNodeGrid (res: Resources): Promise<{ genesis: Started, client: VoikeClient }> {
  const genesis = await res.start('genesis', 'genesis')
  await Promise.all([1, 2].map(async i => await res.start(`node-${i}`, 'node', ['--genesis', genesis.p2p[0]])))
  await waitAlive(genesis.http, 3)
  return { genesis, client: createClient({ address: genesis.api, timeoutMs: 120_000 }) }
}

// ---- 1. remote tasks: node A (this process) → node B's workers --------------------------------

export const voikeRemoteTasks: SystemSpec = {
  label: 'VOIKE',
  metrics: REMOTE_METRICS,
  start: async (options: CliOptions): Promise<Session> => {
    const res = new Resources()
    let a: VoikeNode | undefined
    try {
      const b = await res.start('node-b', 'genesis', ['--threads', String(poolThreads(options))])
      a = await startNode(resolveConfig('node', {
        listen: '/ip4/127.0.0.1/tcp/0', api: '127.0.0.1:0', http: '127.0.0.1:0', data: await res.dir(), name: 'node-a', genesis: b.p2p[0], threads: '1', 'log-level': 'warn'
      }))
      const node = a
      const client = createTaskClient({ system: node.system, name: 'bench-client' })
      const ids = new IdSource()
      const echo = async (): Promise<void> => {
        const id = ids.take()
        const r = await client.run(b.peerId, 'noop', echoMessage(id)) as EchoMessage
        if (r?.i !== id) throw new BenchError('ERR_BAD_ECHO', `task ${id} came back as ${String(r?.i)}`)
      }
      return {
        measure: async () => await runEchoSuite(echo, echoSuiteOptions(options)),
        info: () => ({ path: 'bench-client actor on node A → mesh → worker actor on node B → Piscina → back', threadsOnB: poolThreads(options) }),
        close: async () => { await client.close(); await node.stop(); await res.close() }
      }
    } catch (err) {
      await a?.stop()
      await res.close()
      throw err
    }
  }
}

// ---- 2. local tasks ---------------------------------------------------------------------------

export const voikeLocalTasks: SystemSpec = {
  label: 'VOIKE worker pool',
  metrics: LOCAL_METRICS,
  start: async (options: CliOptions): Promise<Session> => {
    let running: PeerProcess | null = null
    return {
      measure: async () => {
        const { durationMs, warmupMs } = localTaskTiming(options)
        running = spawnNodePeer('voike-local', 'voike-local.js', ['measure', '--threads', String(poolThreads(options)),
          '--in-flight', String(LOCAL_IN_FLIGHT), '--duration-ms', String(durationMs), '--warmup-ms', String(warmupMs)])
        try {
          const r = await running.waitForEvent('result', durationMs + warmupMs + READY_TIMEOUT_MS)
          if (typeof r.perSec !== 'number') throw new BenchError('ERR_PEER_RESULT', 'voike-local result lacks perSec')
          return { perSec: r.perSec }
        } finally {
          await running.kill()
          running = null
        }
      },
      info: () => ({ threads: poolThreads(options), path: 'task client → worker actor (local, no serialization) → Piscina batches' }),
      close: async () => { await (running as PeerProcess | null)?.kill() }
    }
  }
}

// ---- 3. split Fibonacci on the 3-node grid ----------------------------------------------------

export const voikeSplitFib: SystemSpec = {
  label: 'VOIKE 3-node grid',
  metrics: FIB_METRICS,
  start: async (): Promise<Session> => {
    const res = new Resources()
    try {
      const expected: FibResult = fibInProcess(FIB_N)
      const { client } = await threeNodeGrid(res)
      let lastNodes: Record<string, number> = {}
      return {
        measure: async () => {
          const t0 = performance.now()
          const job = await client.watchJob((await client.submitJob('fib', { n: FIB_N, segments: 24 })).id)
          const wallMs = performance.now() - t0
          if (job.status !== 'succeeded') throw new BenchError('ERR_JOB', `fib job ${job.status}: ${job.error ?? ''}`)
          if (JSON.stringify(job.result) !== JSON.stringify(expected)) throw new BenchError('ERR_JOB', 'the grid computed a different result')
          lastNodes = {}
          for (const s of job.segments) if (s.node !== null) lastNodes[s.node.slice(-6)] = (lastNodes[s.node.slice(-6)] ?? 0) + 1
          return { wallMs }
        },
        info: () => ({ segments: 24, segmentsPerNodeLastRound: lastNodes, result: expected }),
        close: async () => { client.close(); await res.close() }
      }
    } catch (err) {
      await res.close()
      throw err
    }
  }
}

// ---- 4. join and footprint --------------------------------------------------------------------

export const voikeJoinFootprint: SystemSpec = {
  label: 'VOIKE',
  metrics: FOOTPRINT_METRICS,
  start: async (options: CliOptions): Promise<Session> => {
    const res = new Resources()
    try {
      const genesis = await res.start('genesis', 'genesis')
      let round = 0
      return {
        measure: async () => {
          const known = new Set((await members(genesis.http)).map(m => m.peerId))
          const dir = await res.dir()
          const node = new PeerProcess(`node-${round++}`, process.execPath,
            [CLI, 'node', '--genesis', genesis.p2p[0], '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--http', '127.0.0.1:0', '--data', dir],
            { env: { ...process.env, VOIKE_LOG_LEVEL: 'warn' } })
          try {
            let seenAtMs = 0
            const deadline = Date.now() + READY_TIMEOUT_MS
            while (seenAtMs === 0) {
              const ms = await members(genesis.http)
              if (ms.some(m => !known.has(m.peerId) && m.status === 'alive')) seenAtMs = performance.now()
              else if (Date.now() > deadline) throw new BenchError('ERR_PEER_TIMEOUT', 'the node was not seen alive')
              else await new Promise(resolve => setTimeout(resolve, 2))
            }
            const joinMs = seenAtMs - node.spawnedAtMs
            await new Promise(resolve => setTimeout(resolve, idleSettleMs(options)))
            return { joinMs, idleRssMb: await rssBytesOf(node.pid) / BYTES_PER_MB }
          } finally {
            await node.kill()
          }
        },
        info: () => ({ joinMeasuredAs: 'spawn of `voike node` → Genesis /mesh/nodes lists it alive (polled every 2 ms)' }),
        close: async () => { await res.close() }
      }
    } catch (err) {
      await res.close()
      throw err
    }
  }
}

// ---- 5. submit latency ------------------------------------------------------------------------

export const voikeSubmitLatency: SystemSpec = {
  label: 'VOIKE',
  metrics: SUBMIT_METRICS,
  start: async (options: CliOptions): Promise<Session> => {
    const res = new Resources()
    try {
      const { client } = await threeNodeGrid(res)
      const once = async (): Promise<number> => {
        const t0 = performance.now()
        const job = await client.watchJob((await client.submitJob('fib', { n: 10, segments: 1 })).id)
        if (job.status !== 'succeeded') throw new BenchError('ERR_JOB', `fib n=10 ${job.status}`)
        return performance.now() - t0
      }
      return {
        measure: async () => {
          const { count, warmup } = submitSamples(options)
          for (let i = 0; i < warmup; i++) await once()
          const samples = new Float64Array(count)
          for (let i = 0; i < count; i++) samples[i] = await once()
          samples.sort()
          return { latencyP50Ms: percentile(samples, 50), latencyP99Ms: percentile(samples, 99) }
        },
        info: () => ({ path: 'gRPC SubmitJob then WatchJob stream until the final job, to Genesis of a 3-node grid' }),
        close: async () => { client.close(); await res.close() }
      }
    } catch (err) {
      await res.close()
      throw err
    }
  }
}
