/**
 * Reed-Solomon k+m erasure codec over GF(2^8), systematic, compatible with Backblaze
 * JavaReedSolomon and klauspost/reedsolomon (their default matrix): the same parity bytes for the
 * same data shards, so either can decode what the other encoded.
 *
 * Construction: V is the (k+m)×k Vandermonde matrix V[r][c] = r^c; the encoding matrix is
 * E = V · (top k×k of V)^-1. Its top k rows are the identity (data shards are stored as they
 * are), and any k of its rows are independent (they are V's rows times one invertible matrix),
 * so any k shards rebuild the rest: invert the k rows of the shards at hand, multiply.
 *
 * Speed: each parity byte is a sum of k products coefficient·data byte. The loops read the data
 * four bytes at a time as one uint32 and do four lookups into the coefficient's 256-byte row of
 * the product table, writing one uint32; each byte stays in its own lane, so this is independent
 * of the platform's byte order. Shards not 4-byte aligned, and the tail, go byte by byte.
 *
 * Decoding matrices are cached per erasure pattern (which k shards were used), LRU-bounded.
 */
import assert from 'node:assert/strict'
import { BlobError, BlobErrorCode, invalidOption, isIntIn } from './errors.js'
import { invert, mulRow, multiply, pickRows, vandermonde, type Matrix } from './gf256.js'

/** k + m at most 256: the Vandermonde rows are the 256 distinct field elements. */
export const MAX_TOTAL_SHARDS = 256
/** Default bound of cached decoding matrices (each is at most k×k bytes). */
export const DEFAULT_MAX_CACHED_DECODERS = 64
/** One shard at most 1 GiB: the codec works on whole shards in memory. */
export const MAX_SHARD_SIZE_BYTES = 1 << 30

export interface ReedSolomonOptions {
  /** k: data shards, ≥ 1. */
  dataShards: number
  /** m: parity shards, ≥ 0; k + m ≤ 256. Any m shards may be lost. */
  parityShards: number
  /** Decoding matrices kept, one per erasure pattern seen (default 64, 1..4096). */
  maxCachedDecoders?: number
}

/** A shard slot in `reconstruct`: present bytes, or null/undefined when lost. */
export type MaybeShard = Uint8Array | null | undefined

export interface ReedSolomon {
  readonly dataShards: number
  readonly parityShards: number
  readonly totalShards: number
  /** The (k+m)×k encoding matrix (a copy). */
  encodingMatrix: () => Matrix
  /**
   * Computes the m parity shards from the k data shards: `shards` holds all k+m, all the same
   * length; parity shards are overwritten.
   */
  encode: (shards: Uint8Array[]) => void
  /** True when the parity shards match the data shards. */
  verify: (shards: Uint8Array[]) => boolean
  /**
   * Rebuilds the missing shards in place (fresh arrays in the null slots). With `dataOnly`, only
   * the data shards are rebuilt. ERR_TOO_FEW_SHARDS when fewer than k are present.
   */
  reconstruct: (shards: MaybeShard[], options?: { dataOnly?: boolean }) => void
  /** Size of each shard for `sizeBytes` of data: ceil(sizeBytes / k), at least 1. */
  shardSizeFor: (sizeBytes: number) => number
  /** Cuts `data` into k data shards (last padded with zeros) and m parity shards, encoded. */
  split: (data: Uint8Array) => Uint8Array[]
  /** The first `sizeBytes` bytes of the data shards (rebuilding lost data shards first). */
  join: (shards: MaybeShard[], sizeBytes: number) => Uint8Array
  /** Decoding matrices currently cached. */
  cachedDecoders: () => number
}

