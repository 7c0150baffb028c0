/**
 * The registry of task kinds, by name. Both sides load it: the worker thread to run a task, the
 * worker actor to reject unknown kinds early and to decide how to batch. A kind is a synchronous
 * or async function of a structured-cloneable payload to a structured-cloneable (and msgpack-
 * encodable) value; it validates its own payload and throws errors with a `code`.
 *
 * To add a kind: write it under tasks/ and add an entry here.
 */
import { fibSegment } from '../../kinds/fib/arith.js'
import { noop } from '../../kinds/noop/task.js'

export interface TaskKind {
  /**
   * True for tiny tasks, which the worker actor packs many to one Piscina task (per-message
   * overhead dominates them). False for heavy ones, sent one per Piscina task so that all
   * threads share the work.
   */
  readonly batchable: boolean
  readonly run: (payload: unknown) => unknown
}

export const taskKinds: ReadonlyMap<string, TaskKind> = new Map<string, TaskKind>([
  ['noop', { batchable: true, run: noop }],
  // Payload { start, end, last }: one segment of the split-Fibonacci job (see fib.ts).
  ['fib-segment', { batchable: false, run: (p) => fibSegment(p as never) }]
])

export function getTaskKind (kind: string): TaskKind | undefined {
  return taskKinds.get(kind)
}
