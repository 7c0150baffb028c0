/**
 * The blob manifest: what a blob is made of, and the blob's id.
 *
 * ```
 * { version: 1, size, sha256,                      // the whole blob
 *   chunkSizeBytes,                                // every chunk but the last has this size
 *   redundancy: { mode: 'replicate', r } | { mode: 'rs', k, m },
 *   chunks: [{ index, sizeBytes, sha256,            // the chunk's plain bytes
 *              pieces: [{ hash, owner? }] }],       // r copies, or k data + m parity shards
 *   createdAtMs }
 * ```
 *
 * Pieces: with replication a chunk has r pieces, each the whole chunk (hash = the chunk's sha256),
 * on r members. With Reed-Solomon k+m it has k+m pieces: the chunk cut into k shards of
 * ceil(sizeBytes / k) bytes (the last zero-padded) and m parity shards (reed-solomon.ts), each
 * named by its own sha256. Piece i of a chunk is shard i.
 *
 * The id: sha256 of the canonical JSON of the manifest's *content*, i.e. without `createdAtMs`
 * and without the pieces' `owner`. Placement changes (repair moves pieces when members die or
 * join) and must not change the id; the content cannot change without changing the bytes. So the
 * same bytes with the same chunk size and redundancy always get the same id (a second upload
 * is the same blob). Canonical JSON: object keys sorted, no whitespace, integers only.
 *
 * Parsing is strict: unknown fields, wrong types, sizes that do not add up, the wrong number of
 * pieces are all refused with ERR_MANIFEST_INVALID naming the field (`chunks[3].pieces[1].hash`).
 */
import { createHash } from 'node:crypto'
import { BlobError, BlobErrorCode, isIntIn, isSha256Hex } from './errors.js'

export const MANIFEST_VERSION = 1
export const DEFAULT_CHUNK_SIZE_BYTES = 1 << 20
export const MIN_CHUNK_SIZE_BYTES = 4 << 10
export const MAX_CHUNK_SIZE_BYTES = 16 << 20
/** Most chunks of one blob: bounds the manifest (~36 MB of JSON at rs=4+2) and its handling. */
export const MAX_CHUNKS = 1 << 16
/** Largest blob: 1 TiB (only reachable with chunks of 16 MiB; 64 GiB at the default 1 MiB). */
export const MAX_BLOB_SIZE_BYTES = 2 ** 40
/** Largest manifest text `parseManifest` accepts. */
export const MAX_MANIFEST_BYTES = 64 << 20
/** Most replicas of a chunk. */
export const MAX_REPLICAS = 16
/** Most pieces of a Reed-Solomon stripe (k + m): wider stripes make no sense on a mesh. */
export const MAX_RS_SHARDS = 32
/** Longest member id in `owner`. */
export const MAX_OWNER_LENGTH = 256
/** SHA-256 of no bytes: the whole-blob hash of an empty blob. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'

export type Redundancy = { mode: 'replicate', r: number } | { mode: 'rs', k: number, m: number }

export const DEFAULT_REDUNDANCY: Redundancy = Object.freeze({ mode: 'replicate', r: 3 })
export const DEFAULT_RS: Redundancy = Object.freeze({ mode: 'rs', k: 4, m: 2 })

export interface Piece {
  /** sha256 of the piece's bytes (the chunk itself when replicated). */
  hash: string
  /** The member holding it; absent while unplaced (repair places it). Not part of the id. */
  owner?: string
}

export interface ManifestChunk {
  index: number
  sizeBytes: number
  sha256: string
  pieces: Piece[]
}

export interface Manifest {
  version: number
  size: number
  sha256: string
  chunkSizeBytes: number
  redundancy: Redundancy
  chunks: ManifestChunk[]
  /** When the blob was stored. Not part of the id. */
  createdAtMs: number
}

function invalid (field: string, why: string): BlobError {
  return new BlobError(BlobErrorCode.MANIFEST_INVALID, `manifest: ${field} ${why}`)
}

function redundancyError (why: string): BlobError {
  return new BlobError(BlobErrorCode.REDUNDANCY_INVALID, `x-voike-redundancy: ${why}`)
}

// ---------------------------------------------------------------- redundancy

/** Pieces per chunk: r, or k + m. */
export function piecesPerChunk (r: Redundancy): number {
  return r.mode === 'replicate' ? r.r : r.k + r.m
}

