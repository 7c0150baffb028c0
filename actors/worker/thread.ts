/**
 * The Piscina worker entry ("VASM worker" thread). One Piscina task is a *batch* of grid tasks:
 * per-message overhead between threads is the limit for small tasks (contract: ~37k Piscina
 * tasks/s on 2 threads), so the pool sends many small tasks as one Piscina task.
 *
 * Tasks of a batch run in order; one throwing does not fail the batch, it becomes that task's
 * `{ ok: false, error }` result.
 */
import { performance } from 'node:perf_hooks'
import { workerData } from 'piscina'
import { loadTaskModules, type TaskRegistry } from './task-kinds.js'
import { WorkerErrorCode, toErrorInfo } from './errors.js'

export interface BatchTask {
  kind: string
  payload: unknown
}

export type TaskResult =
  | { ok: true, value: unknown, ms: number }
  | { ok: false, error: { code: string, message: string }, ms: number }

/** What the pool passes every thread (Piscina's workerData). */
export interface ThreadData {
  /** URLs of the task modules to load (task-kinds.ts). */
  taskModules: string[]
}

let registry: Promise<TaskRegistry> | undefined

/** The task kinds of this thread, loaded once from the modules the pool named. */
async function taskKinds (): Promise<TaskRegistry> {
  registry ??= loadTaskModules((workerData as ThreadData | undefined)?.taskModules ?? [])
  return await registry
}

export default async function runBatch ({ batch }: { batch: BatchTask[] }): Promise<TaskResult[]> {
  if (!Array.isArray(batch)) throw new TypeError('batch must be an array')
  const kinds = await taskKinds()
  const results: TaskResult[] = new Array(batch.length)
  for (let i = 0; i < batch.length; i++) {
    results[i] = await runOne(kinds, batch[i])
  }
  return results
}

async function runOne (kinds: TaskRegistry, task: BatchTask): Promise<TaskResult> {
  const t0 = performance.now()
  const kind = typeof task?.kind === 'string' ? kinds.get(task.kind) : undefined
  if (kind === undefined) {
    return {
      ok: false,
      error: { code: WorkerErrorCode.UNKNOWN_TASK_KIND, message: `unknown task kind ${JSON.stringify(String(task?.kind).slice(0, 64))}` },
      ms: performance.now() - t0
    }
  }
  try {
    // Await only what is a promise: sync kinds (most) skip a microtask turn per task.
    let value = kind.run(task.payload)
    if (value instanceof Promise) value = await value
    return { ok: true, value, ms: performance.now() - t0 }
  } catch (err) {
    return { ok: false, error: toErrorInfo(err), ms: performance.now() - t0 }
  }
}
