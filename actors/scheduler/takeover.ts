/**
 * Takeover: jobs live on in the store after their coordinator is gone. When a member has left,
 * or has been dead for takeoverAfterMs, or was forgotten while dead, the alive member with the
 * lowest peerId (every node computes the same one) claims its unfinished jobs in the store
 * atomically (`claimJobs`) and runs them as resume() does. This needs a store shared by the nodes
 * (PostgreSQL); with the embedded store each node holds only its own jobs, so there is nothing to
 * claim (the query finds none) and those jobs wait for their coordinator to come back. Claimed
 * jobs that fail to load (a store error) are not lost: they are ours in the store, and a later
 * tick sweeps for them (this node's unfinished jobs not in memory: the orphans).
 *
 * This part owns the dead-member tracking and the claim state; the parent loads what is claimed.
 */
import assert from 'node:assert/strict'
import type { Logger } from '../../config/logger.js'
import type { JobRecord, JobStore } from '../../store/types.js'
import type { MemberTable } from '../membership/table.js'
import { MAX_DEAD_TRACKED } from './limits.js'

export interface TakeoverOptions {
  store: JobStore
  table: MemberTable
  selfId: string
  takeoverAfterMs: number
  log: Logger
  isClosed: () => boolean
  /** The resume in progress, if any: claims wait for it. */
  resuming: () => Promise<void> | undefined
  /** Loads and runs jobs this node now coordinates in the store (the parent's rebuildAll). */
  load: (records: JobRecord[]) => Promise<{ rebuilt: number, failed: number }>
  /** Whether the job is in memory here. */
  isLoaded: (id: string) => boolean
}

export class Takeover {
  /** Members seen dead (not self), and since when (by this node's clock): takeover candidates. */
  private readonly deadSince = new Map<string, number>()
  /** Members whose jobs this node has claimed since they were last alive. */
  private readonly claimedFrom = new Set<string>()
  private running: Promise<void> | undefined
  /** After a failed claim, the next try waits until then. */
  private retryAtMs = 0
  /** Some job this node coordinates in the store failed to load (claim, resume): sweep for it. */
  private orphansPending = false

  constructor (private readonly o: TakeoverOptions) {
    const now = Date.now()
    for (const m of o.table.all()) if (m.status === 'dead' && m.peerId !== o.selfId) this.trackDead(m.peerId, now)
  }

  /** Members tracked as dead (stats). */
  deadTracked (): number {
    return this.deadSince.size
  }

  /** A job this node coordinates failed to load: a later tick sweeps for it. */
  markOrphans (): void {
    this.orphansPending = true
  }

  /** The claim in progress, if any (close waits for it). */
  wait (): Promise<void> | undefined {
    return this.running
  }

  /** A member (not this node) changed status. */
  onMemberChange (peerId: string, status: string): void {
    if (status === 'dead') {
      if (!this.deadSince.has(peerId)) this.trackDead(peerId, Date.now())
    } else {
      this.deadSince.delete(peerId)
      this.claimedFrom.delete(peerId)
    }
  }

  /** Starts a claim (or an orphan sweep) when one is due and none runs. */
  maybeTakeOver (now: number): void {
    if (this.running !== undefined || now < this.retryAtMs) return
    const from = this.candidates(now)
    if (from.length === 0 && !this.orphansPending) return
    const p = (async () => {
      if (this.orphansPending) await this.sweepOrphans()
      if (from.length > 0) await this.claimFrom(from)
    })().catch((err: unknown) => {
      this.retryAtMs = Date.now() + Math.max(1000, this.o.takeoverAfterMs / 10)
      this.o.log.warn('taking over the jobs of a gone coordinator failed; will retry', { from, err })
    }).finally(() => { this.running = undefined })
    this.running = p
  }

  /** Starts tracking a dead member; at the bound, forgotten members go first, then the oldest. */
  private trackDead (peerId: string, now: number): void {
    if (this.deadSince.size >= MAX_DEAD_TRACKED) {
      let victim: string | undefined
      for (const id of this.deadSince.keys()) {
        if (this.o.table.get(id) === undefined) { victim = id; break }
      }
      victim ??= this.deadSince.keys().next().value
      assert.ok(victim !== undefined, 'the map is full, so it has a first key')
      this.deadSince.delete(victim)
      this.claimedFrom.delete(victim)
      this.o.log.warn('too many dead members tracked: forgetting one', { peer: victim, limit: MAX_DEAD_TRACKED })
    }
    this.deadSince.set(peerId, now)
  }

  /** Members gone for good whose jobs this node should claim now. */
  private candidates (now: number): string[] {
    if (this.deadSince.size === 0) return []
    // Only the lowest alive member claims, so nodes do not race for every job (the store would
    // still give each job to one of them).
    let claimer = true
    for (const m of this.o.table.alive()) if (m.peerId < this.o.selfId) { claimer = false; break }
    const out: string[] = []
    for (const [peerId, since] of this.deadSince) {
      const m = this.o.table.get(peerId)
      if (m !== undefined && m.status !== 'dead') { this.deadSince.delete(peerId); continue }
      if (this.claimedFrom.has(peerId)) {
        // Claimed and then forgotten by the membership: nothing more to track.
        if (m === undefined) { this.deadSince.delete(peerId); this.claimedFrom.delete(peerId) }
        continue
      }
      // Forgotten long ago on a node that does not claim: the claimer has had its chance (the
      // entry would otherwise stay forever).
      if (m === undefined && !claimer && now - since >= 2 * this.o.takeoverAfterMs) { this.deadSince.delete(peerId); continue }
      // Forgotten while dead (evicted): gone for good.
      if (m === undefined || m.leftAtMs !== null || now - since >= this.o.takeoverAfterMs) out.push(peerId)
    }
    return claimer ? out : []
  }

  private async claimFrom (from: string[]): Promise<void> {
    await this.o.resuming()?.catch(() => {})
    for (const peerId of from) {
      if (this.o.isClosed()) return
      const records = await this.o.store.claimJobs(peerId, this.o.selfId)
      if (records.length > 0) {
        this.o.log.info('taking over the jobs of a gone coordinator', { from: peerId, jobs: records.length })
        // Claimed jobs are ours in the store: if this node closes meanwhile, its resume runs them;
        // those that fail to load now are picked up by the orphan sweep of a later tick.
        const { failed } = await this.o.load(records)
        if (failed > 0) throw new Error(`${failed} of the ${records.length} jobs claimed from ${peerId} could not be loaded`)
      }
      // Only once its jobs run here: a failed claim is tried again (and finds what is left).
      this.claimedFrom.add(peerId)
    }
  }

  /**
   * Jobs this node coordinates in the store but not in memory: left by a claim or resume whose
   * loading failed. Runs them; throws (retried later) while some still fail.
   */
  private async sweepOrphans (): Promise<void> {
    await this.o.resuming()?.catch(() => {})
    this.orphansPending = false
    const records = (await this.o.store.listUnfinishedJobs(this.o.selfId).catch((err: unknown) => {
      this.orphansPending = true
      throw err
    })).filter(r => !this.o.isLoaded(r.id))
    if (records.length === 0) return
    const { rebuilt, failed } = await this.o.load(records)
    this.o.log.info('orphaned jobs of this node loaded', { rebuilt, failed, found: records.length })
    if (failed > 0) throw new Error(`${failed} of this node's ${records.length} orphaned jobs could not be loaded`)
  }
}
