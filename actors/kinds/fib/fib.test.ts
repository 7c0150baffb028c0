import '../../../config/polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { combineFib, fibInProcess, fibPair, fibSegment, P61, splitFib, validateFibParams, type FibSegmentResult } from './arith.js'
import { FIB_REFERENCE } from './reference.js'

const REFERENCE = FIB_REFERENCE

function runSplit (n: number, segments: number): ReturnType<typeof combineFib> {
  const ranges = splitFib(n, segments)
  const parts: FibSegmentResult[] = ranges.map((r, i) => fibSegment({ ...r, last: i === ranges.length - 1 }))
  return combineFib(n, parts)
}

function naiveFib (count: number): bigint[] {
  const f = [0n, 1n]
  while (f.length < count) f.push(f[f.length - 1] + f[f.length - 2])
  return f
}

test('fibInProcess matches the contract reference values', { timeout: 60_000 }, () => {
  for (const ref of REFERENCE) assert.deepEqual(fibInProcess(ref.n), ref)
})

test('split + segments + combine matches the reference for several segment counts', { timeout: 60_000 }, () => {
  for (const ref of REFERENCE) {
    const counts = new Set([1, 3, 24].filter((s) => s <= Math.max(ref.n, 1)))
    if (ref.n >= 1 && ref.n <= 4096) counts.add(ref.n) // one index per segment
    for (const segments of counts) {
      assert.deepEqual(runSplit(ref.n, segments), ref, `n=${ref.n} segments=${segments}`)
    }
  }
})

test('split results equal fibInProcess for other n', { timeout: 60_000 }, () => {
  for (const n of [2, 3, 7, 64, 999, 2048]) {
    const whole = fibInProcess(n)
    for (const segments of new Set([1, 2, 5, n].map((s) => Math.min(s, n)))) assert.deepEqual(runSplit(n, segments), whole, `n=${n} segments=${segments}`)
  }
})

test('fibPair agrees with naive iteration', { timeout: 60_000 }, () => {
  const f = naiveFib(302)
  for (let k = 0; k <= 300; k++) assert.deepEqual(fibPair(k), [f[k], f[k + 1]], `k=${k}`)
  // Consecutive pairs chain at large k, where fast doubling takes many steps.
  for (const k of [4095, 4096, 65_537, 1_000_003]) assert.equal(fibPair(k)[1], fibPair(k + 1)[0], `k=${k}`)
})

test('sumMod61 obeys F(0)+…+F(n-1) = F(n+1) - 1 (mod p)', { timeout: 60_000 }, () => {
  for (const n of [0, 1, 2, 93, 94, 1000, 12_345]) {
    const expected = ((fibPair(n)[1] - 1n) % P61 + P61) % P61
    assert.equal(fibInProcess(n).sumMod61, expected.toString(), `n=${n}`)
    assert.equal(runSplit(n, Math.min(7, Math.max(n, 1))).sumMod61, expected.toString(), `split n=${n}`)
  }
})

test('a segment ending at e reports F(e) digits and hash; a non-last one only its sum', { timeout: 60_000 }, () => {
  const f = naiveFib(200)
  const seg = fibSegment({ start: 150, end: 199, last: true })
  assert.equal(seg.digits, f[199].toString().length)
  const mid = fibSegment({ start: 10, end: 20, last: false })
  assert.deepEqual(Object.keys(mid), ['sumMod61'])
  assert.equal(mid.sumMod61, f.slice(10, 20).reduce((a, b) => a + b, 0n).toString())
})

test('splitFib: contiguous, non-empty, covering, strictly increasing', { timeout: 60_000 }, () => {
  const cases: Array<[number, number]> = [[1, 1], [2, 2], [3, 2], [10, 10], [10, 3], [10, 9], [24, 24], [25, 24], [100, 99],
    [1000, 4], [4096, 4096], [5000, 4096], [100_000, 24], [10_000_000, 4096], [10_000_000, 1], [7, 1]]
  for (const [n, segments] of cases) {
    const parts = splitFib(n, segments)
    assert.equal(parts.length, segments, `n=${n} s=${segments}`)
    assert.equal(parts[0].start, 0)
    assert.equal(parts[parts.length - 1].end, n)
    for (let i = 0; i < parts.length; i++) {
      assert.ok(parts[i].end > parts[i].start, `empty segment ${i} for n=${n} s=${segments}`)
      assert.ok(Number.isInteger(parts[i].start) && Number.isInteger(parts[i].end))
      if (i > 0) assert.equal(parts[i].start, parts[i - 1].end, `gap at ${i}`)
    }
  }
  assert.deepEqual(splitFib(0, 1), [{ start: 0, end: 0 }])
})

