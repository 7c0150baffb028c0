/**
 * What the remote-task comparisons send: 100-byte msgpack messages `{ i, b }`, echoed by the peer
 * (decoded and re-encoded there, as a real task message would be), matched back by id `i`.
 * Plus the two measurements every system runs the same way: throughput with N calls in flight and
 * sequential round-trip percentiles.
 */
import { pack, unpack } from 'msgpackr'
import { BenchError } from './proc.js'
import { percentile } from './harness.js'

/** Size of every echoed message, in bytes of msgpack. */
export const PAYLOAD_BYTES = 100
/** Ids start here so that msgpack encodes each as a uint32 (5 bytes) and the size never changes. */
const FIRST_ID = 2 ** 24
const LAST_ID = 2 ** 32 - 1
/** Calls one client may have outstanding; the benches use at most 256. */
export const MAX_PENDING = 1 << 16
/** Bytes a batcher may hold before it refuses more (far above 256 × 100 B). */
const MAX_BATCH_BYTES = 16 << 20

export interface EchoMessage {
  i: number
  b: string
}

const FILLER = ((): string => {
  const overhead = pack({ i: FIRST_ID, b: '' }).length
  // str8 takes one length byte more than fixstr (≤ 31 chars): account for it.
  const filler = 'x'.repeat(PAYLOAD_BYTES - overhead - 1)
  const size = pack({ i: FIRST_ID, b: filler }).length
  if (size !== PAYLOAD_BYTES) throw new BenchError('ERR_PAYLOAD', `payload is ${size} bytes, not ${PAYLOAD_BYTES}`)
  return filler
})()

/** Issues message ids; wraps before leaving the uint32 range so sizes stay constant. */
export class IdSource {
  private next = FIRST_ID
  take (): number {
    const id = this.next
    this.next = id === LAST_ID ? FIRST_ID : id + 1
    return id
  }
}

export function echoMessage (id: number): EchoMessage {
  return { i: id, b: FILLER }
}

export function encodeEcho (id: number): Uint8Array {
  return pack(echoMessage(id))
}

export function decodeEcho (bytes: Uint8Array): EchoMessage {
  const m = unpack(bytes) as Partial<EchoMessage> | null
  if (m === null || typeof m !== 'object' || typeof m.i !== 'number' || typeof m.b !== 'string') {
    throw new BenchError('ERR_BAD_ECHO', 'malformed echo message')
  }
  return m as EchoMessage
}

/** Server side of every echo baseline: decode, re-encode. */
export function echoReply (request: Uint8Array): Uint8Array {
  return pack(decodeEcho(request))
}

// ---- framing -----------------------------------------------------------------------------------

/** Unsigned varint length prefix + payload (the framing `LengthPrefixedDecoder` reads). */
export function varintFrame (payload: Uint8Array): Uint8Array {
  let len = payload.length
  let prefixBytes = 1
  for (let v = len; v >= 0x80; v = Math.floor(v / 128)) prefixBytes++
  const out = new Uint8Array(prefixBytes + payload.length)
  let o = 0
  while (len >= 0x80) { out[o++] = (len & 0x7f) | 0x80; len = Math.floor(len / 128) }
  out[o++] = len
  out.set(payload, o)
  return out
}

/** 4-byte big-endian length prefix + payload (the raw TCP floor). */
export function u32Frame (payload: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(4 + payload.length)
  out.writeUInt32BE(payload.length, 0)
  out.set(payload, 4)
  return out
}

/** Splits a byte stream of u32-length-prefixed frames. */
export class U32FrameDecoder {
  private pending: Buffer | null = null
  constructor (private readonly maxFrameBytes = 1 << 20) {}

  /** Calls `onFrame` for each complete frame in `chunk` (plus what was left over before). */
  push (chunk: Buffer, onFrame: (frame: Buffer) => void): void {
    const buf = this.pending === null ? chunk : Buffer.concat([this.pending, chunk])
    let off = 0
    while (buf.length - off >= 4) {
      const len = buf.readUInt32BE(off)
      if (len > this.maxFrameBytes) throw new BenchError('ERR_FRAME_SIZE', `frame of ${len} bytes`)
      if (buf.length - off - 4 < len) break
      onFrame(buf.subarray(off + 4, off + 4 + len))
      off += 4 + len
    }
    this.pending = off === buf.length ? null : buf.subarray(off)
  }
}

/**
 * Coalesces frames written in one event-loop turn into one write, and respects backpressure:
 * when `send` returns false nothing more is written until `onDrain` resolves.
 * `push` schedules a flush with setImmediate (clients: calls come from many promise
 * continuations); servers call `flush()` themselves at the end of their read handler.
 */
export class FrameBatcher {
  private chunks: Uint8Array[] = []
  private bytes = 0
  private scheduled = false
  private blocked = false
  private failed: Error | null = null
  private readonly flushCb = (): void => { this.scheduled = false; this.flush() }

  constructor (
    private readonly send: (buf: Uint8Array) => boolean,
    private readonly onDrain: () => Promise<void>
  ) {}

  push (frame: Uint8Array, schedule = true): void {
    if (this.failed !== null) throw this.failed
    if (this.bytes + frame.length > MAX_BATCH_BYTES) {
      throw new BenchError('ERR_BATCH_FULL', `more than ${MAX_BATCH_BYTES} bytes waiting to be sent`)
    }
    this.chunks.push(frame)
    this.bytes += frame.length
    if (schedule && !this.scheduled) {
      this.scheduled = true
      setImmediate(this.flushCb)
    }
  }