/** `r=3` or `rs=4+2`: the header format. */
export function formatRedundancy (r: Redundancy): string {
  return r.mode === 'replicate' ? `r=${r.r}` : `rs=${r.k}+${r.m}`
}

/**
 * Parses an `x-voike-redundancy` header: `r=N` (1..16 replicas) or `rs=K+M` (K ≥ 1, M ≥ 0,
 * K + M ≤ 32). Case and surrounding spaces are ignored. An absent or empty header gives the
 * default, r=3.
 */
export function parseRedundancyHeader (value: string | undefined | null): Redundancy {
  if (value === undefined || value === null) return { ...DEFAULT_REDUNDANCY }
  if (typeof value !== 'string') throw redundancyError(`expected a string, got ${typeof value}`)
  const text = value.trim().toLowerCase()
  if (text === '') return { ...DEFAULT_REDUNDANCY }
  if (text.length > 32) throw redundancyError(`value too long (${text.length} characters), expected "r=N" or "rs=K+M"`)
  const rep = /^r\s*=\s*(\d+)$/.exec(text)
  if (rep !== null) return checkRedundancy({ mode: 'replicate', r: Number(rep[1]) }, redundancyError)
  const rs = /^rs\s*=\s*(\d+)\s*\+\s*(\d+)$/.exec(text)
  if (rs !== null) return checkRedundancy({ mode: 'rs', k: Number(rs[1]), m: Number(rs[2]) }, redundancyError)
  throw redundancyError(`expected "r=N" (replicas) or "rs=K+M" (Reed-Solomon), got ${JSON.stringify(value.slice(0, 40))}`)
}

function checkRedundancy (r: Redundancy, fail: (why: string) => BlobError): Redundancy {
  if (r.mode === 'replicate') {
    if (!isIntIn(r.r, 1, MAX_REPLICAS)) throw fail(`r must be an integer in 1..${MAX_REPLICAS}, got ${String(r.r)}`)
    return { mode: 'replicate', r: r.r }
  }
  if (!isIntIn(r.k, 1, MAX_RS_SHARDS)) throw fail(`k must be an integer in 1..${MAX_RS_SHARDS}, got ${String(r.k)}`)
  if (!isIntIn(r.m, 0, MAX_RS_SHARDS)) throw fail(`m must be an integer in 0..${MAX_RS_SHARDS}, got ${String(r.m)}`)
  if (r.k + r.m > MAX_RS_SHARDS) throw fail(`k+m must be at most ${MAX_RS_SHARDS}, got ${r.k}+${r.m}=${r.k + r.m}`)
  return { mode: 'rs', k: r.k, m: r.m }
}

// ---------------------------------------------------------------- canonical JSON and the id

/**
 * JSON with object keys sorted by code unit and no whitespace. Only plain data: strings, safe
 * integers, booleans, null, arrays, plain objects; `undefined` object fields are omitted.
 */
export function canonicalJson (value: unknown): string {
  if (value === null) return 'null'
  switch (typeof value) {
    case 'string': return JSON.stringify(value)
    case 'boolean': return value ? 'true' : 'false'
    case 'number':
      if (!Number.isSafeInteger(value)) throw new TypeError(`canonicalJson: only safe integers, got ${value}`)
      return String(value)
    case 'object': {
      if (Array.isArray(value)) return '[' + value.map(canonicalJson).join(',') + ']'
      const keys = Object.keys(value).filter((k) => (value as Record<string, unknown>)[k] !== undefined).sort()
      return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonicalJson((value as Record<string, unknown>)[k])).join(',') + '}'
    }
    default: throw new TypeError(`canonicalJson: cannot encode a ${typeof value}`)
  }
}

/** The part of the manifest the id covers: no createdAtMs, no owners. */
export function manifestContent (m: Manifest): Omit<Manifest, 'createdAtMs'> {
  return {
    version: m.version,
    size: m.size,
    sha256: m.sha256,
    chunkSizeBytes: m.chunkSizeBytes,
    redundancy: m.redundancy.mode === 'replicate' ? { mode: 'replicate', r: m.redundancy.r } : { mode: 'rs', k: m.redundancy.k, m: m.redundancy.m },
    chunks: m.chunks.map((c) => ({ index: c.index, sizeBytes: c.sizeBytes, sha256: c.sha256, pieces: c.pieces.map((p) => ({ hash: p.hash })) }))
  }
}

