/**
 * A content-addressed chunk store in a directory: every chunk (or piece) is a file named by the
 * SHA-256 of its bytes.
 *
 * Layout under `dir`:
 *   chunks/ab/cd/abcd…  the chunk whose hash starts with "abcd" (two fan-out levels of 256, so no
 *                       directory grows past a few thousand entries even at millions of chunks)
 *   tmp/                writes in progress; emptied at open (what a crash left behind)
 *   quarantine/         chunks found corrupt, kept for inspection (the newest few)
 *
 * Durability: a put writes a temp file, fsyncs it, renames it into place and fsyncs the directory
 * (and any directory it had to create). A crash at any point leaves either no chunk or the whole
 * chunk, never a partial one under a chunk's name. Reads verify the hash every time: a corrupt
 * chunk is moved to quarantine and the read fails with ERR_CHUNK_CORRUPT, so the caller fetches
 * the piece from another owner (or rebuilds it) and puts it back: that is healing.
 *
 * Quota: bytes of chunks stored plus bytes reserved by puts in flight never exceed `quotaBytes`.
 * A put reserves its size before writing anything, so concurrent puts cannot overshoot; a put
 * that does not fit fails with ERR_QUOTA_FULL and writes nothing. Totals are counted at open (one
 * directory walk) and kept in memory.
 */
