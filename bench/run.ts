/**
 * `npm run bench` entry: every comparison of issue 4 in one invocation.
 *
 *   npm run bench -- [--quick] [--json] [--only remoteTasks,localTasks] [--repeats N] [--threads N]
 *
 * Each benchmark compares VOIKE (bench/voike.ts: real voike processes) with its peers
 * (bench/baselines/); `defineBench` wires systems, metrics, ratios and targets, and the harness
 * alternates the systems inside each round and reports medians.
 */
import '../node/polyfill.js'
import os from 'node:os'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import {
  USAGE, defineBench, formatTable, parseCli, pending, registeredBenches, runAll, writeReport,
  type CliOptions, type Session, type SystemSpec
} from './harness.js'
import {
  BenchError, installCleanupHandlers, killAllPeers, livePeerCount, rssBytesOf, spawnNodePeer, startPeer,
  type PeerProcess
} from './proc.js'
import { measureRtt, runEchoSuite, type EchoClient } from './echo.js'
import {
  BYTES_PER_MB, FIB_METRICS, FIB_N, FOOTPRINT_METRICS, LOCAL_IN_FLIGHT, LOCAL_METRICS, REMOTE_METRICS,
  SUBMIT_METRICS, echoSuiteOptions, idleSettleMs, localTaskTiming, poolThreads, submitSamples
} from './params.js'
import { connectRawTcp } from './baselines/raw-tcp.js'
import { connectRawLibp2p } from './baselines/raw-libp2p.js'
import { connectMoleculer, moleculerVersion } from './baselines/moleculer.js'
import { connectRawGrpc } from './baselines/raw-grpc.js'
import { voikeJoinFootprint, voikeLocalTasks, voikeRemoteTasks, voikeSplitFib, voikeSubmitLatency } from './voike.js'
// The VASM sections (`vasm`, `vasmFib`) register themselves.
import './vasm-grid.js'
import { voikeFlow } from './flow-grid.js'
// The single-threaded baseline runs the project's own kernel: the very code the grid's segments run.
import { fibInProcess, type FibResult } from '../actors/kinds/fib/arith.js'

const PEER_READY_TIMEOUT_MS = 30_000

// ---- shared system builders --------------------------------------------------------------------

/** A system measured through an echo client against one peer process. */
function echoSystem (label: string, peerScript: string, connect: (ready: Record<string, unknown>) => Promise<EchoClient>,
  measure: (client: EchoClient, options: CliOptions) => Promise<Record<string, number>>, metrics: readonly string[]): SystemSpec {
  return {
    label,
    metrics,
    start: async (options) => {
      const { peer, ready } = await startPeer(label, peerScript, ['serve'], PEER_READY_TIMEOUT_MS)
      let client: EchoClient
      try {
        client = await connect(ready)
      } catch (err) {
        await peer.kill()
        throw err
      }
      return {
        measure: async () => await measure(client, options),
        close: async () => {
          await client.close().catch(() => {})
          await peer.kill()
        }
      }
    }
  }
}

const str = (v: unknown, what: string): string => {
  if (typeof v !== 'string') throw new BenchError('ERR_PEER_READY', `ready line lacks ${what}`)
  return v
}
const int = (v: unknown, what: string): number => {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new BenchError('ERR_PEER_READY', `ready line lacks ${what}`)
  return v
}

// ---- 1. remote tasks ---------------------------------------------------------------------------

const echoSuite = async (c: EchoClient, o: CliOptions): Promise<Record<string, number>> => await runEchoSuite(c.echo, echoSuiteOptions(o))

