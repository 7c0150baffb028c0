/**
 * The actor system: local actors with bounded mailboxes, asks with timeouts, supervision with
 * restart backoff, and remote delivery through an injected Transport.
 *
 * Scheduling. Each actor ("cell") processes one message at a time. Enqueuing wakes the cell with a
 * microtask; the drain loop then calls `receive` synchronously message after message and only
 * parks when `receive` returns a thenable (the next message waits for it to settle). No promise is
 * allocated per synchronous message. Two limits keep the event loop responsive: a cell processes at
 * most DRAIN_BATCH messages before going to the back of the queue, and the whole system processes
 * at most TURN_BUDGET messages on microtasks before further drains move to setImmediate, so I/O
 * (and timers) get a turn even while actors ping-pong messages forever.
 *
 * Remote deliveries (`receiveRemote`, called from the transport's read callback) drain the cell at
 * once instead of on a microtask, unless an actor is already being drained (no nesting). Why: the
 * transport's read callback goes on after handing us the frames (yamux answers every data frame
 * with a window update, an encrypted socket write of ~50 µs), and a microtask only runs after
 * that; draining at once lets the actor start its work (e.g. hand a batch to a worker thread)
 * before it, which is ~15% of a remote round trip.
 *
 * Local messages are passed by reference (no serialization): senders must not mutate a message
 * after sending it, nor actors a reply after returning it.
 */
import { silentLogger, type Logger } from '../../config/logger.js'
import { intOption as checkInt } from '../../config/options.js'
import {
  envelopeProblem, isValidActorName, isValidPeerId, truncateMessage, MAX_ASK_ID,
  type ActorRef, type Envelope, type Transport
} from './envelope.js'
import { ActorError, ActorErrorCodes as C, ReplyError, errorFromRemote } from './errors.js'
import { Mailbox, MAX_MAILBOX_CAPACITY } from './mailbox.js'
import { createActorMetrics, type ActorMetrics } from './metrics.js'
import { resolveSupervision, RestartTracker } from './supervisor.js'
import type { Actor, ActorSystem, ActorSystemOptions, AskOptions, SpawnOptions } from './types.js'
import {
  BACKOFF, Cell, DRAIN_BATCH, isRef, isThenable, PendingAsk, RemoteReplyTo, RUNNING, STARTING, STOPPED, STOPPING,
  toError, TURN_BUDGET, type CellHost, type Reply
} from './cell.js'

/** Upper bound of every ask timeout: a forgotten ask must not pin memory for days. */
export const MAX_ASK_TIMEOUT_MS = 3_600_000
const MAX_PENDING_ASKS_LIMIT = 1 << 20
const MAX_METRIC_LABELS_LIMIT = 10_000
const DEFAULTS = {
  mailboxCapacity: 1024,
  askTimeoutMs: 5000,
  maxPendingAsks: 65536,
  maxMetricActorLabels: 256,
  stopTimeoutMs: 10_000
}
function invalidOption (field: string, why: string): ActorError {
  return new ActorError(C.INVALID_OPTION, `${field} ${why}`, { field })
}

/** One integer option of the runtime (config/options.ts does the checking). */
function intOption (field: string, value: unknown, fallback: number, min: number, max: number): number {
  return checkInt(value, field, { default: fallback, min, max }, invalidOption)
}

/** Resolves with true when `p` settles, false when `ms` pass first. */
async function settlesWithin (p: PromiseLike<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<boolean>(resolve => { timer = setTimeout(resolve, Math.max(0, ms), false) })
  const settled = Promise.resolve(p).then(() => true, () => true)
  try {
    return await Promise.race([settled, timeout])
  } finally {
    clearTimeout(timer)
  }
}

