/**
 * The grid scheduler: accepts jobs on any node, splits them into segments, places them on the
 * members' worker actors and combines the results. See scheduler.ts.
 */
export { createScheduler, SCHEDULER_ACTOR, SCHEDULER_SPAWN_OPTIONS, WORKER_ACTOR, JOB_ID_RE } from './scheduler.js'
export type { Scheduler, SchedulerDeps, SchedulerLimits, SchedulerStats } from './scheduler.js'
export { createKindRegistry, resolveKind, segmentTimeoutMs, DEFAULT_JOB_KINDS, ESTIMATE_TIMEOUT_FACTOR } from './kinds.js'
export type { JobKind, KindRegistry, SegmentSpan } from './kinds.js'
export { fibKind, fibSegmentEstimateMs, FIB_TASK_KIND } from '../kinds/fib/job.js'
export type { FibParams } from '../kinds/fib/job.js'
export { baseCredits, effectiveCredits, placeTasks, freeCredits, MAX_PENALTY_LEVEL } from './placement.js'
export type { CreditPolicy, PeerLoad, Placement, BusyState } from './placement.js'
export { registerSchedulerMetrics, JOB_DURATION_BUCKETS_S } from './metrics.js'
export type { SchedulerMetrics, TaskOutcome } from './metrics.js'
export { SchedulerError, SchedulerErrorCode } from './errors.js'
