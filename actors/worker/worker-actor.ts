/**
 * The `worker` actor: the node's door to its worker pool. A scheduler (local or remote) tells it
 * tasks to run; it answers each task exactly once, in `results` messages told back to the sender.
 *
 * Protocol (plain objects; they cross the wire with msgpack):
 * - tell `{ type: 'run', tasks: [{ id, kind, payload, timeoutMs? }] }` (with `from` set, so the
 *   actor knows whom to answer) → later tells `{ type: 'results', results: [{ id, ok, value | error,
 *   ms }] }` back to the sender, from this actor's name.
 * - tell `{ type: 'cancel', ids }` → each still-unanswered task of that sender is answered at once
 *   with ERR_CANCELLED (see cancelTask for what happens to its thread work).
 * - ask `{ type: 'stats' }` → `{ threads, maxThreads, queueSize, utilization, running, freeSlots }`.
 *
 * receive() never awaits the pool, so the mailbox keeps flowing while threads work: it dispatches
 * batches and returns. Answers finishing in the same tick for the same sender are coalesced into
 * one `results` message (per-message overhead is what limits the wire).
 */
import { performance } from 'node:perf_hooks'
import { silentLogger, type Logger } from '../../config/logger.js'
import { ReplyError } from '../runtime/errors.js'
import type { Actor, ActorRef, ActorSystem, MessageContext } from '../runtime/types.js'
import { resolveInts, type IntTable } from '../../config/options.js'
import { WorkerError, WorkerErrorCode } from './errors.js'
import type { WorkerPool, BatchTask, TaskResult } from './pool.js'

export interface WorkerActorOptions {
  /** The pool that runs the tasks; owned by the caller (the actor never closes it). */
  pool: WorkerPool
  /** Default silentLogger. */
  logger?: Logger
  /** Most tasks (and cancel ids) accepted in one message; more → the message is ignored. Default 4096. */
  maxTasksPerMessage?: number
  /** Most batchable tasks packed into one Piscina task. Default 1024. */
  maxBatchSize?: number
  /** Most results in one `results` message; more are split. Default 4096. */
  maxResultsPerMessage?: number
  /** Tasks accepted and not yet answered; beyond, new tasks are answered ERR_WORKER_BUSY. Default 65536. */
  maxPendingTasks?: number
}

export type WorkerTaskResult =
  | { id: string, ok: true, value: unknown, ms: number }
  | { id: string, ok: false, error: { code: string, message: string }, ms: number }

export interface WorkerStats {
  threads: number
  maxThreads: number
  /** Piscina tasks (batches) waiting for a thread. */
  queueSize: number
  /** See WorkerPool.utilization. */
  utilization: number
  /** Tasks accepted by this actor and not answered yet. */
  running: number
  /** Batches the pool still accepts before ERR_WORKER_BUSY. */
  freeSlots: number
}

/** Longest task id accepted. */
export const MAX_TASK_ID_LENGTH = 128
/** Longest per-task timeout accepted: 24 h. */
export const MAX_TASK_TIMEOUT_MS = 24 * 3600_000
/** Fewest light tasks per batch before light tasks are spread over more threads (see onRun). */
export const MIN_SPLIT_BATCH = 64
/** Attempts to deliver a `results` message whose tell failed with a full mailbox, and their spacing. */
const RESULTS_SEND_ATTEMPTS = 4
const RESULTS_RETRY_BASE_MS = 10

interface Sender {
  readonly ref: ActorRef
  readonly key: string
}

interface PendingTask {
  readonly id: string
  readonly key: string
  readonly sender: Sender
  readonly batch: Batch
  readonly receivedAt: number
  /** performance.now() deadline, or Infinity. */
  readonly deadline: number
  answered: boolean
}

interface Batch {
  readonly tasks: PendingTask[]
  readonly controller: AbortController
  /** Tasks of the batch not answered yet. */
  open: number
  /** The pool answered (or refused) the batch. */
  settled: boolean
  timer: NodeJS.Timeout | undefined
}

