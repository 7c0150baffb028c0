/**
 * SWIM membership with Lifeguard suspicion and phi-accrual heartbeats: the protocol core.
 *
 * `createSwim` wires the parts, each owning its state:
 * - MemberTable (members.ts): who is there, at which incarnation, and SWIM's precedence rules;
 * - BroadcastQueue (broadcasts.ts): updates waiting to be piggybacked, bounded retransmission;
 * - Prober (probe.ts): probe rounds, indirect probes, every outstanding ping;
 * - HeartbeatMonitor (monitor.ts): the ring, heartbeats, φ per monitored member;
 * - SuspicionTimers (suspicion.ts): Lifeguard timeouts.
 * This file owns what ties them: applying updates and reacting to verdicts, refuting suspicion
 * about ourselves, joining, leaving, full-state syncs, and message dispatch.
 *
 * No I/O: time (`clock`), randomness (`random`) and the network (`send`, `handle`) are injected, so
 * the same code runs in the node and in the simulator (sim.ts). `handle` never throws: malformed
 * input is counted by reason in stats().counters.rejected.
 */
import assert from 'node:assert/strict'
import { resolveOptions, retransmitLimit, pushPullIntervalFor, SwimError, type SwimOptions } from './options.js'
import { MemberTable, type Member, type SwimEvent, type Verdict, type StateCounts } from './members.js'
import { BroadcastQueue } from './broadcasts.js'
import { parseMessage, defaultIsValidId, jsonBytes, MAX_SEQ, type MessageLimits, type SwimMessage, type Update } from './messages.js'
import { Prober } from './probe.js'
import { HeartbeatMonitor } from './monitor.js'
import { SuspicionTimers } from './suspicion.js'
import { bump, emptyCounters, randomIndex, refOf, type Context, type PeerRef, type SwimClock, type SwimCounters } from './context.js'

export type { SwimClock, PeerRef, SwimCounters, SwimEvent, Member, SwimOptions }

export interface SwimInit {
  /** This member. `incarnation` defaults to 0; a restarted node may start higher (e.g. seconds since epoch). */
  self: { id: string, addr: string, meta?: Record<string, unknown>, incarnation?: number }
  clock: SwimClock
  /** Uniform in [0, 1). Seeded in the simulator. */
  random: () => number
  /** Fire-and-forget delivery; may drop. Must not call back into `handle` synchronously. */
  send: (to: PeerRef, msg: SwimMessage) => void
  options?: Partial<SwimOptions>
  /** Membership changes of other members, in the order this node learns them. */
  onEvent?: (ev: SwimEvent) => void
  /** A bug inside the protocol (never bad input): reported, counted, and the protocol keeps running. */
  onError?: (err: unknown) => void
  /** Stricter id check (the node passes its peer-id check). */
  isValidId?: (id: string) => boolean
}

export interface SwimStats {
  id: string
  incarnation: number
  members: StateCounts
  queuedUpdates: number
  droppedUpdates: number
  suspicions: number
  outstandingPings: number
  monitored: readonly string[]
  counters: SwimCounters
}

export interface Swim {
  start: () => void
  stop: () => void
  /** Feeds one message received from member `from` (as authenticated by the transport). Never throws. */
  handle: (from: string, msg: unknown) => void
  /** Full-state sync with the first seed that answers; rejects ERR_JOIN_FAILED when none does. */
  join: (seeds: PeerRef[], options?: { signal?: AbortSignal }) => Promise<number>
  /** Announces a graceful leave; keep running about a probe period, then stop(). */
  leave: () => void
  /** Our meta changed: published at a new incarnation. */
  updateMeta: (meta: Record<string, unknown>) => void
  /** The transport lost its connection to `id` (a reset, not a timeout): our own evidence, as a failed probe. */
  reportUnreachable: (id: string) => void
  members: () => Member[]
  member: (id: string) => Member | undefined
  /** φ of a monitored member now, undefined when we do not monitor it. */
  phi: (id: string) => number | undefined
  stats: () => SwimStats
  readonly options: Readonly<SwimOptions>
}

const MAX_SEEDS = 64

