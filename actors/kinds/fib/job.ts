/**
 * The job side of the `fib` kind (contract: "The `fib` job"): parameters { n, segments }; segments
 * are spans [start, end) cut so each costs about the same; each segment is a worker `fib-segment`
 * task (task.ts); the result is { n, digits, sha256, sumMod61 }. The arithmetic is arith.ts.
 */
import { describeValue } from '../../../config/describe.js'
import { GridError } from '../../scheduler/api.js'
import type { JobKind } from '../../scheduler/kinds.js'
import { combineFib, FIB_MAX_N, P61, splitFib, validateFibParams, type FibResult, type FibSegmentResult } from './arith.js'
import { FIB_TASK_KIND } from './task.js'

export interface FibParams {
  n: number
  segments: number
}

export { FIB_TASK_KIND }

/** A fib segment's descriptor: the steps [start, end). */
export interface FibSpan {
  start: number
  end: number
}

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

function isStep (v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= FIB_MAX_N
}

export const fibKind: JobKind<FibParams, FibSpan> = {
  name: 'fib',
  taskKinds: [FIB_TASK_KIND],
  deterministic: true,
  params: ['n', 'segments'],

  validate (params: unknown): FibParams {
    if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params))) {
      throw new GridError('ERR_INVALID_ARGUMENT', 'params: must be an object { n, segments }', 'params')
    }
    try {
      return validateFibParams(params)
    } catch (err) {
      const e = err as { code?: unknown, field?: unknown, message?: string }
      if (e?.code === 'ERR_INVALID_ARGUMENT') {
        throw new GridError('ERR_INVALID_ARGUMENT', String(e.message), typeof e.field === 'string' ? e.field : 'params', { cause: err })
      }
      throw err
    }
  },

  split (p: FibParams): FibSpan[] {
    return splitFib(p.n, p.segments)
  },

  checkDescriptor (raw: unknown): FibSpan {
    const d = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>
    if (!isStep(d.start) || !isStep(d.end) || d.end < d.start) {
      throw new Error(`fib segment descriptor: needs integers 0 ≤ start ≤ end ≤ ${FIB_MAX_N}, got ${describeValue(raw)}`)
    }
    return { start: d.start, end: d.end }
  },

  describe (d: FibSpan) {
    return { start: d.start, end: d.end }
  },

  label (d: FibSpan): string {
    return `[${d.start}, ${d.end})`
  },

  task (seg) {
    return { kind: FIB_TASK_KIND, payload: { start: seg.descriptor.start, end: seg.descriptor.end, last: seg.isLast } }
  },

  checkValue (seg, value: unknown): FibSegmentResult {
    if (typeof value !== 'object' || value === null) throw new Error('fib segment value: not an object')
    const v = value as Record<string, unknown>
    const sum = v.sumMod61
    if (typeof sum !== 'string' || !SUM_RE.test(sum) || BigInt(sum) >= P61) throw new Error('fib segment value: sumMod61 is not a residue mod 2^61-1')
    if (!seg.isLast) return { sumMod61: sum }
    const { digits, sha256 } = v
    if (typeof digits !== 'number' || !Number.isInteger(digits) || digits < 1) throw new Error('fib segment value: digits must be a positive integer')
    if (typeof sha256 !== 'string' || !SHA256_RE.test(sha256)) throw new Error('fib segment value: sha256 must be 64 hex digits')
    return { sumMod61: sum, digits, sha256 }
  },

  combine (job, values: unknown[]): FibResult {
    return combineFib(job.params.n, values as FibSegmentResult[])
  },

  estimateMs (seg): number {
    return fibSegmentEstimateMs(seg.descriptor.start, seg.descriptor.end)
  },

  equal (a: unknown, b: unknown): boolean {
    // Checked values: the same three fields (digits and sha256 only on the last segment).
    const x = a as FibSegmentResult
    const y = b as FibSegmentResult
    return x.sumMod61 === y.sumMod61 && x.digits === y.digits && x.sha256 === y.sha256
  }
}
