/**
 * Errors of the BlobGrid core (codec, placement, manifest, chunk store). Programs branch on
 * `code`, never on `message`; messages name the field or value at fault.
 */
export const BlobErrorCode = {
  /** A factory or function was given an unusable option; the message names it. */
  INVALID_OPTION: 'ERR_INVALID_OPTION',
  /** A chunk or piece hash is not 64 lowercase hex digits. */
  INVALID_HASH: 'ERR_INVALID_HASH',
  /** Reed-Solomon: shards of different sizes, or the wrong number of shards. */
  SHARD_SHAPE: 'ERR_SHARD_SHAPE',
  /** Reed-Solomon: fewer than k shards are present, the data cannot be rebuilt. */
  TOO_FEW_SHARDS: 'ERR_TOO_FEW_SHARDS',
  /** A matrix that must be invertible is singular (a bug: Vandermonde rows are independent). */
  SINGULAR_MATRIX: 'ERR_SINGULAR_MATRIX',
  /** A manifest failed validation; the message names the field (`chunks[3].sha256`). */
  MANIFEST_INVALID: 'ERR_MANIFEST_INVALID',
  /** An `x-voike-redundancy` value (or redundancy object) is malformed or out of bounds. */
  REDUNDANCY_INVALID: 'ERR_REDUNDANCY_INVALID',
  /** A blob or chunk is larger than the limits allow. */
  TOO_LARGE: 'ERR_TOO_LARGE',
  /** The chunk store has no chunk with this hash. */
  CHUNK_NOT_FOUND: 'ERR_CHUNK_NOT_FOUND',
  /** A stored chunk's bytes no longer hash to its name; it was quarantined. */
  CHUNK_CORRUPT: 'ERR_CHUNK_CORRUPT',
  /** Storing the chunk would exceed the store's quota; nothing was written. */
  QUOTA_FULL: 'ERR_QUOTA_FULL',
  /** The chunk store was closed. */
  STORE_CLOSED: 'ERR_STORE_CLOSED',
  /** An operation was stopped by its AbortSignal. */
  ABORTED: 'ERR_ABORTED'
} as const

export type BlobErrorCodeValue = typeof BlobErrorCode[keyof typeof BlobErrorCode]

export class BlobError extends Error {
  readonly code: BlobErrorCodeValue
  constructor (code: BlobErrorCodeValue, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'BlobError'
    this.code = code
  }
}

export function invalidOption (where: string, name: string, why: string): BlobError {
  return new BlobError(BlobErrorCode.INVALID_OPTION, `${where}: ${name} ${why}`)
}

/** True for an integer in [min, max]. */
export function isIntIn (v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max
}

const HASH_RE = /^[0-9a-f]{64}$/

/** A SHA-256 hex digest as used for every chunk and piece name: 64 lowercase hex digits. */
export function isSha256Hex (v: unknown): v is string {
  return typeof v === 'string' && HASH_RE.test(v)
}