class System implements CellHost {
  readonly peerId: string
  private readonly transport: Transport | undefined
  private readonly logger: Logger
  private readonly defaultMailboxCapacity: number
  private readonly defaultAskTimeoutMs: number
  private readonly maxPendingAsks: number
  private readonly stopTimeoutMs: number
  private readonly onGiveUp: ((name: string, err: Error) => void) | undefined
  private readonly metrics: ActorMetrics
  private readonly cells = new Map<string, Cell>()
  /** Cells being stopped (already out of `cells`), so stop/shutdown can wait for them. */
  private readonly stopping = new Set<Cell>()
  private readonly pending = new Map<number, PendingAsk>()
  private askSeq = 0
  private turnBudget = TURN_BUDGET
  /** True while a drain loop runs: a remote delivery then queues instead of draining nested. */
  private draining = false
  private budgetResetScheduled = false
  private readonly resetBudget = (): void => { this.turnBudget = TURN_BUDGET; this.budgetResetScheduled = false }
  private stopped = false
  private shutdownPromise: Promise<void> | undefined = undefined

  constructor (options: ActorSystemOptions) {
    if (typeof options !== 'object' || options === null) throw new ActorError(C.INVALID_OPTION, 'options must be an object')
    if (!isValidPeerId(options.peerId)) throw new ActorError(C.INVALID_OPTION, 'peerId must be a non-empty string of at most 256 characters')
    if (options.transport !== undefined && typeof options.transport?.send !== 'function') {
      throw new ActorError(C.INVALID_OPTION, 'transport must have a send(peerId, envelope) method')
    }
    if (typeof options.registry?.registerMetric !== 'function') throw new ActorError(C.INVALID_OPTION, 'registry must be a prom-client Registry')
    if (options.onGiveUp !== undefined && typeof options.onGiveUp !== 'function') throw new ActorError(C.INVALID_OPTION, 'onGiveUp must be a function')
    this.peerId = options.peerId
    this.transport = options.transport
    this.logger = (options.logger ?? silentLogger).child({ component: 'actors' })
    this.defaultMailboxCapacity = intOption('defaultMailboxCapacity', options.defaultMailboxCapacity, DEFAULTS.mailboxCapacity, 1, MAX_MAILBOX_CAPACITY)
    this.defaultAskTimeoutMs = intOption('defaultAskTimeoutMs', options.defaultAskTimeoutMs, DEFAULTS.askTimeoutMs, 1, MAX_ASK_TIMEOUT_MS)
    this.maxPendingAsks = intOption('maxPendingAsks', options.maxPendingAsks, DEFAULTS.maxPendingAsks, 1, MAX_PENDING_ASKS_LIMIT)
    this.stopTimeoutMs = intOption('stopTimeoutMs', options.stopTimeoutMs, DEFAULTS.stopTimeoutMs, 1, MAX_ASK_TIMEOUT_MS)
    const maxActorLabels = intOption('maxMetricActorLabels', options.maxMetricActorLabels, DEFAULTS.maxMetricActorLabels, 1, MAX_METRIC_LABELS_LIMIT)
    this.onGiveUp = options.onGiveUp
    this.metrics = createActorMetrics({ registry: options.registry, maxActorLabels, depths: () => this.depths() })
  }

  private * depths (): Iterable<[string, number]> {
    for (const [name, cell] of this.cells) yield [name, cell.mailbox.length]
  }

  // ---- public API -------------------------------------------------------------------------

  spawn (name: string, factory: () => Actor, options?: SpawnOptions): ActorRef {
    if (this.stopped) throw new ActorError(C.SYSTEM_STOPPED, 'actor system is shut down')
    if (!isValidActorName(name)) throw new ActorError(C.INVALID_NAME, `invalid actor name ${JSON.stringify(String(name)).slice(0, 140)}: 1..128 of [A-Za-z0-9_.:@/-], not starting with punctuation other than _`)
    if (typeof factory !== 'function') throw new ActorError(C.INVALID_ARGUMENT, 'factory must be a function returning an actor')
    if (this.cells.has(name)) throw new ActorError(C.ACTOR_EXISTS, `actor ${name} already exists`)
    const capacity = intOption('mailboxCapacity', options?.mailboxCapacity, this.defaultMailboxCapacity, 1, MAX_MAILBOX_CAPACITY)
    const policy = resolveSupervision(options?.supervision)
    const instance = this.instantiate(factory, name)
    const ref: ActorRef = Object.freeze({ peerId: this.peerId, name })
    const cell = new Cell(this, ref, factory, instance, new Mailbox(capacity), new RestartTracker(policy), this.metrics.statsFor(name))
    this.cells.set(name, cell)
    // preStart runs after spawn returns, so it can already address the actor (and others spawned alongside).
    queueMicrotask(() => { if (cell.state === STARTING && cell.instance === instance) this.start(cell) })
    return ref
  }