export function createReedSolomon (options: ReedSolomonOptions): ReedSolomon {
  const where = 'createReedSolomon'
  const k = options.dataShards
  const m = options.parityShards
  if (!isIntIn(k, 1, MAX_TOTAL_SHARDS)) throw invalidOption(where, 'dataShards', `must be an integer in 1..${MAX_TOTAL_SHARDS}, got ${String(k)}`)
  if (!isIntIn(m, 0, MAX_TOTAL_SHARDS)) throw invalidOption(where, 'parityShards', `must be an integer in 0..${MAX_TOTAL_SHARDS}, got ${String(m)}`)
  if (k + m > MAX_TOTAL_SHARDS) throw invalidOption(where, 'dataShards + parityShards', `must be at most ${MAX_TOTAL_SHARDS}, got ${k + m}`)
  const maxCached = options.maxCachedDecoders ?? DEFAULT_MAX_CACHED_DECODERS
  if (!isIntIn(maxCached, 1, 4096)) throw invalidOption(where, 'maxCachedDecoders', `must be an integer in 1..4096, got ${String(maxCached)}`)
  const n = k + m
  const matrix = buildEncodingMatrix(k, n)
  const parityRows = matrix.slice(k)
  /** Erasure pattern (the k shard indices used, comma-joined) → inverse of their rows. */
  const decoders = new Map<string, Matrix>()

  function decoderFor (used: number[]): Matrix {
    const key = used.join(',')
    const hit = decoders.get(key)
    if (hit !== undefined) {
      decoders.delete(key) // re-insert: Map order is the LRU order
      decoders.set(key, hit)
      return hit
    }
    const inverse = invert(pickRows(matrix, used))
    decoders.set(key, inverse)
    if (decoders.size > maxCached) decoders.delete(decoders.keys().next().value as string)
    return inverse
  }

  const codec: ReedSolomon = {
    dataShards: k,
    parityShards: m,
    totalShards: n,
    encodingMatrix: () => matrix.map((r) => Uint8Array.from(r)),
    encode (shards) {
      const size = checkShape(shards, n, 'encode')
      codeShards(parityRows, shards.slice(0, k), shards.slice(k), size)
    },
    verify (shards) {
      const size = checkShape(shards, n, 'verify')
      const fresh = Array.from({ length: m }, () => new Uint8Array(size))
      codeShards(parityRows, shards.slice(0, k), fresh, size)
      for (let p = 0; p < m; p++) {
        if (!equalBytes(fresh[p], shards[k + p])) return false
      }
      return true
    },
    reconstruct (shards, opts = {}) {
      if (!Array.isArray(shards) || shards.length !== n) {
        throw new BlobError(BlobErrorCode.SHARD_SHAPE, `reconstruct: expected ${n} shard slots (k=${k} + m=${m}), got ${Array.isArray(shards) ? shards.length : typeof shards}`)
      }
      const present: number[] = []
      let size = -1
      for (let i = 0; i < n; i++) {
        const s = shards[i]
        if (s === null || s === undefined) continue
        if (!(s instanceof Uint8Array)) throw new BlobError(BlobErrorCode.SHARD_SHAPE, `reconstruct: shard ${i} is not a Uint8Array`)
        if (size === -1) size = s.length
        else if (s.length !== size) throw new BlobError(BlobErrorCode.SHARD_SHAPE, `reconstruct: shard ${i} has ${s.length} bytes, others ${size}`)
        present.push(i)
      }
      if (present.length < k) {
        throw new BlobError(BlobErrorCode.TOO_FEW_SHARDS, `reconstruct: ${present.length} of ${n} shards present, at least ${k} needed (k=${k}, m=${m}): at most ${m} may be lost, ${n - present.length} are`)
      }
      if (present.length === n) return
      const missingData: number[] = []
      for (let i = 0; i < k; i++) if (shards[i] == null) missingData.push(i)
      if (missingData.length > 0) {
        // Any k present shards will do; the lowest indices keep data shards (identity rows).
        const used = present.slice(0, k)
        const inverse = decoderFor(used)
        const inputs = used.map((i) => shards[i] as Uint8Array)
        const outputs = missingData.map(() => new Uint8Array(size))
        codeShards(missingData.map((d) => inverse[d]), inputs, outputs, size)
        missingData.forEach((d, j) => { shards[d] = outputs[j] })
      }
      if (opts.dataOnly === true) return
      const missingParity: number[] = []
      for (let p = k; p < n; p++) if (shards[p] == null) missingParity.push(p)
      if (missingParity.length === 0) return
      const outputs = missingParity.map(() => new Uint8Array(size))
      codeShards(missingParity.map((p) => matrix[p]), shards.slice(0, k) as Uint8Array[], outputs, size)
      missingParity.forEach((p, j) => { shards[p] = outputs[j] })
    },
    shardSizeFor (sizeBytes) {
      if (!isIntIn(sizeBytes, 0, MAX_SHARD_SIZE_BYTES * k)) throw new BlobError(BlobErrorCode.TOO_LARGE, `shardSizeFor: sizeBytes must be an integer in 0..${MAX_SHARD_SIZE_BYTES * k}, got ${String(sizeBytes)}`)
      return Math.max(1, Math.ceil(sizeBytes / k))
    },
    split (data) {
      const size = codec.shardSizeFor(data.length)
      // One allocation for all shards; each starts at a multiple of 4 when size is (fast path).
      const stride = (size + 3) & ~3
      const backing = new Uint8Array(stride * n)
      backing.set(data, 0)
      const shards: Uint8Array[] = []
      for (let i = 0; i < n; i++) shards.push(backing.subarray(i * stride, i * stride + size))
      if (stride !== size) {
        // Data was laid out contiguously; spread it to the strided shards (rare: unaligned size).
        for (let i = k - 1; i >= 1; i--) shards[i].set(backing.slice(i * size, Math.min(data.length, (i + 1) * size)))
        for (let i = 0; i < k; i++) {
          const end = Math.max(0, Math.min(size, data.length - i * size))
          shards[i].fill(0, end)
        }
      }
      codeShards(parityRows, shards.slice(0, k), shards.slice(k), size)
      return shards
    },
    join (shards, sizeBytes) {
      if (!Array.isArray(shards) || shards.length !== n) throw new BlobError(BlobErrorCode.SHARD_SHAPE, `join: expected ${n} shard slots, got ${Array.isArray(shards) ? shards.length : typeof shards}`)
      const working = shards.slice()
      codec.reconstruct(working, { dataOnly: true })
      const size = (working[0] as Uint8Array).length
      if (!isIntIn(sizeBytes, 0, size * k)) throw new BlobError(BlobErrorCode.SHARD_SHAPE, `join: sizeBytes ${String(sizeBytes)} does not fit in ${k} shards of ${size} bytes`)
      const out = new Uint8Array(sizeBytes)
      for (let i = 0; i < k && i * size < sizeBytes; i++) {
        const s = working[i] as Uint8Array
        out.set(s.subarray(0, Math.min(size, sizeBytes - i * size)), i * size)
      }
      return out
    },
    cachedDecoders: () => decoders.size
  }
  return codec
}

