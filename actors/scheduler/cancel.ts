/**
 * Cancelling a job, wherever it runs: this node ends what it coordinates (in memory, or only in
 * its store: not resumed), and forwards the cancel to the coordinator the store or the other
 * members name. A cancel never writes a job another node coordinates (fenced like every write).
 */
import type { Logger } from '../../config/logger.js'
import type { JobStore } from '../../store/types.js'
import { ReplyError } from '../runtime/errors.js'
import type { ActorSystem } from '../runtime/types.js'
import { GridError, TERMINAL_STATUSES, type JobView } from './api.js'
import type { KindRegistry } from './kinds.js'
import type { Limits } from './limits.js'
import type { SchedulerMetrics } from './metrics.js'
import { storeFailed, type Reads } from './reads.js'
import type { JobState } from './state.js'
import { isJobView, viewFromStore, viewOf } from './views.js'

export interface CancelsOptions {
  system: ActorSystem
  store: JobStore
  kinds: KindRegistry
  limits: Limits
  log: Logger
  metrics: SchedulerMetrics
  reads: Reads
  selfId: string
  selfActor: string
  /** The parent's jobs in memory. */
  jobs: ReadonlyMap<string, JobState>
  /** The parent's end of a job (it owns the job's state). */
  endJob: (job: JobState, status: 'cancelled', result: null, error: null) => Promise<JobView>
}

export class Cancels {
  constructor (private readonly o: CancelsOptions) {}

  async cancel (jobId: string): Promise<JobView> {
    const here = await this.cancelHere(jobId)
    if (here !== null && !('forwardTo' in here)) return here
    let coordinator = here?.forwardTo
    if (coordinator === undefined) {
      // Unknown to every member that answered: not found, or unavailable when its coordinator is down.
      const view = await this.o.reads.findElsewhere(jobId)
      if (view === null) throw new GridError('ERR_NOT_FOUND', `no job ${jobId}`)
      if (TERMINAL_STATUSES.has(view.status)) return view
      coordinator = view.coordinator
    }
    if (coordinator === this.o.selfId) throw new GridError('ERR_NOT_FOUND', `no job ${jobId}`)
    try {
      const v = await this.o.system.ask<unknown>(this.o.system.ref(coordinator, this.o.selfActor), { type: 'cancel', id: jobId }, { timeoutMs: this.o.limits.remoteAskTimeoutMs, from: this.o.selfActor })
      if (!isJobView(v, jobId)) throw new Error('malformed answer')
      return v
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ERR_NOT_FOUND') throw new GridError('ERR_NOT_FOUND', `no job ${jobId}`)
      throw new GridError('ERR_UNAVAILABLE', `job ${jobId}: its coordinator ${coordinator} did not cancel it: ${(err as Error)?.message ?? String(err)}`)
    }
  }

  /** For another node's cancel: only what this node coordinates or stores. */
  async cancelForPeer (id: string): Promise<JobView> {
    const here = await this.cancelHere(id)
    if (here === null || 'forwardTo' in here) throw new ReplyError('ERR_NOT_FOUND', `no job ${id} coordinated by ${this.o.selfId}`)
    return here
  }

  /**
   * Cancels a job this node coordinates (in memory, or only in its store: not resumed). Returns
   * the view; `{ forwardTo }` when the store names another coordinator; null when unknown here.
   */
  private async cancelHere (id: string): Promise<JobView | { forwardTo: string } | null> {
    const job = this.o.jobs.get(id)
    if (job !== undefined) return await this.cancelLocal(job)
    let stored: Awaited<ReturnType<JobStore['getJob']>>
    try { stored = await this.o.store.getJob(id) } catch (err) {
      throw storeFailed(err)
    }
    if (stored === null) return null
    const rec = stored.job
    if (TERMINAL_STATUSES.has(rec.status)) return viewFromStore(this.o.kinds, rec, stored.segments)
    if (rec.coordinator !== this.o.selfId) return { forwardTo: rec.coordinator }
    // Ours but not in memory (it appeared meanwhile, or was never resumed): end it in the store.
    const again = this.o.jobs.get(id)
    if (again !== undefined) return await this.cancelLocal(again)
    const finishedAtMs = Date.now()
    let written: boolean
    try {
      written = await this.o.store.updateJob(id, { status: 'cancelled', finishedAtMs, updatedAtMs: finishedAtMs }, { coordinator: this.o.selfId })
    } catch (err) {
      throw storeFailed(err)
    }
    // Claimed by another node meanwhile: it decides.
    if (!written) return await this.cancelInStore(id)
    this.o.metrics.finished(rec.kind, 'cancelled', finishedAtMs - rec.createdAtMs)
    return viewFromStore(this.o.kinds, { ...rec, status: 'cancelled', finishedAtMs, updatedAtMs: finishedAtMs }, stored.segments)
  }

  /**
   * A cancel of a job this node no longer coordinates (deposed): the stored job if it ended, else
   * where to forward the cancel. Never writes, so it cannot loop.
   */
  private async cancelInStore (id: string): Promise<JobView | { forwardTo: string } | null> {
    let stored: Awaited<ReturnType<JobStore['getJob']>>
    try { stored = await this.o.store.getJob(id) } catch (err) {
      throw storeFailed(err)
    }
    if (stored === null) return null
    if (TERMINAL_STATUSES.has(stored.job.status)) return viewFromStore(this.o.kinds, stored.job, stored.segments)
    return { forwardTo: stored.job.coordinator }
  }

  private async cancelLocal (job: JobState): Promise<JobView | { forwardTo: string } | null> {
    if (!job.isPersisted) {
      await job.persisted
      // Its createJob failed: the job never existed.
      if (this.o.jobs.get(job.id) !== job) throw new GridError('ERR_NOT_FOUND', `no job ${job.id}`)
    }
    if (TERMINAL_STATUSES.has(job.status)) return viewOf(job)
    if (job.ending === null) this.o.log.info('job cancelled', { job: job.id })
    const view = job.ending !== null ? await job.ending : await this.o.endJob(job, 'cancelled', null, null)
    // Another node had claimed it: the cancel goes to that node (or the job ended there).
    if (job.deposed) return await this.cancelInStore(job.id)
    return view
  }
}
