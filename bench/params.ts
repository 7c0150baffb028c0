/**
 * The settings every system of a comparison is measured with. VOIKE's side (bench/voike.ts) must
 * use these same values so its figures sit beside the peers' on equal terms.
 */
import os from 'node:os'
import type { CliOptions } from './harness.js'
import type { EchoSuiteOptions } from './echo.js'

/** Remote tasks: calls in flight for the throughput figures (`perSec<N>InFlight`). */
export const REMOTE_IN_FLIGHT = [64, 256] as const

/** Remote tasks: window, warm-up and sequential-RTT sample counts. */
export function echoSuiteOptions (options: CliOptions): EchoSuiteOptions {
  return options.quick
    ? { inFlight: REMOTE_IN_FLIGHT, durationMs: 1_000, warmupMs: 300, rttCount: 2_000, rttWarmup: 200 }
    : { inFlight: REMOTE_IN_FLIGHT, durationMs: 2_000, warmupMs: 500, rttCount: 5_000, rttWarmup: 500 }
}

/** Local tasks: calls in flight. */
export const LOCAL_IN_FLIGHT = 64

export function localTaskTiming (options: CliOptions): { durationMs: number, warmupMs: number } {
  return options.quick ? { durationMs: 1_000, warmupMs: 300 } : { durationMs: 2_000, warmupMs: 500 }
}

/** Worker threads of the local pools (VOIKE's and bare Piscina): --threads, else the cores. */
export function poolThreads (options: CliOptions): number {
  return options.threads ?? os.availableParallelism()
}

/** Split Fibonacci: n for the grid job and the single-threaded run. */
export const FIB_N = 300_000

/** Split Fibonacci: the fixed segment count (the other run uses segments = cores). */
export const FIB_SEGMENTS = 24

/** Split Fibonacci: the segment count of the `...Cores` figures (the cores of this machine). */
export function fibCoreSegments (): number {
  return os.availableParallelism()
}

/** Job throughput: concurrent gRPC clients, jobs in total per round, and the small job. */
export function throughputSettings (options: CliOptions): { clients: number, jobs: number, n: number, segments: number } {
  return { clients: 32, jobs: options.quick ? 200 : 500, n: 1_000, segments: 4 }
}

/** Join and footprint: a node counts as idle this long after it is ready (then RSS is read). */
export function idleSettleMs (options: CliOptions): number {
  return options.quick ? 1_500 : 3_000
}

/** Submit latency: sequential calls timed, after a warm-up. */
export function submitSamples (options: CliOptions): { count: number, warmup: number } {
  return options.quick ? { count: 300, warmup: 30 } : { count: 1_000, warmup: 100 }
}

/** Bytes per MB in `...Mb` figures (MiB). */
export const BYTES_PER_MB = 2 ** 20

// Metric names per benchmark: VOIKE's system must report exactly these (JSON keys are
// `voike<Metric>`, e.g. voikePerSec64InFlight).
export const REMOTE_METRICS: readonly string[] = [...REMOTE_IN_FLIGHT.map((n) => `perSec${n}InFlight`), 'rttP50Us', 'rttP99Us']
export const LOCAL_METRICS: readonly string[] = ['perSec']
export const FIB_METRICS: readonly string[] = ['wallMs']
/** `wallMs`: FIB_SEGMENTS segments; `wallMsCores`: segments = cores. */
export const FIB_SPLIT_METRICS: readonly string[] = ['wallMs', 'wallMsCores']
export const THROUGHPUT_METRICS: readonly string[] = ['jobsPerSec', 'latencyP50Ms', 'latencyP99Ms']
export const FOOTPRINT_METRICS: readonly string[] = ['joinMs', 'idleRssMb']
export const SUBMIT_METRICS: readonly string[] = ['latencyP50Ms', 'latencyP99Ms']