import { createHash } from 'node:crypto'
import { constants as fsConstants } from 'node:fs'
import { mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { BlobError, BlobErrorCode, invalidOption, isIntIn, isSha256Hex } from './errors.js'
import { MAX_CHUNK_SIZE_BYTES } from './manifest.js'

/** Largest quota: 1 PiB (a sanity bound on the option, not a design limit). */
export const MAX_QUOTA_BYTES = 2 ** 50
/** Most entries one `list` call returns. */
export const MAX_LIST_LIMIT = 10_000
export const DEFAULT_LIST_LIMIT = 1000
export const DEFAULT_MAX_QUARANTINED = 16

export interface ChunkStoreOptions {
  /** The store's directory; created when missing. */
  dir: string
  /** Most bytes of chunks stored (in-flight puts included). */
  quotaBytes: number
  /** Largest chunk accepted by put, and read by get (default 16 MiB, the largest chunk size). */
  maxChunkSizeBytes?: number
  /** Corrupt chunks kept in quarantine/ (oldest removed first; default 16, 0 = delete at once). */
  maxQuarantined?: number
}

export interface ChunkStoreStats {
  /** Chunks stored. */
  chunks: number
  /** Bytes of the chunks stored. */
  bytes: number
  /** Bytes reserved by puts in flight. */
  reservedBytes: number
  quotaBytes: number
  /** quotaBytes − bytes − reservedBytes. */
  freeBytes: number
  /** Chunks found corrupt since open (and quarantined). */
  corruptFound: number
}

export interface ChunkEntry {
  hash: string
  sizeBytes: number
}

export interface ChunkPage {
  chunks: ChunkEntry[]
  /** Pass as `after` to get the next page; absent on the last page. */
  next?: string
}

export interface ChunkStore {
  readonly dir: string
  /** Stores `bytes` under their sha256 and returns it; a chunk already present is not rewritten. */
  put: (bytes: Uint8Array, options?: { signal?: AbortSignal, expectedHash?: string }) => Promise<string>
  /** The chunk's bytes, verified: ERR_CHUNK_NOT_FOUND, or ERR_CHUNK_CORRUPT (then quarantined). */
  get: (hash: string) => Promise<Uint8Array>
  has: (hash: string) => Promise<boolean>
  /** Removes the chunk; false when it was not there. */
  delete: (hash: string) => Promise<boolean>
  /** Chunks in hash order after `after`, at most `limit` (default 1000, at most 10000). */
  list: (options?: { after?: string, limit?: number }) => Promise<ChunkPage>
  /** Every chunk, in hash order, a page at a time. */
  inventory: (options?: { pageSize?: number }) => AsyncGenerator<ChunkEntry>
  stats: () => ChunkStoreStats
  /** Waits for puts in flight; later calls fail with ERR_STORE_CLOSED. */
  close: () => Promise<void>
}

const isNotFound = (e: unknown): boolean => (e as NodeJS.ErrnoException)?.code === 'ENOENT'

export async function openChunkStore (options: ChunkStoreOptions): Promise<ChunkStore> {
  const where = 'openChunkStore'
  if (typeof options?.dir !== 'string' || options.dir === '') throw invalidOption(where, 'dir', 'must be a non-empty path')
  if (!isIntIn(options.quotaBytes, 0, MAX_QUOTA_BYTES)) throw invalidOption(where, 'quotaBytes', `must be an integer in 0..${MAX_QUOTA_BYTES}, got ${String(options.quotaBytes)}`)
  const maxChunk = options.maxChunkSizeBytes ?? MAX_CHUNK_SIZE_BYTES
  if (!isIntIn(maxChunk, 1, 1 << 30)) throw invalidOption(where, 'maxChunkSizeBytes', `must be an integer in 1..${1 << 30}, got ${String(maxChunk)}`)
  const maxQuarantined = options.maxQuarantined ?? DEFAULT_MAX_QUARANTINED
  if (!isIntIn(maxQuarantined, 0, 10_000)) throw invalidOption(where, 'maxQuarantined', `must be an integer in 0..10000, got ${String(maxQuarantined)}`)
  const quota = options.quotaBytes
  const dir = options.dir
  const chunksDir = join(dir, 'chunks')
  const tmpDir = join(dir, 'tmp')
  const quarantineDir = join(dir, 'quarantine')
  await mkdir(chunksDir, { recursive: true })
  await mkdir(quarantineDir, { recursive: true })
  // Temp files are puts a crash interrupted: never visible as chunks, safe to drop.
  await rm(tmpDir, { recursive: true, force: true })
  await mkdir(tmpDir, { recursive: true })
  await fsyncDir(dir)

  let bytes = 0
  let count = 0
  for await (const entry of walk(chunksDir, undefined)) {
    bytes += entry.sizeBytes
    count++
  }
  let reserved = 0
  let corruptFound = 0
  let tmpSeq = 0
  let closed = false
  /** Puts in flight by hash: a second put of the same bytes waits for the first. */
  const inflight = new Map<string, Promise<string>>()

  const pathOf = (hash: string): string => join(chunksDir, hash.slice(0, 2), hash.slice(2, 4), hash)
  const checkOpen = (): void => {
    if (closed) throw new BlobError(BlobErrorCode.STORE_CLOSED, `chunk store ${dir} is closed`)
  }
  const checkHash = (hash: unknown, op: string): void => {
    if (!isSha256Hex(hash)) throw new BlobError(BlobErrorCode.INVALID_HASH, `${op}: hash must be 64 lowercase hex digits, got ${JSON.stringify(String(hash).slice(0, 80))}`)
  }

  async function write (hash: string, data: Uint8Array, signal?: AbortSignal): Promise<string> {
    try {
      await stat(pathOf(hash))
      return hash // already stored (content-addressed: same name, same bytes)
    } catch (e) {
      if (!isNotFound(e)) throw e
    }
    const size = data.length
    if (bytes + reserved + size > quota) {
      throw new BlobError(BlobErrorCode.QUOTA_FULL, `chunk store full: storing ${size} bytes would exceed the quota of ${quota} bytes (${bytes} stored, ${reserved} reserved by writes in flight, ${Math.max(0, quota - bytes - reserved)} free)`)
    }
    reserved += size
    const tmp = join(tmpDir, `${hash}.${process.pid}.${tmpSeq++}`)
    let handle: FileHandle | undefined
    try {
      handle = await open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o644)
      await handle.writeFile(data)
      await handle.sync()
      await handle.close()
      handle = undefined
      if (signal?.aborted === true) throw new BlobError(BlobErrorCode.ABORTED, `put ${hash}: aborted`, { cause: signal.reason })
      const final = pathOf(hash)
      await mkdirDurable(chunksDir, hash)
      await rename(tmp, final)
      await fsyncDir(join(chunksDir, hash.slice(0, 2), hash.slice(2, 4)))
      bytes += size
      count++
      return hash
    } catch (e) {
      await handle?.close().catch(() => {})
      await unlink(tmp).catch(() => {})
      throw e
    } finally {
      reserved -= size
    }
  }

  async function quarantine (hash: string, path: string, sizeBytes: number): Promise<void> {
    try {
      if (maxQuarantined === 0) await unlink(path)
      else await rename(path, join(quarantineDir, `${hash}.${Date.now()}`))
    } catch (e) {
      if (isNotFound(e)) return // a concurrent read quarantined it first
      throw e
    }
    bytes -= sizeBytes
    count--
    corruptFound++
    if (maxQuarantined > 0) {
      const kept = (await readdir(quarantineDir)).sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]))
      for (const name of kept.slice(0, Math.max(0, kept.length - maxQuarantined))) await rm(join(quarantineDir, name), { force: true })
    }
  }

  const store: ChunkStore = {
    dir,
    async put (data, opts = {}) {
      checkOpen()
      if (!(data instanceof Uint8Array)) throw invalidOption('put', 'bytes', 'must be a Uint8Array')
      if (data.length > maxChunk) throw new BlobError(BlobErrorCode.TOO_LARGE, `put: chunk of ${data.length} bytes exceeds the largest chunk, ${maxChunk} bytes`)
      if (opts.signal?.aborted === true) throw new BlobError(BlobErrorCode.ABORTED, 'put: aborted', { cause: opts.signal.reason })
      const hash = createHash('sha256').update(data).digest('hex')
      if (opts.expectedHash !== undefined && opts.expectedHash !== hash) {
        throw new BlobError(BlobErrorCode.CHUNK_CORRUPT, `put: bytes hash to ${hash}, expected ${String(opts.expectedHash)}`)
      }
      const running = inflight.get(hash)
      if (running !== undefined) return await running
      const p = write(hash, data, opts.signal).finally(() => inflight.delete(hash))
      inflight.set(hash, p)
      return await p
    },
    async get (hash) {
      checkOpen()
      checkHash(hash, 'get')
      const path = pathOf(hash)
      let handle: FileHandle
      try {
        handle = await open(path, 'r')
      } catch (e) {
        if (isNotFound(e)) throw new BlobError(BlobErrorCode.CHUNK_NOT_FOUND, `chunk ${hash} is not in this store`)
        throw e
      }
      let data: Buffer
      let size: number
      try {
        size = (await handle.stat()).size
        data = size > maxChunk ? Buffer.alloc(0) : await handle.readFile()
      } finally {
        await handle.close()
      }
      const actual = size > maxChunk || data.length !== size ? 'a different size' : createHash('sha256').update(data).digest('hex')
      if (actual !== hash) {
        await quarantine(hash, path, size)
        throw new BlobError(BlobErrorCode.CHUNK_CORRUPT, `chunk ${hash} is corrupt on disk (its ${size} bytes hash to ${actual}); it was quarantined, fetch it from another owner`)
      }
      return data
    },
    async has (hash) {
      checkOpen()
      checkHash(hash, 'has')
      try {
        await stat(pathOf(hash))
        return true
      } catch (e) {
        if (isNotFound(e)) return false
        throw e
      }
    },
    async delete (hash) {
      checkOpen()
      checkHash(hash, 'delete')
      await inflight.get(hash)?.catch(() => {})
      const path = pathOf(hash)
      let size: number
      try {
        size = (await stat(path)).size
        await unlink(path)
      } catch (e) {
        if (isNotFound(e)) return false
        throw e
      }
      bytes -= size
      count--
      return true
    },
    async list (opts = {}) {
      checkOpen()
      const limit = opts.limit ?? DEFAULT_LIST_LIMIT
      if (!isIntIn(limit, 1, MAX_LIST_LIMIT)) throw invalidOption('list', 'limit', `must be an integer in 1..${MAX_LIST_LIMIT}, got ${String(limit)}`)
      if (opts.after !== undefined && !/^[0-9a-f]{0,64}$/.test(opts.after)) throw invalidOption('list', 'after', 'must be a hash (or a prefix of one)')
      const out: ChunkEntry[] = []
      for await (const entry of walk(chunksDir, opts.after)) {
        out.push(entry)
        if (out.length === limit) return { chunks: out, next: entry.hash }
      }
      return { chunks: out }
    },
    async * inventory (opts = {}) {
      const pageSize = opts.pageSize ?? DEFAULT_LIST_LIMIT
      let after: string | undefined
      for (;;) {
        const page = await store.list({ after, limit: pageSize })
        yield * page.chunks
        if (page.next === undefined) return
        after = page.next
      }
    },
    stats: () => ({ chunks: count, bytes, reservedBytes: reserved, quotaBytes: quota, freeBytes: Math.max(0, quota - bytes - reserved), corruptFound }),
    async close () {
      closed = true
      await Promise.allSettled([...inflight.values()])
    }
  }
  return store
}

