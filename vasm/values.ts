/**
 * Values and arithmetic shared by the interpreter and the compiled code, so the two engines can
 * only differ in control flow and fuel bookkeeping (which the differential tests compare).
 *
 * A value is a number when |v| ≤ 2^53 - 1 and a bigint otherwise: one canonical form per
 * integer, so `===` is exact equality and `<` compares exactly across the two types (JS compares
 * number with bigint by value). Number results are exact: every fast path checks that the
 * double result is a safe integer, which implies it was not rounded (|a ± b| and |a · b| round
 * monotonically, so a rounded result would be ≥ 2^53), and falls back to bigint otherwise.
 * -0 never appears (results add 0).
 *
 * Fuel (vasm/README.md "Fuel"): W(v), the size class, is the smallest power of two 2^k with
 * |v| < 2^(64·2^k), in 64-bit words (1 for every number). It is found by comparing against the
 * thresholds 2^(64·2^k), which costs O(1) per comparison, not O(size).
 */

import assert from 'node:assert'

export type Val = number | bigint

export const MAX_SAFE = Number.MAX_SAFE_INTEGER
const MAX_SAFE_BIG = BigInt(MAX_SAFE)
// A constant, so the comparisons below do not negate (allocate) a bigint on every call.
const MIN_SAFE_BIG = -MAX_SAFE_BIG

/** Per-run integer limit: results with |v| ≥ 2^maxBits are "integer too large". */
export interface IntLimit {
  readonly maxBits: number
  readonly lim: bigint
  readonly nlim: bigint
}

const limitCache = new Map<number, IntLimit>()

export function intLimit (maxBits: number): IntLimit {
  let l = limitCache.get(maxBits)
  if (l === undefined) {
    const lim = 1n << BigInt(maxBits)
    l = Object.freeze({ maxBits, lim, nlim: -lim })
    if (limitCache.size > 16) limitCache.clear()
    limitCache.set(maxBits, l)
  }
  return l
}

export function toVal (v: bigint): Val {
  return v <= MAX_SAFE_BIG && v >= MIN_SAFE_BIG ? Number(v) : v
}

export function toBig (v: Val): bigint {
  return typeof v === 'number' ? BigInt(v) : v
}

/** A bigint result in canonical form, or undefined when it breaks the limit. */
function fit (r: bigint, L: IntLimit): Val | undefined {
  if (r <= MAX_SAFE_BIG && r >= MIN_SAFE_BIG) return Number(r)
  if (r >= L.lim || r <= L.nlim) return undefined
  return r
}

// ---- size classes ------------------------------------------------------------------------------

/** Highest class: values are below 2^(2^24) (maxBits ≤ 2^24 = 64·2^18). */
const MAX_CLASS = 18
const POS: bigint[] = []
const NEG: bigint[] = []

function threshold (k: number): void {
  // Created on first use: memory follows the largest value seen, not the largest possible.
  for (let i = POS.length; i <= k; i++) {
    POS.push(1n << BigInt(64 * 2 ** i))
    NEG.push(-POS[i])
  }
}
threshold(1)

/** 2^k for every class k (a table: `2 ** k` is a slow floating-point pow in optimised code). */
const POW2 = Array.from({ length: MAX_CLASS + 2 }, (_, k) => 2 ** k)

/**
 * The class last found. A search starts there and walks up or down: the values of one loop's
 * registers mostly share a class, so a class usually costs two comparisons (one for the sign)
 * instead of a binary search. The result is exact wherever the walk starts; only speed depends
 * on the hint.
 */
let hint = 0

function bigClass (x: bigint): number {
  let k = hint
  if (x >= 0n) {
    if (x < POS[k]) {
      while (k > 0 && x < POS[k - 1]) k--
    } else {
      do { k++; if (k >= POS.length) threshold(k) } while (x >= POS[k])
    }
  } else if (x > NEG[k]) {
    while (k > 0 && x > NEG[k - 1]) k--
  } else {
    do { k++; if (k >= POS.length) threshold(k) } while (x <= NEG[k])
  }
  // |x| < 2^maxBits ≤ 2^(2^24) = the threshold of MAX_CLASS, so the walk stops there.
  assert(k <= MAX_CLASS, 'vasm: integer beyond the largest size class')
  hint = k
  return k
}

/** k with W(x) = 2^k: the smallest class whose threshold exceeds |x|. */
export function sizeClass (x: Val): number {
  return typeof x === 'number' ? 0 : bigClass(x)
}

/** W(x) in words. */
export function words (x: Val): number {
  return typeof x === 'number' ? 1 : POW2[bigClass(x)]
}

/** Cost of a `linear` instruction: W of its largest operand. */
export function costLin (a: Val, b: Val): number {
  if (typeof a === 'number') return typeof b === 'number' ? 1 : POW2[bigClass(b)]
  const ka = bigClass(a)
  if (typeof b === 'number' || (b < POS[ka] && b > NEG[ka])) return POW2[ka]
  return POW2[bigClass(b)]
}

