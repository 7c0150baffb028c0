/**
 * SWIM's failure-detection rounds (SWIM §3.1, memberlist's probeNode) and the relay side of
 * indirect probes. Owns: the probe order, the probe in flight, and every outstanding ping.
 *
 * Each protocol period (probeIntervalMs) one member is probed, round-robin over a shuffled list
 * reshuffled every round (so each member is probed once per round, and a round's order is not
 * predictable). A direct ping unanswered after probeTimeoutMs is followed by ping-reqs through
 * `indirectChecks` random members; an ack from any path before the period ends saves the member.
 * Otherwise, at the start of the next period, we suspect it.
 */
import { bump, randomIndex, refOf, type Context } from './context.js'
import type { SwimMessage } from './messages.js'

type Pending =
  | { kind: 'probe', expiresAtMs: number }
  | { kind: 'heartbeat', target: string, expiresAtMs: number }
  | { kind: 'relay', requester: string, requesterSeq: number, target: string, expiresAtMs: number }

interface Probe {
  seq: number
  id: string
  inc: number
  acked: boolean
  timeoutHandle: unknown
}

export class Prober {
  private order: string[] = []
  private index = 0
  private current: Probe | undefined
  private readonly pending = new Map<number, Pending>()

  constructor (private readonly c: Context, private readonly onHeartbeatAck: (target: string) => void) {}

  /** One protocol period: conclude the last probe, start the next. `lateMs`: how late this tick ran. */
  tick (lateMs: number): void {
    const stalled = lateMs > this.c.o.pauseToleranceMs
    if (stalled) this.c.counters.pausesDetected++
    this.conclude(stalled)
    this.start()
  }

  stop (): void {
    if (this.current !== undefined) this.c.cancel(this.current.timeoutHandle)
    this.current = undefined
    this.pending.clear()
  }

  /** A member appeared: probe it within this round, at a random place among those left. */
  added (id: string): void {
    const at = this.index + randomIndex(this.c.random, this.order.length - this.index + 1)
    this.order.splice(at, 0, id)
  }

  /** Registers an outgoing heartbeat ping; false when too many pings are outstanding. */
  trackHeartbeat (seq: number, target: string): boolean {
    return this.track(seq, { kind: 'heartbeat', target, expiresAtMs: this.c.clock.now() + 4 * this.c.o.heartbeatIntervalMs })
  }

  /** Drops outstanding pings nobody will answer any more. */
  sweep (nowMs: number): void {
    for (const [seq, p] of this.pending) if (p.expiresAtMs <= nowMs) this.pending.delete(seq)
  }

  get outstanding (): number { return this.pending.size }

  onAck (from: string, seq: number): void {
    const p = this.pending.get(seq)
    if (p === undefined) { bump(this.c.counters.ignored, 'late-ack'); return }
    switch (p.kind) {
      case 'probe':
        this.pending.delete(seq)
        if (this.current?.seq === seq) this.current.acked = true
        return
      case 'heartbeat':
        if (from !== p.target) { bump(this.c.counters.rejected, 'ack-from-wrong-member'); return }
        this.pending.delete(seq)
        this.onHeartbeatAck(p.target)
        return
      case 'relay': {
        if (from !== p.target) { bump(this.c.counters.rejected, 'ack-from-wrong-member'); return }
        this.pending.delete(seq)
        const requester = this.c.table.get(p.requester)
        this.c.send({ id: p.requester, addr: requester?.addr ?? '' }, { t: 'ack', seq: p.requesterSeq, u: this.c.piggyback(p.requester) })
      }
    }
  }

  /** Someone asks us to probe `to` for them (ping-req). */
  onPingReq (from: string, msg: Extract<SwimMessage, { t: 'ping-req' }>): void {
    const seq = this.c.nextSeq()
    const ok = this.track(seq, { kind: 'relay', requester: from, requesterSeq: msg.seq, target: msg.to, expiresAtMs: this.c.clock.now() + this.c.o.probeIntervalMs })
    if (!ok) { bump(this.c.counters.rejected, 'relay-busy'); return }
    const known = this.c.table.get(msg.to)
    this.c.send({ id: msg.to, addr: known?.addr ?? msg.addr }, { t: 'ping', seq, to: msg.to, u: this.c.piggyback(msg.to) })
  }

