/**
 * The public shapes of the actor runtime: actors, their context, spawn and system options, and
 * the ActorSystem interface. The implementation is in system.ts.
 */
import type { Registry } from 'prom-client'
import type { Logger } from '../../config/logger.js'
import type { ActorRef, Envelope, Transport } from './envelope.js'
import type { SupervisionOptions } from './supervisor.js'

export type { ActorRef, Envelope, Transport }

/**
 * Context of the message being processed. It is valid during `receive` (until its promise
 * settles): the runtime reuses one context object per actor, so do not keep it around to read
 * `sender` later — copy `ctx.sender` if you need it after the message is done.
 */
export interface MessageContext {
  readonly self: ActorRef
  /** Who sent it: for ask the asker (replies go via the return value instead), for tell the `from` given, if any. */
  readonly sender: ActorRef | undefined
  readonly system: ActorSystem
}

export interface Actor<M = any, R = any> {
  /** Called on the fresh instance before its first message (also after each restart). Throwing or rejecting counts as a crash. */
  preStart? (ctx: { self: ActorRef, system: ActorSystem }): void | Promise<void>
  /**
   * One message at a time per actor. For an ask, the return value (or resolved promise) is the reply.
   * Throwing a ReplyError (expected failure, e.g. validation) rejects the ask with its code/message and is NOT a crash.
   * Throwing anything else is a crash: the ask (if any) is rejected with ERR_ACTOR_CRASHED and the supervisor restarts the actor.
   *
   * Local messages are passed by reference, not copied: a sender must not mutate a message (or a
   * reply value) after handing it over.
   */
  receive (msg: M, ctx: MessageContext): R | Promise<R>
  /** Called when the instance is discarded (stop, shutdown, or crash — best-effort then). */
  postStop? (): void | Promise<void>
}

export interface SpawnOptions {
  /** Mailbox bound; default the system's (1024). A full mailbox rejects the send with ERR_MAILBOX_FULL. */
  mailboxCapacity?: number
  /** Restart policy; defaults 5 restarts / 60000 ms window / 50..5000 ms backoff. */
  supervision?: SupervisionOptions
}

export interface ActorSystemOptions {
  /** This node's id (local refs have it). */
  peerId: string
  /** Absent = local only; sending to another peerId then throws ERR_PEER_UNREACHABLE. */
  transport?: Transport
  /** Where the voike_actor_* metrics are registered (one registry per system). */
  registry: Registry
  /** Default silentLogger. */
  logger?: Logger
  /** Default mailbox bound for spawn. Default 1024. */
  defaultMailboxCapacity?: number
  /** Default ask timeout, in ms. Default 5000; every ask timeout must be in 1..3600000. */
  defaultAskTimeoutMs?: number
  /** Pending asks (local and remote) allowed at once; beyond → ERR_TOO_MANY_ASKS. Default 65536. */
  maxPendingAsks?: number
  /** Supervisor gave up on an actor (too many restarts in its window). */
  onGiveUp?: (name: string, err: Error) => void
  /** Distinct actor names that get their own metric series; the rest share `actor="_other"`. Default 256. */
  maxMetricActorLabels?: number
  /** Bound on the wait for an in-flight message and postStop in `stop(name)`, in ms. Default 10000. */
  stopTimeoutMs?: number
}

export interface AskOptions {
  /** Default the system's defaultAskTimeoutMs; must be in 1..3600000. */
  timeoutMs?: number
  signal?: AbortSignal
  /** Local actor name presented as the asker (`ctx.sender`). */
  from?: string
}

export interface ActorSystem {
  readonly peerId: string
  /** Duplicate name → ERR_ACTOR_EXISTS; invalid name → ERR_INVALID_NAME. The factory is called at once (its errors propagate). */
  spawn: (name: string, factory: () => Actor, options?: SpawnOptions) => ActorRef
  ref: (peerId: string, name: string) => ActorRef
  /** Throws ERR_MAILBOX_FULL / ERR_NO_SUCH_ACTOR locally; remote errors from the transport propagate. */
  tell: (to: ActorRef, msg: unknown, from?: string) => void
  /** Rejects with ERR_ASK_TIMEOUT, ERR_ABORTED, ERR_PEER_GONE, ERR_NO_SUCH_ACTOR, ERR_MAILBOX_FULL, ERR_ACTOR_CRASHED, ReplyError codes, ... */
  ask: <R = unknown>(to: ActorRef, msg: unknown, opts?: AskOptions) => Promise<R>
  /** Called by the node for every envelope from a remote peer. Never throws. */
  receiveRemote: (fromPeerId: string, env: Envelope) => void
  /** A peer is gone: pending asks to it reject at once with ERR_PEER_GONE. */
  peerDown: (peerId: string) => void
  /**
   * Stops one actor: it is removed at once (new sends get ERR_NO_SUCH_ACTOR), the message in
   * progress (if any) may finish, the rest of its mailbox becomes dead letters (asks rejected with
   * ERR_ACTOR_STOPPED), then postStop runs. Unknown name: no-op.
   */
  stop: (name: string) => Promise<void>
  /** Stops every actor (postStop), rejects pending asks with ERR_SYSTEM_STOPPED. Idempotent. */
  shutdown: (opts?: { timeoutMs?: number }) => Promise<void>
  actorNames: () => string[]
  /** Asks (local and remote) waiting for a reply. */
  pendingAskCount: () => number
  /** Messages waiting in a local actor's mailbox, or undefined if there is no such actor. */
  mailboxDepth: (name: string) => number | undefined
}