/** E = V · (top k×k of V)^-1, V the n×k Vandermonde matrix (as Backblaze and klauspost). */
export function buildEncodingMatrix (k: number, n: number): Matrix {
  const v = vandermonde(n, k)
  const topInverse = invert(v.slice(0, k))
  const e = multiply(v, topInverse)
  for (let r = 0; r < k; r++) {
    for (let c = 0; c < k; c++) assert.equal(e[r][c], r === c ? 1 : 0, 'encoding matrix is not systematic')
  }
  return e
}

function checkShape (shards: Uint8Array[], n: number, op: string): number {
  if (!Array.isArray(shards) || shards.length !== n) {
    throw new BlobError(BlobErrorCode.SHARD_SHAPE, `${op}: expected ${n} shards, got ${Array.isArray(shards) ? shards.length : typeof shards}`)
  }
  const size = shards[0]?.length
  for (let i = 0; i < n; i++) {
    const s = shards[i]
    if (!(s instanceof Uint8Array)) throw new BlobError(BlobErrorCode.SHARD_SHAPE, `${op}: shard ${i} is not a Uint8Array`)
    if (s.length !== size) throw new BlobError(BlobErrorCode.SHARD_SHAPE, `${op}: shard ${i} has ${s.length} bytes, shard 0 has ${size}`)
  }
  if (size > MAX_SHARD_SIZE_BYTES) throw new BlobError(BlobErrorCode.TOO_LARGE, `${op}: shards of ${size} bytes exceed ${MAX_SHARD_SIZE_BYTES}`)
  return size
}

function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * outputs[o] = Σ_j rows[o][j] · inputs[j] over the first `size` bytes. Inputs and outputs must
 * not overlap. The hot loop of the codec.
 */
export function codeShards (rows: ReadonlyArray<Uint8Array>, inputs: ReadonlyArray<Uint8Array>, outputs: ReadonlyArray<Uint8Array>, size: number): void {
  assert.equal(rows.length, outputs.length)
  for (let o = 0; o < outputs.length; o++) {
    const coefficients = rows[o]
    assert.equal(coefficients.length, inputs.length)
    const out = outputs[o]
    for (let j = 0; j < inputs.length; j++) mulAddInto(out, inputs[j], coefficients[j], size, j === 0)
  }
}

/** out = c·input (when `set`) or out ^= c·input, over `size` bytes. */
function mulAddInto (out: Uint8Array, input: Uint8Array, c: number, size: number, set: boolean): void {
  const t = mulRow(c)
  let head = 0
  if ((out.byteOffset & 3) === 0 && (input.byteOffset & 3) === 0) {
    const words = size >>> 2
    const o32 = new Uint32Array(out.buffer, out.byteOffset, words)
    const i32 = new Uint32Array(input.buffer, input.byteOffset, words)
    if (set) {
      for (let w = 0; w < words; w++) {
        const v = i32[w]
        o32[w] = t[v & 255] | (t[(v >>> 8) & 255] << 8) | (t[(v >>> 16) & 255] << 16) | (t[v >>> 24] << 24)
      }
    } else {
      for (let w = 0; w < words; w++) {
        const v = i32[w]
        o32[w] ^= t[v & 255] | (t[(v >>> 8) & 255] << 8) | (t[(v >>> 16) & 255] << 16) | (t[v >>> 24] << 24)
      }
    }
    head = words << 2
  }
  if (set) for (let i = head; i < size; i++) out[i] = t[input[i]]
  else for (let i = head; i < size; i++) out[i] ^= t[input[i]]
}