defineBench({
  name: 'remoteTasks',
  title: 'Remote tasks',
  description: 'No-op tasks from node A to node B\'s workers, 100-byte msgpack payloads: throughput with 64 and ' +
    '256 calls in flight, and sequential round-trip p50/p99. Peers: Moleculer (two brokers, TCP transporter), a raw ' +
    'libp2p echo over the same TCP+Noise+Yamux stack (one stream, frames coalesced per tick both ways: the limit ' +
    'for our transport) and a raw TCP echo (the floor). Servers run in a child process, clients in the bench process.',
  systems: {
    voike: voikeRemoteTasks,
    moleculer: echoSystem(`Moleculer ${moleculerVersion()}`, 'baselines/moleculer.js',
      async (r) => await connectMoleculer(int(r.port, 'port'), str(r.nodeID, 'nodeID')), echoSuite, REMOTE_METRICS),
    rawLibp2p: echoSystem('raw libp2p', 'baselines/raw-libp2p.js',
      async (r) => await connectRawLibp2p(str((r.multiaddrs as unknown[] | undefined)?.[0], 'multiaddrs')), echoSuite, REMOTE_METRICS),
    rawTcp: echoSystem('raw TCP', 'baselines/raw-tcp.js',
      async (r) => await connectRawTcp(int(r.port, 'port')), echoSuite, REMOTE_METRICS)
  },
  metrics: {
    perSec64InFlight: { label: 'throughput, 64 in flight', unit: 'msg/s' },
    perSec256InFlight: { label: 'throughput, 256 in flight', unit: 'msg/s' },
    rttP50Us: { label: 'sequential RTT p50', unit: 'µs' },
    rttP99Us: { label: 'sequential RTT p99', unit: 'µs' }
  },
  ratios: [
    { key: 'ratioVsMoleculer64InFlight', metric: 'perSec64InFlight', vs: 'moleculer', target: { op: '>=', value: 1.5 } },
    { key: 'ratioVsRawLibp2p64InFlight', metric: 'perSec64InFlight', vs: 'rawLibp2p' },
    { key: 'ratioVsMoleculer256InFlight', metric: 'perSec256InFlight', vs: 'moleculer', target: { op: '>=', value: 1.5 } },
    { key: 'ratioVsRawLibp2p256InFlight', metric: 'perSec256InFlight', vs: 'rawLibp2p' },
    { key: 'rttP50RatioVsRawLibp2p', metric: 'rttP50Us', vs: 'rawLibp2p', target: { op: '<=', value: 1.5 } },
    { key: 'rttP50RatioVsMoleculer', metric: 'rttP50Us', vs: 'moleculer' },
    { key: 'rttP99RatioVsRawLibp2p', metric: 'rttP99Us', vs: 'rawLibp2p' }
  ],
  repeats: 5,
  quickRepeats: 3,
  warmupRounds: 1,
  config: (o) => ({ payloadBytes: 100, ...echoSuiteOptions(o) })
})

// ---- 2. local tasks ----------------------------------------------------------------------------

function piscinaSystem (label: string, concurrentTasksPerWorker: number): SystemSpec {
  return {
    label,
    metrics: LOCAL_METRICS,
    start: async (options): Promise<Session> => {
      let running: PeerProcess | null = null
      return {
        measure: async () => {
          const { durationMs, warmupMs } = localTaskTiming(options)
          running = spawnNodePeer(label, 'baselines/piscina.js', ['measure',
            '--threads', String(poolThreads(options)),
            '--concurrent-tasks-per-worker', String(concurrentTasksPerWorker),
            '--in-flight', String(LOCAL_IN_FLIGHT),
            '--duration-ms', String(durationMs), '--warmup-ms', String(warmupMs)])
          try {
            const r = await running.waitForEvent('result', durationMs + warmupMs + PEER_READY_TIMEOUT_MS)
            if (typeof r.perSec !== 'number') throw new BenchError('ERR_PEER_RESULT', 'piscina result lacks perSec')
            return { perSec: r.perSec }
          } finally {
            await running.kill()
            running = null
          }
        },
        info: () => ({ threads: poolThreads(options), concurrentTasksPerWorker }),
        close: async () => { await (running as PeerProcess | null)?.kill() }
      }
    }
  }
}

