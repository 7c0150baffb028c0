/**
 * The one error shape of VOIKE. Every folder's errors extend VoikeError, so any caller can branch
 * on `code` (stable, meant for programs), show `message` (for humans), point at `field` (the
 * option, parameter or flag at fault, when there is one) and follow `cause` (the lower-level error
 * it wraps: kept, and written by the logger).
 */
export class VoikeError extends Error {
  readonly code: string
  /** The option, parameter or flag at fault; undefined when the error is not about one input. */
  readonly field: string | undefined

  constructor (code: string, message: string, options?: { field?: string, cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'VoikeError'
    this.code = code
    this.field = options?.field
  }
}

/** A configuration problem. `source` (also `field`) names the flag or environment variable at fault. */
export class ConfigError extends VoikeError {
  declare readonly code: 'ERR_INVALID_CONFIG'
  readonly source: string
  constructor (source: string, message: string) {
    super('ERR_INVALID_CONFIG', `${source}: ${message}`, { field: source })
    this.name = 'ConfigError'
    this.source = source
  }
}

/** Most causes the logger follows (a cycle or a very deep chain must not blow up a log line). */
export const MAX_LOGGED_CAUSES = 4

/** A thrown value as plain JSON for a log record: code, message, field, and its causes. */
export function errorFields (err: unknown, depth = 0): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: String(err) }
  const out: Record<string, unknown> = { message: err.message }
  const { code, field } = err as { code?: unknown, field?: unknown }
  if (code !== undefined) out.code = code
  if (typeof field === 'string') out.field = field
  if (err.cause !== undefined && depth < MAX_LOGGED_CAUSES) out.cause = errorFields(err.cause, depth + 1)
  return out
}
