/**
 * Runs tasks on a peer's `worker` actor and hands back their values: the request/response face of
 * the worker protocol (`run` → `results`), for callers that are not the scheduler (benches,
 * tools, future flow steps).
 *
 * Tasks asked for in the same turn of the event loop travel to each peer as ONE `run` message,
 * and the worker coalesces its answers the same way: per-message overhead, not per-task work,
 * limits small tasks. A local peer is reached without serialization.
 */
import { VoikeError } from '../../config/errors.js'
import { resolveInts, type IntTable } from '../../config/options.js'
import type { Actor, ActorSystem } from '../runtime/index.js'
import { WORKER_ACTOR_NAME } from './names.js'

export interface TaskClientOptions {
  system: ActorSystem
  /** Name of the local actor that receives the answers (spawned here). Default `task-client`. */
  name?: string
  /** Tasks outstanding at once; beyond → ERR_TOO_MANY_TASKS. Default 65536. */
  maxPending?: number
  /** A task unanswered this long rejects with ERR_TASK_TIMEOUT. Default 30000 ms. */
  timeoutMs?: number
  /** Most tasks in one `run` message (the worker's own limit is 4096). Default 4096. */
  maxTasksPerMessage?: number
}

export interface TaskClient {
  /** Runs one task of `kind` on `peerId`'s workers; resolves with its value. */
  run: (peerId: string, kind: string, payload: unknown) => Promise<unknown>
  pending: () => number
  /** Rejects every outstanding task with ERR_CLIENT_CLOSED and stops the actor. */
  close: () => Promise<void>
}

export class TaskClientError extends VoikeError {
  constructor (code: string, message: string, options?: { field?: string, cause?: unknown }) {
    super(code, message, options)
    this.name = 'TaskClientError'
  }
}

const OPTIONS: IntTable<'maxPending' | 'timeoutMs' | 'maxTasksPerMessage'> = {
  maxPending: { default: 65_536, min: 1, max: Number.MAX_SAFE_INTEGER },
  timeoutMs: { default: 30_000, min: 1, max: Number.MAX_SAFE_INTEGER },
  maxTasksPerMessage: { default: 4096, min: 1, max: Number.MAX_SAFE_INTEGER }
}

interface Pending { resolve: (v: unknown) => void, reject: (e: Error) => void, deadlineMs: number }
interface Outgoing { id: string, kind: string, payload: unknown }

export function createTaskClient (o: TaskClientOptions): TaskClient {
  const name = o.name ?? 'task-client'
  const { maxPending, timeoutMs, maxTasksPerMessage: maxPerMessage } = resolveInts(OPTIONS, {
    maxPending: o.maxPending, timeoutMs: o.timeoutMs, maxTasksPerMessage: o.maxTasksPerMessage
  }, (field, why) => new TaskClientError('ERR_INVALID_OPTION', `${field} ${why}`, { field }))
  const pending = new Map<string, Pending>()
  const outgoing = new Map<string, Outgoing[]>()
  let flushScheduled = false
  let seq = 0
  let closed = false

  const settle = (id: string, fn: (p: Pending) => void): void => {
    const p = pending.get(id)
    if (p === undefined) return // late answer of a task that timed out
    pending.delete(id)
    if (pending.size === 0) sweep.unref() // nothing outstanding: do not keep the process alive
    fn(p)
  }

  const actor: Actor = {
    receive (msg: { type?: unknown, results?: unknown }) {
      if (msg?.type !== 'results' || !Array.isArray(msg.results)) return
      for (const r of msg.results as Array<{ id: string, ok: boolean, value?: unknown, error?: { code: string, message: string } }>) {
        if (r.ok) settle(r.id, p => { p.resolve(r.value) })
        else settle(r.id, p => { p.reject(new TaskClientError(r.error?.code ?? 'ERR_TASK_FAILED', r.error?.message ?? 'task failed')) })
      }
    }
  }
  o.system.spawn(name, () => actor, { mailboxCapacity: 65_536 })

  const flush = (): void => {
    flushScheduled = false
    for (const [peerId, tasks] of outgoing) {
      outgoing.delete(peerId)
      for (let i = 0; i < tasks.length; i += maxPerMessage) {
        const chunk = tasks.slice(i, i + maxPerMessage)
        try {
          o.system.tell(o.system.ref(peerId, WORKER_ACTOR_NAME), { type: 'run', tasks: chunk }, name)
        } catch (err) {
          const e = new TaskClientError((err as { code?: string }).code ?? 'ERR_SEND_FAILED', `cannot send to ${peerId}: ${(err as Error).message}`)
          for (const t of chunk) settle(t.id, p => { p.reject(e) })
        }
      }
    }
  }

  // One sweep for all deadlines instead of a timer per task: timers would cost more than no-op tasks.
  const sweep = setInterval(() => {
    const now = Date.now()
    for (const [id, p] of pending) {
      if (p.deadlineMs <= now) settle(id, q => { q.reject(new TaskClientError('ERR_TASK_TIMEOUT', `task ${id} unanswered after ${timeoutMs} ms`)) })
    }
  }, Math.max(10, Math.min(1000, Math.floor(timeoutMs / 4))))
  sweep.unref()

  return {
    run: async (peerId, kind, payload) => await new Promise((resolve, reject) => {
      if (closed) { reject(new TaskClientError('ERR_CLIENT_CLOSED', 'the task client is closed')); return }
      if (pending.size >= maxPending) { reject(new TaskClientError('ERR_TOO_MANY_TASKS', `${maxPending} tasks already outstanding`)); return }
      const id = (seq++).toString(36)
      if (pending.size === 0) sweep.ref()
      pending.set(id, { resolve, reject, deadlineMs: Date.now() + timeoutMs })
      let list = outgoing.get(peerId)
      if (list === undefined) { list = []; outgoing.set(peerId, list) }
      list.push({ id, kind, payload })
      if (!flushScheduled) { flushScheduled = true; queueMicrotask(flush) }
    }),
    pending: () => pending.size,
    close: async () => {
      if (closed) return
      closed = true
      clearInterval(sweep)
      const e = new TaskClientError('ERR_CLIENT_CLOSED', 'the task client is closed')
      for (const id of [...pending.keys()]) settle(id, p => { p.reject(e) })
      await o.system.stop(name)
    }
  }
}