test('splitFib balances cost (step k costs ~k): every segment within 10% of the mean', { timeout: 60_000 }, () => {
  const n = 100_000
  const segments = 24
  // Cost of [s, e) = sum of k for k in [s, e).
  const cost = (s: number, e: number): number => (e * (e - 1) - s * (s - 1)) / 2
  const mean = cost(0, n) / segments
  for (const { start, end } of splitFib(n, segments)) {
    const c = cost(start, end)
    assert.ok(Math.abs(c - mean) / mean < 0.1, `segment [${start}, ${end}) costs ${c}, mean ${mean}`)
  }
  // Boundaries follow n·sqrt(i/segments): the first segment is the longest.
  const parts = splitFib(n, segments)
  assert.ok(parts[0].end - parts[0].start > 4 * (parts[segments - 1].end - parts[segments - 1].start))
})

test('validateFibParams accepts the contract ranges', { timeout: 60_000 }, () => {
  assert.deepEqual(validateFibParams({ n: 0, segments: 1 }), { n: 0, segments: 1 })
  assert.deepEqual(validateFibParams({ n: 10_000_000, segments: 4096 }), { n: 10_000_000, segments: 4096 })
  assert.deepEqual(validateFibParams({ n: 10, segments: 10 }), { n: 10, segments: 10 })
  assert.deepEqual(validateFibParams({ n: 1, segments: 1 }), { n: 1, segments: 1 })
})

test('validateFibParams errors name the field', { timeout: 60_000 }, () => {
  const bad: Array<[unknown, string]> = [
    [{ segments: 1 }, 'n'],
    [{ n: -1, segments: 1 }, 'n'],
    [{ n: 1.5, segments: 1 }, 'n'],
    [{ n: '10', segments: 1 }, 'n'],
    [{ n: NaN, segments: 1 }, 'n'],
    [{ n: Infinity, segments: 1 }, 'n'],
    [{ n: 10_000_001, segments: 1 }, 'n'],
    [{ n: 10n, segments: 1 }, 'n'],
    [null, 'n'],
    ['n=10', 'n'],
    [{ n: 10 }, 'segments'],
    [{ n: 10, segments: 0 }, 'segments'],
    [{ n: 10, segments: 11 }, 'segments'],
    [{ n: 0, segments: 2 }, 'segments'],
    [{ n: 100_000, segments: 4097 }, 'segments'],
    [{ n: 10, segments: 2.5 }, 'segments'],
    [{ n: 10, segments: '3' }, 'segments'],
    [{ n: 10, segments: NaN }, 'segments'],
    [{ n: 10, segments: null }, 'segments']
  ]
  for (const [params, field] of bad) {
    assert.throws(() => validateFibParams(params), (err: { code?: string, field?: string, message?: string }) => {
      assert.equal(err.code, 'ERR_INVALID_ARGUMENT', `${String(JSON.stringify(params, (_k, v) => typeof v === 'bigint' ? `${v}n` : v))}`)
      assert.equal(err.field, field, `field for ${String(err.message)}`)
      assert.ok(err.message?.startsWith(field))
      return true
    })
  }
})

test('fibSegment and combineFib reject bad input with ERR_INVALID_ARGUMENT', { timeout: 60_000 }, () => {
  const seg: Array<[unknown, string]> = [
    [{ start: -1, end: 2, last: false }, 'start'],
    [{ start: 5, end: 4, last: false }, 'end'],
    [{ start: 0, end: 10_000_001, last: true }, 'end'],
    [{ start: 0, end: '4', last: true }, 'end'],
    [{ start: 0, end: 4 }, 'last'],
    [null, 'payload']
  ]
  for (const [p, field] of seg) {
    assert.throws(() => fibSegment(p as never), (err: { code?: string, field?: string }) => err.code === 'ERR_INVALID_ARGUMENT' && err.field === field)
  }
  assert.throws(() => combineFib(3, []), { code: 'ERR_INVALID_ARGUMENT' })
  assert.throws(() => combineFib(3, [{ sumMod61: 'x', digits: 1, sha256: 'a'.repeat(64) }]), { code: 'ERR_INVALID_ARGUMENT' })
  assert.throws(() => combineFib(3, [{ sumMod61: P61.toString(), digits: 1, sha256: 'a'.repeat(64) }]), { code: 'ERR_INVALID_ARGUMENT' })
  assert.throws(() => combineFib(3, [{ sumMod61: '1' }]), { code: 'ERR_INVALID_ARGUMENT' })
})
