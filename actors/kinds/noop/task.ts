/**
 * The `noop` task kind: returns its payload unchanged (undefined becomes null). It measures the
 * pool's per-task overhead and lets tests check ordering and batching; it does no work.
 */
export function noop (payload: unknown): unknown {
  return payload ?? null
}
