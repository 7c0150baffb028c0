import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createReedSolomon, type MaybeShard } from './reed-solomon.js'
import { BlobErrorCode } from './errors.js'
import { createRng, testSeed } from './seeded-rng.js'

// ---- an independent reference: the systematic Vandermonde code is polynomial interpolation.
// E = V·Vtop⁻¹ means: data shard i is p(i) for the unique polynomial p of degree < k through the
// k data points (x = 0..k-1), and parity shard j is p(k + j). Computed here with Lagrange
// interpolation, bit-by-bit multiplication and brute-force inverses: nothing shared with the codec.
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
const slowInv = (a: number): number => { for (let b = 1; b < 256; b++) if (slowMul(a, b) === 1) return b; throw new Error('no inverse') }

function referenceParity (data: Uint8Array[], m: number): Uint8Array[] {
  const k = data.length
  const size = data[0].length
  const out: Uint8Array[] = []
  for (let j = 0; j < m; j++) {
    const x = k + j
    // Lagrange basis weights L_i(x) = Π_{t≠i} (x - t) / (i - t); minus is XOR in GF(2^8).
    const weights: number[] = []
    for (let i = 0; i < k; i++) {
      let num = 1
      let den = 1
      for (let t = 0; t < k; t++) {
        if (t === i) continue
        num = slowMul(num, x ^ t)
        den = slowMul(den, i ^ t)
      }
      weights.push(slowMul(num, slowInv(den)))
    }
    const parity = new Uint8Array(size)
    for (let b = 0; b < size; b++) {
      let v = 0
      for (let i = 0; i < k; i++) v ^= slowMul(weights[i], data[i][b])
      parity[b] = v
    }
    out.push(parity)
  }
  return out
}

test('published vector: Backblaze JavaReedSolomon testOneEncode (5+5, klauspost TestOneEncode)', { timeout: 60_000 }, () => {
  const rs = createReedSolomon({ dataShards: 5, parityShards: 5 })
  const shards = [[0, 1], [4, 5], [2, 3], [6, 7], [8, 9]].map((b) => Uint8Array.from(b))
  for (let i = 0; i < 5; i++) shards.push(new Uint8Array(2))
  rs.encode(shards)
  assert.deepEqual(shards.slice(5).map((s) => Array.from(s)), [[12, 13], [10, 11], [14, 15], [90, 91], [94, 95]])
  assert.equal(rs.verify(shards), true)
  shards[8][0] += 1
  assert.equal(rs.verify(shards), false)
})

test('the encoding matrix is systematic and matches the interpolation reference', { timeout: 60_000 }, () => {
  for (const [k, m] of [[1, 1], [2, 1], [4, 2], [5, 5], [10, 4], [17, 3]]) {
    const rs = createReedSolomon({ dataShards: k, parityShards: m })
    const e = rs.encodingMatrix()
    assert.equal(e.length, k + m)
    for (let r = 0; r < k; r++) for (let c = 0; c < k; c++) assert.equal(e[r][c], r === c ? 1 : 0)
    // Encoding unit vectors yields the matrix columns: compare with the reference.
    const units = Array.from({ length: k }, (_, i) => { const u = new Uint8Array(k); u[i] = 1; return u })
    const ref = referenceParity(units, m)
    for (let p = 0; p < m; p++) for (let c = 0; c < k; c++) assert.equal(e[k + p][c], ref[p][c], `E[${k + p}][${c}] for ${k}+${m}`)
  }
})

test('seeded: parity equals the interpolation reference for random shapes, sizes and alignments', { timeout: 60_000 }, (t) => {
  const seed = testSeed()
  t.diagnostic(`seed ${seed}`)
  const rng = createRng(seed)
  for (let round = 0; round < 40; round++) {
    const k = 1 + rng.int(12)
    const m = rng.int(5)
    const size = 1 + rng.int(70)
    const offset = rng.int(4) // unaligned views take the byte-by-byte path
    const rs = createReedSolomon({ dataShards: k, parityShards: m })
    const backing = new Uint8Array((k + m) * (size + offset) + 8)
    const shards: Uint8Array[] = []
    for (let i = 0; i < k + m; i++) shards.push(backing.subarray(offset + i * (size + offset), offset + i * (size + offset) + size))
    for (let i = 0; i < k; i++) shards[i].set(rng.bytes(size))
    rs.encode(shards)
    const ref = referenceParity(shards.slice(0, k), m)
    for (let p = 0; p < m; p++) assert.deepEqual(shards[k + p], ref[p], `seed ${seed} round ${round}: ${k}+${m} size ${size} offset ${offset} parity ${p}`)
  }
})