  ref (peerId: string, name: string): ActorRef {
    if (!isValidPeerId(peerId)) throw new ActorError(C.INVALID_ARGUMENT, 'peerId must be a non-empty string of at most 256 characters')
    if (!isValidActorName(name)) throw new ActorError(C.INVALID_NAME, `invalid actor name ${JSON.stringify(String(name)).slice(0, 140)}`)
    if (peerId === this.peerId) {
      const cell = this.cells.get(name)
      if (cell !== undefined) return cell.ref
    }
    return Object.freeze({ peerId, name })
  }

  tell (to: ActorRef, msg: unknown, from?: string): void {
    if (this.stopped) throw new ActorError(C.SYSTEM_STOPPED, 'actor system is shut down')
    if (!isRef(to)) throw new ActorError(C.INVALID_ARGUMENT, 'to must be an ActorRef { peerId, name }')
    if (to.peerId === this.peerId) {
      const cell = this.cells.get(to.name)
      if (cell === undefined) throw new ActorError(C.NO_SUCH_ACTOR, `no actor ${to.name}`)
      const sender = from === undefined ? undefined : this.localSender(from)
      if (!cell.mailbox.push(msg, sender, undefined)) throw this.mailboxFull(cell)
      cell.stats.out++
      cell.stats.in++
      this.wake(cell)
      return
    }
    const transport = this.remoteTransport(to)
    if (from !== undefined && !isValidActorName(from)) throw new ActorError(C.INVALID_ARGUMENT, 'from must be a valid actor name')
    transport.send(to.peerId, from === undefined ? { k: 't', to: to.name, b: msg } : { k: 't', to: to.name, b: msg, f: from })
    this.metrics.statsFor(to.name).out++
  }

  ask<R = unknown>(to: ActorRef, msg: unknown, opts?: AskOptions): Promise<R> {
    let timeoutMs: number
    try {
      timeoutMs = this.checkAsk(to, opts)
    } catch (err) {
      return Promise.reject(err)
    }
    const id = this.nextAskId()
    let resolve!: (value: unknown) => void
    let reject!: (err: Error) => void
    const promise = new Promise<R>((res, rej) => { resolve = res as (value: unknown) => void; reject = rej })
    const rec = new PendingAsk(id, to.peerId, to.name, resolve, reject)
    this.pending.set(id, rec)
    rec.timer = setTimeout(this.onAskTimeout, timeoutMs, rec, timeoutMs)
    const signal = opts?.signal
    if (signal !== undefined) {
      rec.signal = signal
      rec.onAbort = () => { this.settleErr(rec, new ActorError(C.ABORTED, `ask to ${to.name} aborted`, { cause: signal.reason })) }
      signal.addEventListener('abort', rec.onAbort, { once: true })
    }
    try {
      this.sendAsk(rec, msg, opts?.from)
    } catch (err) {
      this.settleErr(rec, toError(err))
    }
    return promise
  }

  receiveRemote (fromPeerId: string, env: Envelope): void {
    try {
      if (!isValidPeerId(fromPeerId)) { this.badEnvelope(fromPeerId, 'bad peer id'); return }
      const problem = envelopeProblem(env)
      if (problem !== undefined) { this.badEnvelope(fromPeerId, problem); return }
      switch (env.k) {
        case 't': this.remoteTell(fromPeerId, env.to, env.b, env.f); return
        case 'a': this.remoteAsk(fromPeerId, env.to, env.id, env.b, env.f); return
        case 'o': this.remoteReply(fromPeerId, env.id, env.b, undefined); return
        case 'e': this.remoteReply(fromPeerId, env.id, undefined, errorFromRemote(env.e.code, truncateMessage(env.e.message)))
      }
    } catch (err) {
      // Defensive: nothing above should throw, but a remote peer must never be able to throw into the node.
      this.badEnvelope(fromPeerId, `internal: ${err instanceof Error ? err.message : 'non-Error thrown'}`)
    }
  }

