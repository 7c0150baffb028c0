/**
 * Cuts a byte stream into fixed-size chunks without holding more than one chunk: the upload path
 * pulls a chunk, stores it, and only then pulls the next, so a slow store slows the sender
 * (backpressure) instead of growing memory. The whole-blob SHA-256 and size run alongside.
 */
import { createHash } from 'node:crypto'
import { BlobError, BlobErrorCode } from './errors.js'
import { checkChunkSize, MAX_BLOB_SIZE_BYTES } from './manifest.js'

export interface Chunk {
  /** 0, 1, 2, ... */
  index: number
  /** Offset of the chunk's first byte in the blob. */
  offset: number
  /** The chunk's bytes: a fresh buffer the consumer owns. All but the last are full. */
  bytes: Uint8Array
  /** sha256 (hex) of `bytes`. */
  sha256: string
}

export interface ChunkStreamSummary {
  sizeBytes: number
  /** sha256 (hex) of the whole blob. */
  sha256: string
  chunks: number
}

export interface ChunkStreamOptions {
  /** Refuse (ERR_TOO_LARGE) a stream longer than this; default 1 TiB. */
  maxSizeBytes?: number
  /** Stops the iteration with ERR_ABORTED. */
  signal?: AbortSignal
}

export interface Chunker extends AsyncIterable<Chunk> {
  /** Size and hash of the whole stream; only once iteration has finished (else throws). */
  summary: () => ChunkStreamSummary
}

/** Chunks of `chunkSizeBytes` (4 KiB..16 MiB) from `source`, e.g. a Readable or an HTTP body. */
export function chunkStream (source: AsyncIterable<Uint8Array>, chunkSizeBytes: number, options: ChunkStreamOptions = {}): Chunker {
  checkChunkSize(chunkSizeBytes)
  const maxSizeBytes = options.maxSizeBytes ?? MAX_BLOB_SIZE_BYTES
  if (!Number.isSafeInteger(maxSizeBytes) || maxSizeBytes < 0) {
    throw new BlobError(BlobErrorCode.INVALID_OPTION, `chunkStream: maxSizeBytes must be a non-negative integer, got ${String(maxSizeBytes)}`)
  }
  let result: ChunkStreamSummary | undefined
  let started = false

  async function * run (): AsyncGenerator<Chunk> {
    const whole = createHash('sha256')
    let total = 0
    let index = 0
    let buf = new Uint8Array(chunkSizeBytes)
    let fill = 0
    const emit = (): Chunk => {
      const bytes = fill === chunkSizeBytes ? buf : buf.slice(0, fill)
      const chunk = { index, offset: index * chunkSizeBytes, bytes, sha256: createHash('sha256').update(bytes).digest('hex') }
      index++
      buf = new Uint8Array(chunkSizeBytes)
      fill = 0
      return chunk
    }
    for await (const piece of source) {
      if (options.signal?.aborted === true) throw new BlobError(BlobErrorCode.ABORTED, 'chunkStream: aborted', { cause: options.signal.reason })
      if (!(piece instanceof Uint8Array)) throw new BlobError(BlobErrorCode.INVALID_OPTION, `chunkStream: the source yielded a ${typeof piece}, expected bytes`)
      total += piece.length
      if (total > maxSizeBytes) throw new BlobError(BlobErrorCode.TOO_LARGE, `chunkStream: the stream exceeds ${maxSizeBytes} bytes`)
      whole.update(piece)
      let at = 0
      while (at < piece.length) {
        const n = Math.min(chunkSizeBytes - fill, piece.length - at)
        buf.set(piece.subarray(at, at + n), fill)
        fill += n
        at += n
        if (fill === chunkSizeBytes) yield emit()
      }
    }
    if (fill > 0) yield emit()
    result = { sizeBytes: total, sha256: whole.digest('hex'), chunks: index }
  }

  return {
    [Symbol.asyncIterator] () {
      if (started) throw new BlobError(BlobErrorCode.INVALID_OPTION, 'chunkStream: a chunker can be iterated only once')
      started = true
      return run()
    },
    summary () {
      if (result === undefined) throw new BlobError(BlobErrorCode.INVALID_OPTION, 'chunkStream: summary() before the stream was fully read')
      return result
    }
  }
}
