/**
 * The split-Fibonacci job's arithmetic (contract: "The `fib` job"). Pure: no I/O but node:crypto.
 *
 * F(0) = 0, F(1) = 1. The range [0, n) is cut into segments [s, e); a segment gets F(s), F(s+1)
 * by fast doubling, then steps k = s … e-1 with big-integer additions (the stepping is the
 * workload the grid distributes, so it is deliberately not shortcut), adding F(k) mod p,
 * p = 2^61 - 1, into a partial sum. The last segment ends holding F(n) and returns only its digit
 * count and SHA-256, so huge numbers never cross the wire.
 */
import { createHash } from 'node:crypto'
import { describeValue } from '../../../config/describe.js'
import { invalidArgument } from '../../worker/errors.js'

/** The contract's bounds. */
export const FIB_MAX_N = 10_000_000
export const FIB_MAX_SEGMENTS = 4096

/** p = 2^61 - 1, the modulus of `sumMod61`. */
export const P61 = (1n << 61n) - 1n

export interface FibSegmentParams {
  /** First index of the segment (inclusive). */
  start: number
  /** End of the segment (exclusive); the segment ends holding F(end). */
  end: number
  /** The last segment returns `digits` and `sha256` of F(end). */
  last: boolean
}

export interface FibSegmentResult {
  /** (F(start) + … + F(end-1)) mod p, in decimal. */
  sumMod61: string
  /** Only when `last`: the number of decimal digits of F(end). */
  digits?: number
  /** Only when `last`: hex SHA-256 of F(end)'s decimal string. */
  sha256?: string
}

export interface FibResult {
  n: number
  digits: number
  sha256: string
  sumMod61: string
}

/**
 * [F(k), F(k+1)] by doubling on the pair (F(j), L(j)), L the Lucas numbers:
 *   F(2j) = F(j)·L(j),  L(2j) = L(j)² − 2·(−1)^j,
 *   F(2j+1) = (F(2j) + L(2j)) / 2,  L(2j+1) = (5·F(2j) + L(2j)) / 2,
 * and at the end F(k+1) = (F(k) + L(k)) / 2. Two big multiplications per bit instead of the three
 * of the F-only doubling (F(j)(2F(j+1) − F(j)), F(j)², F(j+1)²): ~35% less time for the segment
 * starts of a split job, which every segment pays before its stepping.
 */
export function fibPair (k: number): [bigint, bigint] {
  if (!Number.isSafeInteger(k) || k < 0) throw invalidArgument('k', `must be a non-negative safe integer, got ${String(k)}`)
  let f = 0n // F(j)
  let l = 2n // L(j)
  let odd = false // j odd, i.e. (−1)^j = −1
  // Walk the bits of k from the most significant; j doubles (and maybe increments) per bit.
  for (let bit = highestBit(k); bit >= 0; bit--) {
    const f2 = f * l // F(2j)
    const l2 = odd ? l * l + 2n : l * l - 2n // L(2j)
    if (bitSet(k, bit)) {
      // F and L of one index have the same parity, so the sums are even.
      f = (f2 + l2) >> 1n
      l = (5n * f2 + l2) >> 1n
      odd = true
    } else {
      f = f2
      l = l2
      odd = false
    }
  }
  return [f, (f + l) >> 1n]
}

function highestBit (k: number): number {
  let bit = -1
  for (let v = k; v > 0; v = Math.floor(v / 2)) bit++
  return bit
}

// k may exceed 2^31, where the `>>` operator would wrap, so use division.
function bitSet (k: number, bit: number): boolean {
  return Math.floor(k / 2 ** bit) % 2 === 1
}

/*
 * Small arithmetic mod p = 2^61 - 1 without BigInt allocation on the hot path: a residue is held
 * as two Numbers, hi (30 bits) and lo (31 bits), value = hi·2^31 + lo. Since 2^61 ≡ 1 (mod p), a
 * carry out of bit 61 folds back in as +1.
 */
const LO_BASE = 2 ** 31
const HI_BASE = 2 ** 30

function splitResidue (v: bigint): [number, number] {
  const r = v % P61
  return [Number(r >> 31n), Number(r & (2n ** 31n - 1n))]
}

function joinResidue (hi: number, lo: number): bigint {
  return (BigInt(hi) << 31n) + BigInt(lo)
}

/** Runs one segment. Throws ERR_INVALID_ARGUMENT (with `field`) on bad parameters. */
export function fibSegment (params: FibSegmentParams): FibSegmentResult {
  const { start, end, last } = validateSegmentParams(params)
  let [a, b] = fibPair(start) // a = F(k), b = F(k+1)
  let [ah, al] = splitResidue(a) // F(k) mod p
  let [bh, bl] = splitResidue(b) // F(k+1) mod p
  let sh = 0 // partial sum mod p, same representation
  let sl = 0
  for (let k = start; k < end; k++) {
    // sum += F(k) (mod p)
    sl += al
    sh += ah
    if (sl >= LO_BASE) { sl -= LO_BASE; sh++ }
    if (sh >= HI_BASE) { sh -= HI_BASE; sl++; if (sl >= LO_BASE) { sl -= LO_BASE; sh++ } }
    // (F(k), F(k+1)) ← (F(k+1), F(k) + F(k+1)), in big integers and mod p alike.
    const next = a + b
    a = b
    b = next
    let nl = al + bl
    let nh = ah + bh
    if (nl >= LO_BASE) { nl -= LO_BASE; nh++ }
    if (nh >= HI_BASE) { nh -= HI_BASE; nl++; if (nl >= LO_BASE) { nl -= LO_BASE; nh++ } }
    ah = bh; al = bl
    bh = nh; bl = nl
  }
  // hi·2^31 + lo < 2^61 here, but it may equal p itself (p ≡ 0).
  const sum = joinResidue(sh, sl) % P61
  if (!last) return { sumMod61: sum.toString() }
  const decimal = a.toString()
  return {
    sumMod61: sum.toString(),
    digits: decimal.length,
    sha256: createHash('sha256').update(decimal, 'latin1').digest('hex')
  }
}

