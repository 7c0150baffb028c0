/**
 * PerfWatch's measuring, as pure functions of raw readings: the actor (perfwatch.ts) reads
 * `process.cpuUsage()`, `os.cpus()`, `process.memoryUsage()`, the event-loop delay histogram and
 * the worker pool's gauges once per window, and these turn two consecutive readings into one
 * `PerfSample`. No clock, no I/O here, so every formula is testable with made-up numbers.
 */

/** `process.cpuUsage()`: microseconds of user and system CPU of the whole process (all threads). */
export interface CpuUsage { user: number, system: number }

/** One logical CPU's cumulative times, in ms (`os.cpus()[i].times`). */
export interface CpuTimes { user: number, nice: number, sys: number, idle: number, irq: number }

/** The event-loop delay histogram (`perf_hooks.monitorEventLoopDelay`), values in ns. */
export interface DelayHistogram {
  percentile: (p: number) => number
  readonly count?: number
}

/** What the worker pool shows (`WorkerPool.stats()`), or an injected getter's answer. */
export interface PoolReading {
  /** Recent share of the threads kept busy, 0..1. */
  utilization: number
  /** Batches waiting for a thread. */
  queueSize: number
  /** Threads the pool may run. */
  maxThreads: number
}

/** One measuring window of this node. Units in the names; every field finite. */
export interface PerfSample {
  /** When the window ended (wall clock, ms). */
  atMs: number
  /** Length of the window, ms. */
  windowMs: number
  /** CPU of this process (all its threads) as % of one core, like `top`: may exceed 100. */
  processCpuPct: number
  /** Busy share of all the host's cores, 0..100. */
  hostCpuPct: number
  rssBytes: number
  heapUsedBytes: number
  /** V8's heap limit, for the memory advisory. */
  heapLimitBytes: number
  /** Event-loop delay percentiles over the window, ms (0 when no sample was taken). */
  loopP50Ms: number
  loopP99Ms: number
  /** Worker pool: busy share 0..1, queued batches, threads. */
  poolUtilization: number
  poolQueueDepth: number
  poolThreads: number
}

/** CPU % of one core used by the process between two readings `elapsedMs` apart. */
export function processCpuPercent (prev: CpuUsage, cur: CpuUsage, elapsedMs: number): number {
  if (!(elapsedMs > 0)) return 0
  const usedUs = (cur.user - prev.user) + (cur.system - prev.system)
  // Counters never go back; a negative delta means the readings are not of one process.
  if (!(usedUs >= 0)) return 0
  return (usedUs / 1000) / elapsedMs * 100
}

/** Busy share of all cores between two `os.cpus()` readings, 0..100. */
export function hostCpuPercent (prev: readonly CpuTimes[], cur: readonly CpuTimes[]): number {
  const n = Math.min(prev.length, cur.length)
  let busy = 0
  let total = 0
  for (let i = 0; i < n; i++) {
    const a = prev[i]
    const b = cur[i]
    const idle = b.idle - a.idle
    const all = (b.user - a.user) + (b.nice - a.nice) + (b.sys - a.sys) + (b.irq - a.irq) + idle
    if (!(all > 0) || idle < 0) continue
    busy += all - idle
    total += all
  }
  return total > 0 ? clamp(busy / total * 100, 0, 100) : 0
}

/** p50 and p99 of the event-loop delay in ms (the histogram counts ns). */
export function loopDelayMs (h: DelayHistogram): { p50Ms: number, p99Ms: number } {
  if (h.count === 0) return { p50Ms: 0, p99Ms: 0 }
  const p50 = h.percentile(50) / 1e6
  const p99 = h.percentile(99) / 1e6
  return { p50Ms: finiteOr0(p50), p99Ms: finiteOr0(p99) }
}

export interface RawWindow {
  atMs: number
  elapsedMs: number
  cpuPrev: CpuUsage
  cpuCur: CpuUsage
  cpusPrev: readonly CpuTimes[]
  cpusCur: readonly CpuTimes[]
  memory: { rss: number, heapUsed: number }
  heapLimitBytes: number
  delay: DelayHistogram
  pool: PoolReading
}

/** The sample of one window from its raw readings. */
export function makeSample (w: RawWindow): PerfSample {
  const { p50Ms, p99Ms } = loopDelayMs(w.delay)
  return {
    atMs: w.atMs,
    windowMs: Math.max(0, w.elapsedMs),
    processCpuPct: processCpuPercent(w.cpuPrev, w.cpuCur, w.elapsedMs),
    hostCpuPct: hostCpuPercent(w.cpusPrev, w.cpusCur),
    rssBytes: Math.max(0, finiteOr0(w.memory.rss)),
    heapUsedBytes: Math.max(0, finiteOr0(w.memory.heapUsed)),
    heapLimitBytes: Math.max(0, finiteOr0(w.heapLimitBytes)),
    loopP50Ms: p50Ms,
    loopP99Ms: p99Ms,
    poolUtilization: clamp(finiteOr0(w.pool.utilization), 0, 1),
    poolQueueDepth: Math.max(0, Math.floor(finiteOr0(w.pool.queueSize))),
    poolThreads: Math.max(0, Math.floor(finiteOr0(w.pool.maxThreads)))
  }
}

export function clamp (x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x
}

function finiteOr0 (x: number): number {
  return Number.isFinite(x) ? x : 0
}
