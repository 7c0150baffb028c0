/**
 * The `fib` kind, both sides: `fibKind` (the job side, given to the scheduler) and the default
 * export of task.ts (the worker side, given to the pool). See ARCHITECTURE.md, "job kinds".
 */
export { fibKind, fibSegmentEstimateMs, FIB_TASK_KIND } from './job.js'
export type { FibParams, FibSpan } from './job.js'
export { default as fibTasks } from './task.js'
export { fibInProcess, combineFib, splitFib, validateFibParams, FIB_MAX_N, FIB_MAX_SEGMENTS } from './arith.js'
export type { FibResult, FibSegmentResult } from './arith.js'