/** The blob id: sha256 (hex) of the canonical JSON of the manifest content. */
export function blobId (m: Manifest): string {
  return createHash('sha256').update(canonicalJson(manifestContent(m))).digest('hex')
}

/** The full manifest (with createdAtMs and placement) as canonical JSON. */
export function encodeManifest (m: Manifest): string {
  return canonicalJson(m)
}

// ---------------------------------------------------------------- building and parsing

export interface ChunkCount {
  chunks: number
  lastSizeBytes: number
}

/** How `size` bytes split into chunks of `chunkSizeBytes`: an empty blob has no chunks. */
export function chunkCount (size: number, chunkSizeBytes: number): ChunkCount {
  if (size === 0) return { chunks: 0, lastSizeBytes: 0 }
  const chunks = Math.ceil(size / chunkSizeBytes)
  return { chunks, lastSizeBytes: size - (chunks - 1) * chunkSizeBytes }
}

/** Validates a chunk size: an integer in 4 KiB..16 MiB. */
export function checkChunkSize (chunkSizeBytes: unknown, field = 'chunkSizeBytes'): number {
  if (!isIntIn(chunkSizeBytes, MIN_CHUNK_SIZE_BYTES, MAX_CHUNK_SIZE_BYTES)) {
    throw new BlobError(BlobErrorCode.INVALID_OPTION, `${field} must be an integer in ${MIN_CHUNK_SIZE_BYTES}..${MAX_CHUNK_SIZE_BYTES}, got ${String(chunkSizeBytes)}`)
  }
  return chunkSizeBytes
}

/** Assembles a manifest from its parts and validates it (so a bug cannot produce a bad one). */
export function buildManifest (fields: Omit<Manifest, 'version'>): Manifest {
  return validateManifest({ version: MANIFEST_VERSION, ...fields })
}

/**
 * Parses manifest JSON (or an already parsed value) and validates it. With `expectedId`, also
 * checks that the content hashes to that id (a manifest fetched from a peer proves itself).
 */
export function parseManifest (input: string | unknown, options: { expectedId?: string } = {}): Manifest {
  let value = input
  if (typeof input === 'string') {
    if (input.length > MAX_MANIFEST_BYTES) throw invalid('text', `is ${input.length} characters, at most ${MAX_MANIFEST_BYTES}`)
    try {
      value = JSON.parse(input)
    } catch (e) {
      throw invalid('text', `is not JSON: ${(e as Error).message}`)
    }
  }
  const m = validateManifest(value)
  if (options.expectedId !== undefined) {
    const id = blobId(m)
    if (id !== options.expectedId) throw invalid('content', `hashes to ${id}, expected ${options.expectedId}`)
  }
  return m
}

const TOP_FIELDS = ['version', 'size', 'sha256', 'chunkSizeBytes', 'redundancy', 'chunks', 'createdAtMs']
const CHUNK_FIELDS = ['index', 'sizeBytes', 'sha256', 'pieces']

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function checkFields (v: Record<string, unknown>, allowed: ReadonlyArray<string>, where: string): void {
  for (const k of Object.keys(v)) if (!allowed.includes(k)) throw invalid(where === '' ? k : `${where}.${k}`, 'is not a known field')
}

