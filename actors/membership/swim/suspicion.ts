/**
 * Suspicion timers with Lifeguard's dynamic timeout (Dadgar et al. 2018, memberlist suspicion.go).
 * Owns one timer per suspect member.
 *
 * A suspicion starts at the maximum timeout when it is the only evidence, and each independent
 * confirmation (a suspect message about the same incarnation from a member not counted yet) pulls
 * the deadline towards the minimum: timeout(c) = max − (max − min)·log(c + 1)/log(k + 1). min, max
 * and k are fixed when the suspicion starts, from the cluster size then. A deadline that already
 * passed fires at once.
 */
import { suspicionMaxMs, suspicionMinMs, expectedConfirmations, type SwimOptions } from './options.js'
import type { Context } from './context.js'

/** Confirmations beyond this do not shorten anything further (k is small); the set stays bounded. */
const MAX_CONFIRMERS = 32

interface Suspicion {
  inc: number
  startedAtMs: number
  minMs: number
  maxMs: number
  k: number
  /** Members whose suspicion we counted; the first one started it and is not a confirmation. */
  confirmers: Set<string>
  handle: unknown
}

export function timeoutAfter (s: { minMs: number, maxMs: number, k: number }, confirmations: number): number {
  if (s.k < 1) return s.minMs
  const frac = Math.log(confirmations + 1) / Math.log(s.k + 1)
  return Math.max(s.minMs, Math.floor(s.maxMs - (s.maxMs - s.minMs) * frac))
}

export class SuspicionTimers {
  private readonly active = new Map<string, Suspicion>()

  /** `onExpire(id, inc)` declares the member dead (when it is still suspect at `inc`). */
  constructor (private readonly c: Context, private readonly onExpire: (id: string, inc: number) => void) {}

  get size (): number { return this.active.size }

  /** Starts (or restarts, for a newer incarnation) the suspicion of `id` raised by `from`. */
  start (id: string, inc: number, from: string, clusterSize: number): void {
    this.cancel(id)
    const o: SwimOptions = this.c.o
    const s: Suspicion = {
      inc,
      startedAtMs: this.c.clock.now(),
      minMs: suspicionMinMs(o, clusterSize),
      maxMs: suspicionMaxMs(o, clusterSize),
      k: expectedConfirmations(o, clusterSize),
      confirmers: new Set([from]),
      handle: undefined
    }
    this.active.set(id, s)
    this.arm(id, s)
  }

  /** Counts `from`'s suspicion of `id`; true when it is a new, independent confirmation. */
  confirm (id: string, from: string): boolean {
    const s = this.active.get(id)
    if (s === undefined || s.confirmers.has(from) || s.confirmers.size >= MAX_CONFIRMERS) return false
    s.confirmers.add(from)
    this.c.cancel(s.handle)
    this.arm(id, s)
    return true
  }

  /** Confirmations counted for `id` (undefined when not suspect). */
  confirmations (id: string): number | undefined {
    const s = this.active.get(id)
    return s === undefined ? undefined : s.confirmers.size - 1
  }

  /** When `id` will be declared dead at the current evidence. */
  deadlineMs (id: string): number | undefined {
    const s = this.active.get(id)
    return s === undefined ? undefined : s.startedAtMs + timeoutAfter(s, s.confirmers.size - 1)
  }

  cancel (id: string): void {
    const s = this.active.get(id)
    if (s === undefined) return
    this.c.cancel(s.handle)
    this.active.delete(id)
  }

  stopAll (): void {
    for (const id of [...this.active.keys()]) this.cancel(id)
  }

  private arm (id: string, s: Suspicion): void {
    const deadline = s.startedAtMs + timeoutAfter(s, s.confirmers.size - 1)
    const delay = Math.max(0, deadline - this.c.clock.now())
    s.handle = this.c.timer(delay, late => { this.fire(id, s, late) })
  }

  private fire (id: string, s: Suspicion, lateMs: number): void {
    if (this.active.get(id) !== s) return
    if (lateMs > this.c.o.pauseToleranceMs) {
      // We stalled past the deadline: the refutation may be sitting unread in our inbox. Give it
      // one period to arrive before condemning anyone on our stale view.
      this.c.counters.pausesDetected++
      s.handle = this.c.timer(this.c.o.probeIntervalMs, late => { this.fire(id, s, Math.min(late, 0)) })
      return
    }
    this.active.delete(id)
    this.onExpire(id, s.inc)
  }
}