interface TaskMsg { id: string, kind: unknown, payload: unknown, timeoutMs?: unknown }

export function createWorkerActor (options: WorkerActorOptions): Actor {
  const opts = validateOptions(options)
  const { pool } = opts
  const logger = options.logger ?? silentLogger

  /** Unanswered tasks by `senderKey \n id`. */
  const pending = new Map<string, PendingTask>()
  const batches = new Set<Batch>()
  /** Answers waiting for the end-of-tick flush, by sender key. */
  const outbox = new Map<string, { ref: ActorRef, results: WorkerTaskResult[] }>()
  let flushHandle: NodeJS.Immediate | undefined
  const retryTimers = new Set<NodeJS.Timeout>()
  let system: ActorSystem | undefined
  let selfName = 'worker'
  let stopped = false

  // ---- answering -------------------------------------------------------------------------

  /** Answers a task once; later answers for it (a late thread result) are dropped. */
  function answer (task: PendingTask, result: WorkerTaskResult): void {
    if (task.answered) return
    task.answered = true
    pending.delete(task.key)
    enqueue(task.sender, result)
    const batch = task.batch
    batch.open--
    if (batch.open === 0) finishBatch(batch)
  }

  function answerError (task: PendingTask, code: string, message: string): void {
    answer(task, { id: task.id, ok: false, error: { code, message }, ms: performance.now() - task.receivedAt })
  }

  /** Every task of the batch is answered: drop its timer and, if the pool still has it, the work. */
  function finishBatch (batch: Batch): void {
    if (batch.timer !== undefined) clearTimeout(batch.timer)
    batch.timer = undefined
    batches.delete(batch)
    // Nobody waits for this work any more (all cancelled or timed out). Aborting drops it from
    // the pool's queue, or terminates the thread running it, which frees the core at once.
    if (!batch.settled) batch.controller.abort()
  }

  function enqueue (sender: Sender, result: WorkerTaskResult): void {
    let box = outbox.get(sender.key)
    if (box === undefined) {
      box = { ref: sender.ref, results: [] }
      outbox.set(sender.key, box)
    }
    box.results.push(result)
    if (flushHandle === undefined && !stopped) flushHandle = setImmediate(flush)
  }

  function flush (): void {
    flushHandle = undefined
    for (const box of outbox.values()) {
      for (let i = 0; i < box.results.length; i += opts.maxResultsPerMessage) {
        const results = box.results.length <= opts.maxResultsPerMessage ? box.results : box.results.slice(i, i + opts.maxResultsPerMessage)
        send(box.ref, { type: 'results', results }, 1)
      }
    }
    outbox.clear()
  }

  function send (to: ActorRef, msg: { type: 'results', results: WorkerTaskResult[] }, attempt: number): void {
    if (system === undefined) return
    try {
      system.tell(to, msg, selfName)
    } catch (err) {
      const code = (err as { code?: unknown }).code
      if (code === 'ERR_MAILBOX_FULL' && attempt < RESULTS_SEND_ATTEMPTS && !stopped) {
        // The scheduler is momentarily flooded: a short backoff beats losing answers (it would
        // otherwise wait for its own timeout to re-place them).
        const t = setTimeout(() => { retryTimers.delete(t); send(to, msg, attempt + 1) }, RESULTS_RETRY_BASE_MS * 4 ** (attempt - 1))
        retryTimers.add(t)
        return
      }
      logger.warn('worker: results dropped', { to: `${to.peerId}/${to.name}`, count: msg.results.length, err })
    }
  }

  // ---- run -------------------------------------------------------------------------------

  function onRun (msg: Record<string, unknown>, ctx: MessageContext): void {
    const tasks = msg.tasks
    const problem = runProblem(tasks, opts.maxTasksPerMessage)
    if (problem !== undefined) {
      logger.warn('worker: bad run message ignored', { problem, sender: refString(ctx.sender) })
      return
    }
    if (ctx.sender === undefined) {
      logger.warn('worker: run message without a sender ignored (tell it with `from`)')
      return
    }
    // ctx is reused by the runtime after receive: keep our own copy of the sender.
    const ref: ActorRef = { peerId: ctx.sender.peerId, name: ctx.sender.name }
    const sender: Sender = { ref, key: `${ref.peerId}\n${ref.name}` }
    const now = performance.now()
    const heavy: Array<{ task: TaskMsg, deadline: number }> = []
    const light: Array<{ task: TaskMsg, deadline: number }> = []
    const seen = new Set<string>()
    for (const task of tasks as TaskMsg[]) {
      // A re-sent id still running here (or repeated in this message): its answer is coming,
      // so the duplicate is dropped.
      if (pending.has(`${sender.key}\n${task.id}`) || seen.has(task.id)) continue
      seen.add(task.id)
      const deadline = taskDeadline(task.timeoutMs, now)
      const kind = typeof task.kind === 'string' ? pool.taskKind(task.kind) : undefined
      if (Number.isNaN(deadline)) {
        enqueueImmediate(sender, task.id, WorkerErrorCode.INVALID_ARGUMENT, `timeoutMs: must be an integer in [1, ${MAX_TASK_TIMEOUT_MS}]`)
      } else if (kind === undefined) {
        enqueueImmediate(sender, task.id, WorkerErrorCode.UNKNOWN_TASK_KIND, `unknown task kind ${JSON.stringify(String(task.kind).slice(0, 64))}`)
      } else {
        (kind.batchable ? light : heavy).push({ task, deadline })
      }
    }
    // Heavy tasks one per Piscina task so every thread gets one; light ones packed, spread over
    // the threads only in batches of at least MIN_SPLIT_BATCH tasks: handing a batch to a thread
    // costs the event loop ~40 µs (waking a sleeping thread), far more than a light task's
    // own work, so a few light tasks are cheaper on one thread than spread.
    for (const t of heavy) dispatch(sender, [t], now)
    if (light.length > 0) {
      const { maxThreads, maxBatchSize } = pool.stats()
      const batches = Math.max(1, Math.min(maxThreads, Math.floor(light.length / MIN_SPLIT_BATCH)))
      const size = Math.min(opts.maxBatchSize, maxBatchSize, Math.ceil(light.length / batches))
      for (let i = 0; i < light.length; i += size) dispatch(sender, light.slice(i, i + size), now)
    }
  }

  /** Answers a task that never entered the pool (bad input): no pending entry, no batch. */
  function enqueueImmediate (sender: Sender, id: string, code: string, message: string): void {
    enqueue(sender, { id, ok: false, error: { code, message }, ms: 0 })
  }

  function dispatch (sender: Sender, items: Array<{ task: TaskMsg, deadline: number }>, now: number): void {
    const batch: Batch = { tasks: [], controller: new AbortController(), open: 0, settled: false, timer: undefined }
    const work: BatchTask[] = new Array(items.length)
    for (let i = 0; i < items.length; i++) {
      const { task, deadline } = items[i]
      const p: PendingTask = { id: task.id, key: `${sender.key}\n${task.id}`, sender, batch, receivedAt: now, deadline, answered: false }
      batch.tasks.push(p)
      work[i] = { kind: task.kind as string, payload: task.payload }
    }
    batch.open = batch.tasks.length
    // The pool is full, or we already track too much: answer at once so the scheduler re-places
    // the work (and nothing is tracked for it).
    if (pool.freeSlots() === 0 || pending.size + items.length > opts.maxPendingTasks) {
      batch.settled = true
      const message = 'worker pool busy'
      for (const t of batch.tasks) enqueue(sender, { id: t.id, ok: false, error: { code: WorkerErrorCode.WORKER_BUSY, message }, ms: 0 })
      return
    }
    for (const t of batch.tasks) pending.set(t.key, t)
    batches.add(batch)
    armTimer(batch)
    pool.runBatch(work, { signal: batch.controller.signal }).then(
      (results) => { onBatchDone(batch, results) },
      (err: unknown) => { onBatchFailed(batch, err) }
    )
  }

  function onBatchDone (batch: Batch, results: TaskResult[]): void {
    batch.settled = true
    for (let i = 0; i < batch.tasks.length; i++) {
      const t = batch.tasks[i]
      if (t.answered) continue
      const r = results[i]
      if (r === undefined) answerError(t, WorkerErrorCode.WORKER_CRASHED, 'the worker thread returned no result for this task')
      else if (r.ok) answer(t, { id: t.id, ok: true, value: r.value, ms: r.ms })
      else answer(t, { id: t.id, ok: false, error: r.error, ms: r.ms })
    }
  }

  function onBatchFailed (batch: Batch, err: unknown): void {
    batch.settled = true
    const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : WorkerErrorCode.WORKER_CRASHED
    const message = err instanceof Error ? err.message : String(err)
    for (const t of batch.tasks) answerError(t, code, message)
  }

  // ---- timeouts --------------------------------------------------------------------------

  /** One timer per batch, at the earliest deadline of its unanswered tasks. */
  function armTimer (batch: Batch): void {
    let next = Infinity
    for (const t of batch.tasks) if (!t.answered && t.deadline < next) next = t.deadline
    if (next === Infinity) return
    batch.timer = setTimeout(() => { onTimer(batch) }, Math.max(0, next - performance.now()))
  }

  function onTimer (batch: Batch): void {
    batch.timer = undefined
    const now = performance.now()
    for (const t of batch.tasks) {
      // The thread may still be working on it; its late result is dropped. If the whole batch
      // is answered this way, finishBatch aborts it, which terminates the thread.
      if (!t.answered && t.deadline <= now) answerError(t, WorkerErrorCode.TASK_TIMEOUT, `the task did not finish within ${Math.round(t.deadline - t.receivedAt)} ms`)
    }
    if (batch.open > 0) armTimer(batch)
  }

  // ---- cancel ----------------------------------------------------------------------------

  function onCancel (msg: Record<string, unknown>, ctx: MessageContext): void {
    const ids = msg.ids
    if (!Array.isArray(ids) || ids.length > opts.maxTasksPerMessage) {
      logger.warn('worker: bad cancel message ignored', { sender: refString(ctx.sender) })
      return
    }
    if (ctx.sender === undefined) return
    const senderKey = `${ctx.sender.peerId}\n${ctx.sender.name}`
    for (const id of ids) {
      if (typeof id !== 'string') continue
      const t = pending.get(`${senderKey}\n${id}`)
      // Answered at once whether it waits or runs: the sender gets exactly one answer per id.
      // Work of a batch whose tasks are all cancelled is dropped (waiting) or its thread is
      // terminated (running); a running batch with other live tasks finishes and the
      // cancelled task's late result is discarded.
      if (t !== undefined) answerError(t, WorkerErrorCode.CANCELLED, 'the task was cancelled')
    }
  }

  // ---- stats -----------------------------------------------------------------------------

  function stats (): WorkerStats {
    const s = pool.stats()
    return {
      threads: s.threads,
      maxThreads: s.maxThreads,
      queueSize: s.queueSize,
      utilization: s.utilization,
      running: pending.size,
      freeSlots: pool.freeSlots()
    }
  }

  // ---- actor -----------------------------------------------------------------------------

  return {
    preStart (ctx) {
      system = ctx.system
      selfName = ctx.self.name
    },
    receive (msg: unknown, ctx: MessageContext): unknown {
      system = ctx.system
      selfName = ctx.self.name
      const type = typeof msg === 'object' && msg !== null ? (msg as { type?: unknown }).type : undefined
      switch (type) {
        case 'run': onRun(msg as Record<string, unknown>, ctx); return undefined
        case 'cancel': onCancel(msg as Record<string, unknown>, ctx); return undefined
        case 'stats': return stats()
        default:
          // A ReplyError rejects an ask and is not a crash; a bad tell is just logged.
          logger.warn('worker: unknown message ignored', { type: typeof type === 'string' ? type.slice(0, 64) : typeof msg, sender: refString(ctx.sender) })
          throw new ReplyError(WorkerErrorCode.INVALID_ARGUMENT, 'worker: expected a message { type: "run" | "cancel" | "stats" }')
      }
    },
    postStop () {
      // Best effort: tell every sender its unanswered tasks are cancelled, and stop their work.
      for (const t of [...pending.values()]) answerError(t, WorkerErrorCode.CANCELLED, 'the worker actor stopped')
      for (const b of [...batches]) finishBatch(b)
      if (flushHandle !== undefined) clearImmediate(flushHandle)
      flush()
      stopped = true
      for (const t of retryTimers) clearTimeout(t)
      retryTimers.clear()
    }
  }
}

