/**
 * Reads of the grid: get (this node's memory, then its store, then the job's coordinator or every
 * other member), list, and watch (progress streamed from memory, or by polling get() for a job
 * coordinated elsewhere). It owns no job state: it reads the parent's jobs and attaches watchers
 * to them; the parent wakes them (emitProgress, endWatchers).
 */
import type { Logger } from '../../config/logger.js'
import type { JobRecord, JobStore } from '../../store/types.js'
import type { ActorSystem } from '../runtime/types.js'
import type { MemberTable } from '../membership/table.js'
import { GridError, TERMINAL_STATUSES, isJobStatus, type JobProgress, type JobStatus, type JobView } from './api.js'
import { SchedulerError, SchedulerErrorCode } from './errors.js'
import type { KindRegistry } from './kinds.js'
import { LIST_CONCURRENCY, type Limits } from './limits.js'
import type { JobState, Watcher } from './state.js'
import { isJobView, progressOf, progressOfView, viewFromStore, viewOf } from './views.js'

/** Job ids: what the HTTP route and the store accept. */
export const JOB_ID_RE = /^[A-Za-z0-9_-]{1,64}$/

export interface ReadsOptions {
  system: ActorSystem
  store: JobStore
  table: MemberTable
  kinds: KindRegistry
  limits: Limits
  log: Logger
  selfId: string
  /** The scheduler actor's name on every node (asks go there). */
  selfActor: string
  /** The parent's jobs in memory. */
  jobs: ReadonlyMap<string, JobState>
  /** Throws ERR_UNAVAILABLE once the scheduler is closed. */
  assertOpen: () => void
}

export class Reads {
  constructor (private readonly o: ReadsOptions) {}

  emitProgress (job: JobState): void {
    if (job.watchers.size === 0) return
    const p = progressOf(job)
    for (const w of job.watchers) this.callProgress(w.onProgress, p)
  }

  private callProgress (fn: (p: JobProgress) => void, p: JobProgress): void {
    try { fn(p) } catch (err) { this.o.log.warn('a watch progress callback threw', { job: p.id, err }) }
  }

  endWatchers (job: JobState, view: JobView): void {
    const p = progressOf(job)
    for (const w of [...job.watchers]) {
      this.callProgress(w.onProgress, p)
      w.detach()
      w.resolve(view)
    }
  }

  async watch (id: unknown, onProgress: (p: JobProgress) => void, signal: AbortSignal): Promise<JobView> {
    this.o.assertOpen()
    const jobId = checkId(id)
    if (typeof onProgress !== 'function') throw new GridError('ERR_INVALID_ARGUMENT', 'onProgress: must be a function', 'onProgress')
    if (signal?.aborted === true) throw aborted()
    const local = this.o.jobs.get(jobId)
    if (local !== undefined) return await this.watchLocal(local, onProgress, signal)
    const view = await this.get(jobId, signal)
    if (view === null) throw new GridError('ERR_NOT_FOUND', `no job ${jobId}`)
    if (TERMINAL_STATUSES.has(view.status)) {
      this.callProgress(onProgress, progressOfView(view))
      return view
    }
    const appeared = this.o.jobs.get(jobId)
    if (appeared !== undefined) return await this.watchLocal(appeared, onProgress, signal)
    return await this.watchByPolling(jobId, view, onProgress, signal)
  }

  private watchLocal (job: JobState, onProgress: (p: JobProgress) => void, signal: AbortSignal): Promise<JobView> {
    if (TERMINAL_STATUSES.has(job.status)) {
      this.callProgress(onProgress, progressOf(job))
      return Promise.resolve(viewOf(job))
    }
    if (job.watchers.size >= this.o.limits.maxWatchersPerJob) {
      return Promise.reject(new GridError('ERR_OVERLOADED', `job ${job.id} already has ${this.o.limits.maxWatchersPerJob} watchers`))
    }
    return new Promise<JobView>((resolve, reject) => {
      const onAbort = (): void => { w.detach(); reject(aborted()) }
      const w: Watcher = {
        onProgress,
        resolve,
        reject,
        signal,
        detach: () => {
          job.watchers.delete(w)
          signal?.removeEventListener('abort', onAbort)
        }
      }
      job.watchers.add(w)
      signal?.addEventListener('abort', onAbort, { once: true })
      this.callProgress(onProgress, progressOf(job))
    })
  }

  /** A job coordinated elsewhere: its state comes from get() every watchPollMs. */
  async watchByPolling (id: string, first: JobView, onProgress: (p: JobProgress) => void, signal?: AbortSignal): Promise<JobView> {
    let last = progressOfView(first)
    this.callProgress(onProgress, last)
    let lastSeenMs = Date.now()
    for (;;) {
      await sleep(this.o.limits.watchPollMs, signal)
      this.o.assertOpen()
      let view: JobView | null = null
      try { view = await this.get(id, signal) } catch (err) {
        if (signal?.aborted === true) throw aborted()
        this.o.log.debug('watch: get failed', { job: id, err })
      }
      if (view === null) {
        if (Date.now() - lastSeenMs > this.o.limits.watchUnavailableMs) {
          throw new GridError('ERR_UNAVAILABLE', `job ${id}: its coordinator has not answered for ${this.o.limits.watchUnavailableMs} ms`)
        }
        continue
      }
      lastSeenMs = Date.now()
      const p = progressOfView(view)
      // Monotonic: a stale read (another member's store) never moves progress back.
      if (p.status !== last.status || p.segmentsDone > last.segmentsDone) {
        if (p.segmentsDone < last.segmentsDone) p.segmentsDone = last.segmentsDone
        last = p
        this.callProgress(onProgress, p)
      }
      if (TERMINAL_STATUSES.has(view.status)) return view
    }
  }

