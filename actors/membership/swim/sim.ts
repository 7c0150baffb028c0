/**
 * A deterministic discrete-event simulator for the SWIM protocol: N instances of the real
 * protocol code (createSwim) on one virtual clock and one fake network.
 *
 * - Clock: a priority queue of events ordered by (virtual time, insertion order); nothing runs in
 *   real time, so a minute of protocol takes as long as its events take to compute.
 * - Network: every message is serialized to JSON and parsed again on delivery (so nothing is
 *   shared between members and sizes are real), delayed uniformly in [minDelayMs, maxDelayMs] and
 *   dropped with probability `lossRate` (or a per-link override), all from one seeded generator.
 * - Crash: the member stops for good (its timers and inbound messages vanish).
 * - Freeze: the member stops for a while (SIGSTOP, a long GC pause); meanwhile its timers come due
 *   and messages to it queue up. On resume the overdue timers run first, then the queued messages,
 *   as a Node process does after SIGCONT. Its state is untouched, so it must refute on its own.
 *
 * Same seed, same run: every random choice (protocol and network) comes from seeded generators.
 */
import assert from 'node:assert/strict'
import { createSwim, type Swim, type SwimEvent, type PeerRef, type SwimOptions } from './protocol.js'

/** mulberry32: a small, fast, seeded 32-bit generator; plenty for simulation. */
export function seededRandom (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface SimEvent {
  at: number
  seq: number
  cancelled: boolean
  node: SimNode | undefined
  run: () => void
}

/** Binary min-heap on (at, seq). */
class EventQueue {
  private readonly heap: SimEvent[] = []
  get size (): number { return this.heap.length }
  peek (): SimEvent | undefined { return this.heap[0] }
  push (e: SimEvent): void {
    const h = this.heap
    h.push(e)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!before(h[i], h[p])) break
      ;[h[i], h[p]] = [h[p], h[i]]
      i = p
    }
  }

  pop (): SimEvent | undefined {
    const h = this.heap
    if (h.length === 0) return undefined
    const top = h[0]
    const last = h.pop() as SimEvent
    if (h.length > 0) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && before(h[l], h[m])) m = l
        if (r < h.length && before(h[r], h[m])) m = r
        if (m === i) break
        ;[h[i], h[m]] = [h[m], h[i]]
        i = m
      }
    }
    return top
  }
}

function before (a: SimEvent, b: SimEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq)
}

export interface SimNode {
  readonly id: string
  readonly addr: string
  readonly swim: Swim
  crashed: boolean
  frozenUntil: number | undefined
  /** Work that came due while frozen: timers first, then messages (see resume). */
  readonly deferredTimers: Array<() => void>
  readonly deferredMessages: Array<() => void>
  msgsSent: number
  bytesSent: number
}

export interface SimOptions {
  seed: number
  /** Network delay bounds, uniform. Defaults 1 and 20 ms. */
  minDelayMs?: number
  maxDelayMs?: number
  /** Probability that a message is lost. Default 0. */
  lossRate?: number
  /** Protocol options for every member. */
  swim?: Partial<SwimOptions>
  /** Called for every membership event at every member. */
  onEvent?: (observer: string, ev: SwimEvent) => void
  /** Messages queued for a frozen member at most (a socket buffer); more are dropped. Default 100 000. */
  maxDeferredMessages?: number
}

export class Simulator {
  now = 0
  private seq = 0
  private readonly queue = new EventQueue()
  private readonly nodes = new Map<string, SimNode>()
  private readonly byAddr = new Map<string, SimNode>()
  private readonly net: () => number
  private readonly linkLoss = new Map<string, number>()
  readonly minDelayMs: number
  readonly maxDelayMs: number
  lossRate: number
  /** Protocol bugs reported by any member (must stay empty). */
  readonly errors: unknown[] = []
  messagesDelivered = 0

  constructor (readonly opts: SimOptions) {
    this.net = seededRandom(opts.seed ^ 0x9e3779b9)
    this.minDelayMs = opts.minDelayMs ?? 1
    this.maxDelayMs = opts.maxDelayMs ?? 20
    this.lossRate = opts.lossRate ?? 0
    assert(this.minDelayMs >= 0 && this.maxDelayMs >= this.minDelayMs)
    assert(this.lossRate >= 0 && this.lossRate < 1)
  }

  get size (): number { return this.nodes.size }
  node (id: string): SimNode {
    const n = this.nodes.get(id)
    assert(n !== undefined, `no simulated member ${id}`)
    return n
  }

