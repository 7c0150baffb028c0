/**
 * The API-key check, one for every API (HTTP and gRPC). When the node has a key (`--api-key`,
 * VOIKE_API_KEY), every call but `/health` and `/metrics` must carry it (header or metadata
 * `x-voike-api-key`); the comparison takes the same time whatever the key's content.
 */
import { timingSafeEqual } from 'node:crypto'

/** The header (HTTP) and metadata key (gRPC) carrying the key. */
export const API_KEY_HEADER = 'x-voike-api-key'

/** True when no key is configured, or `given` is exactly the configured key. */
export function keyMatches (expected: string | undefined, given: unknown): boolean {
  if (expected === undefined) return true
  if (typeof given !== 'string') return false
  const a = Buffer.from(expected)
  const b = Buffer.from(given)
  return a.length === b.length && timingSafeEqual(a, b)
}
