import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir, truncate } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { openChunkStore } from './chunk-store.js'
import { chunkStream } from './chunker.js'
import { BlobErrorCode } from './errors.js'
import { createRng, testSeed } from './seeded-rng.js'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

async function tempDir (t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'voike-chunks-'))
  t.after(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

const chunkPath = (dir: string, hash: string): string => join(dir, 'chunks', hash.slice(0, 2), hash.slice(2, 4), hash)

test('put/get/has/delete round-trip, content-addressed, fan-out layout, stats', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t)
  const store = await openChunkStore({ dir, quotaBytes: 1 << 20 })
  const a = createRng(1).bytes(5000)
  const h = await store.put(a)
  assert.equal(h, sha(a))
  assert.deepEqual(await readFile(chunkPath(dir, h)), Buffer.from(a))
  assert.deepEqual(new Uint8Array(await store.get(h)), a)
  assert.equal(await store.has(h), true)
  assert.equal(await store.put(a), h, 'the same bytes again: same name, not rewritten')
  assert.deepEqual(store.stats(), { chunks: 1, bytes: 5000, reservedBytes: 0, quotaBytes: 1 << 20, freeBytes: (1 << 20) - 5000, corruptFound: 0 })
  const empty = await store.put(new Uint8Array(0))
  assert.equal(empty, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
  assert.equal((await store.get(empty)).length, 0)
  assert.equal(await store.delete(h), true)
  assert.equal(await store.delete(h), false)
  assert.equal(await store.has(h), false)
  await assert.rejects(store.get(h), (e: any) => e.code === BlobErrorCode.CHUNK_NOT_FOUND && e.message.includes(h))
  assert.equal(store.stats().chunks, 1)
  assert.equal(store.stats().bytes, 0)
  await assert.rejects(store.get('XYZ'), (e: any) => e.code === BlobErrorCode.INVALID_HASH)
  await assert.rejects(store.put(a, { expectedHash: 'f'.repeat(64) }), (e: any) => e.code === BlobErrorCode.CHUNK_CORRUPT)
  await store.close()
  await assert.rejects(store.get(empty), (e: any) => e.code === BlobErrorCode.STORE_CLOSED)
  // Totals are recounted at open.
  const again = await openChunkStore({ dir, quotaBytes: 1 << 20 })
  assert.equal(again.stats().chunks, 1)
  await again.close()
})

test('a corrupt chunk is detected on read, quarantined, and can be healed by a new put', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t)
  const store = await openChunkStore({ dir, quotaBytes: 1 << 20, maxQuarantined: 2 })
  const data = createRng(2).bytes(8192)
  const h = await store.put(data)
  const flipped = Buffer.from(data)
  flipped[100] ^= 0x40
  await writeFile(chunkPath(dir, h), flipped)
  await assert.rejects(store.get(h), (e: any) => e.code === BlobErrorCode.CHUNK_CORRUPT && e.message.includes(`chunk ${h} is corrupt on disk`) && e.message.includes('quarantined'))
  assert.equal(await store.has(h), false, 'no longer served')
  assert.equal(store.stats().chunks, 0)
  assert.equal(store.stats().bytes, 0)
  assert.equal(store.stats().corruptFound, 1)
  assert.equal((await readdir(join(dir, 'quarantine'))).length, 1)
  // Heal: the piece fetched from elsewhere is put back.
  assert.equal(await store.put(data), h)
  assert.deepEqual(new Uint8Array(await store.get(h)), data)
  // A truncated file is corrupt too; quarantine keeps only the newest 2.
  for (let i = 0; i < 3; i++) {
    await truncate(chunkPath(dir, h), 10)
    await assert.rejects(store.get(h), (e: any) => e.code === BlobErrorCode.CHUNK_CORRUPT)
    await store.put(data)
  }
  assert.equal((await readdir(join(dir, 'quarantine'))).length, 2)
  // Two concurrent reads of one corrupt chunk: both fail, counted once.
  await writeFile(chunkPath(dir, h), flipped)
  const results = await Promise.allSettled([store.get(h), store.get(h)])
  assert.ok(results.every((r) => r.status === 'rejected' && (r.reason as any).code === BlobErrorCode.CHUNK_CORRUPT))
  assert.equal(store.stats().chunks, 0)
  await store.close()
})