export function createSwim (init: SwimInit): Swim {
  const o = resolveOptions(init.options)
  const isValidId = init.isValidId ?? defaultIsValidId
  const selfId = init.self.id
  if (typeof selfId !== 'string' || !defaultIsValidId(selfId) || !isValidId(selfId)) throw new SwimError('ERR_INVALID_OPTION', `self.id is not a valid member id: ${String(selfId)}`)
  if (typeof init.self.addr !== 'string' || init.self.addr.length > o.maxAddrLength) throw new SwimError('ERR_INVALID_OPTION', `self.addr must be a string of at most ${o.maxAddrLength} characters`)
  const selfMeta = checkMeta(init.self.meta ?? {}, o, 'self.meta')
  const inc0 = init.self.incarnation ?? 0
  if (!Number.isSafeInteger(inc0) || inc0 < 0) throw new SwimError('ERR_INVALID_OPTION', `self.incarnation must be a non-negative integer, got ${inc0}`)
  for (const f of ['now', 'setTimeout', 'clearTimeout'] as const) {
    if (typeof init.clock?.[f] !== 'function') throw new SwimError('ERR_INVALID_OPTION', `clock.${f} must be a function`)
  }
  if (typeof init.random !== 'function') throw new SwimError('ERR_INVALID_OPTION', 'random must be a function')
  if (typeof init.send !== 'function') throw new SwimError('ERR_INVALID_OPTION', 'send must be a function')

  const { clock, random } = init
  const counters = emptyCounters()
  const self: Member = { id: selfId, addr: init.self.addr, meta: selfMeta, incarnation: inc0, state: 'alive', stateChangedAtMs: clock.now() }
  const table = new MemberTable(self, o.maxMembers)
  const queue = new BroadcastQueue(o.maxQueuedUpdates)
  const limits: MessageLimits = { maxUpdatesPerMessage: o.maxUpdatesPerMessage, maxMembers: o.maxMembers, maxMetaBytes: o.maxMetaBytes, maxAddrLength: o.maxAddrLength, isValidId }
  const timers = new Set<unknown>()
  let running = false
  let leaving = false
  let seq = randomIndex(random, MAX_SEQ)
  let joinWaiter: ((ok: boolean) => void) | undefined
  let lastForgetMs = 0
  let lastStrangerSyncMs = -Infinity

  const ctx: Context = {
    o,
    table,
    clock,
    random,
    counters,
    isLeaving: () => leaving,
    send,
    piggyback,
    suspectLocally: (id, inc) => { applyOne({ k: 'suspect', id, inc, from: selfId }, true) },
    nextSeq: () => { seq = seq >= MAX_SEQ ? 0 : seq + 1; return seq },
    timer (delayMs, fn) {
      const due = clock.now() + delayMs
      const h = clock.setTimeout(() => {
        // Cancelled meanwhile (a simulated freeze can hold a callback past its clearTimeout).
        if (!timers.delete(h) || !running) return
        guarded(() => { fn(clock.now() - due) })
      }, delayMs)
      timers.add(h)
      return h
    },
    cancel (h) {
      if (h === undefined || !timers.has(h)) return
      timers.delete(h)
      clock.clearTimeout(h)
    }
  }
  const prober = new Prober(ctx, id => { monitor.onHeartbeatAck(id) })
  const monitor = new HeartbeatMonitor(ctx, prober)
  const suspicions = new SuspicionTimers(ctx, (id, inc) => { applyOne({ k: 'dead', id, inc, from: selfId }, true) })

  function guarded (fn: () => void): void {
    try {
      fn()
    } catch (err) {
      counters.internalErrors++
      try { init.onError?.(err) } catch { /* a failing reporter must not break the protocol */ }
    }
  }

  function emit (ev: SwimEvent): void {
    try { init.onEvent?.(ev) } catch (err) { try { init.onError?.(err) } catch {} }
  }

  function send (to: PeerRef, msg: SwimMessage): void {
    bump(counters.sent, msg.t)
    try { init.send(to, msg) } catch { counters.sendErrors++ }
  }

  /** The update describing member `m` as we see it now. */
  function updateOf (m: Member): Update {
    const u: Update = { k: m.state, id: m.id, inc: m.incarnation, addr: m.addr }
    if (Object.keys(m.meta).length > 0) u.meta = m.meta
    if (m.state === 'suspect' || m.state === 'dead') u.from = selfId
    return u
  }

  function piggyback (toId: string): Update[] {
    const limit = retransmitLimit(o, table.liveCount)
    const m = table.get(toId)
    // Lifeguard's buddy system: a member we think is suspect or dead hears it from us first,
    // so it can refute before the timeout.
    if (m !== undefined && (m.state === 'suspect' || m.state === 'dead') && m.id !== selfId) {
      const own = updateOf(m)
      const rest = queue.take(o.maxUpdatesPerMessage - 1, o.maxPiggybackBytes - jsonBytes(own), limit, toId)
      return [own, ...rest]
    }
    return queue.take(o.maxUpdatesPerMessage, o.maxPiggybackBytes, limit)
  }

  function refute (inc: number): void {
    if (leaving) return
    table.setSelf(Math.max(self.incarnation, inc) + 1, 'alive')
    counters.refutations++
    queue.push(updateOf(self))
  }

  /** Applies one update; `gossipOn`: queue it for others when it was news to us. */
  function applyOne (u: Update, gossipOn: boolean): void {
    const v: Verdict = table.apply(u, clock.now())
    switch (v.kind) {
      case 'ignored':
        bump(counters.ignored, v.reason)
        return
      case 'refute':
        refute(v.incarnation)
        return
      case 'confirm':
        if (suspicions.confirm(u.id, v.from) && gossipOn) queue.push(u)
        return
      case 'changed':
        react(v.event, v.previous, u, gossipOn)
    }
  }

  function react (ev: SwimEvent, previous: Member['state'] | undefined, u: Update, gossipOn: boolean): void {
    const m = table.get(ev.id)
    assert(m !== undefined)
    if (ev.state === 'suspect') suspicions.start(ev.id, ev.incarnation, u.from ?? selfId, table.liveCount)
    else suspicions.cancel(ev.id)
    const wasLive = previous === 'alive' || previous === 'suspect'
    const isLive = ev.state === 'alive' || ev.state === 'suspect'
    if (isLive && !wasLive) { monitor.join(ev.id); prober.added(ev.id) }
    if (!isLive && wasLive) monitor.drop(ev.id)
    if (gossipOn) queue.push(ev.state === 'suspect' || ev.state === 'dead' ? { ...updateOf(m), from: u.from ?? selfId } : updateOf(m))
    emit(ev)
  }

  function applyAll (updates: Update[] | undefined, gossipOn: boolean): void {
    if (updates === undefined) return
    for (const u of updates) applyOne(u, gossipOn)
  }

  /** Our full state as sync messages, cut into parts under maxMessageBytes. */
  function syncMessages (join: boolean, reply: boolean): SwimMessage[] {
    const budget = o.maxMessageBytes - 256
    const parts: Update[][] = [[]]
    let bytes = 0
    for (const m of table.all()) {
      const u = updateOf(m)
      const b = jsonBytes(u) + 1
      if (bytes + b > budget && parts[parts.length - 1].length > 0) { parts.push([]); bytes = 0 }
      parts[parts.length - 1].push(u)
      bytes += b
    }
    return parts.map((u, part) => ({ t: 'sync', join, reply, part, parts: parts.length, u }))
  }

  function dispatch (from: string, msg: SwimMessage): void {
    switch (msg.t) {
      case 'ping': {
        // A ping for someone else reached us (an address reused by a new member): drop it whole.
        if (msg.to !== selfId) { bump(counters.rejected, 'wrong-target'); return }
        applyAll(msg.u, true)
        send({ id: from, addr: table.get(from)?.addr ?? '' }, { t: 'ack', seq: msg.seq, u: piggyback(from) })
        return
      }
      case 'ack':
        applyAll(msg.u, true)
        prober.onAck(from, msg.seq)
        return
      case 'ping-req':
        applyAll(msg.u, true)
        if (msg.to === selfId || msg.to === from) { bump(counters.rejected, 'bad-ping-req-target'); return }
        prober.onPingReq(from, msg)
        return
      case 'gossip':
        applyAll(msg.u, true)
        return
      case 'sync':
        onSync(from, msg)
    }
  }

  function onSync (from: string, msg: Extract<SwimMessage, { t: 'sync' }>): void {
    // Members learned from a seed while joining are not news for the cluster: no gossip for them.
    const isJoinReply = msg.reply && msg.join && joinWaiter !== undefined
    applyAll(msg.u, !isJoinReply)
    if (!msg.reply && msg.part === 0) {
      const to = { id: from, addr: table.get(from)?.addr ?? '' }
      for (const m of syncMessages(msg.join, true)) send(to, m)
    }
    if (isJoinReply && msg.part === msg.parts - 1) joinWaiter?.(true)
  }

  function handle (from: string, raw: unknown): void {
    guarded(() => {
      if (!running) { bump(counters.rejected, 'not-running'); return }
      if (typeof from !== 'string' || !defaultIsValidId(from) || !isValidId(from)) { bump(counters.rejected, 'bad-sender'); return }
      if (from === selfId) { bump(counters.rejected, 'from-self'); return }
      const r = parseMessage(raw, limits)
      if (!r.ok) { bump(counters.rejected, r.reason); return }
      bump(counters.received, r.msg.t)
      dispatch(from, r.msg)
      if (r.msg.t !== 'sync') syncWithStranger(from)
    })
  }

  /**
   * A member we do not know is talking to us: it knows something we missed (gossip reaches
   * almost everyone, not everyone, and joins racing each other miss each other). Exchange full
   * state with it now rather than at the next anti-entropy round; at most one such sync per
   * probe period, so a crowd of strangers costs a bounded rate.
   */
  function syncWithStranger (from: string): void {
    if (table.get(from) !== undefined || leaving) return
    const now = clock.now()
    if (now - lastStrangerSyncMs < o.probeIntervalMs) return
    lastStrangerSyncMs = now
    counters.strangerSyncs++
    for (const m of syncMessages(false, false)) send({ id: from, addr: '' }, m)
  }

  function probeTick (late: number): void {
    ctx.timer(o.probeIntervalMs, probeTick)
    prober.tick(late)
    const now = clock.now()
    if (now - lastForgetMs >= o.probeIntervalMs) {
      lastForgetMs = now
      // Dead and left members are already out of the ring and the probe order.
      table.forgetDead(now - o.forgetDeadAfterMs)
    }
  }

  function fdTick (late: number): void {
    ctx.timer(o.phiCheckIntervalMs, fdTick)
    monitor.tick(late)
  }

  /** Queued news also travels on its own to a few random members (nothing when the queue is empty). */
  function gossipTick (): void {
    ctx.timer(o.gossipIntervalMs, gossipTick)
    if (queue.size === 0 || o.gossipNodes === 0) return
    for (const peer of prober.pickHelpers(selfId, o.gossipNodes)) {
      if (queue.size === 0) break
      const u = piggyback(peer.id)
      if (u.length > 0) send(peer, { t: 'gossip', u })
    }
  }

  function pushPullTick (): void {
    ctx.timer(pushPullIntervalFor(o, table.liveCount), pushPullTick)
    syncWithRandomPeer()
  }

  function syncWithRandomPeer (): void {
    const peer = randomLivePeer()
    if (peer === undefined) return
    for (const m of syncMessages(false, false)) send(refOf(peer), m)
  }

  function randomLivePeer (): Member | undefined {
    const candidates: Member[] = []
    for (const m of table.all()) if (m.id !== selfId && m.state === 'alive') candidates.push(m)
    return candidates.length === 0 ? undefined : candidates[randomIndex(random, candidates.length)]
  }

  /**
   * Tries the seeds one after the other, each for joinTimeoutMs, driven by our own timers (no
   * promise continuations in between), so a simulated join proceeds exactly as a real one.
   */
  function join (seeds: PeerRef[], options: { signal?: AbortSignal } = {}): Promise<number> {
    if (!running) return Promise.reject(new SwimError('ERR_NOT_STARTED', 'join before start()'))
    if (!Array.isArray(seeds) || seeds.length === 0 || seeds.length > MAX_SEEDS) return Promise.reject(new SwimError('ERR_INVALID_SEEDS', `seeds must be 1..${MAX_SEEDS} peers`))
    if (joinWaiter !== undefined) return Promise.reject(new SwimError('ERR_JOIN_IN_PROGRESS', 'a join is already in progress'))
    if (options.signal?.aborted === true) return Promise.reject(new SwimError('ERR_ABORTED', 'join aborted'))
    // Our own arrival is news we spread too (a second wave besides the seed's, as memberlist).
    queue.push(updateOf(self))
    const pending = seeds.filter(s => s.id !== selfId)
    const tried: string[] = []
    return new Promise<number>((resolve, reject) => {
      let timeout: unknown
      const finish = (err: SwimError | undefined): void => {
        joinWaiter = undefined
        ctx.cancel(timeout)
        options.signal?.removeEventListener('abort', onAbort)
        if (err === undefined) resolve(table.liveCount)
        else reject(err)
      }
      const onAbort = (): void => { finish(new SwimError('ERR_ABORTED', 'join aborted')) }
      const next = (): void => {
        ctx.cancel(timeout)
        const seed = pending.shift()
        if (seed === undefined || !running) {
          finish(new SwimError('ERR_JOIN_FAILED', `no seed answered within ${o.joinTimeoutMs} ms: ${tried.join(', ') || '(no seed but ourselves)'}`))
          return
        }
        tried.push(seed.id !== '' ? seed.id : seed.addr)
        timeout = ctx.timer(o.joinTimeoutMs, next)
        for (const m of syncMessages(true, false)) send(seed, m)
      }
      joinWaiter = ok => {
        if (!ok) { finish(new SwimError('ERR_JOIN_FAILED', 'stopped while joining')); return }
        // The seed's state misses members whose own joins were still spreading; one more exchange
        // with a random member a few periods later picks them up (anti-entropy, early).
        ctx.timer(3 * o.probeIntervalMs, () => { syncWithRandomPeer() })
        finish(undefined)
      }
      options.signal?.addEventListener('abort', onAbort, { once: true })
      next()
    })
  }

  return {
    options: o,
    start () {
      if (running) return
      running = true
      // Spread the first ticks so members started together do not probe in lockstep.
      ctx.timer(randomIndex(random, o.probeIntervalMs), probeTick)
      ctx.timer(randomIndex(random, o.phiCheckIntervalMs), fdTick)
      ctx.timer(randomIndex(random, o.gossipIntervalMs), gossipTick)
      ctx.timer(o.pushPullIntervalMs / 2 + randomIndex(random, o.pushPullIntervalMs), pushPullTick)
    },
    stop () {
      running = false
      for (const h of timers) clock.clearTimeout(h)
      timers.clear()
      suspicions.stopAll()
      prober.stop()
      joinWaiter?.(false)
    },
    handle,
    join,
    leave () {
      if (leaving || !running) return
      leaving = true
      table.setSelf(self.incarnation, 'left')
      const u: Update = { k: 'left', id: selfId, inc: self.incarnation }
      queue.push(u)
      const live = [...table.all()].filter(m => m.id !== selfId && m.state === 'alive')
      for (let i = 0; i < o.leaveFanout && live.length > 0; i++) {
        const m = live.splice(randomIndex(random, live.length), 1)[0]
        send(refOf(m), { t: 'gossip', u: [u] })
      }
    },
    updateMeta (meta) {
      const clean = checkMeta(meta, o, 'meta')
      table.setSelf(self.incarnation + 1, self.state, clean)
      queue.push(updateOf(self))
    },
    reportUnreachable (id) {
      guarded(() => {
        const m = table.get(id)
        if (!running || leaving || m === undefined || id === selfId || m.state !== 'alive') return
        ctx.suspectLocally(id, m.incarnation)
      })
    },
    members: () => [...table.all()].map(m => ({ ...m })),
    member (id) {
      const m = table.get(id)
      return m === undefined ? undefined : { ...m }
    },
    phi: id => monitor.detector(id)?.phi(clock.now()),
    stats: () => ({
      id: selfId,
      incarnation: self.incarnation,
      members: table.stateCounts(),
      queuedUpdates: queue.size,
      droppedUpdates: queue.droppedCount,
      suspicions: suspicions.size,
      outstandingPings: prober.outstanding,
      monitored: monitor.monitored(),
      counters
    })
  }
}

function checkMeta (meta: unknown, o: SwimOptions, where: string): Record<string, unknown> {
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) throw new SwimError('ERR_INVALID_OPTION', `${where} must be a plain object`)
  let text: string
  try { text = JSON.stringify(meta) } catch (err) { throw new SwimError('ERR_INVALID_OPTION', `${where} is not JSON-able: ${(err as Error).message}`) }
  if (Buffer.byteLength(text) > o.maxMetaBytes) throw new SwimError('ERR_INVALID_OPTION', `${where} is ${Buffer.byteLength(text)} bytes of JSON, over maxMetaBytes ${o.maxMetaBytes}`)
  return JSON.parse(text) as Record<string, unknown>
}
