/**
 * The scheduler's limits: one table of default, min and max per limit (LIMITS), documented in
 * SchedulerLimits, and the fixed bounds that are not options. resolveLimits checks what the node
 * gives against the table (config/options.ts) with errors naming `limits.<name>`.
 */
import { resolveInts, type IntTable } from '../../config/options.js'
import { invalidOption } from './errors.js'

export interface SchedulerLimits {
  /** Dispatches of one segment that may fail (error, timeout, lost node) before the job fails. Default 5, 1..100. */
  maxAttempts?: number
  /**
   * A dispatched segment not answered within this is re-placed (and the worker is told the same
   * timeout); a kind's cost estimate may raise it for a long segment (kinds.ts). Default 600000
   * (10 min), 100..86400000.
   */
  segmentTimeoutMs?: number
  /** Most a cost estimate raises a segment's timeout to. Default 21600000 (6 h), 100..86400000. */
  maxSegmentTimeoutMs?: number
  /** Tasks in flight per core of a member. Default 2, 1..1024. */
  creditsPerCore?: number
  /** Upper bound of tasks in flight on one member. Default 64, 1..65536. */
  maxCreditsPerPeer?: number
  /** Jobs whose segments are placed at the same time; later ones wait, queued. Default 64, 1..10000. */
  maxActiveJobs?: number
  /** Jobs waiting for an active slot; beyond, submit fails with ERR_OVERLOADED. Default 1024, 0..1000000. */
  maxQueuedJobs?: number
  /** Segment changes are written to the store in batches this often. Default 20, 0..10000. */
  storeFlushMs?: number
  /** Bound of an ask to another node's scheduler (get, cancel). Default 3000, 1..600000. */
  remoteAskTimeoutMs?: number
  /** Period of the housekeeping tick (timeouts, busy penalties, holds). Default 100, 10..60000. */
  tickMs?: number
  /** A peer that answered ERR_WORKER_BUSY has its credits halved for this long. Default 1000, 0..600000. */
  busyPenaltyMs?: number
  /** ... and gets no new task at all for this long. Default 50, 0..60000. */
  busyHoldMs?: number
  /** A peer whose send failed (unreachable, queue full) gets no task for this long. Default 1000, 0..600000. */
  unreachableHoldMs?: number
  /** ERR_WORKER_BUSY answers of one segment not counted as attempts; later ones count. Default 1000, 0..1000000. */
  maxBusyRetries?: number
  /**
   * Re-placements of one segment off a suspect or unreachable peer not counted as attempts (yet:
   * the attempt counts if that peer then turns dead or leaves); later ones count at once.
   * Default 100, 0..1000000.
   */
  maxLostRetries?: number
  /**
   * The jobs of a member dead this long (or at once when it left) are taken over by the lowest
   * alive member, through a shared store. Default 60000, 0..86400000.
   */
  takeoverAfterMs?: number
  /**
   * get() of a job running on another alive coordinator asks it for the live state for at most
   * this long, then answers the stored copy. Default 1000, 1..600000.
   */
  freshReadTimeoutMs?: number
  /** Concurrent watch() calls per job. Default 1024, 1..100000. */
  maxWatchersPerJob?: number
  /** Ended jobs kept in memory (older ones are read from the store). Default 256, 0..100000. */
  maxRetainedJobs?: number
  /** watch() of a job coordinated elsewhere polls this often. Default 250, 10..60000. */
  watchPollMs?: number
  /** ... and gives up (ERR_UNAVAILABLE) after this long without finding the job. Default 60000, 100..3600000. */
  watchUnavailableMs?: number
}

export type Limits = Required<SchedulerLimits>

export const LIMITS: IntTable<keyof Limits> = {
  maxAttempts: { default: 5, min: 1, max: 100 },
  segmentTimeoutMs: { default: 600_000, min: 100, max: 86_400_000 },
  maxSegmentTimeoutMs: { default: 21_600_000, min: 100, max: 86_400_000 },
  creditsPerCore: { default: 2, min: 1, max: 1024 },
  maxCreditsPerPeer: { default: 64, min: 1, max: 65_536 },
  maxActiveJobs: { default: 64, min: 1, max: 10_000 },
  maxQueuedJobs: { default: 1024, min: 0, max: 1_000_000 },
  storeFlushMs: { default: 20, min: 0, max: 10_000 },
  remoteAskTimeoutMs: { default: 3000, min: 1, max: 600_000 },
  tickMs: { default: 100, min: 10, max: 60_000 },
  busyPenaltyMs: { default: 1000, min: 0, max: 600_000 },
  busyHoldMs: { default: 50, min: 0, max: 60_000 },
  unreachableHoldMs: { default: 1000, min: 0, max: 600_000 },
  maxBusyRetries: { default: 1000, min: 0, max: 1_000_000 },
  maxLostRetries: { default: 100, min: 0, max: 1_000_000 },
  takeoverAfterMs: { default: 60_000, min: 0, max: 86_400_000 },
  freshReadTimeoutMs: { default: 1000, min: 1, max: 600_000 },
  maxWatchersPerJob: { default: 1024, min: 1, max: 100_000 },
  maxRetainedJobs: { default: 256, min: 0, max: 100_000 },
  watchPollMs: { default: 250, min: 10, max: 60_000 },
  watchUnavailableMs: { default: 60_000, min: 100, max: 3_600_000 }
}

/** The limits with every default filled in; unknown or out-of-range ones throw ERR_INVALID_OPTION. */
export function resolveLimits (given: SchedulerLimits | undefined): Limits {
  return resolveInts(LIMITS, given, invalidOption, { strict: true, prefix: 'limits.' })
}

/** Failed store writes of one batch retried before it is dropped (logged). */
export const MAX_FLUSH_RETRIES = 10
/** Writes of a job's end tried before giving up (then the job ends in memory only, logged). */
export const END_WRITE_ATTEMPTS = 4
/** Store reads in parallel while listing jobs. */
export const LIST_CONCURRENCY = 8
/**
 * A resumed or taken-over segment continues its seq this far above the stored value: segment
 * writes are coalesced (storeFlushMs), so a crash may lose the record of the last dispatches.
 */
export const RESUME_SEQ_MARGIN = 1024
/**
 * Dead members tracked as takeover candidates. Members forgotten by the membership are dropped
 * after 2 × takeoverAfterMs (on nodes that would not claim), and this bounds the rest (churn).
 */
export const MAX_DEAD_TRACKED = 1024
/** Error codes that fail the job at once: running the same task again gives the same error. */
export const FATAL_TASK_CODES: ReadonlySet<string> = new Set(['ERR_INVALID_ARGUMENT'])
