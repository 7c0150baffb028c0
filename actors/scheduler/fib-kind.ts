/**
 * The `fib` job kind (contract: "The `fib` job"): parameters { n, segments }; segments cut so
 * each costs about the same; each segment is a worker `fib-segment` task; the result is
 * { n, digits, sha256, sumMod61 }. The arithmetic lives with the worker (tasks/fib.ts).
 */
import { GridError } from '../../node/grid-api.js'
import { combineFib, P61, splitFib, validateFibParams, type FibResult, type FibSegmentResult } from '../worker/tasks/fib.js'
import type { JobKind, SegmentSpan } from './kinds.js'

export interface FibParams {
  n: number
  segments: number
}

/** The worker task kind that runs one segment. */
export const FIB_TASK_KIND = 'fib-segment'

const SUM_RE = /^\d{1,19}$/
const SHA256_RE = /^[0-9a-f]{64}$/

export const fibKind: JobKind<FibParams> = {
  name: 'fib',

  validate (params: unknown): FibParams {
    if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params))) {
      throw new GridError('ERR_INVALID_ARGUMENT', 'params: must be an object { n, segments }', 'params')
    }
    try {
      return validateFibParams(params)
    } catch (err) {
      const e = err as { code?: unknown, field?: unknown, message?: string }
      if (e?.code === 'ERR_INVALID_ARGUMENT') {
        throw new GridError('ERR_INVALID_ARGUMENT', String(e.message), typeof e.field === 'string' ? e.field : 'params')
      }
      throw err
    }
  },

  split (p: FibParams): SegmentSpan[] {
    return splitFib(p.n, p.segments)
  },

  task (_p: FibParams, span: SegmentSpan, _index: number, isLast: boolean) {
    return { kind: FIB_TASK_KIND, payload: { start: span.start, end: span.end, last: isLast } }
  },

  checkValue (_p: FibParams, _span: SegmentSpan, _index: number, isLast: boolean, value: unknown): FibSegmentResult {
    if (typeof value !== 'object' || value === null) throw new Error('fib segment value: not an object')
    const v = value as Record<string, unknown>
    const sum = v.sumMod61
    if (typeof sum !== 'string' || !SUM_RE.test(sum) || BigInt(sum) >= P61) throw new Error('fib segment value: sumMod61 is not a residue mod 2^61-1')
    if (!isLast) return { sumMod61: sum }
    const { digits, sha256 } = v
    if (typeof digits !== 'number' || !Number.isInteger(digits) || digits < 1) throw new Error('fib segment value: digits must be a positive integer')
    if (typeof sha256 !== 'string' || !SHA256_RE.test(sha256)) throw new Error('fib segment value: sha256 must be 64 hex digits')
    return { sumMod61: sum, digits, sha256 }
  },

  combine (p: FibParams, values: unknown[]): FibResult {
    return combineFib(p.n, values as FibSegmentResult[])
  }
}