  flush (): void {
    if (this.blocked || this.chunks.length === 0 || this.failed !== null) return
    const buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.bytes)
    this.chunks = []
    this.bytes = 0
    if (!this.send(buf)) {
      this.blocked = true
      this.onDrain().then(() => {
        this.blocked = false
        this.flush()
      }, (err: unknown) => {
        this.failed = err instanceof Error ? err : new Error(String(err))
      })
    }
  }
}

// ---- clients -----------------------------------------------------------------------------------

/** A connected client of one system's echo peer. */
export interface EchoClient {
  /** Sends one 100-byte message and resolves when its echo (same id) is back. */
  echo: () => Promise<void>
  close: () => Promise<void>
}

interface Pending {
  resolve: () => void
  reject: (err: Error) => void
}

/**
 * Client half shared by the framed transports (raw TCP, raw libp2p): ids, pending calls,
 * batching. The transport feeds incoming payloads to `onPayload`.
 */
export class FramedEchoClient {
  private readonly ids = new IdSource()
  private readonly pending = new Map<number, Pending>()
  private closedError: Error | null = null

  constructor (
    private readonly batcher: FrameBatcher,
    private readonly frame: (payload: Uint8Array) => Uint8Array
  ) {}

  readonly echo = async (): Promise<void> => {
    if (this.closedError !== null) throw this.closedError
    if (this.pending.size >= MAX_PENDING) throw new BenchError('ERR_TOO_MANY_PENDING', `over ${MAX_PENDING} calls pending`)
    const id = this.ids.take()
    // Push first: if it throws, no pending entry is left to be rejected unobserved later. The echo
    // cannot arrive before the entry exists (it comes in a later event-loop turn).
    this.batcher.push(this.frame(encodeEcho(id)))
    await new Promise<void>((resolve, reject) => { this.pending.set(id, { resolve, reject }) })
  }

  onPayload (payload: Uint8Array): void {
    const m = decodeEcho(payload)
    const p = this.pending.get(m.i)
    if (p === undefined) throw new BenchError('ERR_UNEXPECTED_ECHO', `echo for unknown id ${m.i}`)
    this.pending.delete(m.i)
    p.resolve()
  }

  /** Rejects every pending call; later calls fail at once. */
  fail (err: Error): void {
    if (this.closedError === null) this.closedError = err
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
  }
}

// ---- measurements ------------------------------------------------------------------------------

export interface ThroughputOptions {
  /** Calls kept outstanding at all times. */
  inFlight: number
  /** Length of the counted window. */
  durationMs: number
  /** Time run before the window opens (JIT, connection warm-up); not counted. */
  warmupMs: number
}

/**
 * Completed calls per second with `inFlight` outstanding: `inFlight` loops each issue the next call
 * when the previous completes; completions inside the window are counted.
 */
export async function measureThroughput (call: () => Promise<unknown>, opts: ThroughputOptions): Promise<number> {
  if (!Number.isInteger(opts.inFlight) || opts.inFlight < 1 || opts.inFlight > MAX_PENDING) {
    throw new BenchError('ERR_BAD_OPTION', `inFlight must be an integer in 1..${MAX_PENDING}, got ${opts.inFlight}`)
  }
  if (!(opts.durationMs > 0) || !(opts.warmupMs >= 0)) {
    throw new BenchError('ERR_BAD_OPTION', 'durationMs must be > 0 and warmupMs ≥ 0')
  }
  const windowStart = performance.now() + opts.warmupMs
  const windowEnd = windowStart + opts.durationMs
  let counted = 0
  const loop = async (): Promise<void> => {
    for (;;) {
      await call()
      const t = performance.now()
      if (t >= windowEnd) return
      if (t >= windowStart) counted++
    }
  }
  await Promise.all(Array.from({ length: opts.inFlight }, loop))
  return counted / (opts.durationMs / 1000)
}

export interface RttOptions {
  /** Sequential calls timed. */
  count: number
  /** Sequential calls before timing starts. */
  warmup: number
}

export interface RttResult {
  p50Us: number
  p99Us: number
}

/** Sequential round trips (one call outstanding): p50 and p99 in microseconds. */
export async function measureRtt (call: () => Promise<unknown>, opts: RttOptions): Promise<RttResult> {
  if (!Number.isInteger(opts.count) || opts.count < 1) throw new BenchError('ERR_BAD_OPTION', 'count must be ≥ 1')
  for (let i = 0; i < opts.warmup; i++) await call()
  const samples = new Float64Array(opts.count)
  for (let i = 0; i < opts.count; i++) {
    const t0 = performance.now()
    await call()
    samples[i] = (performance.now() - t0) * 1000
  }
  samples.sort()
  return { p50Us: percentile(samples, 50), p99Us: percentile(samples, 99) }
}

export interface EchoSuiteOptions {
  inFlight: readonly number[]
  durationMs: number
  warmupMs: number
  rttCount: number
  rttWarmup: number
}

/**
 * The remote-task figures for one system: `perSec<N>InFlight` for each N, `rttP50Us`, `rttP99Us`.
 */
export async function runEchoSuite (call: () => Promise<unknown>, opts: EchoSuiteOptions): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const n of opts.inFlight) {
    out[`perSec${n}InFlight`] = await measureThroughput(call, { inFlight: n, durationMs: opts.durationMs, warmupMs: opts.warmupMs })
  }
  const rtt = await measureRtt(call, { count: opts.rttCount, warmup: opts.rttWarmup })
  out.rttP50Us = rtt.p50Us
  out.rttP99Us = rtt.p99Us
  return out
}
