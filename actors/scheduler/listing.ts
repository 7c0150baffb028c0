/**
 * Pure parts of the cluster-wide job list (reads.ts does the asking): the reply a node sends for
 * another node's `list` ask (bounded in bytes), its check on arrival, and the merge of every
 * member's list into one, newest first.
 */
import { TERMINAL_STATUSES, type JobView } from './api.js'
import { isJobView } from './views.js'
import { JOB_ID_RE } from './job-id.js'

/** Most bytes of JSON in one `list` reply (the mesh's frames are 4 MiB by default). */
export const LIST_REPLY_MAX_BYTES = 1024 * 1024
/** Members asked at once for their lists. */
export const LIST_FANOUT = 32
/** Most jobs in one list (store/types.ts MAX_LIST_LIMIT). */
export const LIST_MAX_JOBS = 1000

export interface ListReply {
  jobs: JobView[]
  /** The byte bound cut the list: the node holds more matching jobs than it sent. */
  truncated: boolean
}

/** The jobs that fit LIST_REPLY_MAX_BYTES, in order. */
export function capReply (jobs: JobView[], maxBytes = LIST_REPLY_MAX_BYTES): ListReply {
  let bytes = 0
  for (let i = 0; i < jobs.length; i++) {
    bytes += JSON.stringify(jobs[i]).length
    if (bytes > maxBytes) return { jobs: jobs.slice(0, i), truncated: true }
  }
  return { jobs, truncated: false }
}

/** A `list` reply that crossed the wire, checked; null when malformed. */
export function parseListReply (v: unknown): ListReply | null {
  if (typeof v !== 'object' || v === null) return null
  const r = v as Record<string, unknown>
  if (!Array.isArray(r.jobs) || r.jobs.length > LIST_MAX_JOBS || typeof r.truncated !== 'boolean') return null
  for (const j of r.jobs) {
    const id = (j as { id?: unknown } | null)?.id
    if (typeof id !== 'string' || !JOB_ID_RE.test(id) || !isJobView(j, id)) return null
  }
  return { jobs: r.jobs as JobView[], truncated: r.truncated }
}

/** How far a job has got: a copy further along wins over a stale one (a lagging store). */
function rank (j: JobView): number {
  return (TERMINAL_STATUSES.has(j.status) ? 2 : j.status === 'running' ? 1 : 0) * 1e9 + j.segmentsDone
}

/** Newest first: createdAtMs, then id, descending (the stores' order). */
function newestFirst (a: JobView, b: JobView): number {
  return b.createdAtMs - a.createdAtMs || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)
}

/**
 * Merges members' lists as they arrive, keeping only the newest `limit` jobs after each: memory
 * stays at `limit` plus one reply however many members answer. Each job once: its coordinator's
 * copy, else the one furthest along.
 */
export class ListMerger {
  private best = new Map<string, { view: JobView, fromCoordinator: boolean }>()
  constructor (private readonly limit: number) {}

  add (from: string, jobs: readonly JobView[]): void {
    for (const view of jobs) {
      const fromCoordinator = view.coordinator === from
      const had = this.best.get(view.id)
      if (had === undefined || (fromCoordinator && !had.fromCoordinator) || (fromCoordinator === had.fromCoordinator && rank(view) > rank(had.view))) {
        this.best.set(view.id, { view, fromCoordinator })
      }
    }
    if (this.best.size > this.limit) {
      const kept = [...this.best.values()].sort((a, b) => newestFirst(a.view, b.view)).slice(0, this.limit)
      this.best = new Map(kept.map(k => [k.view.id, k]))
    }
  }

  result (): JobView[] {
    return [...this.best.values()].map(b => b.view).sort(newestFirst).slice(0, this.limit)
  }
}

/** One list from several nodes' lists (ListMerger over all of them). */
export function mergeJobLists (lists: ReadonlyArray<{ from: string, jobs: readonly JobView[] }>, limit: number): JobView[] {
  const merger = new ListMerger(limit)
  for (const { from, jobs } of lists) merger.add(from, jobs)
  return merger.result()
}