  async get (id: unknown, signal?: AbortSignal): Promise<JobView | null> {
    this.o.assertOpen()
    const jobId = checkId(id)
    const here = await this.getHere(jobId)
    if (here === null) return await this.askOthers(jobId, signal)
    // A store copy of a job running elsewhere lags its coordinator (writes are batched, and a
    // shared store holds every node's jobs): ask the coordinator first, briefly.
    if (here.status !== 'running' || here.coordinator === this.o.selfId || this.o.jobs.has(jobId)) return here
    if (this.o.table.get(here.coordinator)?.status !== 'alive') return here
    return await this.askCoordinator(here.coordinator, jobId, signal) ?? here
  }

  /**
   * This node's memory, then its store. Synchronous (no parking of the actor) when in memory.
   * Never asks another node (it also answers other nodes' asks: no ping-pong).
   */
  getHere (id: string): JobView | null | Promise<JobView | null> {
    const job = this.o.jobs.get(id)
    if (job !== undefined) return viewOf(job)
    return this.o.store.getJob(id).then(
      (stored) => stored === null ? null : viewFromStore(this.o.kinds, stored.job, stored.segments),
      (err: unknown) => { throw storeFailed(err) }
    )
  }

  /** The coordinator's view of a job, or null when it does not answer in freshReadTimeoutMs. */
  private async askCoordinator (peerId: string, id: string, signal?: AbortSignal): Promise<JobView | null> {
    try {
      const v = await this.o.system.ask<unknown>(this.o.system.ref(peerId, this.o.selfActor), { type: 'get', id }, { timeoutMs: this.o.limits.freshReadTimeoutMs, signal, from: this.o.selfActor })
      return isJobView(v, id) ? v : null
    } catch (err) {
      if (signal?.aborted === true) throw aborted()
      this.o.log.debug('coordinator did not answer a get; using the stored copy', { peer: peerId, job: id, err })
      return null
    }
  }

  /** Asks every other alive member's scheduler; the first that knows the job answers. */
  async askOthers (id: string, signal?: AbortSignal): Promise<JobView | null> {
    const others = this.o.table.alive().filter(m => m.peerId !== this.o.selfId)
    if (others.length === 0) return null
    const ac = new AbortController()
    const onAbort = (): void => { ac.abort() }
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      return await new Promise<JobView | null>((resolve) => {
        let left = others.length
        for (const m of others) {
          this.o.system.ask<unknown>(this.o.system.ref(m.peerId, this.o.selfActor), { type: 'get', id }, { timeoutMs: this.o.limits.remoteAskTimeoutMs, signal: ac.signal, from: this.o.selfActor }).then(
            (v) => { if (isJobView(v, id)) resolve(v) },
            (err: unknown) => { this.o.log.debug('remote get failed', { peer: m.peerId, job: id, err }) }
          ).finally(() => { if (--left === 0) resolve(null) })
        }
      })
    } finally {
      signal?.removeEventListener('abort', onAbort)
      ac.abort()
    }
  }

  async list (options: { limit?: number, status?: JobStatus } = {}): Promise<JobView[]> {
    this.o.assertOpen()
    const { limit, status } = options ?? {}
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 1000)) {
      throw new GridError('ERR_INVALID_ARGUMENT', 'limit: must be an integer 1..1000', 'limit')
    }
    if (status !== undefined && !isJobStatus(status)) {
      throw new GridError('ERR_INVALID_ARGUMENT', 'status: must be queued, running, succeeded, failed or cancelled', 'status')
    }
    let records: JobRecord[]
    try { records = await this.o.store.listJobs({ limit, status }) } catch (err) {
      throw storeFailed(err)
    }
    const out = new Array<JobView>(records.length)
    let next = 0
    const worker = async (): Promise<void> => {
      for (let i = next++; i < records.length; i = next++) out[i] = await this.summaryOf(records[i])
    }
    await Promise.all(Array.from({ length: Math.min(LIST_CONCURRENCY, records.length) }, worker))
    return out
  }

  /** A job without its segment list (counts only): lists stay small. */
  private async summaryOf (record: JobRecord): Promise<JobView> {
    const job = this.o.jobs.get(record.id)
    if (job !== undefined) return viewOf(job, false)
    const stored = await this.o.store.getJob(record.id).catch(() => null)
    const view = viewFromStore(this.o.kinds, record, stored?.segments ?? [])
    view.segments = []
    return view
  }
}

/** A store failure as API callers see it (the store's error kept as the cause). */
export function storeFailed (err: unknown): GridError {
  return new GridError('ERR_UNAVAILABLE', `the store failed: ${(err as Error)?.message ?? String(err)}`, undefined, { cause: err })
}

export function checkId (id: unknown): string {
  if (typeof id === 'string' && JOB_ID_RE.test(id)) return id
  throw new GridError('ERR_INVALID_ARGUMENT', 'id: must be 1..64 characters [A-Za-z0-9_-]', 'id')
}

export function aborted (): SchedulerError {
  return new SchedulerError(SchedulerErrorCode.ABORTED, 'the watch was aborted')
}

export async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) throw aborted()
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => { clearTimeout(t); reject(aborted()) }
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
