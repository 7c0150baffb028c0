import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import {
  blobId, buildManifest, canonicalJson, checkChunkSize, chunkCount, EMPTY_SHA256, encodeManifest, formatRedundancy,
  manifestContent, MAX_CHUNKS, parseManifest, parseRedundancyHeader, type Manifest, type Redundancy
} from './manifest.js'
import { createReedSolomon } from './reed-solomon.js'
import { BlobErrorCode } from './errors.js'
import { createRng } from './seeded-rng.js'

const sha = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex')

/** A real manifest for `data`, pieces computed as the shard actor will. */
function manifestFor (data: Uint8Array, chunkSizeBytes: number, redundancy: Redundancy, createdAtMs = 1000): Manifest {
  const chunks = []
  for (let off = 0, index = 0; off < data.length; off += chunkSizeBytes, index++) {
    const bytes = data.subarray(off, Math.min(data.length, off + chunkSizeBytes))
    const hash = sha(bytes)
    const pieces = redundancy.mode === 'replicate'
      ? Array.from({ length: redundancy.r }, (_, i) => ({ hash, owner: `peer-${i}` }))
      : createReedSolomon({ dataShards: redundancy.k, parityShards: redundancy.m }).split(bytes).map((s, i) => ({ hash: sha(s), owner: `peer-${i}` }))
    chunks.push({ index, sizeBytes: bytes.length, sha256: hash, pieces })
  }
  return buildManifest({ size: data.length, sha256: sha(data), chunkSizeBytes, redundancy, chunks, createdAtMs })
}

test('canonical JSON sorts keys, drops undefined fields, refuses non-integers', { timeout: 60_000 }, () => {
  assert.equal(canonicalJson({ b: 1, a: [true, null, 'x'], c: undefined, d: { z: 1, y: 'é"' } }), '{"a":[true,null,"x"],"b":1,"d":{"y":"é\\"","z":1}}')
  assert.throws(() => canonicalJson({ a: 1.5 }), /only safe integers/)
  assert.throws(() => canonicalJson({ a: () => 1 }), /cannot encode a function/)
})

test('the id is the sha256 of the content (pinned form), independent of placement and time', { timeout: 60_000 }, () => {
  const chunk = 'a'.repeat(64)
  const m = buildManifest({
    size: 5,
    sha256: 'b'.repeat(64),
    chunkSizeBytes: 4096,
    redundancy: { mode: 'replicate', r: 2 },
    chunks: [{ index: 0, sizeBytes: 5, sha256: chunk, pieces: [{ hash: chunk, owner: 'p1' }, { hash: chunk }] }],
    createdAtMs: 123
  })
  const content = `{"chunkSizeBytes":4096,"chunks":[{"index":0,"pieces":[{"hash":"${chunk}"},{"hash":"${chunk}"}],"sha256":"${chunk}","sizeBytes":5}],"redundancy":{"mode":"replicate","r":2},"sha256":"${'b'.repeat(64)}","size":5,"version":1}`
  assert.equal(canonicalJson(manifestContent(m)), content)
  assert.equal(blobId(m), sha(content))
  const moved = structuredClone(m)
  moved.chunks[0].pieces[0].owner = 'p9'
  moved.chunks[0].pieces[1].owner = 'p3'
  moved.createdAtMs = 999
  assert.equal(blobId(moved), blobId(m), 'repair and re-upload keep the id')
  const other = structuredClone(m)
  other.redundancy = { mode: 'replicate', r: 2 }
  other.chunkSizeBytes = 8192
  assert.notEqual(blobId(other), blobId(m))
})

