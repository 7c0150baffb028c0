/**
 * The member table and SWIM's precedence rules: which news overrides which. Pure: the caller
 * passes the time, and reacts to the returned verdict (start or stop a suspicion timer, gossip the
 * update on, refute a suspicion about itself). Owned by one protocol instance.
 *
 * Precedence (SWIM §4.2, memberlist), for a member at incarnation i in our table:
 * - alive(j)   overrides alive/suspect(i) iff j > i, and dead/left(i) iff j > i (a new life);
 * - suspect(j) overrides alive(i) iff j ≥ i, and suspect(i) iff j > i; suspect(i) again is a
 *   confirmation when it comes from a member not counted yet;
 * - dead(j) / left(j) override alive/suspect(i) iff j ≥ i; dead and left are final for their
 *   incarnation: nothing at the same or a lower incarnation changes them.
 * - anything with j < i is stale and ignored.
 * News about ourselves is never applied: suspect/dead/left about us at ≥ our incarnation is
 * answered by the caller with a refutation (alive at a higher incarnation).
 */
import assert from 'node:assert/strict'
import type { MemberState, Update } from './messages.js'

export interface Member {
  readonly id: string
  addr: string
  meta: Record<string, unknown>
  incarnation: number
  state: MemberState
  /** When the state last changed (caller's clock). */
  stateChangedAtMs: number
}

export type SwimEventType = 'joined' | 'alive' | 'suspect' | 'dead' | 'left' | 'updated'

export interface SwimEvent {
  type: SwimEventType
  id: string
  incarnation: number
  /** The member's state after the event ('joined' may name a member already suspect). */
  state: MemberState
  at: number
  addr: string
  meta: Record<string, unknown>
  /** Who suspected or declared it (suspect, dead). */
  from?: string
}

export type Verdict =
  /** Nothing changed: stale, duplicate, or about an unknown member we cannot place. */
  | { kind: 'ignored', reason: 'stale' | 'duplicate' | 'unknown' | 'final' | 'full' }
  /** The member's state or incarnation changed; gossip it on. */
  | { kind: 'changed', event: SwimEvent, previous: MemberState | undefined }
  /** Suspect again at the same incarnation; the caller counts the confirmation if `from` is new. */
  | { kind: 'confirm', from: string }
  /** News that we are suspect, dead or left: the caller refutes at a higher incarnation. */
  | { kind: 'refute', incarnation: number }

export type StateCounts = Record<MemberState, number>

export class MemberTable {
  private readonly members = new Map<string, Member>()
  private readonly counts: StateCounts = { alive: 0, suspect: 0, dead: 0, left: 0 }
  /** Dead and left ids in the order they became so, for forgetting them in O(1) each. */
  private readonly graveyard: Array<{ id: string, at: number }> = []
  /** Bumped on every change of who is live: lets callers cache derived lists (probe order, ring). */
  version = 0

  constructor (readonly self: Member, private readonly maxMembers: number) {
    this.members.set(self.id, self)
    this.counts[self.state]++
  }

  get (id: string): Member | undefined { return this.members.get(id) }
  get size (): number { return this.members.size }
  /** Alive + suspect members, self included. */
  get liveCount (): number { return this.counts.alive + this.counts.suspect }
  stateCounts (): StateCounts { return { ...this.counts } }
  all (): IterableIterator<Member> { return this.members.values() }

  /** Applies one update at time `nowMs`; see the precedence rules above. */
  apply (u: Update, nowMs: number): Verdict {
    if (u.id === this.self.id) return this.applyAboutSelf(u)
    const m = this.members.get(u.id)
    if (m === undefined) return this.applyUnknown(u, nowMs)
    if (u.inc < m.incarnation) return { kind: 'ignored', reason: 'stale' }
    switch (u.k) {
      case 'alive':
        if (u.inc === m.incarnation) return { kind: 'ignored', reason: m.state === 'alive' ? 'duplicate' : 'stale' }
        return this.change(m, u, 'alive', nowMs, m.state === 'alive' ? 'updated' : 'alive')
      case 'suspect':
        if (m.state === 'dead' || m.state === 'left') return { kind: 'ignored', reason: u.inc === m.incarnation ? 'final' : 'stale' }
        if (m.state === 'suspect' && u.inc === m.incarnation) return { kind: 'confirm', from: u.from as string }
        return this.change(m, u, 'suspect', nowMs, 'suspect')
      case 'dead':
      case 'left':
        if ((m.state === 'dead' || m.state === 'left') && u.inc <= m.incarnation) return { kind: 'ignored', reason: 'final' }
        if (m.state === 'dead' || m.state === 'left') {
          // A later life that died again before we heard of it: record the incarnation quietly.
          m.incarnation = u.inc
          return { kind: 'ignored', reason: 'final' }
        }
        return this.change(m, u, u.k, nowMs, u.k)
    }
  }