/** Validates a manifest value field by field; returns a clean copy (no extra fields). */
export function validateManifest (v: unknown): Manifest {
  if (!isObject(v)) throw invalid('(root)', 'must be an object')
  checkFields(v, TOP_FIELDS, '')
  if (v.version !== MANIFEST_VERSION) throw invalid('version', `must be ${MANIFEST_VERSION}, got ${JSON.stringify(v.version)}`)
  if (!isIntIn(v.size, 0, MAX_BLOB_SIZE_BYTES)) throw invalid('size', `must be an integer in 0..${MAX_BLOB_SIZE_BYTES}, got ${JSON.stringify(v.size)}`)
  if (!isSha256Hex(v.sha256)) throw invalid('sha256', 'must be 64 lowercase hex digits')
  if (!isIntIn(v.chunkSizeBytes, MIN_CHUNK_SIZE_BYTES, MAX_CHUNK_SIZE_BYTES)) {
    throw invalid('chunkSizeBytes', `must be an integer in ${MIN_CHUNK_SIZE_BYTES}..${MAX_CHUNK_SIZE_BYTES}, got ${JSON.stringify(v.chunkSizeBytes)}`)
  }
  const redundancy = validateRedundancy(v.redundancy)
  if (!isIntIn(v.createdAtMs, 0, Number.MAX_SAFE_INTEGER)) throw invalid('createdAtMs', `must be a non-negative integer, got ${JSON.stringify(v.createdAtMs)}`)
  if (!Array.isArray(v.chunks)) throw invalid('chunks', 'must be an array')
  const { chunks: expected, lastSizeBytes } = chunkCount(v.size, v.chunkSizeBytes)
  if (expected > MAX_CHUNKS) throw invalid('size', `needs ${expected} chunks of ${v.chunkSizeBytes} bytes, at most ${MAX_CHUNKS}`)
  if (v.chunks.length !== expected) throw invalid('chunks', `has ${v.chunks.length} entries, size ${v.size} in chunks of ${v.chunkSizeBytes} needs ${expected}`)
  if (v.size === 0 && v.sha256 !== EMPTY_SHA256) throw invalid('sha256', 'of an empty blob must be the sha256 of no bytes')
  const pieces = piecesPerChunk(redundancy)
  const chunks = v.chunks.map((c, i) => validateChunk(c, i, i === expected - 1 ? lastSizeBytes : v.chunkSizeBytes as number, pieces, redundancy))
  return { version: MANIFEST_VERSION, size: v.size, sha256: v.sha256, chunkSizeBytes: v.chunkSizeBytes, redundancy, chunks, createdAtMs: v.createdAtMs }
}

function validateRedundancy (v: unknown): Redundancy {
  const fail = (why: string): BlobError => invalid('redundancy', why)
  if (!isObject(v)) throw fail('must be an object {mode, ...}')
  if (v.mode === 'replicate') {
    checkFields(v, ['mode', 'r'], 'redundancy')
    return checkRedundancy({ mode: 'replicate', r: v.r as number }, (why) => invalid('redundancy.r', why.replace(/^r /, '')))
  }
  if (v.mode === 'rs') {
    checkFields(v, ['mode', 'k', 'm'], 'redundancy')
    return checkRedundancy({ mode: 'rs', k: v.k as number, m: v.m as number }, (why) => invalid('redundancy', why))
  }
  throw invalid('redundancy.mode', `must be "replicate" or "rs", got ${JSON.stringify(v.mode)}`)
}

function validateChunk (c: unknown, i: number, sizeBytes: number, pieces: number, redundancy: Redundancy): ManifestChunk {
  const at = `chunks[${i}]`
  if (!isObject(c)) throw invalid(at, 'must be an object')
  checkFields(c, CHUNK_FIELDS, at)
  if (c.index !== i) throw invalid(`${at}.index`, `must be ${i}, got ${JSON.stringify(c.index)}`)
  if (c.sizeBytes !== sizeBytes) throw invalid(`${at}.sizeBytes`, `must be ${sizeBytes}, got ${JSON.stringify(c.sizeBytes)}`)
  if (!isSha256Hex(c.sha256)) throw invalid(`${at}.sha256`, 'must be 64 lowercase hex digits')
  if (!Array.isArray(c.pieces)) throw invalid(`${at}.pieces`, 'must be an array')
  if (c.pieces.length !== pieces) throw invalid(`${at}.pieces`, `has ${c.pieces.length} entries, ${formatRedundancy(redundancy)} needs ${pieces}`)
  const out: Piece[] = c.pieces.map((p, j) => {
    const pat = `${at}.pieces[${j}]`
    if (!isObject(p)) throw invalid(pat, 'must be an object {hash, owner?}')
    checkFields(p, ['hash', 'owner'], pat)
    if (!isSha256Hex(p.hash)) throw invalid(`${pat}.hash`, 'must be 64 lowercase hex digits')
    if (redundancy.mode === 'replicate' && p.hash !== c.sha256) throw invalid(`${pat}.hash`, 'of a replica must equal the chunk sha256')
    if (p.owner === undefined) return { hash: p.hash }
    if (typeof p.owner !== 'string' || p.owner === '' || p.owner.length > MAX_OWNER_LENGTH) {
      throw invalid(`${pat}.owner`, `must be a member id of 1..${MAX_OWNER_LENGTH} characters`)
    }
    return { hash: p.hash, owner: p.owner }
  })
  return { index: i, sizeBytes, sha256: c.sha256, pieces: out }
}