function validateSegmentParams (p: unknown): FibSegmentParams {
  if (typeof p !== 'object' || p === null) throw invalidArgument('payload', 'must be an object { start, end, last }')
  const { start, end, last } = p as Record<string, unknown>
  if (!isIntInRange(start, 0, FIB_MAX_N)) throw invalidArgument('start', `must be an integer in [0, ${FIB_MAX_N}]`)
  if (!isIntInRange(end, start as number, FIB_MAX_N)) throw invalidArgument('end', `must be an integer in [start, ${FIB_MAX_N}]`)
  if (typeof last !== 'boolean') throw invalidArgument('last', 'must be a boolean')
  return { start: start as number, end: end as number, last }
}

function isIntInRange (v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max
}

/**
 * Cuts [0, n) into `segments` contiguous, non-empty ranges of about equal cost. Step k costs
 * about k (the numbers grow linearly in bits), so the cost up to k grows like k² and boundary i
 * sits near n·sqrt(i/segments). Rounding is clamped so boundaries stay strictly increasing.
 * n = 0 gives the single (empty) segment [0, 0).
 */
export function splitFib (n: number, segments: number): Array<{ start: number, end: number }> {
  validateFibParams({ n, segments })
  if (n === 0) return [{ start: 0, end: 0 }]
  const out: Array<{ start: number, end: number }> = []
  let prev = 0
  for (let i = 1; i <= segments; i++) {
    const ideal = Math.round(n * Math.sqrt(i / segments))
    // Leave at least one index for each later segment, and take at least one for this one.
    const b = Math.min(Math.max(ideal, prev + 1), n - (segments - i))
    out.push({ start: prev, end: b })
    prev = b
  }
  if (prev !== n) throw new Error(`splitFib invariant broken: ends at ${prev}, not ${n}`)
  return out
}

/**
 * Folds the segments' results (in index order) into the job result: partial sums are added mod
 * p; the last segment carries F(n)'s digits and hash. Parts may come off the wire, so they are
 * checked.
 */
export function combineFib (n: number, parts: ReadonlyArray<FibSegmentResult>): FibResult {
  if (parts.length === 0) throw invalidArgument('parts', 'at least one segment result is needed')
  let sum = 0n
  for (let i = 0; i < parts.length; i++) {
    const s = parts[i]?.sumMod61
    if (typeof s !== 'string' || !/^\d{1,19}$/.test(s) || BigInt(s) >= P61) {
      throw invalidArgument(`parts[${i}].sumMod61`, 'must be a decimal residue mod 2^61-1')
    }
    sum = (sum + BigInt(s)) % P61
  }
  const tail = parts[parts.length - 1]
  const digits = tail.digits
  const sha256 = tail.sha256
  if (typeof digits !== 'number' || !Number.isInteger(digits) || digits < 1) {
    throw invalidArgument(`parts[${parts.length - 1}].digits`, 'the last segment must carry a positive integer')
  }
  if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) {
    throw invalidArgument(`parts[${parts.length - 1}].sha256`, 'the last segment must carry a hex SHA-256')
  }
  return { n, digits, sha256, sumMod61: sum.toString() }
}

/** The whole job single-threaded, in this process: the baseline for benchmarks and tests. */
export function fibInProcess (n: number): FibResult {
  validateFibParams({ n, segments: 1 })
  return combineFib(n, [fibSegment({ start: 0, end: n, last: true })])
}

/**
 * Checks a `fib` job's parameters against the contract. Throws ERR_INVALID_ARGUMENT whose
 * `field` is `n` or `segments`.
 */
export function validateFibParams (p: unknown): { n: number, segments: number } {
  const o = (typeof p === 'object' && p !== null ? p : {}) as Record<string, unknown>
  const { n, segments } = o
  if (n === undefined) throw invalidArgument('n', 'is required')
  if (!isIntInRange(n, 0, FIB_MAX_N)) throw invalidArgument('n', `must be an integer with 0 ≤ n ≤ ${FIB_MAX_N}, got ${describe(n)}`)
  if (segments === undefined) throw invalidArgument('segments', 'is required')
  const maxSegments = Math.min(FIB_MAX_SEGMENTS, Math.max(n, 1))
  if (!isIntInRange(segments, 1, maxSegments)) {
    throw invalidArgument('segments', `must be an integer with 1 ≤ segments ≤ ${maxSegments} (≤ 4096 and ≤ max(n, 1)), got ${describe(segments)}`)
  }
  // `+ 0` turns -0 into 0.
  return { n: n + 0, segments }
}

/** Bounded: never recurses into the value (String([[…]]) would, and overflow the stack). */
function describe (v: unknown): string {
  return describeValue(v)
}
