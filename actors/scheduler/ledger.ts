/**
 * The per-peer in-flight ledger: which tasks each peer holds, which were moved off it while it
 * was suspect or unreachable (displaced), and its busy state (penalties and holds, placement.ts).
 * It owns that state alone; the parent decides what a failure means for the job.
 */
import { availableParallelism } from 'node:os'
import type { MemberTable } from '../membership/table.js'
import { baseCredits, decayBusy, effectiveCredits, type BusyState, type CreditPolicy, type PeerLoad } from './placement.js'
import type { InFlight, JobState, SegState } from './state.js'

export interface PeerState {
  readonly tasks: Map<string, InFlight>
  /**
   * Tasks taken off this peer while it was suspect or unreachable, not counted as attempts: by
   * task id. Counted if the peer turns dead or leaves; forgotten when it answers or is alive again.
   */
  readonly displaced: Map<string, { readonly job: JobState, readonly seg: SegState }>
  readonly busy: BusyState
}

export class InFlightLedger {
  private readonly peers = new Map<string, PeerState>()

  constructor (private readonly selfId: string, private readonly credits: CreditPolicy) {}

  get (peer: string): PeerState | undefined {
    return this.peers.get(peer)
  }

  has (peer: string): boolean {
    return this.peers.has(peer)
  }

  /** The peer's state, created empty on first use. */
  state (peer: string): PeerState {
    let st = this.peers.get(peer)
    if (st === undefined) {
      st = { tasks: new Map(), displaced: new Map(), busy: { penaltyLevel: 0, penaltyUntilMs: 0, holdUntilMs: 0 } }
      this.peers.set(peer, st)
    }
    return st
  }

  /** Records a dispatch (its credit is taken). */
  add (f: InFlight): void {
    this.state(f.peer).tasks.set(f.taskId, f)
  }

  /** Forgets an in-flight task (its credit is free again). */
  detach (f: InFlight): void {
    this.peers.get(f.peer)?.tasks.delete(f.taskId)
    if (f.seg.current === f) f.seg.current = null
  }

  /** Alive members (and this node) not on hold, with their credits, load and shared machine. */
  loads (table: MemberTable, now: number): PeerLoad[] {
    const members: Array<{ peerId: string, cores: number, host: string }> = []
    let sawSelf = false
    for (const m of table.all()) {
      if (m.peerId === this.selfId) sawSelf = true
      else if (m.status !== 'alive') continue
      members.push({ peerId: m.peerId, cores: m.cores, host: m.host ?? '' })
    }
    if (!sawSelf) members.push({ peerId: this.selfId, cores: availableParallelism(), host: '' })
    // Machines with several members: their cores are shared (see placement.ts).
    const hostCores = new Map<string, { members: number, cores: number }>()
    for (const m of members) {
      if (m.host === '') continue
      const h = hostCores.get(m.host) ?? { members: 0, cores: 1 }
      h.members++
      h.cores = Math.max(h.cores, m.cores)
      hostCores.set(m.host, h)
    }
    const loads: PeerLoad[] = []
    for (const m of members) {
      const shared = hostCores.get(m.host)
      this.addLoad(loads, m.peerId, m.cores, now, shared !== undefined && shared.members > 1 ? { host: m.host, hostCap: shared.cores } : undefined)
    }
    return loads
  }

  private addLoad (loads: PeerLoad[], peerId: string, cores: number, now: number, shared?: { host: string, hostCap: number }): void {
    const st = this.peers.get(peerId)
    if (st !== undefined && now < st.busy.holdUntilMs) {
      // On hold: nothing new for it, but what it runs still uses its machine's shared cores.
      if (shared !== undefined && st.tasks.size > 0) loads.push({ peerId, credits: st.tasks.size, inFlight: st.tasks.size, ...shared })
      return
    }
    const base = baseCredits(cores, this.credits)
    loads.push({ peerId, credits: effectiveCredits(base, st?.busy.penaltyLevel ?? 0), inFlight: st?.tasks.size ?? 0, ...shared })
  }

  /**
   * The housekeeping of a tick: decays busy penalties, drops displaced entries of jobs no longer
   * running (`stale`), forgets idle peers, and returns the dispatches past their deadline.
   */
  sweep (now: number, stale: (job: JobState) => boolean): InFlight[] {
    const expired: InFlight[] = []
    for (const [peerId, st] of this.peers) {
      decayBusy(st.busy, now)
      for (const f of st.tasks.values()) if (f.deadlineMs <= now) expired.push(f)
      for (const [id, d] of st.displaced) if (stale(d.job)) st.displaced.delete(id)
      if (st.tasks.size === 0 && st.displaced.size === 0 && st.busy.penaltyLevel === 0 && now >= st.busy.holdUntilMs) this.peers.delete(peerId)
    }
    return expired
  }

  /** Tasks in flight per peer (peers with none included), for the metrics. */
  entries (): Array<[string, number]> {
    const out: Array<[string, number]> = []
    for (const [peer, st] of this.peers) out.push([peer, st.tasks.size])
    return out
  }

  /** Tasks in flight, in all and per peer (peers with none left out). */
  counts (): { inFlight: number, inFlightByPeer: Record<string, number> } {
    const inFlightByPeer: Record<string, number> = {}
    let inFlight = 0
    for (const [peer, st] of this.peers) {
      if (st.tasks.size === 0) continue
      inFlightByPeer[peer] = st.tasks.size
      inFlight += st.tasks.size
    }
    return { inFlight, inFlightByPeer }
  }
}