/** Why a `run` message's task list is unusable (then the whole message is ignored), or undefined. */
function runProblem (tasks: unknown, maxTasks: number): string | undefined {
  if (!Array.isArray(tasks)) return 'tasks is not an array'
  if (tasks.length > maxTasks) return `too many tasks (${tasks.length} > ${maxTasks})`
  for (const t of tasks) {
    if (typeof t !== 'object' || t === null) return 'a task is not an object'
    const id = (t as { id?: unknown }).id
    // Without a usable id a task cannot be answered.
    if (typeof id !== 'string' || id.length === 0 || id.length > MAX_TASK_ID_LENGTH) return `bad task id (a string of 1..${MAX_TASK_ID_LENGTH} characters is needed)`
  }
  return undefined
}

/** Deadline for an optional timeoutMs (null from msgpack = absent); NaN when it is invalid. */
function taskDeadline (timeoutMs: unknown, now: number): number {
  if (timeoutMs === undefined || timeoutMs === null) return Infinity
  if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TASK_TIMEOUT_MS) return NaN
  return now + timeoutMs
}

function refString (ref: ActorRef | undefined): string | undefined {
  return ref === undefined ? undefined : `${ref.peerId}/${ref.name}`
}

interface FilledOptions {
  pool: WorkerPool
  maxTasksPerMessage: number
  maxBatchSize: number
  maxResultsPerMessage: number
  maxPendingTasks: number
}

