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
import { Counter, Gauge, type Registry } from 'prom-client'
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
  'voike_worker_pool_utilization',
  'voike_worker_pool_queue_size',
  'voike_worker_pool_threads',
  'voike_worker_pool_in_flight',
  'voike_worker_tasks_total',
  'voike_worker_pool_rejected_total'
] as const

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

  const metrics = registerMetrics(opts.registry, {
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
        countResults(results)
        return results
      },
      (err: unknown) => {
        advanceUtil()
        inFlight--
        replaceLostThreads()
        throw mapPiscinaError(err)
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

  function countResults (results: TaskResult[]): void {
    let ok = 0
    for (const r of results) if (r.ok) ok++
    if (ok > 0) metrics.tasks.inc({ result: 'ok' }, ok)
    if (results.length > ok) metrics.tasks.inc({ result: 'error' }, results.length - ok)
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

function registerMetrics (registry: Registry, read: Readers): { tasks: Counter<'result'>, rejected: Counter } {
  const registers = [registry]
  // Gauges are read at scrape time (collect) rather than updated on the hot path.
  new Gauge({ name: 'voike_worker_pool_utilization', help: 'Share of worker threads busy, exponentially averaged over ~10 s (0-1)', registers, collect () { this.set(read.utilization()) } })
  new Gauge({ name: 'voike_worker_pool_queue_size', help: 'Batches waiting for a worker thread', registers, collect () { this.set(read.queueSize()) } })
  new Gauge({ name: 'voike_worker_pool_threads', help: 'Worker threads alive', registers, collect () { this.set(read.threads()) } })
  new Gauge({ name: 'voike_worker_pool_in_flight', help: 'Batches dispatched to the worker pool and not finished', registers, collect () { this.set(read.inFlight()) } })
  const tasks = new Counter({ name: 'voike_worker_tasks_total', help: 'Tasks run by worker threads, by result', labelNames: ['result'] as const, registers })
  const rejected = new Counter({ name: 'voike_worker_pool_rejected_total', help: 'Batches refused with ERR_WORKER_BUSY', registers })
  return { tasks, rejected }
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