function subsets (n: number, r: number): number[][] {
  if (r === 0) return [[]]
  const out: number[][] = []
  for (let first = 0; first <= n - r; first++) {
    for (const rest of subsets(n - first - 1, r - 1)) out.push([first, ...rest.map((x) => x + first + 1)])
  }
  return out
}

test('4+2: every pattern of up to 2 lost shards rebuilds exactly; 3 lost fails clearly', { timeout: 60_000 }, () => {
  const rs = createReedSolomon({ dataShards: 4, parityShards: 2 })
  const rng = createRng(42)
  const data = rng.bytes(4096 + 3)
  const shards = rs.split(data)
  assert.equal(shards.length, 6)
  assert.deepEqual(rs.join(shards, data.length), data)
  for (let lost = 0; lost <= 2; lost++) {
    for (const pattern of subsets(6, lost)) {
      const copy: MaybeShard[] = shards.map((s) => Uint8Array.from(s))
      for (const i of pattern) copy[i] = null
      assert.deepEqual(rs.join(copy, data.length), data, `lost ${pattern.join(',')}`)
      rs.reconstruct(copy)
      for (let i = 0; i < 6; i++) assert.deepEqual(copy[i], shards[i], `shard ${i} after losing ${pattern.join(',')}`)
    }
  }
  for (const pattern of subsets(6, 3)) {
    const copy: MaybeShard[] = shards.slice()
    for (const i of pattern) copy[i] = undefined
    assert.throws(() => rs.reconstruct(copy), (e: any) => e.code === BlobErrorCode.TOO_FEW_SHARDS && /3 of 6 shards present, at least 4 needed/.test(e.message))
    assert.throws(() => rs.join(copy, data.length), (e: any) => e.code === BlobErrorCode.TOO_FEW_SHARDS)
  }
})

test('seeded property: any k of k+m shards rebuild the data, more than m lost always fails', { timeout: 60_000 }, (t) => {
  const seed = testSeed()
  t.diagnostic(`seed ${seed}`)
  const rng = createRng(seed)
  for (let round = 0; round < 60; round++) {
    const k = 1 + rng.int(16)
    const m = rng.int(9)
    const rs = createReedSolomon({ dataShards: k, parityShards: m, maxCachedDecoders: 8 })
    const data = rng.bytes(rng.int(3000))
    const shards = rs.split(data)
    // Lose a random set of at most m shards.
    const order = Array.from({ length: k + m }, (_, i) => i).sort(() => rng.next() - 0.5)
    const lose = order.slice(0, rng.int(m + 1))
    const copy: MaybeShard[] = shards.slice()
    for (const i of lose) copy[i] = null
    const back = rs.join(copy, data.length)
    assert.deepEqual(back, data, `seed ${seed} round ${round}: ${k}+${m}, lost ${lose.join(',')}`)
    rs.reconstruct(copy)
    for (let i = 0; i < k + m; i++) assert.deepEqual(copy[i], shards[i], `seed ${seed} round ${round}: shard ${i}`)
    assert.ok(rs.cachedDecoders() <= 8)
    // One more than m lost.
    const tooMany: MaybeShard[] = shards.slice()
    for (const i of order.slice(0, m + 1)) tooMany[i] = null
    assert.throws(() => rs.reconstruct(tooMany), (e: any) => e.code === BlobErrorCode.TOO_FEW_SHARDS, `seed ${seed} round ${round}`)
  }
})

test('decoding matrices are cached per erasure pattern and the cache is bounded', { timeout: 60_000 }, () => {
  const rs = createReedSolomon({ dataShards: 6, parityShards: 3, maxCachedDecoders: 3 })
  const shards = rs.split(createRng(7).bytes(600))
  for (const pattern of subsets(6, 2)) {
    const copy: MaybeShard[] = shards.slice()
    for (const i of pattern) copy[i] = null
    rs.reconstruct(copy)
    assert.ok(rs.cachedDecoders() <= 3)
  }
  assert.equal(rs.cachedDecoders(), 3)
  const copy: MaybeShard[] = shards.slice()
  copy[1] = null
  rs.reconstruct(copy)
  assert.deepEqual(copy[1], shards[1])
  // Losing only parity needs no inversion.
  const fresh = createReedSolomon({ dataShards: 6, parityShards: 3 })
  const p: MaybeShard[] = shards.slice()
  p[6] = null
  p[8] = null
  fresh.reconstruct(p)
  assert.equal(fresh.cachedDecoders(), 0)
  assert.deepEqual(p[8], shards[8])
})

