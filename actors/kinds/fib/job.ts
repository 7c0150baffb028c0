/**
 * The `fib` job kind (contract: "The `fib` job"): parameters { n, segments }; segments cut so
 * each costs about the same; each segment is a worker `fib-segment` task; the result is
 * { n, digits, sha256, sumMod61 }. The arithmetic lives with the worker (tasks/fib.ts).
 */
import { GridError } from '../../scheduler/api.js'
import { combineFib, P61, splitFib, validateFibParams, type FibResult, type FibSegmentResult } from './arith.js'
import type { JobKind, SegmentSpan } from '../../scheduler/kinds.js'

export interface FibParams {
  n: number
  segments: number
}

/** The worker task kind that runs one segment. */
export const FIB_TASK_KIND = 'fib-segment'

/**
 * Cost model of a fib segment [s, e) on one thread, in ms: step k costs one big-integer addition
 * of F(k) (~0.694·k bits) plus its residue, so the cost grows with k. Measured on this project's
 * 2-core AMD EPYC machines (Node 20): [0, 300000) takes 600 ms, i.e. ≈ 2k / 1.5e8 ms per step
 * below K_LARGE. Beyond K_LARGE (F(k) over ~128 KiB, V8's regular-object limit, so every addition
 * allocates a large object) a step costs ≈ 0.045 + 5.6e-8·k ms: measured 0.135 ms at k = 1.6M,
 * 0.26 at 4M, 0.54 at 8M, 0.61 at 10M, about 5× the quadratic model. The constants below round
 * up. fib(10^7) in one segment: ≈ 56 min estimated (≈ 52 min measured).
 */
const K_LARGE = 1_500_000
const SMALL_MS_PER_K2 = 1 / 1.5e8
const LARGE_MS_PER_STEP = 0.05
const LARGE_MS_PER_K = 6e-8

/** Estimated ms of the steps [s, e) (see the cost model above). */
export function fibSegmentEstimateMs (s: number, e: number): number {
  let ms = 0
  const smallEnd = Math.min(e, K_LARGE)
  if (s < smallEnd) ms += (smallEnd * smallEnd - s * s) * SMALL_MS_PER_K2
  const largeStart = Math.max(s, K_LARGE)
  if (largeStart < e) ms += (e - largeStart) * LARGE_MS_PER_STEP + (e * e - largeStart * largeStart) * LARGE_MS_PER_K / 2
  return ms
}

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
  },

  estimateMs (_p: FibParams, span: SegmentSpan): number {
    return fibSegmentEstimateMs(span.start, span.end)
  }
}
