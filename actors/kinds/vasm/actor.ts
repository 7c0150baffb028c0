/**
 * The `vasm` actor, one per node: the worker side of the `vasm` job kind on the main thread. It
 * never runs a program (the Piscina threads do, task.ts); it moves program bytes.
 *
 * Why an actor of its own: a `vasm` task names its program only by hash, so the bytes cross the
 * wire once per worker node, not once per task. The job kind sends its tasks here (`target`);
 * for each task this actor
 * 1. finds the bytes in the node's ProgramStore (programs.ts), or fetches them once from the
 *    coordinator's `vasm` actor (ask `{ type: 'program', hash }`; concurrent tasks of one hash
 *    share the fetch) and stores them under the SHA-256 it computes itself: bytes that do not hash
 *    to the name asked for are refused (ERR_VASM_PROGRAM_MISMATCH);
 * 2. hands the task, its payload now carrying the bytes, to an inner worker actor
 *    (worker-actor.ts, on the node's shared pool) exactly as if the coordinator had sent it there:
 *    batching, per-task deadlines (a task past its deadline has its thread terminated),
 *    cancellation and the `results` answers to the coordinator are the worker actor's.
 *
 * The thread verifies the bytes again before running them (task.ts). A fetch that fails (the
 * coordinator no longer holds the program, timeout, peer gone) answers the task with
 * ERR_VASM_PROGRAM_UNAVAILABLE, a retryable failure.
 *
 * Messages: tell `run` and `cancel` (the worker actor's protocol), ask `{ type: 'program', hash }`
 * → `{ bytes }` (ReplyError ERR_VASM_PROGRAM_UNKNOWN when not held), ask `stats`.
 */
import { performance } from 'node:perf_hooks'
import { Counter, type Registry } from 'prom-client'
import { silentLogger, type Logger } from '../../../config/logger.js'
import { ReplyError } from '../../runtime/errors.js'
import type { ServiceActor } from '../../runtime/service.js'
import type { Actor, ActorRef, ActorSystem, MessageContext } from '../../runtime/types.js'
import { createWorkerActor } from '../../worker/worker-actor.js'
import type { WorkerPool } from '../../worker/pool.js'
import { ERR_PROGRAM_MISMATCH } from './task.js'
import type { ProgramStore } from './programs.js'

export const VASM_ACTOR_NAME = 'vasm'
export const ERR_PROGRAM_UNAVAILABLE = 'ERR_VASM_PROGRAM_UNAVAILABLE'
export const ERR_PROGRAM_UNKNOWN = 'ERR_VASM_PROGRAM_UNKNOWN'

export interface VasmActorOptions {
  /** The node's program store (shared with the job side). */
  programs: ProgramStore
  /** The node's worker pool (shared with the `worker` actor; never closed here). */
  pool: WorkerPool
  logger?: Logger
  /** Bound of one fetch of program bytes from a coordinator. Default 15 000 ms. */
  fetchTimeoutMs?: number
  /** Fetches in flight at once; tasks needing another are answered ERR_WORKER_BUSY. Default 64. */
  maxFetches?: number
  /** Tasks waiting for a fetch; beyond, ERR_WORKER_BUSY. Default 65 536. */
  maxWaitingTasks?: number
  /** Called after every fetch of program bytes from another node (metrics, tests). */
  onFetch?: (result: 'ok' | 'error', bytes: number) => void
}

interface TaskMsg { id: string, kind?: unknown, payload?: unknown, timeoutMs?: unknown }
interface Waiting { task: TaskMsg, sender: ActorRef, receivedAt: number, cancelled: boolean }

const HASH_RE = /^[0-9a-f]{64}$/