test('quota: a put that does not fit fails clearly and leaves nothing behind', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t)
  const store = await openChunkStore({ dir, quotaBytes: 10_000 })
  const a = createRng(3).bytes(6000)
  await store.put(a)
  const b = createRng(4).bytes(6000)
  await assert.rejects(store.put(b), (e: any) => e.code === BlobErrorCode.QUOTA_FULL &&
    /storing 6000 bytes would exceed the quota of 10000 bytes \(6000 stored, 0 reserved by writes in flight, 4000 free\)/.test(e.message))
  assert.equal(await store.has(sha(b)), false)
  assert.deepEqual(await readdir(join(dir, 'tmp')), [])
  assert.equal(store.stats().bytes, 6000)
  assert.deepEqual(new Uint8Array(await store.get(sha(a))), a, 'what was stored is intact')
  // A chunk already present costs nothing, even when full.
  assert.equal(await store.put(a), sha(a))
  await assert.rejects(store.put(new Uint8Array((16 << 20) + 1)), (e: any) => e.code === BlobErrorCode.TOO_LARGE)
  await store.close()
})

test('concurrent puts reserve quota before writing: exactly what fits is stored', { timeout: 60_000 }, async (t) => {
  const seed = testSeed()
  t.diagnostic(`seed ${seed}`)
  const rng = createRng(seed)
  const dir = await tempDir(t)
  const store = await openChunkStore({ dir, quotaBytes: 100_000 })
  const blobs = Array.from({ length: 20 }, () => rng.bytes(10_000))
  const results = await Promise.allSettled(blobs.map((b) => store.put(b)))
  const ok = results.filter((r) => r.status === 'fulfilled').length
  assert.equal(ok, 10, `seed ${seed}`)
  for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as any).code, BlobErrorCode.QUOTA_FULL)
  assert.equal(store.stats().bytes, 100_000)
  assert.equal(store.stats().reservedBytes, 0)
  assert.deepEqual(await readdir(join(dir, 'tmp')), [])
  let listed = 0
  for await (const c of store.inventory()) {
    listed++
    assert.equal(sha(await store.get(c.hash)), c.hash)
  }
  assert.equal(listed, 10)
  // The same bytes put concurrently: one write, one chunk.
  const same = rng.bytes(1000)
  const store2 = await openChunkStore({ dir: join(dir, 'second'), quotaBytes: 5000 })
  const hashes = await Promise.all(Array.from({ length: 8 }, async () => await store2.put(same)))
  assert.ok(hashes.every((h) => h === sha(same)))
  assert.equal(store2.stats().chunks, 1)
  assert.equal(store2.stats().bytes, 1000)
  await store.close()
  await store2.close()
})

test('list pages in hash order; inventory walks them all', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t)
  const store = await openChunkStore({ dir, quotaBytes: 1 << 20 })
  const rng = createRng(5)
  const hashes: string[] = []
  for (let i = 0; i < 25; i++) hashes.push(await store.put(rng.bytes(100 + i)))
  hashes.sort()
  const p1 = await store.list({ limit: 10 })
  assert.deepEqual(p1.chunks.map((c) => c.hash), hashes.slice(0, 10))
  assert.equal(p1.next, hashes[9])
  const p2 = await store.list({ after: p1.next, limit: 10 })
  assert.deepEqual(p2.chunks.map((c) => c.hash), hashes.slice(10, 20))
  const p3 = await store.list({ after: p2.next, limit: 10 })
  assert.deepEqual(p3.chunks.map((c) => c.hash), hashes.slice(20))
  assert.equal(p3.next, undefined)
  const all: string[] = []
  for await (const c of store.inventory({ pageSize: 7 })) all.push(c.hash)
  assert.deepEqual(all, hashes)
  const entry = p1.chunks[0]
  assert.equal(entry.sizeBytes, (await store.get(entry.hash)).length)
  await assert.rejects(store.list({ limit: 0 }), /limit must be an integer in 1\.\.10000/)
  await assert.rejects(store.list({ after: 'zz' }), /after must be a hash/)
  await store.close()
})

test('a temp file left by a crashed put is never visible and is removed at open', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t)
  const store = await openChunkStore({ dir, quotaBytes: 1 << 20 })
  await store.close()
  const data = createRng(6).bytes(4000)
  // What a crash between write and rename leaves: a (possibly partial) temp file.
  await writeFile(join(dir, 'tmp', `${sha(data)}.999.0`), data.subarray(0, 1000))
  await mkdir(join(dir, 'chunks', 'zz'), { recursive: true }) // stray entries are ignored
  const reopened = await openChunkStore({ dir, quotaBytes: 1 << 20 })
  assert.deepEqual(await readdir(join(dir, 'tmp')), [])
  assert.equal(await reopened.has(sha(data)), false)
  assert.equal(reopened.stats().chunks, 0)
  await reopened.close()
})

