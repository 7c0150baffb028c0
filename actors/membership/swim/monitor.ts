/**
 * Heartbeats and the phi-accrual verdict. Owns: the hash ring of live members, the set of members
 * this node monitors, and one PhiAccrualDetector per monitored member.
 *
 * Probing visits a given member only about once per period across the whole cluster, too rarely
 * and irregularly for a per-peer arrival model. So, as Akka Cluster does, each member also
 * heartbeats a few others: its `monitorCount` successors on a ring ordered by a hash of the ids.
 * Every live member therefore has `monitorCount` monitors (its predecessors), and every monitor
 * judges it by φ over the acks to its heartbeats. φ crossing the threshold is our own evidence,
 * exactly like a failed probe round: the member becomes suspect (once per silence; a fresh ack
 * re-arms it).
 *
 * A newly monitored member gets a detector at the first heartbeat sent, as if it had answered then
 * (Akka's "expected response after"), so a member that dies before ever answering is still judged.
 */
import { PhiAccrualDetector } from './phi.js'
import { refOf, type Context } from './context.js'
import type { Prober } from './probe.js'

interface RingEntry { h: number, id: string }

/** FNV-1a, 32 bits: a cheap, stable spread of ids over the ring. */
export function ringHash (id: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

function compare (a: RingEntry, b: RingEntry): number {
  return a.h !== b.h ? a.h - b.h : (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
}

export class HeartbeatMonitor {
  /** Live members (self included), sorted by (hash, id); kept incrementally. */
  private readonly ring: RingEntry[] = []
  private readonly inRing = new Set<string>()
  private targets: string[] = []
  private targetsStale = true
  private readonly detectors = new Map<string, PhiAccrualDetector>()
  /** Members already suspected for the current silence. */
  private readonly fired = new Set<string>()
  private nextHeartbeatAtMs = 0

  constructor (private readonly c: Context, private readonly prober: Prober) {
    this.join(c.table.self.id)
  }

  /** A member became live (joined, or came back). */
  join (id: string): void {
    if (this.inRing.has(id)) return
    const e = { h: ringHash(id), id }
    this.ring.splice(this.lowerBound(e), 0, e)
    this.inRing.add(id)
    this.targetsStale = true
  }

  /** A member is dead, left or forgotten. */
  drop (id: string): void {
    if (!this.inRing.has(id)) return
    const e = { h: ringHash(id), id }
    const i = this.lowerBound(e)
    if (this.ring[i]?.id === id) this.ring.splice(i, 1)
    this.inRing.delete(id)
    this.detectors.delete(id)
    this.fired.delete(id)
    this.targetsStale = true
  }

  /** The members we heartbeat: our successors on the ring. */
  monitored (): readonly string[] {
    if (this.targetsStale) this.recomputeTargets()
    return this.targets
  }

  detector (id: string): PhiAccrualDetector | undefined { return this.detectors.get(id) }

  onHeartbeatAck (id: string): void {
    const d = this.detectors.get(id)
    if (d === undefined) return
    d.heartbeat(this.c.clock.now())
    this.fired.delete(id)
  }

  /** Runs every phiCheckIntervalMs: send heartbeats when due, then judge every monitored member. */
  tick (lateMs: number): void {
    const now = this.c.clock.now()
    if (lateMs > this.c.o.pauseToleranceMs) {
      // We stalled: their silence was ours. Judge again from now on.
      this.c.counters.pausesDetected++
      for (const d of this.detectors.values()) d.excuseSilenceUntil(now)
    }
    this.prober.sweep(now)
    const targets = this.monitored()
    if (now >= this.nextHeartbeatAtMs) {
      this.nextHeartbeatAtMs = now + this.c.o.heartbeatIntervalMs
      for (const id of targets) this.heartbeat(id, now)
    }
    if (this.c.isLeaving()) return
    for (const id of targets) this.judge(id, now)
  }

  private heartbeat (id: string, now: number): void {
    const m = this.c.table.get(id)
    if (m === undefined) return
    if (!this.detectors.has(id)) {
      const d = new PhiAccrualDetector({
        heartbeatIntervalMs: this.c.o.heartbeatIntervalMs,
        threshold: this.c.o.phiThreshold,
        minStdDeviationMs: this.c.o.minStdDeviationMs,
        acceptableHeartbeatPauseMs: this.c.o.acceptableHeartbeatPauseMs,
        maxSampleSize: this.c.o.phiMaxSampleSize
      })
      d.heartbeat(now)
      this.detectors.set(id, d)
    }
    const seq = this.c.nextSeq()
    if (!this.prober.trackHeartbeat(seq, id)) return
    this.c.send(refOf(m), { t: 'ping', seq, to: id, u: this.c.piggyback(id) })
  }

  private judge (id: string, now: number): void {
    const d = this.detectors.get(id)
    if (d === undefined || this.fired.has(id) || d.isAvailable(now)) return
    const m = this.c.table.get(id)
    if (m === undefined || (m.state !== 'alive' && m.state !== 'suspect')) return
    this.fired.add(id)
    this.c.counters.phiSuspicions++
    this.c.suspectLocally(id, m.incarnation)
  }

  private recomputeTargets (): void {
    this.targetsStale = false
    const self = this.c.table.self.id
    const n = this.ring.length
    const want = Math.min(this.c.o.monitorCount, n - 1)
    const out: string[] = []
    const i = this.lowerBound({ h: ringHash(self), id: self })
    for (let step = 1; out.length < want && step < n; step++) out.push(this.ring[(i + step) % n].id)
    const keep = new Set(out)
    for (const id of this.detectors.keys()) {
      if (!keep.has(id)) { this.detectors.delete(id); this.fired.delete(id) }
    }
    this.targets = out
  }

  private lowerBound (e: RingEntry): number {
    let lo = 0
    let hi = this.ring.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (compare(this.ring[mid], e) < 0) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}
