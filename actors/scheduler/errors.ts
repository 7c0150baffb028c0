/**
 * Errors of the scheduler itself. API callers get `GridError` (node/grid-api.ts), whose codes map
 * to gRPC / HTTP statuses; `SchedulerError` is for programming and lifecycle errors (bad options,
 * an aborted watch). Programs branch on `code`, never on `message`.
 */
import { VoikeError } from '../../config/errors.js'

export const SchedulerErrorCode = {
  /** createScheduler was given an unusable option; the message names it. */
  INVALID_OPTION: 'ERR_INVALID_OPTION',
  /** A watch was stopped by its AbortSignal. */
  ABORTED: 'ERR_ABORTED'
} as const

export type SchedulerErrorCodeValue = typeof SchedulerErrorCode[keyof typeof SchedulerErrorCode]

export class SchedulerError extends VoikeError {
  declare readonly code: SchedulerErrorCodeValue
  constructor (code: SchedulerErrorCodeValue, message: string, options?: { field?: string, cause?: unknown }) {
    super(code, message, options)
    this.name = 'SchedulerError'
  }
}

export function invalidOption (name: string, why: string): SchedulerError {
  return new SchedulerError(SchedulerErrorCode.INVALID_OPTION, `createScheduler: ${name} ${why}`, { field: name })
}
