/**
 * The node's view of the cluster: every member it knows, with status. Owned and mutated by the
 * membership actor only; everything else (scheduler, APIs, metrics) reads it and subscribes.
 */
import type { MemberRecord, MemberStatus } from '../../store/types.js'

export type { MemberRecord, MemberStatus }

export type MemberListener = (member: MemberRecord, previous: MemberStatus | undefined) => void

/** More members than this is a misconfiguration or an attack; joins beyond it are refused. */
export const MAX_MEMBERS = 1024

export class MemberTable {
  private readonly members = new Map<string, MemberRecord>()
  private readonly listeners = new Set<MemberListener>()

  constructor (readonly selfId: string) {}

  get (peerId: string): MemberRecord | undefined { return this.members.get(peerId) }
  all (): MemberRecord[] { return [...this.members.values()] }
  alive (): MemberRecord[] { return this.all().filter(m => m.status === 'alive') }
  get size (): number { return this.members.size }

  /** Inserts or replaces a member, notifying listeners when its status changed. */
  put (member: MemberRecord): void {
    const previous = this.members.get(member.peerId)
    if (previous === undefined && this.members.size >= MAX_MEMBERS) {
      throw new Error(`member table full (${MAX_MEMBERS})`)
    }
    this.members.set(member.peerId, member)
    if (previous?.status !== member.status) this.emit(member, previous?.status)
  }

  /** Sets a known member's status; returns the updated record, or undefined if unknown or unchanged. */
  setStatus (peerId: string, status: MemberStatus, atMs: number, left = false): MemberRecord | undefined {
    const m = this.members.get(peerId)
    if (m === undefined) return undefined
    if (m.status === status && !(left && m.leftAtMs === null)) return undefined
    const previous = m.status
    m.status = status
    if (status === 'alive') { m.lastSeenMs = Math.max(m.lastSeenMs, atMs); m.leftAtMs = null }
    if (left) m.leftAtMs = atMs
    if (previous !== status) this.emit(m, previous)
    return m
  }

  /** Forgets a member (never this node itself). */
  remove (peerId: string): boolean {
    if (peerId === this.selfId) return false
    return this.members.delete(peerId)
  }

  onChange (listener: MemberListener): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  private emit (member: MemberRecord, previous: MemberStatus | undefined): void {
    for (const l of this.listeners) {
      try { l(member, previous) } catch { /* a listener's failure must not break membership */ }
    }
  }
}