test('reconstruct with dataOnly leaves lost parity empty', { timeout: 60_000 }, () => {
  const rs = createReedSolomon({ dataShards: 3, parityShards: 2 })
  const shards = rs.split(Uint8Array.of(1, 2, 3, 4, 5, 6, 7))
  const copy: MaybeShard[] = shards.slice()
  copy[0] = null
  copy[4] = null
  rs.reconstruct(copy, { dataOnly: true })
  assert.deepEqual(copy[0], shards[0])
  assert.equal(copy[4], null)
})

test('split pads the last data shard with zeros; empty data gives 1-byte shards', { timeout: 60_000 }, () => {
  const rs = createReedSolomon({ dataShards: 4, parityShards: 2 })
  assert.equal(rs.shardSizeFor(10), 3)
  const shards = rs.split(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10))
  assert.deepEqual(Array.from(shards[3]), [10, 0, 0])
  assert.deepEqual(Array.from(shards[0]), [1, 2, 3])
  const empty = rs.split(new Uint8Array(0))
  assert.equal(empty.length, 6)
  assert.ok(empty.every((s) => s.length === 1 && s[0] === 0))
  assert.deepEqual(rs.join(empty, 0), new Uint8Array(0))
  assert.throws(() => rs.join(shards, 13), (e: any) => e.code === BlobErrorCode.SHARD_SHAPE)
})

test('m = 0 (striping only) and k = 1 (replication-like) work', { timeout: 60_000 }, () => {
  const stripe = createReedSolomon({ dataShards: 3, parityShards: 0 })
  const data = Uint8Array.of(9, 8, 7, 6, 5)
  assert.deepEqual(stripe.join(stripe.split(data), 5), data)
  const mirror = createReedSolomon({ dataShards: 1, parityShards: 3 })
  const s = mirror.split(data)
  for (const shard of s) assert.deepEqual(shard, data, 'with k = 1 every parity shard is a copy')
})

test('bad options and bad shapes are refused with precise errors', { timeout: 60_000 }, () => {
  assert.throws(() => createReedSolomon({ dataShards: 0, parityShards: 2 }), /dataShards must be an integer in 1\.\.256, got 0/)
  assert.throws(() => createReedSolomon({ dataShards: 2, parityShards: -1 }), /parityShards/)
  assert.throws(() => createReedSolomon({ dataShards: 200, parityShards: 57 }), /dataShards \+ parityShards must be at most 256, got 257/)
  assert.throws(() => createReedSolomon({ dataShards: 2.5, parityShards: 1 }), (e: any) => e.code === BlobErrorCode.INVALID_OPTION)
  const big = createReedSolomon({ dataShards: 200, parityShards: 56 })
  assert.equal(big.totalShards, 256)
  const rs = createReedSolomon({ dataShards: 2, parityShards: 1 })
  assert.throws(() => rs.encode([new Uint8Array(2), new Uint8Array(2)]), /expected 3 shards, got 2/)
  assert.throws(() => rs.encode([new Uint8Array(2), new Uint8Array(3), new Uint8Array(2)]), /shard 1 has 3 bytes, shard 0 has 2/)
  assert.throws(() => rs.reconstruct([new Uint8Array(2), null]), (e: any) => e.code === BlobErrorCode.SHARD_SHAPE)
  assert.throws(() => rs.reconstruct([new Uint8Array(2), null, new Uint8Array(4)]), /shard 2 has 4 bytes, others 2/)
})

test('256 shards (the field limit): 200+56 round-trips with 56 lost', { timeout: 60_000 }, () => {
  const rs = createReedSolomon({ dataShards: 200, parityShards: 56 })
  const rng = createRng(1)
  const data = rng.bytes(200 * 8)
  const shards: MaybeShard[] = rs.split(data)
  for (let i = 0; i < 56; i++) shards[i * 4] = null
  assert.deepEqual(rs.join(shards, data.length), data)
})
