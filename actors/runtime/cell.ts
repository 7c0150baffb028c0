/**
 * The records of the actor system (system.ts): a local actor's cell (mailbox, instance,
 * supervision state, counters), the reply handles of asks, and the small helpers of the drain
 * loop. The system owns the cells; a cell calls back into it through CellHost.
 */
import { performance } from 'node:perf_hooks'
import type { ActorRef } from './envelope.js'
import type { Mailbox } from './mailbox.js'
import type { ActorStats } from './metrics.js'
import type { RestartTracker } from './supervisor.js'
import type { Actor, ActorSystem, MessageContext } from './types.js'

/** What a cell needs from its system: the drain loop and supervision entry points. */
export interface CellHost extends ActorSystem {
  drain: (cell: Cell) => void
  asyncDone: (cell: Cell, value: unknown) => void
  asyncFailed: (cell: Cell, err: unknown) => void
  restart: (cell: Cell) => void
}

/** Messages one cell processes before yielding to other cells. */
export const DRAIN_BATCH = 256
/** Messages the system processes on microtasks before yielding to the event loop. */
export const TURN_BUDGET = 4096

// Cell states.
export const STARTING = 0 // instance created, preStart not finished; messages queue up
export const RUNNING = 1
export const BACKOFF = 2 // crashed, waiting for the restart timer; messages queue up
export const STOPPING = 3
export const STOPPED = 4

/** An ask waiting for its reply (local or remote). */
export class PendingAsk {
  /** performance.now() when the ask was made (for the ask latency histogram). */
  readonly startedAt = performance.now()
  timer: NodeJS.Timeout | undefined = undefined
  signal: AbortSignal | undefined = undefined
  onAbort: (() => void) | undefined = undefined
  done = false
  constructor (
    readonly id: number,
    readonly peerId: string,
    readonly target: string,
    readonly resolve: (value: unknown) => void,
    readonly reject: (err: Error) => void
  ) {}
}

/** Where the reply to an incoming remote ask goes. */
export class RemoteReplyTo {
  constructor (readonly peerId: string, readonly id: number) {}
}

export type Reply = PendingAsk | RemoteReplyTo

/** One context object per cell, reused for every message (see MessageContext). */
export class Context implements MessageContext {
  sender: ActorRef | undefined = undefined
  constructor (readonly self: ActorRef, readonly system: ActorSystem) {}
}

/** A local actor: its mailbox, current instance, supervision state and metric counters. */
export class Cell {
  state = STARTING
  scheduled = false
  /** Pending async receive or preStart; the next message waits for it. */
  inflight: PromiseLike<unknown> | undefined = undefined
  /** Reply handle of the message whose async receive is in flight. */
  currentReply: Reply | undefined = undefined
  restartTimer: NodeJS.Timeout | undefined = undefined
  stopPromise: Promise<void> | undefined = undefined
  readonly ctx: Context
  // Bound once per cell so scheduling and async completion allocate no closures per message.
  readonly drainFn: () => void
  readonly onAsyncOk: (value: unknown) => void
  readonly onAsyncErr: (err: unknown) => void
  readonly restartFn: () => void

  constructor (
    system: CellHost,
    readonly ref: ActorRef,
    readonly factory: () => Actor,
    public instance: Actor | undefined,
    readonly mailbox: Mailbox<ActorRef, Reply>,
    readonly tracker: RestartTracker,
    readonly stats: ActorStats
  ) {
    this.ctx = new Context(ref, system)
    this.drainFn = () => { system.drain(this) }
    this.onAsyncOk = (value) => { system.asyncDone(this, value) }
    this.onAsyncErr = (err) => { system.asyncFailed(this, err) }
    this.restartFn = () => { system.restart(this) }
  }

  get name (): string { return this.ref.name }
}

export function isThenable (x: unknown): x is PromiseLike<unknown> {
  return x !== null && (typeof x === 'object' || typeof x === 'function') && typeof (x as { then?: unknown }).then === 'function'
}

export function toError (err: unknown): Error {
  if (err instanceof Error) return err
  let text: string
  try { text = String(err) } catch { text = 'non-Error value thrown' }
  return new Error(text)
}

export function isRef (to: unknown): to is ActorRef {
  return typeof to === 'object' && to !== null &&
    typeof (to as ActorRef).peerId === 'string' && typeof (to as ActorRef).name === 'string'
}