  peerDown (peerId: string): void {
    if (peerId === this.peerId) return
    let n = 0
    for (const rec of this.pending.values()) {
      if (rec.peerId !== peerId) continue
      n++
      this.settleErr(rec, new ActorError(C.PEER_GONE, `peer ${peerId} is gone (ask to ${rec.target})`))
    }
    if (n > 0) this.logger.debug('peer down: pending asks rejected', { peer: peerId, asks: n })
  }

  stop (name: string): Promise<void> {
    const cell = this.cells.get(name)
    if (cell !== undefined) return this.stopCell(cell, this.stopTimeoutMs)
    for (const c of this.stopping) if (c.name === name && c.stopPromise !== undefined) return c.stopPromise
    return Promise.resolve()
  }

  shutdown (opts?: { timeoutMs?: number }): Promise<void> {
    if (this.shutdownPromise !== undefined) return this.shutdownPromise
    let timeoutMs: number
    try {
      timeoutMs = intOption('shutdown timeoutMs', opts?.timeoutMs, this.stopTimeoutMs, 1, MAX_ASK_TIMEOUT_MS)
    } catch (err) {
      return Promise.reject(err)
    }
    this.stopped = true
    for (const rec of this.pending.values()) this.settleErr(rec, new ActorError(C.SYSTEM_STOPPED, `actor system shut down (ask to ${rec.target})`))
    const waits: Array<Promise<void>> = []
    for (const cell of [...this.cells.values()]) waits.push(this.stopCell(cell, timeoutMs))
    for (const cell of this.stopping) if (cell.stopPromise !== undefined) waits.push(cell.stopPromise)
    this.shutdownPromise = Promise.all(waits).then(() => { this.logger.debug('actor system shut down') })
    return this.shutdownPromise
  }

  actorNames (): string[] { return [...this.cells.keys()] }

  pendingAskCount (): number { return this.pending.size }

  mailboxDepth (name: string): number | undefined { return this.cells.get(name)?.mailbox.length }

  // ---- sending ------------------------------------------------------------------------------

