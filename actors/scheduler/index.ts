/**
 * The grid scheduler: accepts jobs on any node, splits them into segments, places them on the
 * members' worker actors and combines the results. The contract node/ uses is api.ts; the
 * plug-in seam for job kinds is kinds.ts (kinds themselves live in actors/kinds/).
 */
export { createScheduler, SCHEDULER_ACTOR, SCHEDULER_SPAWN_OPTIONS, WORKER_ACTOR, JOB_ID_RE, RESUME_SEQ_MARGIN, MAX_DEAD_TRACKED } from './scheduler.js'
export type { SchedulerDeps } from './scheduler.js'
export * from './api.js'
export { LIMITS, resolveLimits } from './limits.js'
export type { SchedulerLimits } from './limits.js'
export { createKindRegistry, checkTaskKinds, fatalReason, resolveKind, segmentTimeoutMs, valuesEqual, ESTIMATE_TIMEOUT_FACTOR } from './kinds.js'
export type { JobKind, JobContext, SegmentContext, KindRegistry } from './kinds.js'
export { firstValidWins } from './policy.js'
export type { ResultPolicy, Decision, Answer, AnswerContext } from './policy.js'
export { baseCredits, effectiveCredits, placeTasks, freeCredits, MAX_PENALTY_LEVEL } from './placement.js'
export type { CreditPolicy, PeerLoad, Placement, BusyState } from './placement.js'
export { registerSchedulerMetrics, JOB_DURATION_BUCKETS_S } from './metrics.js'
export type { SchedulerMetrics, TaskOutcome } from './metrics.js'
export { SchedulerError, SchedulerErrorCode } from './errors.js'
