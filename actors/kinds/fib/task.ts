/**
 * The worker side of the `fib` job: the `fib-segment` task kind. Payload { start, end, last }:
 * one segment of the split-Fibonacci job (arith.ts); heavy, so never batched.
 */
import type { TaskModule } from '../../worker/task-kinds.js'
import { fibSegment, type FibSegmentParams } from './arith.js'

/** The worker task kind that runs one segment. */
export const FIB_TASK_KIND = 'fib-segment'

const fibTasks: TaskModule = {
  url: import.meta.url,
  // The arithmetic validates the payload itself (it comes off the wire).
  kinds: [{ name: FIB_TASK_KIND, batchable: false, run: (p) => fibSegment(p as FibSegmentParams) }]
}
export default fibTasks
