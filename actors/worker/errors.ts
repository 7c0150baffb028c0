/**
 * Errors of the worker pool and its task kinds. `code` is stable and meant for programs (it
 * crosses the wire inside `results` messages); `message` is for humans.
 */
import { VoikeError } from '../../config/errors.js'

export class WorkerError extends VoikeError {
  /** `field`, for ERR_INVALID_ARGUMENT: the parameter at fault (`n`, `segments`, `start`, ...). */
  constructor (code: string, message: string, options?: { field?: string, cause?: unknown }) {
    super(code, message, options)
    this.name = 'WorkerError'
  }
}

/** Codes used by this folder. Other codes may come back from task kinds added later. */
export const WorkerErrorCode = {
  /** A task's parameters are wrong; `field` names the parameter. */
  INVALID_ARGUMENT: 'ERR_INVALID_ARGUMENT',
  /** No task kind of that name is registered in tasks/index.ts. */
  UNKNOWN_TASK_KIND: 'ERR_UNKNOWN_TASK_KIND',
  /** The pool's bounded queue is full: the caller should place the work elsewhere. */
  WORKER_BUSY: 'ERR_WORKER_BUSY',
  /** The task was cancelled before it finished. */
  CANCELLED: 'ERR_CANCELLED',
  /** The task did not finish within its timeoutMs. */
  TASK_TIMEOUT: 'ERR_TASK_TIMEOUT',
  /** The task threw something without a code. */
  TASK_FAILED: 'ERR_TASK_FAILED',
  /** The thread running the task died (crash, out of memory, terminated). */
  WORKER_CRASHED: 'ERR_WORKER_CRASHED',
  /** An option given to a factory of this folder is unusable; `field` names it. */
  INVALID_OPTION: 'ERR_INVALID_OPTION',
  /** The pool is closed. */
  POOL_CLOSED: 'ERR_POOL_CLOSED'
} as const

export function invalidArgument (field: string, message: string): WorkerError {
  return new WorkerError(WorkerErrorCode.INVALID_ARGUMENT, `${field}: ${message}`, { field })
}

/** The `{ code, message }` form of any thrown value, as it travels in results. */
export function toErrorInfo (err: unknown): { code: string, message: string } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    return { code: typeof code === 'string' ? code : WorkerErrorCode.TASK_FAILED, message: err.message }
  }
  return { code: WorkerErrorCode.TASK_FAILED, message: String(err) }
}