export function createVasmActor (options: VasmActorOptions): Actor {
  const { programs, pool } = options
  const log = options.logger ?? silentLogger
  const fetchTimeoutMs = options.fetchTimeoutMs ?? 15_000
  const maxFetches = options.maxFetches ?? 64
  const maxWaiting = options.maxWaitingTasks ?? 65_536
  const inner = createWorkerActor({ pool, logger: log })
  /** Fetches in flight by hash, and the tasks waiting for each. */
  const fetches = new Map<string, Waiting[]>()
  /** Waiting tasks by `sender key \n task id` (for cancel). */
  const waitingByKey = new Map<string, Waiting>()
  let system: ActorSystem | undefined
  let self: ActorRef | undefined
  let stopped = false

  const keyOf = (ref: ActorRef, id: string): string => `${ref.peerId}\n${ref.name}\n${id}`

  /** Gives tasks (payloads complete) to the inner worker actor as if `sender` had sent them. */
  function forward (sender: ActorRef, tasks: TaskMsg[]): void {
    if (tasks.length === 0 || system === undefined || self === undefined || stopped) return
    void inner.receive({ type: 'run', tasks }, { self, sender, system })
  }

  function answer (sender: ActorRef, id: string, code: string, message: string): void {
    if (system === undefined || stopped) return
    try {
      system.tell(sender, { type: 'results', results: [{ id, ok: false, error: { code, message }, ms: 0 }] }, self?.name ?? VASM_ACTOR_NAME)
    } catch (err) {
      log.debug('vasm: answer not sent', { err })
    }
  }

  /** The task with the bytes in its payload, or undefined when it names no usable hash. */
  function withBytes (task: TaskMsg, bytes: Uint8Array, receivedAt: number): TaskMsg {
    const payload = task.payload as Record<string, unknown>
    // The time spent fetching comes off the task's deadline.
    let timeoutMs = task.timeoutMs
    if (typeof timeoutMs === 'number' && Number.isInteger(timeoutMs)) timeoutMs = Math.max(1, timeoutMs - Math.floor(performance.now() - receivedAt))
    return { id: task.id, kind: task.kind, payload: { ...payload, program: bytes }, timeoutMs }
  }

  function onRun (msg: Record<string, unknown>, ctx: MessageContext): void {
    if (ctx.sender === undefined || !Array.isArray(msg.tasks)) {
      // The inner actor logs and ignores it (its checks and messages are the worker's).
      void inner.receive(msg, ctx)
      return
    }
    const sender: ActorRef = { peerId: ctx.sender.peerId, name: ctx.sender.name }
    const now = performance.now()
    const ready: TaskMsg[] = []
    for (const t of msg.tasks as TaskMsg[]) {
      const hash = (t?.payload as { hash?: unknown } | undefined)?.hash
      // Malformed tasks go to the inner actor as they are: it answers or ignores them as the worker does.
      if (typeof t !== 'object' || t === null || typeof t.id !== 'string' || typeof hash !== 'string' || !HASH_RE.test(hash)) { ready.push(t); continue }
      const bytes = programs.get(hash)
      if (bytes !== undefined) { ready.push(withBytes(t, bytes, now)); continue }
      const key = keyOf(sender, t.id)
      if (waitingByKey.has(key)) continue
      let list = fetches.get(hash)
      if (list === undefined && fetches.size >= maxFetches) { answer(sender, t.id, 'ERR_WORKER_BUSY', 'too many program fetches in flight'); continue }
      if (waitingByKey.size >= maxWaiting) { answer(sender, t.id, 'ERR_WORKER_BUSY', 'too many tasks waiting for their program'); continue }
      const w: Waiting = { task: t, sender, receivedAt: now, cancelled: false }
      waitingByKey.set(key, w)
      if (list === undefined) {
        list = []
        fetches.set(hash, list)
        void fetchProgram(hash, sender.peerId)
      }
      list.push(w)
    }
    forward(sender, ready)
  }

  async function fetchProgram (hash: string, from: string): Promise<void> {
    let error: string | undefined
    let code = ERR_PROGRAM_UNAVAILABLE
    try {
      if (system === undefined) throw new Error('the actor is not started')
      const reply = await system.ask<{ bytes?: unknown }>(system.ref(from, VASM_ACTOR_NAME), { type: 'program', hash }, { timeoutMs: fetchTimeoutMs, from: self?.name })
      const bytes = reply?.bytes
      if (!(bytes instanceof Uint8Array)) throw new Error('the reply holds no bytes')
      // Stored under the hash computed here, never under the name asked for.
      const got = programs.put(bytes)
      if (got !== hash) { code = ERR_PROGRAM_MISMATCH; throw new Error(`the bytes received hash to ${got}, not ${hash}`) }
      options.onFetch?.('ok', bytes.length)
    } catch (err) {
      error = `program ${hash.slice(0, 12)}… not fetched from ${from}: ${(err as Error).message}`
      log.warn('vasm: program fetch failed', { hash, from, err })
      options.onFetch?.('error', 0)
    }
    const list = fetches.get(hash) ?? []
    fetches.delete(hash)
    const bytes = error === undefined ? programs.get(hash) : undefined
    const bySender = new Map<string, { sender: ActorRef, tasks: TaskMsg[] }>()
    for (const w of list) {
      waitingByKey.delete(keyOf(w.sender, w.task.id))
      if (w.cancelled) continue
      if (bytes === undefined) { answer(w.sender, w.task.id, code, error ?? `program ${hash} evicted before use`); continue }
      const k = `${w.sender.peerId}\n${w.sender.name}`
      let group = bySender.get(k)
      if (group === undefined) { group = { sender: w.sender, tasks: [] }; bySender.set(k, group) }
      group.tasks.push(withBytes(w.task, bytes, w.receivedAt))
    }
    for (const g of bySender.values()) forward(g.sender, g.tasks)
  }

  function onCancel (msg: Record<string, unknown>, ctx: MessageContext): void {
    if (ctx.sender !== undefined && Array.isArray(msg.ids)) {
      for (const id of msg.ids) {
        if (typeof id !== 'string') continue
        const w = waitingByKey.get(keyOf(ctx.sender, id))
        if (w === undefined || w.cancelled) continue
        w.cancelled = true
        answer(w.sender, id, 'ERR_CANCELLED', 'the task was cancelled')
      }
    }
    // Tasks already handed over are the inner actor's to cancel.
    void inner.receive(msg, ctx)
  }

  return {
    preStart (ctx) {
      system = ctx.system
      self = ctx.self
      return inner.preStart?.(ctx)
    },
    receive (msg: unknown, ctx: MessageContext): unknown {
      system = ctx.system
      self = ctx.self
      const m = (typeof msg === 'object' && msg !== null ? msg : {}) as Record<string, unknown>
      switch (m.type) {
        case 'run': onRun(m, ctx); return undefined
        case 'cancel': onCancel(m, ctx); return undefined
        case 'program': {
          const hash = m.hash
          if (typeof hash !== 'string' || !HASH_RE.test(hash)) throw new ReplyError('ERR_INVALID_ARGUMENT', 'hash: 64 hex digits expected')
          const bytes = programs.get(hash)
          if (bytes === undefined) throw new ReplyError(ERR_PROGRAM_UNKNOWN, `program ${hash} is not held here`)
          return { bytes }
        }
        case 'stats': return { ...(inner.receive(msg, ctx) as object), programs: programs.stats(), fetches: fetches.size, waiting: waitingByKey.size }
        default: return inner.receive(msg, ctx)
      }
    },
    async postStop () {
      stopped = true
      // Tasks still waiting for bytes: their coordinators re-place them at timeout.
      fetches.clear()
      waitingByKey.clear()
      await inner.postStop?.()
    }
  }
}

