/**
 * A node's content-addressed store of VASM program bytes, on the main thread (it never runs them).
 * Both sides of the `vasm` kind share one per node:
 *
 * - the job side (job.ts) puts the program of every task it dispatches (so this node, as a
 *   coordinator, can serve the bytes of every hash its tasks name);
 * - the worker side (actor.ts) keeps the programs it fetched, so each worker fetches a program
 *   once, and serves them too.
 *
 * Keys are always computed here (SHA-256 of the bytes), never taken from the wire. Bounded by the
 * total bytes held (LRU eviction); a program larger than the bound is not kept.
 */
import { createHash } from 'node:crypto'
import assert from 'node:assert/strict'

export interface ProgramStoreOptions {
  /** Most bytes held (sum of the programs' lengths). Default 64 MiB; 1 KiB … 4 GiB. */
  maxBytes?: number
}

export interface ProgramStore {
  /** Stores `bytes` under their SHA-256 (hex) and returns it. */
  put: (bytes: Uint8Array) => string
  /** The bytes of `hash` (most recently used afterwards), or undefined. */
  get: (hash: string) => Uint8Array | undefined
  has: (hash: string) => boolean
  stats: () => { programs: number, bytes: number, maxBytes: number }
}

export const DEFAULT_PROGRAM_STORE_BYTES = 64 * 1024 * 1024

export function sha256Hex (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

export function createProgramStore (options: ProgramStoreOptions = {}): ProgramStore {
  const maxBytes = options.maxBytes ?? DEFAULT_PROGRAM_STORE_BYTES
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1024 || maxBytes > 2 ** 32) {
    throw new TypeError(`createProgramStore: maxBytes must be an integer from 1024 to ${2 ** 32}, got ${String(maxBytes)}`)
  }
  /** Insertion order = recency (oldest first). */
  const map = new Map<string, Uint8Array>()
  let bytesHeld = 0

  function touch (hash: string, bytes: Uint8Array): void {
    map.delete(hash)
    map.set(hash, bytes)
  }

  return {
    put (bytes) {
      assert.ok(bytes instanceof Uint8Array, 'program bytes must be a Uint8Array')
      const hash = sha256Hex(bytes)
      const held = map.get(hash)
      if (held !== undefined) { touch(hash, held); return hash }
      if (bytes.length > maxBytes) return hash
      // A private copy: the caller's buffer may be a view into a larger message.
      map.set(hash, new Uint8Array(bytes))
      bytesHeld += bytes.length
      for (const [h, b] of map) {
        if (bytesHeld <= maxBytes) break
        map.delete(h)
        bytesHeld -= b.length
      }
      assert.ok(bytesHeld >= 0 && bytesHeld <= maxBytes)
      return hash
    },
    get (hash) {
      const b = map.get(hash)
      if (b !== undefined) touch(hash, b)
      return b
    },
    has: (hash) => map.has(hash),
    stats: () => ({ programs: map.size, bytes: bytesHeld, maxBytes })
  }
}
