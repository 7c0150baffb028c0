/**
 * Errors raised by the store. Every failure carries a stable `code` so callers (the scheduler,
 * the API layer) can branch on it without parsing messages; the message names the operation and,
 * where useful, the record that failed.
 */
import { VoikeError } from '../config/errors.js'

export type StoreErrorCode =
  /** An option passed to `createStore` is missing or malformed (message names the option). */
  | 'ERR_INVALID_OPTION'
  /** A record, patch or argument passed to a store method breaks an invariant. */
  | 'ERR_INVALID_ARGUMENT'
  /** The database could not be opened or reached. */
  | 'ERR_STORE_OPEN'
  /** Applying schema migrations failed (the store is not usable). */
  | 'ERR_STORE_MIGRATE'
  /** A query failed for a reason other than the more specific codes below. */
  | 'ERR_STORE_QUERY'
  /** An update named a member, job or segment that does not exist. */
  | 'ERR_STORE_NOT_FOUND'
  /** An insert collided with an existing primary key (e.g. a job id reused). */
  | 'ERR_STORE_CONFLICT'
  /** The store was used after `close()`. */
  | 'ERR_STORE_CLOSED'

export class StoreError extends VoikeError {
  declare readonly code: StoreErrorCode

  constructor (code: StoreErrorCode, message: string, options?: { field?: string, cause?: unknown }) {
    super(code, message, options)
    this.name = 'StoreError'
  }
}

/** The underlying driver's message, for wrapping into a StoreError. */
export function causeMessage (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