/**
 * The `vasm` service actor. The store and the pool outlive restarts (they are the node's).
 * With a registry: `voike_vasm_program_fetches_total{status}` and `voike_vasm_program_fetched_bytes_total`.
 */
export function vasmService (options: VasmActorOptions & { registry?: Registry }): ServiceActor {
  let onFetch = options.onFetch
  if (options.registry !== undefined) {
    const registers = [options.registry]
    const fetches = new Counter({ name: 'voike_vasm_program_fetches_total', help: 'VASM programs fetched from a coordinator, by status (the outcome)', labelNames: ['status'] as const, registers })
    const bytes = new Counter({ name: 'voike_vasm_program_fetched_bytes_total', help: 'Bytes of VASM programs fetched from coordinators', registers })
    for (const status of ['ok', 'error']) fetches.inc({ status }, 0)
    onFetch = (result, n) => { fetches.inc({ status: result }); bytes.inc(n); options.onFetch?.(result, n) }
  }
  const actorOptions = { ...options, onFetch }
  return {
    name: VASM_ACTOR_NAME,
    spawnOptions: { mailboxCapacity: 65_536 },
    factory: () => createVasmActor(actorOptions),
    critical: false,
    // The programs survive (the store is the node's); tasks in flight do not, as for `worker`.
    stateSurvivesRestart: false
  }
}