test('real manifests (replicated and rs) round-trip through canonical JSON with their id', { timeout: 60_000 }, () => {
  const data = createRng(5).bytes(10_000)
  for (const red of [{ mode: 'replicate', r: 3 }, { mode: 'rs', k: 4, m: 2 }] as Redundancy[]) {
    const m = manifestFor(data, 4096, red)
    assert.equal(m.chunks.length, 3)
    assert.equal(m.chunks[2].sizeBytes, 10_000 - 8192)
    const text = encodeManifest(m)
    const back = parseManifest(text, { expectedId: blobId(m) })
    assert.deepEqual(back, m)
    // Key order of the input does not matter.
    const reverseKeys = (v: any): any => Array.isArray(v) ? v.map(reverseKeys) : v !== null && typeof v === 'object' ? Object.fromEntries(Object.keys(v).reverse().map((k) => [k, reverseKeys(v[k])])) : v
    const shuffled = JSON.stringify(reverseKeys(JSON.parse(text)), null, 2)
    assert.notEqual(shuffled.slice(0, 20), text.slice(0, 20))
    assert.equal(blobId(parseManifest(shuffled)), blobId(m))
    assert.throws(() => parseManifest(text, { expectedId: 'c'.repeat(64) }), /content hashes to [0-9a-f]{64}, expected c{64}/)
  }
  const changed = createRng(5).bytes(10_000)
  changed[9999] ^= 1
  assert.notEqual(blobId(manifestFor(changed, 4096, { mode: 'replicate', r: 3 })), blobId(manifestFor(data, 4096, { mode: 'replicate', r: 3 })))
})

test('an empty blob has no chunks and the empty hash', { timeout: 60_000 }, () => {
  const m = manifestFor(new Uint8Array(0), 1 << 20, { mode: 'rs', k: 4, m: 2 })
  assert.equal(m.chunks.length, 0)
  assert.equal(m.sha256, EMPTY_SHA256)
  assert.deepEqual(parseManifest(encodeManifest(m)), m)
  assert.deepEqual(chunkCount(0, 4096), { chunks: 0, lastSizeBytes: 0 })
  assert.deepEqual(chunkCount(4096, 4096), { chunks: 1, lastSizeBytes: 4096 })
  assert.deepEqual(chunkCount(4097, 4096), { chunks: 2, lastSizeBytes: 1 })
})

test('invalid manifests are refused naming the field', { timeout: 60_000 }, () => {
  const good = JSON.parse(encodeManifest(manifestFor(createRng(9).bytes(9000), 4096, { mode: 'rs', k: 2, m: 1 })))
  const cases: Array<[string, (m: any) => void, RegExp]> = [
    ['version', (m) => { m.version = 2 }, /manifest: version must be 1, got 2/],
    ['size', (m) => { m.size = -1 }, /manifest: size must be an integer/],
    ['sha256', (m) => { m.sha256 = 'ABC' }, /manifest: sha256 must be 64 lowercase hex digits/],
    ['chunk size', (m) => { m.chunkSizeBytes = 100 }, /manifest: chunkSizeBytes must be an integer in 4096\.\.16777216, got 100/],
    ['unknown field', (m) => { m.extra = 1 }, /manifest: extra is not a known field/],
    ['mode', (m) => { m.redundancy = { mode: 'raid' } }, /manifest: redundancy.mode must be "replicate" or "rs", got "raid"/],
    ['k+m', (m) => { m.redundancy = { mode: 'rs', k: 30, m: 5 } }, /manifest: redundancy k\+m must be at most 32, got 30\+5=35/],
    ['r', (m) => { m.redundancy = { mode: 'replicate', r: 0 } }, /manifest: redundancy.r must be an integer in 1\.\.16, got 0/],
    ['chunk count', (m) => { m.chunks.pop() }, /manifest: chunks has 2 entries, size 9000 in chunks of 4096 needs 3/],
    ['index', (m) => { m.chunks[1].index = 5 }, /manifest: chunks\[1\]\.index must be 1, got 5/],
    ['sizes add up', (m) => { m.chunks[2].sizeBytes = 4096 }, /manifest: chunks\[2\]\.sizeBytes must be 808, got 4096/],
    ['piece count', (m) => { m.chunks[0].pieces.pop() }, /manifest: chunks\[0\]\.pieces has 2 entries, rs=2\+1 needs 3/],
    ['piece hash', (m) => { m.chunks[1].pieces[2].hash = 'x' }, /manifest: chunks\[1\]\.pieces\[2\]\.hash must be 64 lowercase hex digits/],
    ['owner', (m) => { m.chunks[0].pieces[0].owner = '' }, /manifest: chunks\[0\]\.pieces\[0\]\.owner must be a member id/],
    ['piece field', (m) => { m.chunks[0].pieces[0].health = 'ok' }, /manifest: chunks\[0\]\.pieces\[0\]\.health is not a known field/],
    ['createdAtMs', (m) => { m.createdAtMs = 'now' }, /manifest: createdAtMs must be a non-negative integer, got "now"/],
    ['chunks type', (m) => { m.chunks = {} }, /manifest: chunks must be an array/]
  ]
  for (const [name, mutate, re] of cases) {
    const m = structuredClone(good)
    mutate(m)
    assert.throws(() => parseManifest(m), (e: any) => e.code === BlobErrorCode.MANIFEST_INVALID && re.test(e.message), name)
  }
  assert.throws(() => parseManifest('{"version":'), /manifest: text is not JSON/)
  assert.throws(() => parseManifest('[]'), /manifest: \(root\) must be an object/)
  // A replica must be the chunk itself.
  const rep = JSON.parse(encodeManifest(manifestFor(createRng(9).bytes(100), 4096, { mode: 'replicate', r: 2 })))
  rep.chunks[0].pieces[1].hash = 'd'.repeat(64)
  assert.throws(() => parseManifest(rep), /chunks\[0\]\.pieces\[1\]\.hash of a replica must equal the chunk sha256/)
  // An empty blob must carry the empty hash.
  assert.throws(() => parseManifest({ version: 1, size: 0, sha256: 'a'.repeat(64), chunkSizeBytes: 4096, redundancy: { mode: 'replicate', r: 1 }, chunks: [], createdAtMs: 0 }), /empty blob/)
  // Too many chunks for the limit.
  assert.throws(() => parseManifest({ version: 1, size: 4096 * (MAX_CHUNKS + 1), sha256: 'a'.repeat(64), chunkSizeBytes: 4096, redundancy: { mode: 'replicate', r: 1 }, chunks: [], createdAtMs: 0 }), /needs 65537 chunks of 4096 bytes, at most 65536/)
})

