/**
 * Reads of the grid: get (this node's memory, then its store, then the job's coordinator or every
 * other member), list, and watch (progress streamed from memory, or by polling get() for a job
 * coordinated elsewhere). It owns no job state: it reads the parent's jobs and attaches watchers
 * to them; the parent wakes them (emitProgress, endWatchers).
 */
import type { Logger } from '../../config/logger.js'
import type { JobRecord, JobStore } from '../../store/types.js'
import type { ActorSystem } from '../runtime/types.js'
import type { MemberRecord, MemberTable } from '../membership/table.js'
import { ReplyError } from '../runtime/errors.js'
import { GridError, TERMINAL_STATUSES, isJobStatus, type JobList, type JobProgress, type JobStatus, type JobView, type MissingMember } from './api.js'
import { SchedulerError, SchedulerErrorCode } from './errors.js'
import { coordinatorOfJobId, JOB_ID_RE } from './job-id.js'
import { capReply, LIST_FANOUT, ListMerger, parseListReply, type ListReply } from './listing.js'
import type { KindRegistry } from './kinds.js'
import { LIST_CONCURRENCY, type Limits } from './limits.js'
import type { JobState, Watcher } from './state.js'
import { isJobView, progressOf, progressOfView, viewFromStore, viewOf } from './views.js'

export { JOB_ID_RE }

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
    if (here === null) return await this.findElsewhere(jobId, signal)
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
    return (await this.askOthersDetailed(id, signal)).view
  }

  /**
   * A job this node does not hold: the other members', or null when none has it. When none has
   * it and its id names a coordinator that is down or did not answer (job-id.ts), the truth is
   * "unavailable", not "not found": throws ERR_UNAVAILABLE naming that coordinator.
   */
  async findElsewhere (id: string, signal?: AbortSignal): Promise<JobView | null> {
    const { view, unanswered } = await this.askOthersDetailed(id, signal)
    if (view !== null) return view
    const m = coordinatorOfJobId(id, this.o.table.all())
    if (m === undefined || m.peerId === this.o.selfId) return null
    // Alive and it answered: it does not know the job either.
    if (m.status === 'alive' && !unanswered.has(m.peerId)) return null
    const how = m.status === 'alive' ? 'did not answer' : m.leftAtMs !== null ? 'has left the cluster' : `is ${m.status}`
    const name = m.name !== undefined && m.name !== '' ? `${m.name} ` : ''
    throw new GridError('ERR_UNAVAILABLE', `job ${id} is unavailable: its coordinator ${name}(${m.peerId}) ${how}; its jobs come back with it`)
  }

  /** Every other alive member asked; `unanswered`: those whose ask failed (timeout, unreachable). */
  private async askOthersDetailed (id: string, signal?: AbortSignal): Promise<{ view: JobView | null, unanswered: Set<string> }> {
    const unanswered = new Set<string>()
    const others = this.o.table.alive().filter(m => m.peerId !== this.o.selfId)
    if (others.length === 0) return { view: null, unanswered }
    const ac = new AbortController()
    const onAbort = (): void => { ac.abort() }
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      const view = await new Promise<JobView | null>((resolve) => {
        let left = others.length
        for (const m of others) {
          this.o.system.ask<unknown>(this.o.system.ref(m.peerId, this.o.selfActor), { type: 'get', id }, { timeoutMs: this.o.limits.remoteAskTimeoutMs, signal: ac.signal, from: this.o.selfActor }).then(
            (v) => { if (isJobView(v, id)) resolve(v) },
            (err: unknown) => {
              unanswered.add(m.peerId)
              this.o.log.debug('remote get failed', { peer: m.peerId, job: id, err })
            }
          ).finally(() => { if (--left === 0) resolve(null) })
        }
      })
      return { view, unanswered }
    } finally {
      signal?.removeEventListener('abort', onAbort)
      ac.abort()
    }
  }

  /**
   * The cluster's jobs: this node's, and every other member's unless the store is shared (then
   * this node's store holds them all), merged. Members down or not answering in
   * remoteAskTimeoutMs are named in `missing`.
   */
  async listCluster (options: { limit?: number, status?: JobStatus } = {}): Promise<JobList> {
    this.o.assertOpen()
    const { limit = DEFAULT_LIST_LIMIT, status } = checkListOptions(options ?? {}, (field, message) => new GridError('ERR_INVALID_ARGUMENT', `${field}: ${message}`, field))
    const local = await this.list({ limit, status })
    if (this.o.store.shared === true) return { jobs: local, missing: [] }
    const merged = new ListMerger(limit)
    merged.add(this.o.selfId, local)
    const missing: MissingMember[] = []
    const miss = (m: MemberRecord, reason: MissingMember['reason']): void => {
      missing.push(m.name !== undefined && m.name !== '' ? { peerId: m.peerId, name: m.name, reason } : { peerId: m.peerId, reason })
    }
    const asked: MemberRecord[] = []
    for (const m of this.o.table.all()) {
      if (m.peerId === this.o.selfId) continue
      if (m.status === 'dead') miss(m, m.leftAtMs !== null ? 'left' : 'dead')
      else asked.push(m) // a suspect member may still answer
    }
    await forEachLimited(asked, LIST_FANOUT, async (m) => {
      let reply: ListReply | null = null
      try {
        reply = parseListReply(await this.o.system.ask<unknown>(this.o.system.ref(m.peerId, this.o.selfActor), status === undefined ? { type: 'list', limit } : { type: 'list', limit, status }, { timeoutMs: this.o.limits.remoteAskTimeoutMs, from: this.o.selfActor }))
      } catch (err) {
        this.o.log.debug('remote list failed', { peer: m.peerId, err })
      }
      if (reply === null) { miss(m, m.status === 'suspect' ? 'suspect' : 'no answer'); return }
      merged.add(m.peerId, reply.jobs)
      if (reply.truncated) miss(m, 'truncated')
    })
    missing.sort((a, b) => a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)
    return { jobs: merged.result(), missing }
  }

  /** Another node's `list` ask: this node's jobs only (never asks further), bounded in bytes. */
  async listForPeer (m: Record<string, unknown>): Promise<ListReply> {
    const { limit, status } = checkListOptions(m, (field, message) => new ReplyError('ERR_INVALID_ARGUMENT', `${field}: ${message}`))
    return capReply(await this.list({ limit, status }))
  }

  /** This node's jobs (its store, which may be shared), newest first, without segments. */
  async list (options: { limit?: number, status?: JobStatus } = {}): Promise<JobView[]> {
    this.o.assertOpen()
    const { limit, status } = checkListOptions(options ?? {}, (field, message) => new GridError('ERR_INVALID_ARGUMENT', `${field}: ${message}`, field))
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

/** Jobs in a list when no limit is given (store/types.ts DEFAULT_LIST_LIMIT). */
const DEFAULT_LIST_LIMIT = 100

function checkListOptions (o: { limit?: unknown, status?: unknown }, fail: (field: string, message: string) => Error): { limit?: number, status?: JobStatus } {
  // null: a peer's message may carry absent fields as nil.
  const limit = o.limit ?? undefined
  const status = o.status ?? undefined
  if (limit !== undefined && (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 1000)) throw fail('limit', 'must be an integer 1..1000')
  if (status !== undefined && !isJobStatus(status)) throw fail('status', 'must be queued, running, succeeded, failed or cancelled')
  return { limit: limit as number | undefined, status: status as JobStatus | undefined }
}

/** Runs `fn` over `items`, at most `concurrency` at a time. */
async function forEachLimited<T> (items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => { for (let i = next++; i < items.length; i = next++) await fn(items[i]) }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
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
