/**
 * Arithmetic in GF(2^8) with the reducing polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11d) and
 * generator 2: the field of Backblaze JavaReedSolomon, klauspost/reedsolomon and most storage
 * erasure codes, so our shards match theirs byte for byte.
 *
 * Addition and subtraction are XOR. Multiplication goes through a full 256×256 product table
 * (64 KiB, built once at load from the log/antilog tables): the coding loops take one 256-byte
 * row of it per matrix coefficient (`mulRow`) and do a single table lookup per byte.
 *
 * Matrices are arrays of rows (Uint8Array), small (at most 256×256): used to build the encoding
 * matrix and to invert the k×k submatrix of the surviving shards when decoding.
 */
import assert from 'node:assert/strict'
import { BlobError, BlobErrorCode } from './errors.js'

/** The reducing polynomial, with the x^8 term. */
export const GF_POLYNOMIAL = 0x11d

/** LOG[a] = n with 2^n = a, for a in 1..255 (LOG[0] is unused and 0). */
export const LOG = new Uint8Array(256)
/** EXP[n] = 2^n for n in 0..509: doubled so that EXP[LOG[a] + LOG[b]] needs no modulo. */
export const EXP = new Uint8Array(510)
/** MUL[a * 256 + b] = a·b. */
export const MUL = new Uint8Array(65536)

;(function buildTables (): void {
  let x = 1
  for (let n = 0; n < 255; n++) {
    EXP[n] = x
    EXP[n + 255] = x
    LOG[x] = n
    x <<= 1
    if (x & 0x100) x ^= GF_POLYNOMIAL
  }
  // 2 generates the multiplicative group: 255 distinct powers, and back to 1.
  assert.equal(x, 1, 'GF(256): 2 is not a generator under 0x11d')
  for (let a = 1; a < 256; a++) {
    const la = LOG[a]
    const base = a << 8
    for (let b = 1; b < 256; b++) MUL[base | b] = EXP[la + LOG[b]]
  }
})()

export function add (a: number, b: number): number {
  return (a ^ b) & 0xff
}

export function mul (a: number, b: number): number {
  return MUL[((a & 0xff) << 8) | (b & 0xff)]
}

/** a / b; b must not be 0. */
export function div (a: number, b: number): number {
  if (b === 0) throw new RangeError('GF(256): division by zero')
  if (a === 0) return 0
  return EXP[LOG[a] + 255 - LOG[b]]
}

/** The multiplicative inverse of a ≠ 0. */
export function inv (a: number): number {
  return div(1, a)
}

/** a^n for n ≥ 0, with a^0 = 1 (also for a = 0, as the Vandermonde construction needs). */
export function pow (a: number, n: number): number {
  assert.ok(Number.isInteger(n) && n >= 0, 'GF(256): exponent must be a non-negative integer')
  if (n === 0) return 1
  if (a === 0) return 0
  return EXP[(LOG[a] * n) % 255]
}

/** The 256 products c·b for b = 0..255: index it with a data byte. A view into MUL, no copy. */
export function mulRow (c: number): Uint8Array {
  const base = (c & 0xff) << 8
  return MUL.subarray(base, base + 256)
}

// ---------------------------------------------------------------- matrices

export type Matrix = Uint8Array[]

export function zeroMatrix (rows: number, cols: number): Matrix {
  const m: Matrix = []
  for (let r = 0; r < rows; r++) m.push(new Uint8Array(cols))
  return m
}

export function identityMatrix (n: number): Matrix {
  const m = zeroMatrix(n, n)
  for (let i = 0; i < n; i++) m[i][i] = 1
  return m
}

/** rows×cols with m[r][c] = r^c: any `cols` of its rows (rows ≤ 256) are linearly independent. */
export function vandermonde (rows: number, cols: number): Matrix {
  assert.ok(rows <= 256, 'GF(256): a Vandermonde matrix has at most 256 distinct rows')
  const m = zeroMatrix(rows, cols)
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) m[r][c] = pow(r, c)
  }
  return m
}

export function multiply (a: Matrix, b: Matrix): Matrix {
  const n = a.length
  const inner = b.length
  const cols = b[0]?.length ?? 0
  assert.ok(n === 0 || a[0].length === inner, 'GF(256): matrix shapes do not match')
  const out = zeroMatrix(n, cols)
  for (let r = 0; r < n; r++) {
    const row = out[r]
    for (let i = 0; i < inner; i++) {
      const t = mulRow(a[r][i])
      const bi = b[i]
      for (let c = 0; c < cols; c++) row[c] ^= t[bi[c]]
    }
  }
  return out
}

/** The rows `indices` of m, copied. */
export function pickRows (m: Matrix, indices: ReadonlyArray<number>): Matrix {
  return indices.map((i) => Uint8Array.from(m[i]))
}

/** The inverse of a square matrix by Gauss-Jordan elimination; ERR_SINGULAR_MATRIX if none. */
export function invert (m: Matrix): Matrix {
  const n = m.length
  assert.ok(m.every((row) => row.length === n), 'GF(256): only square matrices have inverses')
  const work = m.map((row) => Uint8Array.from(row))
  const out = identityMatrix(n)
  for (let col = 0; col < n; col++) {
    let pivot = col
    while (pivot < n && work[pivot][col] === 0) pivot++
    if (pivot === n) throw new BlobError(BlobErrorCode.SINGULAR_MATRIX, `GF(256): matrix is singular (column ${col})`)
    if (pivot !== col) {
      [work[pivot], work[col]] = [work[col], work[pivot]]
      ;[out[pivot], out[col]] = [out[col], out[pivot]]
    }
    const scale = mulRow(inv(work[col][col]))
    scaleRow(work[col], scale)
    scaleRow(out[col], scale)
    for (let r = 0; r < n; r++) {
      const f = work[r][col]
      if (r === col || f === 0) continue
      const t = mulRow(f)
      addScaledRow(work[r], work[col], t)
      addScaledRow(out[r], out[col], t)
    }
  }
  return out
}

function scaleRow (row: Uint8Array, t: Uint8Array): void {
  for (let i = 0; i < row.length; i++) row[i] = t[row[i]]
}

function addScaledRow (dst: Uint8Array, src: Uint8Array, t: Uint8Array): void {
  for (let i = 0; i < dst.length; i++) dst[i] ^= t[src[i]]
}

/** `[[1, 0], [0, 1]]`: the format of the published Backblaze and klauspost test vectors. */
export function matrixToString (m: Matrix): string {
  return '[' + m.map((row) => '[' + Array.from(row).join(', ') + ']').join(', ') + ']'
}
