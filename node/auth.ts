/**
 * The API-key check, one for every API (HTTP and gRPC). When the node has a key (`--api-key`,
 * VOIKE_API_KEY), every call but `/health` and `/metrics` must carry it, as the header (HTTP) or
 * metadata (gRPC) `x-voike-api-key: KEY`, or `authorization: Bearer KEY` (the scheme in any case).
 * Every credential given must be the key: one right and one wrong is a wrong key. Any other
 * authorization scheme is a wrong key. The comparison takes the same time whatever the key's
 * content.
 */
import { timingSafeEqual } from 'node:crypto'

/** The header (HTTP) and metadata key (gRPC) carrying the key. */
export const API_KEY_HEADER = 'x-voike-api-key'
/** The standard header, `Bearer KEY`. */
export const AUTHORIZATION_HEADER = 'authorization'
/** What a caller without the right key is told. */
export const UNAUTHENTICATED_MESSAGE = 'unauthenticated: missing or wrong API key (send x-voike-api-key: KEY or authorization: Bearer KEY)'

const BEARER_RE = /^bearer +(\S+) *$/i

/** True when no key is configured, or `given` is exactly the configured key. */
export function keyMatches (expected: string | undefined, given: unknown): boolean {
  if (expected === undefined) return true
  if (typeof given !== 'string') return false
  const a = Buffer.from(expected)
  const b = Buffer.from(given)
  return a.length === b.length && timingSafeEqual(a, b)
}

/**
 * Whether a call may proceed: `header(name)` reads a header or metadata entry (a string, an
 * array of them, or undefined). No key configured: always.
 */
export function authorized (expected: string | undefined, header: (name: string) => unknown): boolean {
  if (expected === undefined) return true
  const given: unknown[] = []
  for (const v of values(header(API_KEY_HEADER))) given.push(v)
  for (const v of values(header(AUTHORIZATION_HEADER))) given.push(typeof v === 'string' ? BEARER_RE.exec(v)?.[1] : undefined)
  if (given.length === 0) return false
  let ok = true
  // No early exit: the time taken does not say which credential was wrong.
  for (const g of given) ok = keyMatches(expected, g) && ok
  return ok
}

function values (v: unknown): unknown[] {
  if (v === undefined) return []
  return Array.isArray(v) ? v : [v]
}
