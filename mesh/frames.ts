/**
 * Frames on `/voike/actor/1.0.0`: an unsigned varint byte length, then one msgpack value.
 *
 * The codec is plain msgpack (no records extension) so that any msgpack implementation can talk
 * to a node. Sizes are checked on both sides: the sender refuses to build an oversized frame and
 * the receiver's decoder throws before buffering one.
 */
import { Packr, Unpackr } from 'msgpackr'
import { MeshError } from './errors.js'

/** Largest varint we ever need: lengths are capped far below 2^35. */
const MAX_VARINT_BYTES = 5

const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'bigint' })
const unpackr = new Unpackr({ useRecords: false, int64AsType: 'bigint', mapsAsObjects: true })

export function varintLength (n: number): number {
  let len = 1
  while (n >= 0x80) { n = Math.floor(n / 128); len++ }
  return len
}

function writeVarint (n: number, out: Uint8Array, offset: number): number {
  while (n >= 0x80) {
    out[offset++] = (n & 0x7f) | 0x80
    n = Math.floor(n / 128)
  }
  out[offset++] = n
  return offset
}

/**
 * Encodes one message as a frame. Throws ERR_FRAME_TOO_LARGE when the payload exceeds
 * `maxFrameSizeBytes`, so an oversized message fails at its sender, not at the peer.
 */
export function encodeFrame (msg: unknown, maxFrameSizeBytes: number): Uint8Array {
  const payload = packr.pack(msg)
  if (payload.length > maxFrameSizeBytes) {
    throw new MeshError('ERR_FRAME_TOO_LARGE', `message of ${payload.length} bytes exceeds the frame limit of ${maxFrameSizeBytes} bytes`)
  }
  const frame = Buffer.allocUnsafe(varintLength(payload.length) + payload.length)
  const offset = writeVarint(payload.length, frame, 0)
  frame.set(payload, offset)
  return frame
}

export function decodePayload (payload: Uint8Array): unknown {
  return unpackr.unpack(payload)
}

/**
 * Incremental frame decoder. `push` takes whatever bytes arrived and calls `onFrame` for every
 * complete payload. It throws MeshError ERR_BAD_FRAME (bad varint, undecodable msgpack) or
 * ERR_FRAME_TOO_LARGE; after a throw the decoder must be discarded with its stream.
 *
 * Why hand-written: it decodes straight from the chunks that arrived, copying only when a frame
 * straddles two chunks, and it checks the declared length before buffering anything.
 */
export class FrameDecoder {
  /** Chunks of an incomplete frame, and how many bytes it needs in all (0 = length not known yet). */
  private pending: Buffer[] = []
  private pendingBytes = 0
  private neededBytes = 0

  constructor (private readonly maxFrameSizeBytes: number) {
    if (!Number.isInteger(maxFrameSizeBytes) || maxFrameSizeBytes <= 0) throw new MeshError('ERR_INVALID_OPTION', 'maxFrameSizeBytes must be a positive integer')
  }

  /** Bytes held while waiting for the rest of a frame. */
  get bufferedBytes (): number { return this.pendingBytes }

  push (chunk: Uint8Array, onFrame: (msg: unknown, sizeBytes: number) => void): void {
    let buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    if (this.pendingBytes > 0) {
      // Gather chunks of a large frame without re-concatenating on every arrival.
      this.pending.push(Buffer.from(buf)) // own copy: the chunk's memory belongs to the transport
      this.pendingBytes += buf.length
      if (this.neededBytes > 0 && this.pendingBytes < this.neededBytes) return
      buf = Buffer.concat(this.pending, this.pendingBytes)
      this.pending = []
      this.pendingBytes = 0
      this.neededBytes = 0
    }
    let offset = 0
    while (offset < buf.length) {
      const header = this.readLength(buf, offset)
      if (header === undefined) { this.neededBytes = 0; break } // length prefix incomplete
      const [length, start] = header
      if (start + length > buf.length) {
        this.neededBytes = start + length - offset
        break // payload incomplete
      }
      let msg: unknown
      try {
        msg = unpackr.unpack(buf.subarray(start, start + length))
      } catch (err) {
        throw new MeshError('ERR_BAD_FRAME', `undecodable msgpack frame of ${length} bytes: ${(err as Error).message}`, { cause: err })
      }
      const sizeBytes = start + length - offset
      offset = start + length
      onFrame(msg, sizeBytes)
    }
    if (offset < buf.length) {
      const rest = Buffer.from(buf.subarray(offset))
      this.pending.push(rest)
      this.pendingBytes = rest.length
    } else {
      this.neededBytes = 0
    }
  }

  /** Returns [payload length, payload start] or undefined when the varint is not complete yet. */
  private readLength (buf: Buffer, offset: number): [number, number] | undefined {
    let value = 0
    let shift = 1
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      if (offset + i >= buf.length) return undefined
      const byte = buf[offset + i]
      value += (byte & 0x7f) * shift
      if ((byte & 0x80) === 0) {
        if (i > 0 && byte === 0) throw new MeshError('ERR_BAD_FRAME', 'non-minimal varint length prefix')
        if (value === 0) throw new MeshError('ERR_BAD_FRAME', 'empty frame (length 0)')
        if (value > this.maxFrameSizeBytes) {
          throw new MeshError('ERR_FRAME_TOO_LARGE', `incoming frame of ${value} bytes exceeds the limit of ${this.maxFrameSizeBytes} bytes`)
        }
        return [value, offset + i + 1]
      }
      shift *= 128
    }
    throw new MeshError('ERR_BAD_FRAME', `length prefix longer than ${MAX_VARINT_BYTES} bytes`)
  }
}