const POW3 = Array.from({ length: MAX_CLASS + 1 }, (_, k) => 3 ** k)

/**
 * Cost of MUL, DIV, MOD: with W(a) = 2^i ≥ W(b) = 2^j, 2^(i-j) · 3^j, the operation count of
 * Karatsuba on 2^(i-j) blocks of 2^j words (1 for two single-word operands).
 */
export function costMul (a: Val, b: Val): number {
  if (typeof a === 'number' && typeof b === 'number') return 1
  let i = sizeClass(a)
  let j = sizeClass(b)
  if (i < j) { const t = i; i = j; j = t }
  return POW2[i - j] * POW3[j]
}

/** Cost of SHL/SHR: W(a) plus the left shift distance in words (the distance clamped to maxBits). */
export function costShift (a: Val, b: Val, left: boolean, L: IntLimit): number {
  const w = words(a)
  const dist = left ? b : -toBig(b) // left distance, as a value of either type
  if (dist <= 0) return w
  const d = dist >= L.maxBits ? L.maxBits : Number(dist)
  return w + Math.floor(d / 64)
}

// ---- operations (operands canonical, results canonical or undefined = too large) -------------

export function add (a: Val, b: Val, L: IntLimit): Val | undefined {
  if (typeof a === 'number' && typeof b === 'number') {
    const t = a + b
    if (t <= MAX_SAFE && t >= -MAX_SAFE) return t
  }
  return fit(toBig(a) + toBig(b), L)
}

export function sub (a: Val, b: Val, L: IntLimit): Val | undefined {
  if (typeof a === 'number' && typeof b === 'number') {
    const t = a - b
    if (t <= MAX_SAFE && t >= -MAX_SAFE) return t
  }
  return fit(toBig(a) - toBig(b), L)
}

export function mul (a: Val, b: Val, L: IntLimit): Val | undefined {
  if (typeof a === 'number' && typeof b === 'number') {
    const t = a * b
    if (t <= MAX_SAFE && t >= -MAX_SAFE) return t + 0
  }
  return fit(toBig(a) * toBig(b), L)
}

/** Truncating division; the caller has ruled out b = 0. The quotient is never larger than a. */
export function div (a: Val, b: Val): Val {
  if (typeof a === 'number' && typeof b === 'number') return Math.trunc(a / b) + 0
  return toVal(toBig(a) / toBig(b))
}

/** Remainder with the dividend's sign; the caller has ruled out b = 0. */
export function mod (a: Val, b: Val): Val {
  if (typeof a === 'number' && typeof b === 'number') return (a % b) + 0
  return toVal(toBig(a) % toBig(b))
}

export function neg (a: Val): Val {
  return typeof a === 'number' ? 0 - a : toVal(-a)
}

export function abs (a: Val): Val {
  return typeof a === 'number' ? Math.abs(a) : toVal(a < 0n ? -a : a)
}

function isInt32 (v: Val): v is number {
  return typeof v === 'number' && (v | 0) === v
}

export function band (a: Val, b: Val, L: IntLimit): Val | undefined {
  if (isInt32(a) && isInt32(b)) return a & b
  return fit(toBig(a) & toBig(b), L)
}

export function bor (a: Val, b: Val, L: IntLimit): Val | undefined {
  if (isInt32(a) && isInt32(b)) return a | b
  return fit(toBig(a) | toBig(b), L)
}

export function bxor (a: Val, b: Val, L: IntLimit): Val | undefined {
  if (isInt32(a) && isInt32(b)) return a ^ b
  return fit(toBig(a) ^ toBig(b), L)
}

/** a · 2^s (s < 0 shifts right). Too large when a ≠ 0 and s ≥ maxBits, before any work. */
export function shl (a: Val, s: Val, L: IntLimit): Val | undefined {
  if (s < 0) return shr(a, neg(s), L)
  if (a === 0) return 0
  if (s >= L.maxBits) return undefined
  const n = Number(s)
  if (typeof a === 'number' && n < 53) {
    const t = a * 2 ** n
    if (t <= MAX_SAFE && t >= -MAX_SAFE) return t
  }
  return fit(toBig(a) << BigInt(n), L)
}

/** floor(a / 2^s) (s < 0 shifts left). */
export function shr (a: Val, s: Val, L: IntLimit): Val | undefined {
  if (s < 0) return shl(a, neg(s), L)
  if (s >= L.maxBits) return a < 0 ? -1 : 0 // |a| < 2^maxBits, so every bit is shifted out
  const n = Number(s)
  if (typeof a === 'number') return n >= 53 ? (a < 0 ? -1 : 0) : Math.floor(a / 2 ** n) + 0
  return toVal(a >> BigInt(n))
}
