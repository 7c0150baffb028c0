/**
 * The scheduler's in-memory records of a job, its segments and their dispatches, with the pure
 * functions over them (no I/O, no clock). The parent (scheduler.ts) owns the jobs; the parts read
 * them through these types.
 */
import assert from 'node:assert/strict'
import type { JobRecord, JobStatus, SegmentStatus } from '../../store/types.js'
import type { JobProgress, JobView } from './api.js'
import type { JobKind, SegmentContext } from './kinds.js'
import type { Answer } from './policy.js'
import { parseVerification, type JobVerification } from './verification.js'

/** One dispatch of a segment to a peer, not answered yet. */
export interface InFlight {
  readonly taskId: string
  readonly peer: string
  /** The actor the task went to (the kind's target). */
  readonly target: string
  /** The worker's timeout for it (the segment's). */
  readonly timeoutMs: number
  readonly deadlineMs: number
  readonly job: JobState
  readonly seg: SegState
}

export interface SegState {
  readonly index: number
  /** What the segment covers, as its kind describes it (opaque here). */
  readonly descriptor: unknown
  status: SegmentStatus
  /** Who finished it, or runs it now. */
  node: string | null
  /** Dispatches counted against maxAttempts (busy answers are refunded). */
  attempts: number
  /**
   * Dispatches lost with their node (suspect, unreachable) and placed again without counting
   * an attempt; one moves to `attempts` if that node then turns dead while the job runs. So
   * attempts + lost is every dispatch (busy refusals aside). Shown to users, persisted.
   */
  lost: number
  /** Dispatch counter for task ids; never goes back (persisted, see scheduler.ts). */
  seq: number
  /** Its timeout (kinds.ts segmentTimeoutMs); 0 until first needed. */
  timeoutMs: number
  /** Re-placements off suspect or unreachable peers not counted as attempts. */
  lostRetries: number
  ms: number | null
  /** The checked value, once done. */
  value: unknown
  /** Valid answers kept by the result policy's `rerun` decisions (policy.ts). */
  answers: Answer[]
  /** Done and compared with another run (the policy's `checked`); false = on one peer's word. */
  checked: boolean
  /** The policy's hard placement rule for the next run (a `rerun`'s exclude/trustedOnly); null = anywhere. */
  placeOn: ((peerId: string) => boolean) | null
  busyAnswers: number
  /** The peer where it last failed: the next dispatch goes elsewhere if possible. */
  avoid: string | null
  lastError: string | null
  current: InFlight | null
}

export interface Watcher {
  readonly onProgress: (p: JobProgress) => void
  readonly resolve: (v: JobView) => void
  readonly reject: (e: Error) => void
  readonly detach: () => void
  /** The watch's signal (kept to continue the watch by polling if the job moves away). */
  readonly signal: AbortSignal | undefined
}

export interface JobState {
  readonly id: string
  readonly kind: JobKind<any, any>
  readonly params: unknown
  readonly coordinator: string
  readonly createdAtMs: number
  readonly total: number
  status: JobStatus
  error: string | null
  result: unknown
  finishedAtMs: number | null
  /** Set at the end (and when a peer is caught); null while running: computed from the segments. */
  verification: JobVerification | null
  /** Built when the job becomes active (a fresh queued job holds none: the split is recomputed). */
  segs: SegState[] | null
  done: number
  /** Pending segments, FIFO; entries that are no longer pending are skipped. */
  queue: SegState[]
  qHead: number
  /** Set while its end is being written: nothing is placed and results are ignored. */
  ending: Promise<JobView> | null
  /** Resolves once submit's createJob is over (written or not); at once for resumed jobs. */
  readonly persisted: Promise<void>
  readonly markPersisted: () => void
  isPersisted: boolean
  /** A fenced write found another coordinator in the store: the job was dropped from this node. */
  deposed: boolean
  readonly watchers: Set<Watcher>
}

export function newJobState (record: JobRecord, kind: JobKind<any, any>, params: unknown, total: number): JobState {
  let resolvePersisted!: () => void
  const persisted = new Promise<void>((resolve) => { resolvePersisted = resolve })
  return {
    id: record.id,
    kind,
    params,
    coordinator: record.coordinator,
    createdAtMs: record.createdAtMs,
    total,
    status: record.status,
    error: record.error,
    result: record.result,
    finishedAtMs: record.finishedAtMs,
    verification: parseVerification(record.verification) ?? null,
    segs: null,
    done: 0,
    queue: [],
    qHead: 0,
    ending: null,
    persisted,
    markPersisted: resolvePersisted,
    isPersisted: false,
    deposed: false,
    watchers: new Set()
  }
}

export function newSegState (index: number, descriptor: unknown): SegState {
  return { index, descriptor, status: 'pending', node: null, attempts: 0, lost: 0, seq: 0, timeoutMs: 0, lostRetries: 0, ms: null, value: null, answers: [], checked: false, placeOn: null, busyAnswers: 0, avoid: null, lastError: null, current: null }
}

/** What the kind's per-segment methods get (kinds.ts SegmentContext). */
export function segContext (job: JobState, seg: { index: number, descriptor: unknown }): SegmentContext<any, any> {
  return { params: job.params, segments: job.total, index: seg.index, descriptor: seg.descriptor, isLast: seg.index === job.total - 1 }
}

/** The segment a kind names in messages: `segment 3 [10, 20)`. */
export function segmentName (job: JobState, seg: SegState): string {
  return `segment ${seg.index} ${job.kind.label(seg.descriptor)}`
}

/** The next segment of the job to place, or undefined; compacts the queue as it goes. */
export function nextPending (job: JobState): SegState | undefined {
  const q = job.queue
  while (job.qHead < q.length) {
    const seg = q[job.qHead++]
    if (seg.status === 'pending' && seg.current === null) {
      if (job.qHead > 1024 && job.qHead * 2 > q.length) { q.splice(0, job.qHead); job.qHead = 0 }
      return seg
    }
  }
  q.length = 0
  job.qHead = 0
  return undefined
}

/**
 * Up to `max` pending segments of the active jobs, one from each job in turn starting at job
 * `rr % active.length` (fairness). Returns the picks and the next round-robin start.
 */
export function pickPending (active: readonly JobState[], rr: number, max: number): { picks: Array<{ job: JobState, seg: SegState }>, nextRr: number } {
  const picks: Array<{ job: JobState, seg: SegState }> = []
  const n = active.length
  assert.ok(n > 0, 'pickPending needs an active job')
  const start = rr % n
  let progress = true
  while (picks.length < max && progress) {
    progress = false
    for (let k = 0; k < n && picks.length < max; k++) {
      const job = active[(start + k) % n]
      const seg = nextPending(job)
      if (seg !== undefined) { picks.push({ job, seg }); progress = true }
    }
  }
  return { picks, nextRr: (start + 1) % n }
}

export function removeFrom<T> (list: T[], item: T): void {
  const i = list.indexOf(item)
  if (i >= 0) list.splice(i, 1)
}
