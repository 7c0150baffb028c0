/**
 * The grid contract: what the APIs (gRPC, HTTP, CLI through them, FLOW through a port node/
 * implements) need from the grid. The scheduler implements it; node/ imports it from here. The
 * JSON shape of JobView is the contract's `--json` job object.
 */
import { VoikeError } from '../../config/errors.js'
import type { Actor } from '../runtime/types.js'
import type { JobVerification } from './verification.js'
import { TERMINAL_JOB_STATUSES, type JobStatus, type SegmentStatus } from '../../store/types.js'

export type { JobStatus, SegmentStatus } from '../../store/types.js'
export { JOB_STATUSES, isJobStatus } from '../../store/types.js'

/**
 * One segment as users see it: `index`, then the fields its job kind describes it with (fib:
 * `start`, `end`), then `status`, `node`, `attempts`, `lost`, `ms`, in that order in JSON.
 */
export interface SegmentView {
  index: number
  /** The kind's fields (JobKind.describe). */
  [field: string]: unknown
  status: SegmentStatus
  /** peerId of the node that finished it (or is running it). */
  node: string | null
  /** Dispatches counted against the job's limit of failed attempts. */
  attempts: number
  /** Dispatches lost with their node and placed again without counting an attempt. */
  lost: number
  ms: number | null
}

export interface JobView {
  id: string
  kind: string
  status: JobStatus
  error: string | null
  result: unknown | null
  params: unknown
  coordinator: string
  createdAtMs: number
  finishedAtMs: number | null
  segmentsDone: number
  segmentsTotal: number
  segments: SegmentView[]
  /** How far the result was checked (verification.ts); absent from nodes that predate it. */
  verification?: JobVerification
}

/** A member whose jobs a cluster-wide list lacks, and why. */
export interface MissingMember {
  peerId: string
  /** Its node name, when known. */
  name?: string
  reason: 'suspect' | 'dead' | 'left' | 'no answer' | 'truncated'
}

export interface JobList {
  jobs: JobView[]
  /** Empty when the list is complete. */
  missing: MissingMember[]
}

export interface JobProgress {
  id: string
  status: JobStatus
  segmentsDone: number
  segmentsTotal: number
}

export interface GridService {
  /** Validates, persists, starts. Throws GridError ERR_INVALID_ARGUMENT (with `field`) or ERR_UNKNOWN_KIND. */
  submit: (kind: unknown, params: unknown) => Promise<JobView>
  /** Any job of the cluster: this node's store first, then the other members. Null when unknown. */
  get: (id: string, options?: { signal?: AbortSignal }) => Promise<JobView | null>
  /** The cluster's jobs, newest first, without segments (listCluster's `jobs`). */
  list: (options: { limit?: number, status?: JobStatus }) => Promise<JobView[]>
  /**
   * The cluster's jobs from any node: this node's, and (unless the store is shared) every other
   * member's, asked in parallel and merged, newest first, at most `limit` (default 100, 1..1000).
   * `missing` names the members whose jobs could not be included (down, or no answer in time):
   * the list is partial when it is not empty.
   */
  listCluster: (options: { limit?: number, status?: JobStatus }) => Promise<JobList>
  /** Throws GridError ERR_NOT_FOUND. Cancelling a finished job returns it unchanged. */
  cancel: (id: string) => Promise<JobView>
  /**
   * Calls `onProgress` with the current state, then on every change, until the job ends
   * (resolves with the final job) or `signal` aborts. Throws ERR_NOT_FOUND.
   */
  watch: (id: string, onProgress: (p: JobProgress) => void, signal: AbortSignal) => Promise<JobView>
}

/** An error meant for API callers: `code` maps to a gRPC status / HTTP status. */
export type GridErrorCode = 'ERR_INVALID_ARGUMENT' | 'ERR_UNKNOWN_KIND' | 'ERR_NOT_FOUND' | 'ERR_UNAVAILABLE' | 'ERR_OVERLOADED' | 'ERR_TOO_LARGE'

export class GridError extends VoikeError {
  declare readonly code: GridErrorCode
  constructor (code: GridErrorCode, message: string, field?: string, options?: { cause?: unknown }) {
    super(code, message, { field, cause: options?.cause })
    this.name = 'GridError'
  }
}

/** A job in one of these has ended (the one definition lives with the records, store/types.ts). */
export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = TERMINAL_JOB_STATUSES

/** What the composition root holds of a scheduler (createScheduler, scheduler.ts). */
export interface SchedulerStats {
  /** Jobs in memory (starting, queued, active, ending, retained). */
  jobs: number
  active: number
  queued: number
  /** Tasks dispatched and not answered, all peers. */
  inFlight: number
  inFlightByPeer: Record<string, number>
  /** Segment updates waiting to be written. */
  pendingSegmentUpdates: number
  /** Members seen dead and tracked as takeover candidates (at most MAX_DEAD_TRACKED). */
  deadTracked: number
}

export interface Scheduler {
  /** The actor to spawn as SCHEDULER_ACTOR (stateless: a supervisor restart keeps the jobs). */
  factory: () => Actor
  grid: GridService
  /** Reloads this coordinator's unfinished jobs from the store and continues them. Call once, after spawn. */
  resume: () => Promise<void>
  /**
   * Stops placing and ticking, writes pending changes, ends watches with ERR_UNAVAILABLE and
   * unregisters the metrics. Unfinished jobs stay in the store for a later resume; tasks out on
   * workers are left to finish. The node stops the actor itself. Idempotent.
   */
  close: () => Promise<void>
  stats: () => SchedulerStats
  /**
   * The mesh could not deliver a message to `peerId` (its `onSendFailed`): that peer's tasks in
   * flight are placed elsewhere at once, not counted as attempts unless the peer then turns dead
   * or leaves, and it gets no new task for limits.unreachableHoldMs. Its late answers are still
   * accepted. This node's own id and unknown peers are ignored.
   */
  peerUnreachable: (peerId: string) => void
}
