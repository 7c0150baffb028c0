/**
 * The `noop` task kind: returns its payload unchanged (undefined becomes null). It measures the
 * pool's per-task overhead and lets tests check ordering and batching; it does no work.
 */
import type { TaskModule } from '../../worker/task-kinds.js'

export const NOOP_TASK_KIND = 'noop'

export function noop (payload: unknown): unknown {
  return payload ?? null
}

const noopTasks: TaskModule = {
  url: import.meta.url,
  kinds: [{ name: NOOP_TASK_KIND, batchable: true, run: noop }]
}
export default noopTasks