defineBench({
  name: 'localTasks',
  title: 'Local tasks',
  description: 'No-op tasks (an integer in, the same out) through VOIKE\'s worker pool against bare Piscina with ' +
    'the same thread count, 64 in flight. Piscina runs twice: with concurrentTasksPerWorker 4 (its fastest ' +
    'setting here, the target\'s reference) and with its defaults (1). Each Piscina round runs in a fresh child process.',
  systems: {
    voike: voikeLocalTasks,
    piscina: piscinaSystem('Piscina (4 tasks/worker)', 4),
    piscinaDefault: piscinaSystem('Piscina (defaults)', 1)
  },
  metrics: { perSec: { label: 'throughput, 64 in flight', unit: 'tasks/s' } },
  ratios: [
    { key: 'ratioVsPiscina', metric: 'perSec', vs: 'piscina', target: { op: '>=', value: 0.9 } },
    { key: 'ratioVsPiscinaDefault', metric: 'perSec', vs: 'piscinaDefault' }
  ],
  repeats: 5,
  quickRepeats: 3,
  config: (o) => ({ threads: poolThreads(o), inFlight: LOCAL_IN_FLIGHT, ...localTaskTiming(o) })
})

// ---- 3. split Fibonacci ------------------------------------------------------------------------

function singleThreadFib (): SystemSpec {
  return {
    label: 'single thread',
    metrics: FIB_METRICS,
    start: async (): Promise<Session> => {
      let result: FibResult | null = null
      return {
        measure: async () => {
          const t0 = performance.now()
          const r = fibInProcess(FIB_N)
          const wallMs = performance.now() - t0
          if (result !== null && (result.sha256 !== r.sha256 || result.sumMod61 !== r.sumMod61)) {
            throw new BenchError('ERR_NONDETERMINISTIC', 'fib result changed between rounds')
          }
          result = r
          return { wallMs }
        },
        // VOIKE's grid run must produce this same result.
        info: () => ({ result }),
        close: async () => {}
      }
    }
  }
}

defineBench({
  name: 'splitFib',
  title: 'Split Fibonacci',
  description: `The fib job with n=${FIB_N} on the 3-node local grid (\`voike up --nodes 3\`), wall time from submit to ` +
    'result, against the same job in one thread in-process (fibInProcess: one segment, same kernel as the grid\'s tasks). ' +
    'Speedup = single-thread time / grid time; parallel efficiency = speedup / cores.',
  systems: {
    voike: voikeSplitFib,
    singleThread: singleThreadFib()
  },
  metrics: { wallMs: { label: `fib n=${FIB_N} wall time`, unit: 'ms' } },
  ratios: [{ key: 'speedup', metric: 'wallMs', vs: 'singleThread', invert: true, target: { op: '>=', value: 1.8 } }],
  derived: [{
    key: 'parallelEfficiency',
    label: 'parallel efficiency (speedup / cores)',
    unit: 'fraction',
    compute: (get) => {
      const grid = get('voike', 'wallMs')
      const single = get('singleThread', 'wallMs')
      return grid === null || single === null || grid <= 0 ? null : single / grid / os.availableParallelism()
    }
  }],
  repeats: 5,
  quickRepeats: 3,
  warmupRounds: 1,
  config: { n: FIB_N, cores: os.availableParallelism() }
})

