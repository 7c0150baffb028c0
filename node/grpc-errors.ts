/**
 * Structured gRPC error details (the "richer error model"): besides the status message, an
 * error that names a field carries a `google.rpc.Status` in the `grpc-status-details-bin`
 * trailer, with one `google.rpc.BadRequest` detail listing the field violation. Clients read it
 * with their stock helpers (Go `status.FromError(err).Details()`, Python
 * `grpc_status.rpc_status.from_call`, grpc-gateway's error body), so a program learns which
 * field was wrong without parsing the message.
 *
 * The three messages are tiny and fixed, so they are encoded here by hand (protobuf wire
 * format) instead of pulling a protobuf runtime into the server:
 *   google.rpc.Status     { int32 code = 1; string message = 2; repeated google.protobuf.Any details = 3; }
 *   google.protobuf.Any   { string type_url = 1; bytes value = 2; }
 *   google.rpc.BadRequest { repeated FieldViolation field_violations = 1; }
 *   FieldViolation        { string field = 1; string description = 2; }
 */
import assert from 'node:assert/strict'
import { Metadata } from '@grpc/grpc-js'

export const STATUS_DETAILS_KEY = 'grpc-status-details-bin'
export const BAD_REQUEST_TYPE_URL = 'type.googleapis.com/google.rpc.BadRequest'
/**
 * Longest message or description put in the details, in characters. Clients cap the size of
 * trailers (grpc-js and grpc-core: 8 KiB by default, after base64), and the status message
 * already travels in full in `grpc-message`.
 */
export const MAX_DETAIL_CHARS = 1024

export interface FieldViolation { field: string, description: string }
export interface StatusDetails { code: number, message: string, violations: FieldViolation[], otherTypes: string[] }

/** A gRPC error as grpc-js servers send it: code, message and optional trailers. */
export interface GrpcStatusError { code: number, details: string, metadata?: Metadata }

/**
 * The error with a BadRequest detail naming `field` (when there is one). The message stays the
 * same: it already names the field for people; the detail names it for programs.
 */
export function withFieldDetails (err: GrpcStatusError, field: string | undefined): GrpcStatusError {
  if (field === undefined || field === '') return err
  const metadata = err.metadata ?? new Metadata()
  metadata.set(STATUS_DETAILS_KEY, encodeStatus(err.code, err.details, [{ field, description: err.details }]))
  return { ...err, metadata }
}

/** google.rpc.Status with one BadRequest detail, as bytes. */
export function encodeStatus (code: number, message: string, violations: readonly FieldViolation[]): Buffer {
  assert.ok(Number.isInteger(code) && code >= 0 && code <= 16, 'a gRPC status code is 0-16')
  const badRequest = Buffer.concat(violations.map(v => lengthDelimited(1, Buffer.concat([
    lengthDelimited(1, utf8(v.field)),
    lengthDelimited(2, utf8(v.description))
  ]))))
  const any = Buffer.concat([lengthDelimited(1, Buffer.from(BAD_REQUEST_TYPE_URL)), lengthDelimited(2, badRequest)])
  return Buffer.concat([key(1, 0), varint(code), lengthDelimited(2, utf8(message)), lengthDelimited(3, any)])
}

/**
 * Reads a `grpc-status-details-bin` value (for clients and tests). Throws on malformed input;
 * details of other types are listed by type URL, not decoded.
 */
export function decodeStatus (bytes: Uint8Array): StatusDetails {
  const out: StatusDetails = { code: 0, message: '', violations: [], otherTypes: [] }
  for (const f of fields(bytes)) {
    if (f.no === 1 && f.varint !== undefined) out.code = f.varint
    else if (f.no === 2 && f.bytes !== undefined) out.message = Buffer.from(f.bytes).toString('utf8')
    else if (f.no === 3 && f.bytes !== undefined) {
      let typeUrl = ''
      let value: Uint8Array = new Uint8Array(0)
      for (const a of fields(f.bytes)) {
        if (a.no === 1 && a.bytes !== undefined) typeUrl = Buffer.from(a.bytes).toString('utf8')
        else if (a.no === 2 && a.bytes !== undefined) value = a.bytes
      }
      if (typeUrl !== BAD_REQUEST_TYPE_URL) { out.otherTypes.push(typeUrl); continue }
      for (const v of fields(value)) {
        if (v.no !== 1 || v.bytes === undefined) continue
        const violation: FieldViolation = { field: '', description: '' }
        for (const x of fields(v.bytes)) {
          if (x.no === 1 && x.bytes !== undefined) violation.field = Buffer.from(x.bytes).toString('utf8')
          else if (x.no === 2 && x.bytes !== undefined) violation.description = Buffer.from(x.bytes).toString('utf8')
        }
        out.violations.push(violation)
      }
    }
  }
  return out
}

/** The decoded details of a client-side gRPC error, or undefined when it has none. */
export function statusDetailsOf (err: { metadata?: Metadata }): StatusDetails | undefined {
  const raw = err.metadata?.get(STATUS_DETAILS_KEY)[0]
  return raw instanceof Uint8Array ? decodeStatus(raw) : undefined
}

// ---- protobuf wire format ----------------------------------------------------------------

function utf8 (text: string): Buffer {
  return Buffer.from(text.length > MAX_DETAIL_CHARS ? `${text.slice(0, MAX_DETAIL_CHARS)}…` : text, 'utf8')
}

function varint (n: number): Buffer {
  assert.ok(Number.isSafeInteger(n) && n >= 0)
  const bytes: number[] = []
  while (n >= 0x80) { bytes.push((n % 0x80) | 0x80); n = Math.floor(n / 0x80) }
  bytes.push(n)
  return Buffer.from(bytes)
}

function key (fieldNo: number, wireType: 0 | 2): Buffer {
  return varint(fieldNo * 8 + wireType)
}

function lengthDelimited (fieldNo: number, body: Buffer): Buffer {
  return Buffer.concat([key(fieldNo, 2), varint(body.length), body])
}

interface Field { no: number, varint?: number, bytes?: Uint8Array }

/** The top-level fields of one message; only varint and length-delimited fields are expected. */
function fields (buf: Uint8Array): Field[] {
  const out: Field[] = []
  let i = 0
  const readVarint = (): number => {
    let n = 0
    let mul = 1
    for (let shift = 0; shift < 64; shift += 7) {
      if (i >= buf.length) throw new Error('truncated varint in status details')
      const b = buf[i++]
      n += (b & 0x7f) * mul
      mul *= 0x80
      if ((b & 0x80) === 0) return n
    }
    throw new Error('varint too long in status details')
  }
  while (i < buf.length) {
    const k = readVarint()
    const no = Math.floor(k / 8)
    const wire = k % 8
    if (wire === 0) out.push({ no, varint: readVarint() })
    else if (wire === 2) {
      const len = readVarint()
      if (i + len > buf.length) throw new Error('truncated field in status details')
      out.push({ no, bytes: buf.subarray(i, i + len) })
      i += len
    } else throw new Error(`unexpected wire type ${wire} in status details`)
  }
  return out
}
