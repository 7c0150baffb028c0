/**
 * The worker pool ("VASM workers"): a Piscina thread pool running task kinds from tasks/index.ts.
 *
 * The unit handed to Piscina is a *batch* of tasks (see thread.ts): one Piscina task per small
 * task would cap throughput at the thread-message rate. The pool bounds its work: at most
 * `threads` batches run and at most `maxQueue` wait; beyond that, calls fail at once with
 * ERR_WORKER_BUSY so the scheduler can place the work elsewhere (Piscina's own queue would grow
 * without limit otherwise).
 *
 * Threads are created on demand and retired after `idleTimeoutMs`, because each idle thread
 * costs RSS and an idle node must stay small.
 */
import os from 'node:os'
import { performance } from 'node:perf_hooks'
import { Piscina } from 'piscina'
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { silentLogger, type Logger } from '../../config/logger.js'
import { intOption, resolveInts, type IntTable } from '../../config/options.js'
import { WorkerError, WorkerErrorCode } from './errors.js'
import type { BatchTask, TaskResult, ThreadData } from './thread.js'
import { createTaskRegistry, type TaskKind, type TaskModule } from './task-kinds.js'

export type { BatchTask, TaskResult } from './thread.js'

export interface WorkerPoolOptions {
  /** Registry for the pool's metrics (one pool per registry; close() unregisters them). */
  registry: Registry
  /**
   * The task kinds the pool runs: the default exports of task modules (`actors/kinds/<kind>/task.ts`),
   * given by the composition root. Every thread imports the same modules.
   */
  tasks: readonly TaskModule[]
  /** Maximum number of threads. Default os.availableParallelism(). 1 … 256. */
  threads?: number
  /**
   * Threads kept alive while idle. Default 0: an idle node holds no worker thread (each costs
   * RSS); the first task pays the thread start (tens of ms). 0 … threads.
   */
  minThreads?: number
  /** Batches that may wait for a thread beyond those running. Default threads × 64. 0 … 1e6. */
  maxQueue?: number
  /** A thread idle this long (above minThreads) exits. Default 30 000 ms. */
  idleTimeoutMs?: number
  /** Most tasks in one batch. Default 4096. 1 … 1e6. */
  maxBatchSize?: number
  /** Default silentLogger. */
  logger?: Logger
}

export interface RunOptions {
  /**
   * Aborting rejects with ERR_CANCELLED. A batch still waiting is dropped; a running batch is
   * stopped by terminating its thread (Piscina replaces it on demand), which frees the core at
   * once: heavy tasks can run for minutes.
   */
  signal?: AbortSignal
}

export interface WorkerPoolStats {
  /** Threads alive now. */
  threads: number
  minThreads: number
  maxThreads: number
  /** Most tasks accepted in one batch. */
  maxBatchSize: number
  /** Batches dispatched and not finished (running + waiting). */
  inFlight: number
  /** Batches waiting for a thread (Piscina's queue). */
  queueSize: number
  /** Batches running on a thread (inFlight − queueSize). */
  running: number
  /** Most batches in flight before ERR_WORKER_BUSY: maxThreads + maxQueue. */
  capacity: number
  /** Batches completed since start. */
  completed: number
  /** Recent share of the threads kept busy, 0 … 1 (see utilization()). */
  utilization: number
  closed: boolean
}

export interface WorkerPool {
  /** Runs one task; rejects with its error (a WorkerError with the task's code) if it fails. */
  run: (kind: string, payload: unknown, options?: RunOptions) => Promise<{ value: unknown, ms: number }>
  /**
   * Runs tasks as one batch on one thread, in order. Per-task failures are results, not
   * rejections; the promise rejects only for the batch as a whole (ERR_WORKER_BUSY,
   * ERR_CANCELLED, ERR_POOL_CLOSED, ERR_WORKER_CRASHED, ERR_INVALID_ARGUMENT).
   */
  runBatch: (tasks: BatchTask[], options?: RunOptions) => Promise<TaskResult[]>
  /** Batches that can be accepted right now without ERR_WORKER_BUSY. */
  freeSlots: () => number
  /**
   * The share of maxThreads kept busy, averaged exponentially over the last ~10 s (like a load
   * average), 0 … 1. Not Piscina's `utilization`: in Piscina 5.3.2 that reads 1000× too low
   * (a ms/s unit slip) and averages over the pool's whole life, useless for placement.
   */
  utilization: () => number
  stats: () => WorkerPoolStats
  /** Stops the threads at once: waiting and running batches reject with ERR_POOL_CLOSED. */
  close: () => Promise<void>
  /** The registered task kind of that name (for early rejection and batching), or undefined. */
  taskKind: (name: string) => TaskKind | undefined
  /** Names of every registered task kind. */
  taskKinds: () => string[]
}