/**
 * Chunks under `chunksDir` in hash order, strictly after `after` (a hash or prefix). Reads one
 * fan-out directory at a time, so memory stays bounded by one directory's listing.
 */
async function * walk (chunksDir: string, after: string | undefined): AsyncGenerator<ChunkEntry> {
  const from = after ?? ''
  for (const a of await sortedHexDirs(chunksDir)) {
    if (a < from.slice(0, 2)) continue
    for (const b of await sortedHexDirs(join(chunksDir, a))) {
      if (a + b < from.slice(0, 4)) continue
      let names: string[]
      try {
        names = (await readdir(join(chunksDir, a, b))).filter((n) => isSha256Hex(n) && n.startsWith(a + b) && n > from).sort()
      } catch (e) {
        if (isNotFound(e)) continue
        throw e
      }
      for (const name of names) {
        try {
          yield { hash: name, sizeBytes: (await stat(join(chunksDir, a, b, name))).size }
        } catch (e) {
          if (!isNotFound(e)) throw e // deleted meanwhile
        }
      }
    }
  }
}

async function sortedHexDirs (dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => /^[0-9a-f]{2}$/.test(n)).sort()
  } catch (e) {
    if (isNotFound(e)) return []
    throw e
  }
}

/** Creates chunks/ab/cd for `hash`, fsyncing each parent whose entries changed. */
async function mkdirDurable (chunksDir: string, hash: string): Promise<void> {
  const l1 = join(chunksDir, hash.slice(0, 2))
  const l2 = join(l1, hash.slice(2, 4))
  const created = await mkdir(l2, { recursive: true })
  if (created === undefined) return
  // `created` is the first directory made: its parent (and l1, when both were new) changed.
  if (created === l1) {
    await fsyncDir(chunksDir)
    await fsyncDir(l1)
  } else {
    await fsyncDir(l1)
  }
}

async function fsyncDir (path: string): Promise<void> {
  const h = await open(path, 'r')
  try {
    await h.sync()
  } finally {
    await h.close()
  }
}