  private track (seq: number, p: Pending): boolean {
    if (this.pending.size >= this.c.o.maxPendingPings) {
      this.sweep(this.c.clock.now())
      if (this.pending.size >= this.c.o.maxPendingPings) return false
    }
    this.pending.set(seq, p)
    return true
  }

  private conclude (stalled: boolean): void {
    const p = this.current
    if (p === undefined) return
    this.current = undefined
    this.c.cancel(p.timeoutHandle)
    this.pending.delete(p.seq)
    if (p.acked || stalled || this.c.isLeaving()) return
    this.c.counters.probeFailures++
    const m = this.c.table.get(p.id)
    // Only what we probed: if it refuted or changed meanwhile, our evidence is about an old life.
    if (m !== undefined && m.incarnation === p.inc && (m.state === 'alive' || m.state === 'suspect')) {
      this.c.suspectLocally(p.id, p.inc)
    }
  }

  private start (): void {
    const target = this.nextTarget()
    if (target === undefined) return
    const m = this.c.table.get(target)
    if (m === undefined) return
    const seq = this.c.nextSeq()
    if (!this.track(seq, { kind: 'probe', expiresAtMs: this.c.clock.now() + this.c.o.probeIntervalMs })) return
    this.c.counters.probes++
    const probe: Probe = { seq, id: m.id, inc: m.incarnation, acked: false, timeoutHandle: undefined }
    this.current = probe
    this.c.send(refOf(m), { t: 'ping', seq, to: m.id, u: this.c.piggyback(m.id) })
    probe.timeoutHandle = this.c.timer(this.c.o.probeTimeoutMs, late => { this.indirect(probe, late) })
  }

  private indirect (probe: Probe, lateMs: number): void {
    if (this.current !== probe || probe.acked || lateMs > this.c.o.pauseToleranceMs) return
    const target = this.c.table.get(probe.id)
    if (target === undefined) return
    const helpers = this.pickHelpers(probe.id, this.c.o.indirectChecks)
    for (const h of helpers) {
      this.c.counters.indirectProbes++
      this.c.send(h, { t: 'ping-req', seq: probe.seq, to: target.id, addr: target.addr, u: this.c.piggyback(h.id) })
    }
  }

  /** Up to `k` distinct random alive members other than us and `exclude` (sampled from the probe order). */
  pickHelpers (exclude: string, k: number): Array<{ id: string, addr: string }> {
    const out = new Map<string, { id: string, addr: string }>()
    const n = this.order.length
    for (let tries = 0; tries < 4 * k && out.size < k && n > 0; tries++) {
      const id = this.order[randomIndex(this.c.random, n)]
      if (id === exclude || out.has(id)) continue
      const m = this.c.table.get(id)
      if (m !== undefined && m.state === 'alive') out.set(id, refOf(m))
    }
    return [...out.values()]
  }

  private nextTarget (): string | undefined {
    // At most two passes: the rest of this round, then a fresh shuffled round.
    for (let pass = 0; pass < 2; pass++) {
      while (this.index < this.order.length) {
        const id = this.order[this.index++]
        const m = this.c.table.get(id)
        if (m !== undefined && (m.state === 'alive' || m.state === 'suspect')) return id
      }
      this.reshuffle()
    }
    return undefined
  }

  private reshuffle (): void {
    const ids: string[] = []
    for (const m of this.c.table.all()) {
      if (m.id !== this.c.table.self.id && (m.state === 'alive' || m.state === 'suspect')) ids.push(m.id)
    }
    for (let i = ids.length - 1; i > 0; i--) {
      const j = randomIndex(this.c.random, i + 1)
      const t = ids[i]; ids[i] = ids[j]; ids[j] = t
    }
    this.order = ids
    this.index = 0
  }
}