/** Time constant of the utilization average. */
const UTIL_TAU_MS = 10_000

const THREAD_URL = new URL('./thread.js', import.meta.url).href

const METRIC_NAMES = [
  'voike_worker_pool_utilization_ratio',
  'voike_worker_pool_queue_size',
  'voike_worker_pool_threads',
  'voike_worker_pool_in_flight',
  'voike_worker_tasks_total',
  'voike_task_duration_seconds',
  'voike_worker_pool_rejected_total'
] as const

/** Outcomes of tasks handed to the threads: ran and returned, threw (or the thread died), dropped by a cancel. */
export const WORKER_TASK_STATUSES = ['ok', 'error', 'cancelled'] as const
/** 100 µs … 10 min, roughly ×2.5 per bucket: light tasks take microseconds, heavy ones minutes. */
export const TASK_DURATION_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60, 150, 300, 600]

export function createWorkerPool (options: WorkerPoolOptions): WorkerPool {
  const opts = validateOptions(options)
  const logger = options.logger ?? silentLogger
  const piscina = new Piscina({
    filename: THREAD_URL,
    minThreads: opts.minThreads,
    maxThreads: opts.threads,
    idleTimeout: opts.idleTimeoutMs,
    // Our own gate (inFlight < capacity) is the limit; Piscina's is looser so it never fires
    // first (its check also counts threads still starting).
    maxQueue: opts.maxQueue + opts.threads,
    // One batch per thread at a time: a dispatched batch is then either waiting or running,
    // so aborting a waiting one never terminates a thread that runs someone else's batch.
    concurrentTasksPerWorker: 1,
    recordTiming: true,
    workerData: { taskModules: opts.tasks.map(m => m.url) } satisfies ThreadData
  })
  // Piscina emits 'error' for a thread failing with no task on it; unhandled, it would crash
  // the process.
  piscina.on('error', (err: unknown) => { logger.error('worker thread error', { err }) })

  const capacity = opts.threads + opts.maxQueue
  let inFlight = 0
  // Exponentially weighted busy share; folded forward on every change of inFlight and on read.
  let util = 0
  let utilAt = performance.now()
  function advanceUtil (): void {
    const now = performance.now()
    const dt = now - utilAt
    if (dt <= 0) return
    const weight = Math.exp(-dt / UTIL_TAU_MS)
    util = util * weight + (Math.min(inFlight, opts.threads) / opts.threads) * (1 - weight)
    utilAt = now
  }
  function utilization (): number {
    advanceUtil()
    return util
  }
  let closed = false
  let closing: Promise<void> | undefined

  const metrics = registerMetrics(opts.registry, [...opts.taskRegistry.keys()], {
    utilization,
    queueSize: () => piscina.queueSize,
    threads: () => piscina.threads.length,
    inFlight: () => inFlight
  })

  function runBatch (tasks: BatchTask[], runOptions: RunOptions = {}): Promise<TaskResult[]> {
    const { signal } = runOptions
    if (closed) return Promise.reject(new WorkerError(WorkerErrorCode.POOL_CLOSED, 'the worker pool is closed'))
    if (!Array.isArray(tasks) || tasks.length === 0 || tasks.length > opts.maxBatchSize) {
      return Promise.reject(new WorkerError(WorkerErrorCode.INVALID_ARGUMENT, `tasks: a batch holds 1 … ${opts.maxBatchSize} tasks`, { field: 'tasks' }))
    }
    if (signal?.aborted === true) return Promise.reject(cancelled())
    if (inFlight >= capacity) {
      metrics.rejected.inc()
      return Promise.reject(new WorkerError(WorkerErrorCode.WORKER_BUSY, `worker pool busy: ${inFlight} batches in flight (capacity ${capacity})`))
    }
    advanceUtil()
    inFlight++
    const done = piscina.run({ batch: tasks }, { signal: signal ?? null }) as Promise<TaskResult[]>
    return done.then(
      (results) => {
        advanceUtil()
        inFlight--
        countResults(tasks, results)
        return results
      },
      (err: unknown) => {
        advanceUtil()
        inFlight--
        replaceLostThreads()
        const mapped = mapPiscinaError(err)
        countFailed(tasks, mapped.code === WorkerErrorCode.CANCELLED ? 'cancelled' : 'error')
        throw mapped
      }
    )
  }

  /**
   * A batch failed: its thread may be gone (terminated on abort, or crashed). Piscina then only
   * restores minThreads (0 by default), so batches still queued would wait for the next run()
   * to spawn a thread. Piscina spawns when work is queued and threads are below the maximum, so
   * an empty batch, outside our accounting, kicks it; it costs a message once it runs.
   */
  function replaceLostThreads (): void {
    if (closed || piscina.queueSize === 0 || piscina.threads.length >= opts.threads) return
    piscina.run({ batch: [] }).catch((err: unknown) => { logger.debug('worker pool: respawn kick failed', { err }) })
  }

  /** A registered task kind names its series; anything else shares `unknown` (bounded label values). */
  function kindLabel (kind: unknown): string {
    return typeof kind === 'string' && opts.taskRegistry.has(kind) ? kind : 'unknown'
  }

  /** Counts by task kind (one inc per kind and outcome, not per task) and times every task. */
  function countResults (tasks: BatchTask[], results: TaskResult[]): void {
    const counts = new Map<string, { ok: number, error: number }>()
    for (let i = 0; i < results.length; i++) {
      const r = results[i]
      const kind = kindLabel(tasks[i]?.kind)
      let c = counts.get(kind)
      if (c === undefined) { c = { ok: 0, error: 0 }; counts.set(kind, c) }
      if (r.ok) c.ok++
      else c.error++
      if (Number.isFinite(r.ms) && r.ms >= 0) metrics.duration.observe({ kind }, r.ms / 1000)
    }
    for (const [kind, c] of counts) {
      if (c.ok > 0) metrics.tasks.inc({ kind, status: 'ok' }, c.ok)
      if (c.error > 0) metrics.tasks.inc({ kind, status: 'error' }, c.error)
    }
  }

  /** A batch that failed as a whole: its tasks did not return (the thread died, or a cancel dropped them). */
  function countFailed (tasks: BatchTask[], status: 'error' | 'cancelled'): void {
    const counts = new Map<string, number>()
    for (const t of tasks) { const kind = kindLabel(t.kind); counts.set(kind, (counts.get(kind) ?? 0) + 1) }
    for (const [kind, n] of counts) metrics.tasks.inc({ kind, status }, n)
  }

  function mapPiscinaError (err: unknown): WorkerError {
    if (err instanceof WorkerError) return err
    const e = err as { name?: string, message?: string }
    if (e?.name === 'AbortError') return cancelled()
    if (closed) return new WorkerError(WorkerErrorCode.POOL_CLOSED, 'the worker pool was closed', { cause: err })
    return new WorkerError(WorkerErrorCode.WORKER_CRASHED, `worker thread failed: ${String(e?.message ?? err)}`, { cause: err })
  }

  async function run (kind: string, payload: unknown, runOptions?: RunOptions): Promise<{ value: unknown, ms: number }> {
    const [r] = await runBatch([{ kind, payload }], runOptions)
    if (!r.ok) throw new WorkerError(r.error.code, r.error.message)
    return { value: r.value, ms: r.ms }
  }

  function stats (): WorkerPoolStats {
    const queueSize = piscina.queueSize
    return {
      threads: piscina.threads.length,
      minThreads: opts.minThreads,
      maxThreads: opts.threads,
      maxBatchSize: opts.maxBatchSize,
      inFlight,
      queueSize,
      running: Math.max(0, inFlight - queueSize),
      capacity,
      completed: piscina.completed,
      utilization: utilization(),
      closed
    }
  }

  function close (): Promise<void> {
    if (closing !== undefined) return closing
    closed = true
    for (const name of METRIC_NAMES) opts.registry.removeSingleMetric(name)
    // destroy(), not close(): close() waits for running batches, which may take minutes.
    closing = piscina.destroy()
    return closing
  }

  return {
    run,
    runBatch,
    freeSlots: () => closed ? 0 : Math.max(0, capacity - inFlight),
    utilization,
    stats,
    close,
    taskKind: (name) => opts.taskRegistry.get(name),
    taskKinds: () => [...opts.taskRegistry.keys()]
  }
}