  /** Forgets dead and left members whose state is older than `beforeMs`; returns how many. */
  forgetDead (beforeMs: number): number {
    let n = 0
    while (this.graveyard.length > 0 && this.graveyard[0].at < beforeMs) {
      const g = this.graveyard.shift() as { id: string, at: number }
      const m = this.members.get(g.id)
      if (m !== undefined && (m.state === 'dead' || m.state === 'left') && m.stateChangedAtMs === g.at) {
        this.delete(m)
        n++
      }
    }
    return n
  }

  /** Updates our own record (refutation, meta change, leave). */
  setSelf (incarnation: number, state: MemberState, meta?: Record<string, unknown>): void {
    assert(incarnation >= this.self.incarnation, 'our incarnation never goes back')
    this.counts[this.self.state]--
    this.self.incarnation = incarnation
    this.self.state = state
    if (meta !== undefined) this.self.meta = meta
    this.counts[state]++
    this.version++
  }

  private applyAboutSelf (u: Update): Verdict {
    if (u.k === 'alive') return { kind: 'ignored', reason: u.inc > this.self.incarnation ? 'stale' : 'duplicate' }
    if (u.inc < this.self.incarnation) return { kind: 'ignored', reason: 'stale' }
    return { kind: 'refute', incarnation: u.inc }
  }

  private applyUnknown (u: Update, nowMs: number): Verdict {
    // Dead or left members we never knew need no record; suspect ones only when the update says
    // where they live (a full-state sync does).
    if (u.k === 'dead' || u.k === 'left' || u.addr === undefined) return { kind: 'ignored', reason: 'unknown' }
    if (this.members.size >= this.maxMembers && !this.evictOneDead()) return { kind: 'ignored', reason: 'full' }
    const m: Member = { id: u.id, addr: u.addr, meta: u.meta ?? {}, incarnation: u.inc, state: u.k, stateChangedAtMs: nowMs }
    this.members.set(m.id, m)
    this.counts[m.state]++
    this.version++
    return { kind: 'changed', event: this.eventOf(m, 'joined', nowMs, u.from), previous: undefined }
  }

  private change (m: Member, u: Update, state: MemberState, nowMs: number, type: SwimEventType): Verdict {
    const previous = m.state
    this.counts[previous]--
    m.state = state
    m.incarnation = u.inc
    if (u.addr !== undefined) m.addr = u.addr
    if (u.meta !== undefined) m.meta = u.meta
    m.stateChangedAtMs = nowMs
    this.counts[state]++
    this.version++
    if (state === 'dead' || state === 'left') this.bury(m.id, nowMs)
    return { kind: 'changed', event: this.eventOf(m, type, nowMs, u.from), previous }
  }

  private eventOf (m: Member, type: SwimEventType, at: number, from: string | undefined): SwimEvent {
    const ev: SwimEvent = { type, id: m.id, incarnation: m.incarnation, state: m.state, at, addr: m.addr, meta: m.meta }
    if (from !== undefined && (type === 'suspect' || type === 'dead')) ev.from = from
    return ev
  }

  private bury (id: string, at: number): void {
    this.graveyard.push({ id, at })
    // Entries of members that came back stay until forgotten; a member flapping on purpose must not
    // grow the list without bound, so drop the stale ones once it is far longer than the table.
    if (this.graveyard.length > 4 * this.maxMembers) {
      const live = this.graveyard.filter(g => this.members.get(g.id)?.stateChangedAtMs === g.at)
      this.graveyard.length = 0
      this.graveyard.push(...live)
    }
  }

  private evictOneDead (): boolean {
    while (this.graveyard.length > 0) {
      const g = this.graveyard.shift() as { id: string, at: number }
      const m = this.members.get(g.id)
      if (m !== undefined && (m.state === 'dead' || m.state === 'left') && m.stateChangedAtMs === g.at) {
        this.delete(m)
        return true
      }
    }
    return false
  }

  private delete (m: Member): void {
    assert(m.id !== this.self.id)
    this.members.delete(m.id)
    this.counts[m.state]--
    this.version++
  }
}