// ---- 4. join and footprint ---------------------------------------------------------------------

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** Bare libp2p node: spawn → the seed sees it connected; then its idle RSS. */
function rawLibp2pFootprint (): SystemSpec {
  return {
    label: 'bare libp2p node',
    metrics: FOOTPRINT_METRICS,
    start: async (options): Promise<Session> => {
      const { peer: seed, ready } = await startPeer('libp2p seed', 'baselines/raw-libp2p.js', ['serve'], PEER_READY_TIMEOUT_MS)
      const seedAddr = str((ready.multiaddrs as unknown[] | undefined)?.[0], 'multiaddrs')
      let joiner: PeerProcess | null = null
      return {
        measure: async () => {
          joiner = spawnNodePeer('libp2p joiner', 'baselines/raw-libp2p.js', ['join', '--peer', seedAddr])
          try {
            const j = await joiner.waitForEvent('ready', PEER_READY_TIMEOUT_MS)
            const peerId = str(j.peerId, 'peerId')
            const seen = await seed.waitFor((e) => e.event === 'peer:connect' && e.peerId === peerId, PEER_READY_TIMEOUT_MS, 'peer:connect')
            const joinMs = seen.atMs - joiner.spawnedAtMs
            await sleep(idleSettleMs(options))
            const idleRssMb = await rssBytesOf(joiner.pid) / BYTES_PER_MB
            return { joinMs, idleRssMb }
          } finally {
            await joiner.kill()
            joiner = null
          }
        },
        close: async () => {
          await (joiner as PeerProcess | null)?.kill()
          await seed.kill()
        }
      }
    }
  }
}

/** A Moleculer broker with the echo service (TCP transporter): idle RSS. */
function moleculerFootprint (): SystemSpec {
  return {
    label: 'Moleculer broker',
    metrics: ['idleRssMb'],
    start: async (options): Promise<Session> => {
      let broker: PeerProcess | null = null
      return {
        measure: async () => {
          broker = spawnNodePeer('moleculer broker', 'baselines/moleculer.js', ['serve'])
          try {
            await broker.waitForEvent('ready', PEER_READY_TIMEOUT_MS)
            await sleep(idleSettleMs(options))
            return { idleRssMb: await rssBytesOf(broker.pid) / BYTES_PER_MB }
          } finally {
            await broker.kill()
            broker = null
          }
        },
        close: async () => { await (broker as PeerProcess | null)?.kill() }
      }
    }
  }
}

defineBench({
  name: 'joinFootprint',
  title: 'Join and footprint',
  description: 'Join: time from spawning `voike node --genesis ...` to Genesis listing it alive. Footprint: RSS of ' +
    'a node process once idle (MB = MiB). References: a bare libp2p node process (same stack) from spawn to ' +
    'connected at its seed, and its idle RSS; a Moleculer broker\'s idle RSS.',
  systems: {
    voike: voikeJoinFootprint,
    rawLibp2p: rawLibp2pFootprint(),
    moleculer: moleculerFootprint()
  },
  metrics: {
    joinMs: { label: 'join (spawn to seen alive)', unit: 'ms' },
    idleRssMb: { label: 'idle RSS per node', unit: 'MB' }
  },
  targets: { joinMs: { op: '<=', value: 1000 }, idleRssMb: { op: '<=', value: 80 } },
  repeats: 5,
  quickRepeats: 3,
  config: (o) => ({ idleSettleMs: idleSettleMs(o) })
})

// ---- 5. submit latency -------------------------------------------------------------------------

defineBench({
  name: 'submitLatency',
  title: 'Submit latency',
  description: 'gRPC SubmitJob to result for a trivial job (fib n=10, 1 segment), sequential, p50/p99. Floor: a ' +
    'bare gRPC unary echo of a 100-byte message on loopback.',
  systems: {
    voike: voikeSubmitLatency,
    rawGrpc: echoSystem('gRPC unary echo', 'baselines/raw-grpc.js',
      async (r) => await connectRawGrpc(int(r.port, 'port')),
      async (c, o) => {
        const rtt = await measureRtt(c.echo, submitSamples(o))
        return { latencyP50Ms: rtt.p50Us / 1000, latencyP99Ms: rtt.p99Us / 1000 }
      }, SUBMIT_METRICS)
  },
  metrics: {
    latencyP50Ms: { label: 'SubmitJob → result p50', unit: 'ms' },
    latencyP99Ms: { label: 'SubmitJob → result p99', unit: 'ms' }
  },
  repeats: 5,
  quickRepeats: 3,
  config: (o) => ({ job: { kind: 'fib', n: 10, segments: 1 }, ...submitSamples(o) })
})