  all (): SimNode[] { return [...this.nodes.values()] }
  /** Members neither crashed nor frozen now. */
  running (): SimNode[] { return this.all().filter(n => !n.crashed && n.frozenUntil === undefined) }
  /** Members not crashed (frozen ones included: they will come back). */
  live (): SimNode[] { return this.all().filter(n => !n.crashed) }

  /** Creates and starts a member; `options` override the simulation's protocol options. */
  add (id: string, options: Partial<SwimOptions> = {}, meta: Record<string, unknown> = {}): SimNode {
    assert(!this.nodes.has(id), `duplicate member ${id}`)
    const addr = `sim://${id}`
    let node!: SimNode
    const clock = {
      now: () => this.now,
      setTimeout: (fn: () => void, ms: number): unknown => this.schedule(ms, node, () => {
        if (node.frozenUntil !== undefined) node.deferredTimers.push(fn)
        else fn()
      }),
      clearTimeout: (h: unknown): void => { (h as SimEvent).cancelled = true }
    }
    const swim = createSwim({
      self: { id, addr, meta },
      clock,
      random: seededRandom(this.opts.seed * 31 + this.nodes.size * 7919 + 1),
      send: (to, msg) => { this.transmit(node, to, msg) },
      options: { ...this.opts.swim, ...options },
      onEvent: ev => this.opts.onEvent?.(id, ev),
      onError: err => { this.errors.push(err) }
    })
    node = { id, addr, swim, crashed: false, frozenUntil: undefined, deferredTimers: [], deferredMessages: [], msgsSent: 0, bytesSent: 0 }
    this.nodes.set(id, node)
    this.byAddr.set(addr, node)
    swim.start()
    return node
  }

  /** Loss probability of messages from `from` to `to`, overriding the global rate. */
  setLinkLoss (from: string, to: string, p: number): void {
    this.linkLoss.set(`${from}>${to}`, p)
  }

  crash (id: string): void {
    const n = this.node(id)
    n.crashed = true
    n.deferredTimers.length = 0
    n.deferredMessages.length = 0
  }

  freeze (id: string, durationMs: number): void {
    const n = this.node(id)
    assert(!n.crashed && n.frozenUntil === undefined)
    n.frozenUntil = this.now + durationMs
    this.schedule(durationMs, undefined, () => { this.resume(n) })
  }

  /** Runs events up to virtual time `t`. */
  runUntil (t: number): void {
    for (;;) {
      const e = this.queue.peek()
      if (e === undefined || e.at > t) break
      this.queue.pop()
      if (e.cancelled || e.node?.crashed === true) continue
      this.now = e.at
      e.run()
    }
    this.now = Math.max(this.now, t)
  }

  runFor (ms: number): void { this.runUntil(this.now + ms) }

  /** Runs until `cond` holds (checked every `stepMs`) or `limitMs` passed; returns whether it held. */
  runUntilTrue (cond: () => boolean, limitMs: number, stepMs = 100): boolean {
    const end = this.now + limitMs
    while (this.now < end) {
      if (cond()) return true
      this.runUntil(Math.min(end, this.now + stepMs))
    }
    return cond()
  }

  private schedule (delayMs: number, node: SimNode | undefined, run: () => void): SimEvent {
    const e: SimEvent = { at: this.now + Math.max(0, delayMs), seq: this.seq++, cancelled: false, node, run }
    this.queue.push(e)
    return e
  }

  private transmit (from: SimNode, to: PeerRef, msg: unknown): void {
    // A frozen or crashed member runs no code, so it cannot send; assert the simulator agrees.
    assert(!from.crashed && from.frozenUntil === undefined, `${from.id} sent while stopped`)
    const text = JSON.stringify(msg)
    from.msgsSent++
    from.bytesSent += Buffer.byteLength(text)
    const dest = to.id !== '' ? this.nodes.get(to.id) : this.byAddr.get(to.addr)
    if (dest === undefined) return
    const loss = this.linkLoss.get(`${from.id}>${dest.id}`) ?? this.lossRate
    if (loss > 0 && this.net() < loss) return
    const delay = this.minDelayMs + this.net() * (this.maxDelayMs - this.minDelayMs)
    this.schedule(delay, dest, () => {
      const deliver = (): void => {
        this.messagesDelivered++
        dest.swim.handle(from.id, JSON.parse(text))
      }
      if (dest.frozenUntil === undefined) deliver()
      else if (dest.deferredMessages.length < (this.opts.maxDeferredMessages ?? 100_000)) dest.deferredMessages.push(deliver)
    })
  }

  private resume (n: SimNode): void {
    if (n.crashed) return
    n.frozenUntil = undefined
    const timers = n.deferredTimers.splice(0)
    const messages = n.deferredMessages.splice(0)
    for (const fn of timers) fn()
    for (const fn of messages) fn()
  }
}