test('a process killed mid-put leaves only whole, verified chunks', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t)
  const storeUrl = new URL('./chunk-store.js', import.meta.url).href
  // The child stores 2 MiB chunks in a loop, printing each hash once its put has returned.
  const script = `
    import { openChunkStore } from ${JSON.stringify(storeUrl)}
    import { randomBytes } from 'node:crypto'
    const store = await openChunkStore({ dir: ${JSON.stringify(dir)}, quotaBytes: 2 ** 40 })
    for (;;) process.stdout.write(await store.put(randomBytes(2 << 20)) + '\\n')
  `
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.after(() => { child.kill('SIGKILL') })
  const acknowledged: string[] = []
  const exited = new Promise((resolve) => child.once('exit', resolve))
  for await (const line of createInterface({ input: child.stdout })) {
    acknowledged.push(line)
    if (acknowledged.length === 4) {
      child.kill('SIGKILL')
      break
    }
  }
  await exited
  const store = await openChunkStore({ dir, quotaBytes: 2 ** 40 })
  for (const h of acknowledged) assert.equal(await store.has(h), true, `acknowledged chunk ${h} survived`)
  let n = 0
  for await (const c of store.inventory()) {
    n++
    assert.equal(sha(await store.get(c.hash)), c.hash)
  }
  assert.ok(n >= acknowledged.length)
  assert.equal(store.stats().chunks, n)
  assert.deepEqual(await readdir(join(dir, 'tmp')), [])
  await store.close()
})

test('bad options are refused naming the option', { timeout: 60_000 }, async () => {
  await assert.rejects(openChunkStore({ dir: '', quotaBytes: 1 }), /openChunkStore: dir must be a non-empty path/)
  await assert.rejects(openChunkStore({ dir: '/tmp/x', quotaBytes: -1 }), /openChunkStore: quotaBytes must be an integer/)
  await assert.rejects(openChunkStore({ dir: '/tmp/x', quotaBytes: 1, maxQuarantined: -1 }), /maxQuarantined/)
})

// ---------------------------------------------------------------- chunker

async function * pieces (data: Uint8Array, rng: ReturnType<typeof createRng>): AsyncGenerator<Uint8Array> {
  let at = 0
  while (at < data.length) {
    const n = 1 + rng.int(9000)
    yield data.subarray(at, at + n)
    at += n
  }
}

test('chunkStream cuts any piece sizes into exact chunks with the running whole hash', { timeout: 60_000 }, async (t) => {
  const seed = testSeed()
  t.diagnostic(`seed ${seed}`)
  const rng = createRng(seed)
  for (const size of [0, 1, 4096, 4097, 50_000, 3 * 4096]) {
    const data = rng.bytes(size)
    const chunker = chunkStream(pieces(data, rng), 4096)
    const got: Uint8Array[] = []
    for await (const c of chunker) {
      assert.equal(c.index, got.length)
      assert.equal(c.offset, got.length * 4096)
      assert.equal(c.sha256, sha(c.bytes))
      got.push(c.bytes)
    }
    assert.deepEqual(Buffer.concat(got), Buffer.from(data), `seed ${seed} size ${size}`)
    assert.ok(got.slice(0, -1).every((b) => b.length === 4096))
    assert.deepEqual(chunker.summary(), { sizeBytes: size, sha256: sha(data), chunks: Math.ceil(size / 4096) })
  }
})

test('chunkStream refuses bad sizes, too-long streams and non-bytes', { timeout: 60_000 }, async () => {
  assert.throws(() => chunkStream(pieces(new Uint8Array(1), createRng(1)), 100), /chunkSizeBytes must be an integer in 4096\.\.16777216, got 100/)
  const c = chunkStream(pieces(new Uint8Array(10_000), createRng(1)), 4096, { maxSizeBytes: 5000 })
  assert.throws(() => c.summary(), /before the stream was fully read/)
  await assert.rejects(async () => { for await (const _ of c) { /* drain */ } }, (e: any) => e.code === BlobErrorCode.TOO_LARGE)
  async function * strings (): AsyncGenerator<any> { yield 'text' }
  await assert.rejects(async () => { for await (const _ of chunkStream(strings(), 4096)) { /* drain */ } }, /yielded a string, expected bytes/)
  const ac = new AbortController()
  ac.abort()
  await assert.rejects(async () => { for await (const _ of chunkStream(pieces(new Uint8Array(10), createRng(1)), 4096, { signal: ac.signal })) { /* drain */ } }, (e: any) => e.code === BlobErrorCode.ABORTED)
})
