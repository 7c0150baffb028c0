/**
 * Pruning of ended jobs (config/retention.ts gives the rule: an age and/or a count). A part of
 * the scheduler that owns its timer: each sweep deletes from the store the ended jobs older than
 * the age, then those beyond the newest `maxCount`, at most `maxPerSweep` in all (bounded work:
 * a backlog is worked off one sweep a second), and forgets them in memory too. Sweeps run every
 * tenth of the age (1 s to 60 s), and one second after jobs end when a count is set.
 *
 * With a shared PostgreSQL store the rule holds for the whole cluster's jobs: every node sweeps,
 * and a job deleted by another node is simply not counted here.
 */
import { Counter, type Registry } from 'prom-client'
import type { JobRetention } from '../../config/retention.js'
import type { Logger } from '../../config/logger.js'
import { MAX_PRUNE_PER_CALL, type JobStore } from '../../store/types.js'
import { invalidOption } from './errors.js'
import type { JobState } from './state.js'

export type { JobRetention }

/** Deletions per sweep (all rules together). */
export const DEFAULT_MAX_PRUNE_PER_SWEEP = 200
const MIN_SWEEP_MS = 1000
const MAX_SWEEP_MS = 60_000
/** After a sweep that used its whole budget: the next one this soon. */
const BACKLOG_SWEEP_MS = 1000

export interface RetentionOptions {
  retention: JobRetention
  store: Pick<JobStore, 'pruneJobs'>
  registry: Registry
  log: Logger
  /** The scheduler's jobs and its ended ones kept in memory (oldest first): pruned ones are dropped. */
  jobs: Map<string, JobState>
  retained: Set<string>
  maxPerSweep?: number
  now?: () => number
}

export function checkRetention (r: unknown): JobRetention {
  const v = r as Partial<JobRetention> | null
  if (typeof v !== 'object' || v === null) throw invalidOption('retention', 'must be an object { maxAgeMs, maxCount }')
  if (v.maxAgeMs !== null && (!Number.isSafeInteger(v.maxAgeMs) || (v.maxAgeMs as number) < 1000)) throw invalidOption('retention.maxAgeMs', `must be null or an integer ≥ 1000, got ${String(v.maxAgeMs)}`)
  if (v.maxCount !== null && (!Number.isSafeInteger(v.maxCount) || (v.maxCount as number) < 1)) throw invalidOption('retention.maxCount', `must be null or an integer ≥ 1, got ${String(v.maxCount)}`)
  return { maxAgeMs: v.maxAgeMs as number | null, maxCount: v.maxCount as number | null }
}

export class Retention {
  private readonly rule: JobRetention
  private readonly maxPerSweep: number
  private readonly periodMs: number
  private readonly now: () => number
  private readonly pruned: Counter<'reason'>
  private timer: NodeJS.Timeout | undefined
  private dueAtMs = 0
  private sweeping: Promise<void> | undefined
  private closed = false

  constructor (private readonly o: RetentionOptions) {
    this.rule = checkRetention(o.retention)
    this.maxPerSweep = o.maxPerSweep ?? DEFAULT_MAX_PRUNE_PER_SWEEP
    if (!Number.isInteger(this.maxPerSweep) || this.maxPerSweep < 1 || this.maxPerSweep > MAX_PRUNE_PER_CALL) throw invalidOption('retention.maxPerSweep', `must be an integer in 1..${MAX_PRUNE_PER_CALL}`)
    this.periodMs = this.rule.maxAgeMs === null ? MAX_SWEEP_MS : Math.min(MAX_SWEEP_MS, Math.max(MIN_SWEEP_MS, Math.floor(this.rule.maxAgeMs / 10)))
    this.now = o.now ?? Date.now
    this.pruned = new Counter({ name: 'voike_jobs_pruned_total', help: 'Ended jobs deleted by the job retention (--job-retention), by the rule that removed them', labelNames: ['reason'], registers: [o.registry] })
    // Known labels start at 0, so rate() works before the first prune.
    this.pruned.inc({ reason: 'age' }, 0)
    this.pruned.inc({ reason: 'count' }, 0)
    if (this.active()) this.schedule(this.periodMs)
  }

  private active (): boolean { return this.rule.maxAgeMs !== null || this.rule.maxCount !== null }

  /** A job ended: with a count limit, the newest jobs may now push older ones out. */
  jobEnded (): void {
    if (this.rule.maxCount !== null) this.schedule(BACKLOG_SWEEP_MS)
  }

  /** Runs one sweep now (tests, and the timer). Never rejects: failures are logged and retried. */
  async sweep (): Promise<void> {
    this.sweeping ??= this.doSweep().finally(() => { this.sweeping = undefined })
    await this.sweeping
  }

  private schedule (inMs: number): void {
    if (this.closed) return
    const dueAtMs = Date.now() + inMs
    // The sooner of two requests wins.
    if (this.timer !== undefined && this.dueAtMs <= dueAtMs) return
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.dueAtMs = dueAtMs
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.sweep()
    }, inMs)
    this.timer.unref()
  }

  private async doSweep (): Promise<void> {
    let budget = this.maxPerSweep
    try {
      if (this.rule.maxAgeMs !== null) {
        const cutoff = this.now() - this.rule.maxAgeMs
        const ids = await this.o.store.pruneJobs({ endedBeforeMs: cutoff }, budget)
        this.forget(ids, 'age')
        this.forgetEndedBefore(cutoff)
        budget -= ids.length
      }
      if (this.rule.maxCount !== null && budget > 0 && !this.closed) {
        const ids = await this.o.store.pruneJobs({ keepNewest: this.rule.maxCount }, budget)
        this.forget(ids, 'count')
        budget -= ids.length
      }
    } catch (err) {
      if (!this.closed) this.o.log.warn('job retention sweep failed; retried at the next one', { err })
    }
    if (this.active()) this.schedule(budget === 0 ? BACKLOG_SWEEP_MS : this.periodMs)
  }

  private forget (ids: string[], reason: 'age' | 'count'): void {
    if (ids.length === 0) return
    this.pruned.inc({ reason }, ids.length)
    for (const id of ids) {
      // Only ended jobs are pruned; a job this node still runs is never one of them.
      if (this.o.retained.delete(id)) this.o.jobs.delete(id)
    }
    this.o.log.info('ended jobs pruned', { reason, jobs: ids.length })
  }

  /** Ended jobs in memory past the age, whoever pruned them from the store (a shared database). */
  private forgetEndedBefore (cutoffMs: number): void {
    for (const id of this.o.retained) {
      const job = this.o.jobs.get(id)
      if (job !== undefined && job.finishedAtMs !== null && job.finishedAtMs >= cutoffMs) continue
      this.o.retained.delete(id)
      this.o.jobs.delete(id)
    }
  }

  async close (): Promise<void> {
    this.closed = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    await this.sweeping
    this.o.registry.removeSingleMetric('voike_jobs_pruned_total')
  }
}