function validateOptions (o: WorkerActorOptions): FilledOptions {
  if (typeof o !== 'object' || o === null) throw new TypeError('createWorkerActor: options must be an object')
  const pool = o.pool
  if (typeof pool?.runBatch !== 'function' || typeof pool.freeSlots !== 'function') throw new TypeError('createWorkerActor: options.pool must be a WorkerPool')
  const limits = resolveInts(OPTION_TABLE, {
    maxTasksPerMessage: o.maxTasksPerMessage, maxBatchSize: o.maxBatchSize, maxResultsPerMessage: o.maxResultsPerMessage, maxPendingTasks: o.maxPendingTasks
  }, (field, why) => new WorkerError(WorkerErrorCode.INVALID_OPTION, `createWorkerActor: options.${field} ${why}`, { field }))
  return { pool, ...limits }
}

const OPTION_TABLE: IntTable<'maxTasksPerMessage' | 'maxBatchSize' | 'maxResultsPerMessage' | 'maxPendingTasks'> = {
  maxTasksPerMessage: { default: 4096, min: 1, max: 1_000_000 },
  maxBatchSize: { default: 1024, min: 1, max: 1_000_000 },
  maxResultsPerMessage: { default: 4096, min: 1, max: 1_000_000 },
  maxPendingTasks: { default: 65_536, min: 1, max: 100_000_000 }
}