  /** Validates an ask and returns its timeout; throws the error the ask must reject with. */
  private checkAsk (to: ActorRef, opts: AskOptions | undefined): number {
    if (this.stopped) throw new ActorError(C.SYSTEM_STOPPED, 'actor system is shut down')
    if (!isRef(to)) throw new ActorError(C.INVALID_ARGUMENT, 'to must be an ActorRef { peerId, name }')
    const timeoutMs = opts?.timeoutMs ?? this.defaultAskTimeoutMs
    if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_ASK_TIMEOUT_MS) {
      throw new ActorError(C.INVALID_ARGUMENT, `timeoutMs must be a number in (0, ${MAX_ASK_TIMEOUT_MS}], got ${String(timeoutMs)}`)
    }
    if (opts?.from !== undefined && !isValidActorName(opts.from)) throw new ActorError(C.INVALID_ARGUMENT, 'from must be a valid actor name')
    if (opts?.signal?.aborted === true) throw new ActorError(C.ABORTED, `ask to ${to.name} aborted`, { cause: opts.signal.reason })
    if (this.pending.size >= this.maxPendingAsks) throw new ActorError(C.TOO_MANY_ASKS, `too many pending asks (${this.maxPendingAsks})`)
    return timeoutMs
  }

  private sendAsk (rec: PendingAsk, msg: unknown, from: string | undefined): void {
    if (rec.peerId === this.peerId) {
      const cell = this.cells.get(rec.target)
      if (cell === undefined) throw new ActorError(C.NO_SUCH_ACTOR, `no actor ${rec.target}`)
      const sender = from === undefined ? undefined : this.localSender(from)
      if (!cell.mailbox.push(msg, sender, rec)) throw this.mailboxFull(cell)
      cell.stats.out++
      cell.stats.in++
      this.wake(cell)
      return
    }
    const transport = this.remoteTransport({ peerId: rec.peerId, name: rec.target })
    transport.send(rec.peerId, from === undefined
      ? { k: 'a', to: rec.target, id: rec.id, b: msg }
      : { k: 'a', to: rec.target, id: rec.id, b: msg, f: from })
    this.metrics.statsFor(rec.target).out++
  }

  private remoteTransport (to: ActorRef): Transport {
    if (this.transport === undefined) throw new ActorError(C.PEER_UNREACHABLE, `no transport: cannot reach peer ${to.peerId} (local-only actor system)`)
    if (!isValidPeerId(to.peerId)) throw new ActorError(C.INVALID_ARGUMENT, 'to.peerId must be a non-empty string of at most 256 characters')
    if (!isValidActorName(to.name)) throw new ActorError(C.INVALID_NAME, `invalid actor name ${JSON.stringify(to.name).slice(0, 140)}`)
    return this.transport
  }

  private localSender (from: string): ActorRef {
    const cell = this.cells.get(from)
    if (cell !== undefined) return cell.ref
    if (!isValidActorName(from)) throw new ActorError(C.INVALID_ARGUMENT, 'from must be a valid actor name')
    return { peerId: this.peerId, name: from }
  }

  private mailboxFull (cell: Cell): ActorError {
    return new ActorError(C.MAILBOX_FULL, `mailbox of ${cell.name} is full (${cell.mailbox.capacity})`)
  }

  private nextAskId (): number {
    // Bounded: pending.size < maxPendingAsks ≪ MAX_ASK_ID, so a free id is found quickly.
    for (;;) {
      this.askSeq = this.askSeq >= MAX_ASK_ID ? 1 : this.askSeq + 1
      if (!this.pending.has(this.askSeq)) return this.askSeq
    }
  }

  private readonly onAskTimeout = (rec: PendingAsk, timeoutMs: number): void => {
    rec.timer = undefined
    this.settleErr(rec, new ActorError(C.ASK_TIMEOUT, `ask to ${rec.target}@${rec.peerId} timed out after ${timeoutMs} ms`))
  }

  private finish (rec: PendingAsk): void {
    rec.done = true
    this.pending.delete(rec.id)
    if (rec.timer !== undefined) clearTimeout(rec.timer)
    if (rec.signal !== undefined && rec.onAbort !== undefined) rec.signal.removeEventListener('abort', rec.onAbort)
  }

  private settleOk (rec: PendingAsk, value: unknown): void {
    if (rec.done) return
    this.finish(rec)
    this.metrics.askDone(rec.target, performance.now() - rec.startedAt, 'ok')
    rec.resolve(value)
  }

  private settleErr (rec: PendingAsk, err: Error): void {
    if (rec.done) return
    this.finish(rec)
    this.metrics.askDone(rec.target, performance.now() - rec.startedAt, (err as { code?: unknown }).code === C.ASK_TIMEOUT ? 'timeout' : 'error')
    rec.reject(err)
  }

  // ---- replies ------------------------------------------------------------------------------

  private complete (reply: Reply, value: unknown): void {
    if (reply instanceof PendingAsk) { this.settleOk(reply, value); return }
    const err = this.sendReply(reply.peerId, { k: 'o', id: reply.id, b: value })
    if (err === undefined || (err as { code?: unknown }).code === C.PEER_UNREACHABLE) return
    // The value itself may be what failed (e.g. not encodable): tell the asker rather than let it time out.
    this.sendReply(reply.peerId, { k: 'e', id: reply.id, e: { code: C.REPLY_FAILED, message: truncateMessage(`reply could not be sent: ${toError(err).message}`) } })
  }

  private fail (reply: Reply, err: ActorError | ReplyError): void {
    if (reply instanceof PendingAsk) { this.settleErr(reply, err); return }
    this.sendReply(reply.peerId, { k: 'e', id: reply.id, e: { code: err.code, message: truncateMessage(err.message) } })
  }

  /** Best-effort send of a reply; returns the error (and counts a dead letter) when it was not sent. */
  private sendReply (peerId: string, env: Envelope): unknown {
    if (this.transport === undefined) {
      this.metrics.deadLetter()
      return new ActorError(C.PEER_UNREACHABLE, 'no transport')
    }
    try {
      this.transport.send(peerId, env)
      return undefined
    } catch (err) {
      this.metrics.deadLetter()
      this.logger.debug('reply not sent', { peer: peerId, kind: env.k, err: toError(err) })
      return err ?? new Error('transport threw a nullish value')
    }
  }

  // ---- receiving from remote peers ----------------------------------------------------------

  private badEnvelope (peerId: unknown, problem: string): void {
    this.metrics.badEnvelope()
    // peerId may be anything here; never stringify it blindly (a hostile toString could throw).
    this.logger.debug('bad envelope dropped', { peer: typeof peerId === 'string' ? peerId.slice(0, 256) : typeof peerId, problem })
  }

  private remoteTell (from: string, to: string, msg: unknown, f: string | undefined | null): void {
    const cell = this.stopped ? undefined : this.cells.get(to)
    const sender = typeof f === 'string' ? { peerId: from, name: f } : undefined
    if (cell === undefined || !cell.mailbox.push(msg, sender, undefined)) {
      this.metrics.deadLetter()
      this.logger.debug('dead letter', { peer: from, to, reason: cell === undefined ? C.NO_SUCH_ACTOR : C.MAILBOX_FULL })
      return
    }
    cell.stats.in++
    this.wakeNow(cell)
  }

  private remoteAsk (from: string, to: string, id: number, msg: unknown, f: string | undefined | null): void {
    const reply = new RemoteReplyTo(from, id)
    if (this.stopped) { this.fail(reply, new ActorError(C.SYSTEM_STOPPED, 'actor system is shut down')); return }
    const cell = this.cells.get(to)
    if (cell === undefined) { this.fail(reply, new ActorError(C.NO_SUCH_ACTOR, `no actor ${to}`)); return }
    const sender = typeof f === 'string' ? { peerId: from, name: f } : undefined
    if (!cell.mailbox.push(msg, sender, reply)) { this.fail(reply, this.mailboxFull(cell)); return }
    cell.stats.in++
    this.wakeNow(cell)
  }

  private remoteReply (from: string, id: number, value: unknown, err: Error | undefined): void {
    const rec = this.pending.get(id)
    // A reply must come from the peer that was asked; local asks are never answered over the wire.
    if (rec === undefined || rec.peerId !== from || rec.peerId === this.peerId) {
      this.logger.debug('unmatched reply dropped', { peer: from, id })
      return
    }
    if (err === undefined) this.settleOk(rec, value)
    else this.settleErr(rec, err)
  }

  // ---- scheduling and processing ------------------------------------------------------------

  private wake (cell: Cell): void {
    if (!cell.scheduled && cell.state === RUNNING && cell.inflight === undefined) this.scheduleDrain(cell)
  }

  /** Like wake, but drains right here when no drain is running (see the notes at the top). */
  private wakeNow (cell: Cell): void {
    if (cell.scheduled || cell.state !== RUNNING || cell.inflight !== undefined) return
    if (this.draining || this.turnBudget <= 0) { this.scheduleDrain(cell); return }
    cell.scheduled = true
    this.drain(cell)
  }

  private scheduleDrain (cell: Cell): void {
    cell.scheduled = true
    if (this.turnBudget > 0) queueMicrotask(cell.drainFn)
    else setImmediate(cell.drainFn)
  }

  /** @internal Processes queued messages of one cell (see the scheduling notes at the top). */
  drain (cell: Cell): void {
    // `scheduled` stays true while draining so messages the actor sends itself don't queue an
    // extra drain: this loop picks them up.
    if (!this.budgetResetScheduled) {
      this.budgetResetScheduled = true
      setImmediate(this.resetBudget)
    }
    const mailbox = cell.mailbox
    let batch = DRAIN_BATCH
    const nested = this.draining
    this.draining = true
    try {
      while (cell.state === RUNNING && cell.inflight === undefined && mailbox.length > 0) {
        if (batch === 0 || this.turnBudget <= 0) { this.scheduleDrain(cell); return }
        batch--
        this.turnBudget--
        const msg = mailbox.shift()
        cell.ctx.sender = mailbox.shiftedSender
        this.process(cell, msg, mailbox.shiftedReply)
      }
      cell.scheduled = false
    } catch (err) {
      // Only a bug outside receive (logging, metrics) gets here. Keep the actor drainable
      // rather than leave `scheduled` stuck true, which would silence it for good.
      cell.scheduled = false
      this.scheduleDrain(cell)
      throw err
    } finally {
      this.draining = nested
    }
  }

  private process (cell: Cell, msg: unknown, reply: Reply | undefined): void {
    let result: unknown
    try {
      result = (cell.instance as Actor).receive(msg, cell.ctx)
      if (isThenable(result)) {
        // Park the cell until the promise settles; the bound callbacks resume it.
        cell.inflight = result
        cell.currentReply = reply
        result.then(cell.onAsyncOk, cell.onAsyncErr)
        return
      }
    } catch (err) {
      cell.inflight = undefined
      cell.currentReply = undefined
      this.onFailure(cell, err, reply)
      return
    }
    if (reply !== undefined) this.complete(reply, result)
  }

  /** @internal */
  asyncDone (cell: Cell, value: unknown): void {
    const reply = cell.currentReply
    cell.currentReply = undefined
    cell.inflight = undefined
    if (reply !== undefined) this.complete(reply, value)
    if (cell.mailbox.length > 0) this.wake(cell)
  }

  /** @internal */
  asyncFailed (cell: Cell, err: unknown): void {
    const reply = cell.currentReply
    cell.currentReply = undefined
    cell.inflight = undefined
    this.onFailure(cell, err, reply)
    if (cell.mailbox.length > 0) this.wake(cell)
  }

  /** A receive threw or rejected: a ReplyError answers the ask, anything else is a crash. */
  private onFailure (cell: Cell, err: unknown, reply: Reply | undefined): void {
    if (err instanceof ReplyError) {
      if (reply !== undefined) this.fail(reply, err)
      else this.logger.debug('ReplyError thrown for a tell (ignored)', { actor: cell.name, err })
      return
    }
    const error = toError(err)
    if (reply !== undefined) {
      this.fail(reply, new ActorError(C.ACTOR_CRASHED, `actor ${cell.name} crashed: ${error.message}`, { cause: error }))
    }
    if (cell.state === RUNNING) this.crash(cell, error)
    else this.logger.warn('actor failed while stopping', { actor: cell.name, err: error })
  }

  // ---- lifecycle and supervision ------------------------------------------------------------

  private instantiate (factory: () => Actor, name: string): Actor {
    const instance = factory()
    if (typeof instance !== 'object' || instance === null || typeof instance.receive !== 'function') {
      throw new ActorError(C.INVALID_ARGUMENT, `factory of ${name} must return an object with a receive method`)
    }
    return instance
  }

  /** Runs preStart of the cell's current instance, then lets it process messages. */
  private start (cell: Cell): void {
    const instance = cell.instance as Actor
    if (instance.preStart === undefined) { this.started(cell); return }
    let result: unknown
    try {
      result = instance.preStart({ self: cell.ref, system: this })
      if (isThenable(result)) {
        const p = result
        cell.inflight = p
        p.then(() => {
          if (cell.inflight === p) cell.inflight = undefined
          if (cell.state === STARTING && cell.instance === instance) this.started(cell)
        }, (err: unknown) => {
          if (cell.inflight === p) cell.inflight = undefined
          if (cell.state === STARTING && cell.instance === instance) this.crash(cell, toError(err))
        })
        return
      }
    } catch (err) {
      this.crash(cell, toError(err))
      return
    }
    this.started(cell)
  }

  private started (cell: Cell): void {
    cell.state = RUNNING
    if (cell.mailbox.length > 0) this.wake(cell)
  }

  /** Discards the instance and either schedules a restart or gives up. */
  private crash (cell: Cell, err: Error): void {
    const instance = cell.instance
    cell.instance = undefined
    if (instance !== undefined) this.postStopBestEffort(cell, instance)
    const decision = cell.tracker.recordCrash(performance.now())
    if (decision.giveUp) { this.giveUp(cell, err, decision.crashesInWindow); return }
    cell.state = BACKOFF
    this.logger.warn('actor crashed, restarting', { actor: cell.name, err, crashesInWindow: decision.crashesInWindow, backoffMs: decision.backoffMs })
    cell.restartTimer = setTimeout(cell.restartFn, decision.backoffMs)
  }

  /** @internal Restart timer fired: a fresh instance from the factory. */
  restart (cell: Cell): void {
    cell.restartTimer = undefined
    if (cell.state !== BACKOFF) return
    let instance: Actor
    try {
      instance = this.instantiate(cell.factory, cell.name)
    } catch (err) {
      this.crash(cell, toError(err))
      return
    }
    cell.instance = instance
    cell.state = STARTING
    cell.stats.restarts++
    this.start(cell)
  }

  private giveUp (cell: Cell, err: Error, crashes: number): void {
    cell.state = STOPPED
    if (this.cells.get(cell.name) === cell) this.cells.delete(cell.name)
    cell.stats.giveups++
    const dropped = this.deadLetterMailbox(cell)
    this.logger.error('actor given up after too many crashes', { actor: cell.name, err, crashesInWindow: crashes, deadLetters: dropped })
    if (this.onGiveUp === undefined) return
    try {
      this.onGiveUp(cell.name, err)
    } catch (cbErr) {
      this.logger.warn('onGiveUp threw', { actor: cell.name, err: toError(cbErr) })
    }
  }

  /** Empties the mailbox into dead letters; asks among them are rejected with ERR_ACTOR_STOPPED. */
  private deadLetterMailbox (cell: Cell): number {
    const mailbox = cell.mailbox
    let n = 0
    while (mailbox.length > 0) {
      mailbox.shift()
      const reply = mailbox.shiftedReply
      this.metrics.deadLetter()
      n++
      if (reply !== undefined) this.fail(reply, new ActorError(C.ACTOR_STOPPED, `actor ${cell.name} stopped`))
    }
    mailbox.shiftedReply = undefined
    mailbox.shiftedSender = undefined
    return n
  }

  private postStopBestEffort (cell: Cell, instance: Actor): void {
    if (instance.postStop === undefined) return
    const onError = (err: unknown): void => { this.logger.warn('postStop failed', { actor: cell.name, err: toError(err) }) }
    try {
      const r = instance.postStop()
      if (isThenable(r)) r.then(undefined, onError)
    } catch (err) {
      onError(err)
    }
  }

  private stopCell (cell: Cell, timeoutMs: number): Promise<void> {
    if (cell.stopPromise !== undefined) return cell.stopPromise
    if (this.cells.get(cell.name) === cell) this.cells.delete(cell.name)
    cell.state = STOPPING
    if (cell.restartTimer !== undefined) { clearTimeout(cell.restartTimer); cell.restartTimer = undefined }
    this.stopping.add(cell)
    cell.stopPromise = this.finishStop(cell, timeoutMs).finally(() => { this.stopping.delete(cell) })
    return cell.stopPromise
  }

  private async finishStop (cell: Cell, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs
    // Let a receive that stopped its own actor return before postStop runs.
    await null
    const inflight = cell.inflight
    if (inflight !== undefined && !await settlesWithin(inflight, timeoutMs)) {
      this.logger.warn('stop: message still in progress after timeout', { actor: cell.name, timeoutMs })
      const reply = cell.currentReply
      cell.currentReply = undefined
      cell.inflight = undefined
      if (reply !== undefined) this.fail(reply, new ActorError(C.ACTOR_STOPPED, `actor ${cell.name} stopped`))
    }
    this.deadLetterMailbox(cell)
    const instance = cell.instance
    cell.instance = undefined
    if (instance?.postStop !== undefined) {
      try {
        const r = instance.postStop()
        if (isThenable(r)) {
          const logged = Promise.resolve(r).catch((err: unknown) => { this.logger.warn('postStop failed', { actor: cell.name, err: toError(err) }) })
          if (!await settlesWithin(logged, deadline - performance.now())) {
            this.logger.warn('stop: postStop did not finish in time', { actor: cell.name, timeoutMs })
          }
        }
      } catch (err) {
        this.logger.warn('postStop failed', { actor: cell.name, err: toError(err) })
      }
    }
    cell.state = STOPPED
  }
}

/** Creates an actor system; see ActorSystemOptions for each option. */
export function createActorSystem (options: ActorSystemOptions): ActorSystem {
  return new System(options)
}
