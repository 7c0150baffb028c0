/**
 * TEST-ONLY job kind `hold`: its segments block on their workers until the test releases them
 * (task.ts), so fault tests act on work that is provably in flight. Registered only by a node
 * started with VOIKE_TEST_KINDS=hold (node/kinds-for-tests.ts), which says so loudly at start.
 *
 * Parameters `{ token, segments, maxHoldMs? }`: `token` ([a-z0-9-]{1,64}) names the job's files in
 * the workers' hold directory; 1 ≤ segments ≤ 64; maxHoldMs (default 300 000, at most 600 000)
 * bounds each hold. Segment i's value is i·i + 1; the result is `{ token, segments, sum }`.
 */
import { GridError } from '../../scheduler/api.js'
import type { JobKind } from '../../scheduler/kinds.js'
import { HOLD_TASK_KIND, HOLD_TOKEN_RE, MAX_HOLD_MS, holdValue } from './task.js'

export { HOLD_TASK_KIND }

export interface HoldParams { token: string, segments: number, maxHoldMs: number }
export interface HoldResult { token: string, segments: number, sum: number }

export const HOLD_MAX_SEGMENTS = 64
const DEFAULT_HOLD_MS = 300_000

/** The result a hold job of `segments` segments must end with. */
export function expectedHoldResult (token: string, segments: number): HoldResult {
  let sum = 0
  for (let i = 0; i < segments; i++) sum += holdValue(i)
  return { token, segments, sum }
}

function bad (field: string, message: string): GridError {
  return new GridError('ERR_INVALID_ARGUMENT', `${field}: ${message}`, field)
}

export const holdKind: JobKind<HoldParams, { index: number }> = {
  name: 'hold',
  taskKinds: [HOLD_TASK_KIND],
  deterministic: true,

  validate (raw: unknown): HoldParams {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('params', 'must be an object { token, segments, maxHoldMs? }')
    const p = raw as Record<string, unknown>
    if (typeof p.token !== 'string' || !HOLD_TOKEN_RE.test(p.token)) throw bad('token', `must match ${HOLD_TOKEN_RE.source}`)
    if (typeof p.segments !== 'number' || !Number.isInteger(p.segments) || p.segments < 1 || p.segments > HOLD_MAX_SEGMENTS) throw bad('segments', `must be an integer 1..${HOLD_MAX_SEGMENTS}`)
    const maxHoldMs = p.maxHoldMs ?? DEFAULT_HOLD_MS
    if (typeof maxHoldMs !== 'number' || !Number.isInteger(maxHoldMs) || maxHoldMs < 1 || maxHoldMs > MAX_HOLD_MS) throw bad('maxHoldMs', `must be an integer 1..${MAX_HOLD_MS}`)
    return { token: p.token, segments: p.segments, maxHoldMs }
  },

  split (p: HoldParams): Array<{ index: number }> {
    return Array.from({ length: p.segments }, (_, index) => ({ index }))
  },

  checkDescriptor (raw: unknown): { index: number } {
    const d = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>
    if (typeof d.index !== 'number' || !Number.isInteger(d.index) || d.index < 0 || d.index >= HOLD_MAX_SEGMENTS) throw new Error(`hold segment descriptor: bad index ${JSON.stringify(raw)?.slice(0, 80)}`)
    return { index: d.index }
  },

  describe (d) {
    return { start: d.index, end: d.index + 1 }
  },

  label (d): string {
    return `hold #${d.index}`
  },

  task (seg) {
    return { kind: HOLD_TASK_KIND, payload: { token: seg.params.token, index: seg.index, maxHoldMs: seg.params.maxHoldMs } }
  },

  checkValue (seg, value: unknown): number {
    if (value !== holdValue(seg.index)) throw new Error(`hold segment value: expected ${holdValue(seg.index)}, got ${JSON.stringify(value)?.slice(0, 40)}`)
    return value
  },

  combine (job, values: unknown[]): HoldResult {
    return { token: job.params.token, segments: job.segments, sum: (values as number[]).reduce((s, v) => s + v, 0) }
  }
}