test('x-voike-redundancy header: r=N and rs=K+M with clear errors', { timeout: 60_000 }, () => {
  assert.deepEqual(parseRedundancyHeader('r=3'), { mode: 'replicate', r: 3 })
  assert.deepEqual(parseRedundancyHeader(' RS = 4 + 2 '), { mode: 'rs', k: 4, m: 2 })
  assert.deepEqual(parseRedundancyHeader('rs=10+0'), { mode: 'rs', k: 10, m: 0 })
  assert.deepEqual(parseRedundancyHeader(undefined), { mode: 'replicate', r: 3 })
  assert.deepEqual(parseRedundancyHeader(''), { mode: 'replicate', r: 3 })
  assert.equal(formatRedundancy(parseRedundancyHeader('rs=4+2')), 'rs=4+2')
  assert.equal(formatRedundancy({ mode: 'replicate', r: 2 }), 'r=2')
  const bad: Array<[string, RegExp]> = [
    ['r=0', /x-voike-redundancy: r must be an integer in 1\.\.16, got 0/],
    ['r=17', /r must be an integer in 1\.\.16, got 17/],
    ['rs=0+2', /k must be an integer in 1\.\.32, got 0/],
    ['rs=30+3', /k\+m must be at most 32, got 30\+3=33/],
    ['rs=4', /expected "r=N" \(replicas\) or "rs=K\+M" \(Reed-Solomon\), got "rs=4"/],
    ['r=-1', /expected "r=N"/],
    ['replicas=3', /expected "r=N"/],
    ['r=1.5', /expected "r=N"/],
    ['r=' + '9'.repeat(40), /value too long/]
  ]
  for (const [value, re] of bad) {
    assert.throws(() => parseRedundancyHeader(value), (e: any) => e.code === BlobErrorCode.REDUNDANCY_INVALID && re.test(e.message), value)
  }
})

test('chunk size bounds', { timeout: 60_000 }, () => {
  assert.equal(checkChunkSize(1 << 20), 1 << 20)
  assert.throws(() => checkChunkSize(4095), /chunkSizeBytes must be an integer in 4096\.\.16777216, got 4095/)
  assert.throws(() => checkChunkSize((16 << 20) + 1), (e: any) => e.code === BlobErrorCode.INVALID_OPTION)
})