// ---- 6. FLOW -----------------------------------------------------------------------------------

defineBench({
  name: 'flow',
  title: 'FLOW',
  description: 'On the 3-node local grid: a flow of 8 independent small RUN JOB steps (fib n=20000, 2 segments each) run ' +
    'with 8 steps at once against the same flow one step at a time (the executor in the bench process, its GridPort over ' +
    'the Genesis\'s gRPC API). In-process: the executor\'s overhead per trivial step (the worse of independent and chained ' +
    'steps) and LOAD CSV + FILTER + GROUP throughput over a generated CSV (100 MB, 20 MB with --quick).',
  systems: { voike: voikeFlow },
  metrics: {
    parallelMs: { label: '8 RUN JOB steps, independent', unit: 'ms' },
    sequentialMs: { label: 'the same 8, one at a time', unit: 'ms' },
    parallelVsSequential: { label: 'independent / one at a time', unit: 'ratio' },
    overheadMsPerStep: { label: 'executor overhead per trivial step', unit: 'ms' },
    csvMBps: { label: 'LOAD CSV + FILTER + GROUP', unit: 'MB/s' }
  },
  targets: {
    parallelVsSequential: { op: '<=', value: 0.6 },
    overheadMsPerStep: { op: '<=', value: 1 },
    csvMBps: { op: '>=', value: 50 }
  },
  repeats: 3,
  quickRepeats: 2,
  warmupRounds: 1,
  measureTimeoutMs: 600_000,
  config: (o) => ({ jobs: 8, fibN: 20_000, segments: 2, csvMb: o.quick ? 20 : 100 })
})

// ---- main --------------------------------------------------------------------------------------

function packageVersion (name: string): string {
  try {
    const path = fileURLToPath(new URL(`../../node_modules/${name}/package.json`, import.meta.url))
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

async function main (): Promise<number> {
  let options: CliOptions
  try {
    options = parseCli(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n${USAGE}\n`)
    return 2
  }
  if (options.help) {
    process.stdout.write(`${USAGE}\nbenchmarks: ${registeredBenches().map((d) => d.name).join(', ')}\n`)
    return 0
  }
  installCleanupHandlers()
  const versions = Object.fromEntries(['moleculer', 'libp2p', '@chainsafe/libp2p-noise', '@chainsafe/libp2p-yamux',
    'piscina', '@grpc/grpc-js', 'msgpackr'].map((n) => [n, packageVersion(n)]))
  let report
  try {
    report = await runAll(options, { versions })
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_USAGE') {
      process.stderr.write(`bench: ${(err as Error).message}\n`)
      return 2
    }
    throw err
  } finally {
    await killAllPeers()
  }
  process.stdout.write(`\nVOIKE benchmarks (${report.meta.quick === true ? 'quick' : 'full'}; ${String(report.meta.cpus)} cores, ` +
    `${String(report.meta.cpuModel)}; node ${process.version}; ${(Number(report.meta.durationMs) / 1000).toFixed(0)} s)\n\n`)
  process.stdout.write(formatTable(report) + '\n')
  if (options.json) {
    await writeReport(report, options.jsonPath)
    process.stdout.write(`\nwrote ${options.jsonPath}\n`)
  }
  if (livePeerCount() !== 0) throw new BenchError('ERR_PEERS_LEFT', `${livePeerCount()} peer processes still running`)
  return report.failed ? 1 : 0
}

main().then((code) => {
  process.exitCode = code
  // Everything is closed by now; if a library still holds the loop open, do not hang the shell.
  setTimeout(() => {
    process.stderr.write('bench: event loop still busy after the run; exiting\n')
    process.exit(code)
  }, 5_000).unref()
}, async (err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  await killAllPeers()
  process.exit(1)
})