function cancelled (): WorkerError {
  return new WorkerError(WorkerErrorCode.CANCELLED, 'the task was cancelled')
}

interface Readers {
  utilization: () => number
  queueSize: () => number
  threads: () => number
  inFlight: () => number
}

/**
 * The pool's families. Tasks are counted and timed here, on the node whose threads ran them
 * (whoever coordinated their job): voike_worker_tasks_total{kind,status} and
 * voike_task_duration_seconds{kind}, `kind` being the task kind (`fib-segment`, `noop`); the
 * series of every registered task kind start at 0.
 */
function registerMetrics (registry: Registry, taskKinds: readonly string[], read: Readers): { tasks: Counter<'kind' | 'status'>, duration: Histogram<'kind'>, rejected: Counter } {
  const registers = [registry]
  // Gauges are read at scrape time (collect) rather than updated on the hot path.
  new Gauge({ name: 'voike_worker_pool_utilization_ratio', help: 'Share of worker threads busy, exponentially averaged over ~10 s (0-1)', registers, collect () { this.set(read.utilization()) } })
  new Gauge({ name: 'voike_worker_pool_queue_size', help: 'Batches waiting for a worker thread', registers, collect () { this.set(read.queueSize()) } })
  new Gauge({ name: 'voike_worker_pool_threads', help: 'Worker threads alive', registers, collect () { this.set(read.threads()) } })
  new Gauge({ name: 'voike_worker_pool_in_flight', help: 'Batches dispatched to the worker pool and not finished', registers, collect () { this.set(read.inFlight()) } })
  const tasks = new Counter({ name: 'voike_worker_tasks_total', help: 'Tasks handed to this node\'s worker threads, by task kind and status (ok, error, cancelled)', labelNames: ['kind', 'status'] as const, registers })
  const duration = new Histogram({ name: 'voike_task_duration_seconds', help: 'Time a worker thread of this node spent on each task, by task kind', labelNames: ['kind'] as const, buckets: TASK_DURATION_BUCKETS_S, registers })
  const rejected = new Counter({ name: 'voike_worker_pool_rejected_total', help: 'Batches refused with ERR_WORKER_BUSY', registers })
  for (const kind of taskKinds) {
    for (const status of WORKER_TASK_STATUSES) tasks.inc({ kind, status }, 0)
    duration.zero({ kind })
  }
  return { tasks, duration, rejected }
}

