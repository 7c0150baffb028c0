import { test } from 'node:test'
import assert from 'node:assert/strict'
import { add, div, EXP, identityMatrix, inv, invert, LOG, matrixToString, mul, MUL, multiply, pow, vandermonde } from './gf256.js'
import { BlobErrorCode } from './errors.js'

/** Carry-less multiply with reduction by 0x11d, bit by bit: no tables, a separate derivation. */
function slowMul (a: number, b: number): number {
  let p = 0
  for (let i = 0; i < 8; i++) {
    if (b & 1) p ^= a
    b >>= 1
    a <<= 1
    if (a & 0x100) a ^= 0x11d
  }
  return p & 0xff
}

test('the product table matches bit-by-bit carry-less multiplication for all 65536 pairs', { timeout: 60_000 }, () => {
  for (let a = 0; a < 256; a++) {
    for (let b = 0; b < 256; b++) {
      if (MUL[a * 256 + b] !== slowMul(a, b)) assert.fail(`MUL[${a}][${b}] = ${MUL[a * 256 + b]}, expected ${slowMul(a, b)}`)
    }
  }
})

test('published values (Backblaze JavaReedSolomon GaloisTest, from the Python prototype)', { timeout: 60_000 }, () => {
  assert.equal(mul(3, 4), 12)
  assert.equal(mul(7, 7), 21)
  assert.equal(mul(23, 45), 41)
  assert.equal(pow(2, 2), 4)
  assert.equal(pow(5, 20), 235)
  assert.equal(pow(13, 7), 43)
})

test('log/antilog tables: 2 generates all 255 non-zero elements', { timeout: 60_000 }, () => {
  const seen = new Set<number>()
  for (let n = 0; n < 255; n++) seen.add(EXP[n])
  assert.equal(seen.size, 255)
  assert.ok(!seen.has(0))
  for (let a = 1; a < 256; a++) assert.equal(EXP[LOG[a]], a)
})

test('field axioms: commutativity, identities, inverses (exhaustive)', { timeout: 60_000 }, () => {
  for (let a = 0; a < 256; a++) {
    assert.equal(add(a, 0), a)
    assert.equal(mul(a, 1), a)
    assert.equal(mul(a, 0), 0)
    assert.equal(add(a, a), 0, 'every element is its own additive inverse')
    if (a !== 0) {
      assert.equal(mul(a, inv(a)), 1, `inverse of ${a}`)
      assert.equal(div(a, a), 1)
    }
    for (let b = 0; b < 256; b++) {
      if (mul(a, b) !== mul(b, a)) assert.fail(`${a}·${b} is not commutative`)
      if (b !== 0 && mul(div(a, b), b) !== a) assert.fail(`(${a}/${b})·${b} ≠ ${a}`)
    }
  }
  assert.throws(() => div(1, 0), RangeError)
})

test('field axioms: associativity and distributivity (exhaustive, 2^24 triples each)', { timeout: 60_000 }, () => {
  for (let a = 0; a < 256; a++) {
    for (let b = 0; b < 256; b++) {
      const ab = mul(a, b)
      for (let c = 0; c < 256; c++) {
        if (mul(ab, c) !== mul(a, mul(b, c))) assert.fail(`(${a}·${b})·${c} ≠ ${a}·(${b}·${c})`)
        if (mul(a, b ^ c) !== (ab ^ mul(a, c))) assert.fail(`${a}·(${b}+${c}) ≠ ${a}·${b} + ${a}·${c}`)
      }
    }
  }
})

test('pow agrees with repeated multiplication', { timeout: 60_000 }, () => {
  for (let a = 0; a < 256; a++) {
    let p = 1
    for (let n = 0; n < 300; n++) {
      if (pow(a, n) !== p) assert.fail(`${a}^${n}`)
      p = mul(p, a)
    }
  }
})

test('matrices: published multiply and inverse vectors (Backblaze / klauspost MatrixTest)', { timeout: 60_000 }, () => {
  const m1 = [Uint8Array.of(1, 2), Uint8Array.of(3, 4)]
  const m2 = [Uint8Array.of(5, 6), Uint8Array.of(7, 8)]
  assert.equal(matrixToString(multiply(m1, m2)), '[[11, 22], [19, 42]]')
  const m = [Uint8Array.of(56, 23, 98), Uint8Array.of(3, 100, 200), Uint8Array.of(45, 201, 123)]
  assert.equal(matrixToString(invert(m)), '[[175, 133, 33], [130, 13, 245], [112, 35, 126]]')
  assert.equal(matrixToString(multiply(m, invert(m))), matrixToString(identityMatrix(3)))
  const m5 = [
    Uint8Array.of(1, 0, 0, 0, 0), Uint8Array.of(0, 1, 0, 0, 0), Uint8Array.of(0, 0, 0, 1, 0),
    Uint8Array.of(0, 0, 0, 0, 1), Uint8Array.of(7, 7, 6, 6, 1)
  ]
  assert.equal(matrixToString(invert(m5)), '[[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [123, 123, 1, 122, 122], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0]]')
  assert.equal(matrixToString(identityMatrix(3)), '[[1, 0, 0], [0, 1, 0], [0, 0, 1]]')
})

test('a singular matrix is refused with ERR_SINGULAR_MATRIX', { timeout: 60_000 }, () => {
  const v = vandermonde(4, 2)
  assert.throws(() => invert([v[1], v[1]]), (e: any) => e.code === BlobErrorCode.SINGULAR_MATRIX)
})