interface FilledOptions {
  registry: Registry
  tasks: readonly TaskModule[]
  taskRegistry: ReadonlyMap<string, TaskKind>
  threads: number
  minThreads: number
  maxQueue: number
  idleTimeoutMs: number
  maxBatchSize: number
}

function validateOptions (o: WorkerPoolOptions): FilledOptions {
  if (typeof o !== 'object' || o === null) throw new TypeError('createWorkerPool: options must be an object')
  if (o.registry === undefined || typeof (o.registry as { registerMetric?: unknown }).registerMetric !== 'function') {
    throw new TypeError('createWorkerPool: options.registry must be a prom-client Registry')
  }
  // Throws (TypeError) on a malformed module or a kind registered twice.
  const tasks = createTaskRegistry(o.tasks)
  const fail = (field: string, why: string): WorkerError =>
    new WorkerError(WorkerErrorCode.INVALID_OPTION, `createWorkerPool: options.${field} ${why}`, { field })
  const threads = intOption(o.threads, 'threads', { default: os.availableParallelism(), min: 1, max: 256 }, fail)
  // The other bounds depend on the thread count, so their table is built from it.
  const table: IntTable<'minThreads' | 'maxQueue' | 'idleTimeoutMs' | 'maxBatchSize'> = {
    minThreads: { default: 0, min: 0, max: threads },
    maxQueue: { default: threads * 64, min: 0, max: 1_000_000 },
    idleTimeoutMs: { default: 30_000, min: 0, max: 24 * 3600_000 },
    maxBatchSize: { default: 4096, min: 1, max: 1_000_000 }
  }
  return { registry: o.registry, tasks: o.tasks, taskRegistry: tasks, threads, ...resolveInts(table, { minThreads: o.minThreads, maxQueue: o.maxQueue, idleTimeoutMs: o.idleTimeoutMs, maxBatchSize: o.maxBatchSize }, fail) }
}
