/**
 * The `vasm` job's parameters, split and reducers (pure; no I/O). Two forms:
 *
 * - single: `{ program, args?, fuel? }` → one task; result `{ value, fuelUsed }`.
 * - map: `{ program, range: { start, end }, segments, reduce, args?, fuel?, cost? }` → [start, end)
 *   cut into `segments` contiguous segments, each run with r1 = its start, r2 = its end, then
 *   `args`; the values are folded with `reduce` (`sum`, `min`, `max`, `list`, `summod:M`).
 *
 * `program` is base64 of a VASM binary or of VASM text; it is verified here (at submit, and again
 * on resume) and stored normalized as the canonical binary (with its debug section, so runtime
 * errors still name source lines) plus its `hash` (hex SHA-256 of that binary), which is all a
 * task carries: the bytes travel once per worker (actor.ts).
 */
import { GridError } from '../../scheduler/api.js'
import { loadProgram, VasmError, type VerifiedProgram } from '../../../vasm/index.js'

/** Largest program accepted, in bytes (decoded; text or binary). Base64 of it fits the APIs' 1 MiB bodies. */
export const MAX_PROGRAM_BYTES = 512 * 1024
/** Most segments of a map job (the scheduler's MAX_SEGMENTS_PER_JOB). */
export const MAX_SEGMENTS = 4096
/** Most `args`: 15 registers r1–r15 in the single form; r1, r2 are the segment in the map form. */
export const MAX_ARGS_SINGLE = 15
export const MAX_ARGS_MAP = 13
/** Largest argument, in bits (the run's maxBits). */
export const MAX_ARG_BITS = 1_000_000
/** Default and largest fuel of one task (one segment). 10^10 is minutes of work (see job.ts). */
export const DEFAULT_FUEL = 10_000_000
export const MAX_FUEL = 10_000_000_000
/** Range bounds are safe integers (they are shown as JSON numbers and gRPC int64). */
const MAX_RANGE_ABS = Number.MAX_SAFE_INTEGER
/** Largest modulus of `summod:M`, in bits. */
export const MAX_MODULUS_BITS = 4096

export type Reducer = 'sum' | 'min' | 'max' | 'list' | `summod:${string}`

export interface VasmParams {
  /** Base64 of the canonical binary. */
  program: string
  /** Hex SHA-256 of the canonical binary. */
  hash: string
  /** Decimal strings. */
  args: string[]
  fuel: number
  /** Map form only. */
  range?: { start: number, end: number }
  segments?: number
  reduce?: Reducer
  /** Map form: `flat` (equal lengths, default) or `linear` (cost of index k grows like k: boundaries by sqrt). */
  cost?: 'flat' | 'linear'
}

/** A segment: [start, end) in the map form; the whole job (no range) in the single form. */
export interface VasmSegment {
  start: number | null
  end: number | null
}

const FIELDS = new Set(['program', 'hash', 'args', 'fuel', 'range', 'segments', 'reduce', 'cost'])
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/
const DECIMAL_RE = /^[+-]?[0-9]+$/
const SUMMOD_RE = /^summod:([0-9]+)$/

function invalid (field: string, why: string, cause?: unknown): GridError {
  return new GridError('ERR_INVALID_ARGUMENT', `${field}: ${why}`, field, cause === undefined ? undefined : { cause })
}

/** Decodes and verifies `program` (base64); VasmErrors become INVALID_ARGUMENT naming line:col. */
export function verifyProgramField (raw: unknown): VerifiedProgram {
  if (typeof raw !== 'string' || raw.length === 0) throw invalid('program', 'must be a non-empty base64 string (a VASM binary or text)')
  if (raw.length > Math.ceil(MAX_PROGRAM_BYTES / 3) * 4) throw invalid('program', `larger than ${MAX_PROGRAM_BYTES} bytes`)
  if (raw.length % 4 !== 0 || !BASE64_RE.test(raw)) throw invalid('program', 'is not base64 (A-Z a-z 0-9 + / with = padding)')
  const bytes = new Uint8Array(Buffer.from(raw, 'base64'))
  if (bytes.length > MAX_PROGRAM_BYTES) throw invalid('program', `larger than ${MAX_PROGRAM_BYTES} bytes`)
  try {
    return loadProgram(bytes, { maxSourceBytes: MAX_PROGRAM_BYTES, maxBinaryBytes: MAX_PROGRAM_BYTES })
  } catch (err) {
    if (err instanceof VasmError) throw invalid('program', err.message, err)
    throw err
  }
}

function decimal (raw: unknown, field: string, maxBits: number): bigint {
  let v: bigint
  if (typeof raw === 'number' && Number.isSafeInteger(raw)) v = BigInt(raw)
  else if (typeof raw === 'string' && raw.length <= Math.ceil(maxBits / 3.3) + 2 && DECIMAL_RE.test(raw)) v = BigInt(raw)
  else throw invalid(field, `must be an integer (a decimal string or a safe integer), got ${JSON.stringify(raw)?.slice(0, 40) ?? String(raw)}`)
  const abs = v < 0n ? -v : v
  if (abs.toString(2).length > maxBits && abs !== 0n) throw invalid(field, `larger than ${maxBits} bits`)
  return v
}

function rangeBound (raw: unknown, field: string): number {
  const v = decimal(raw, field, 64)
  if (v > BigInt(MAX_RANGE_ABS) || v < -BigInt(MAX_RANGE_ABS)) throw invalid(field, `must be within ±${MAX_RANGE_ABS} (2^53 - 1)`)
  return Number(v)
}

function intField (raw: unknown, field: string, min: number, max: number, fallback?: number): number {
  if (raw === undefined && fallback !== undefined) return fallback
  if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < min || raw > max) {
    throw invalid(field, `must be an integer from ${min} to ${max}, got ${JSON.stringify(raw) ?? 'nothing'}`)
  }
  return raw
}

function parseReduce (raw: unknown): Reducer {
  if (raw === 'sum' || raw === 'min' || raw === 'max' || raw === 'list') return raw
  const m = typeof raw === 'string' ? SUMMOD_RE.exec(raw) : null
  if (m === null) throw invalid('reduce', `must be sum, min, max, list or summod:M (M a positive decimal), got ${JSON.stringify(raw)?.slice(0, 40) ?? 'nothing'}`)
  const mod = decimal(m[1], 'reduce', MAX_MODULUS_BITS)
  if (mod < 1n) throw invalid('reduce', 'summod:M needs M ≥ 1')
  return `summod:${mod.toString()}`
}

/** Checks and normalizes the parameters (idempotent: it accepts its own output, as resume needs). */
export function validateVasmParams (params: unknown): VasmParams {
  if (typeof params !== 'object' || params === null || Array.isArray(params)) {
    throw invalid('params', 'must be an object { program, args?, fuel? } or { program, range, segments, reduce, args?, fuel? }')
  }
  const p = params as Record<string, unknown>
  for (const k of Object.keys(p)) if (!FIELDS.has(k)) throw invalid(k, `unknown parameter (known: ${[...FIELDS].join(', ')})`)
  const prog = verifyProgramField(p.program)
  if (p.hash !== undefined && p.hash !== prog.hash) throw invalid('hash', `does not match the program (its hash is ${prog.hash})`)
  const map = p.range !== undefined
  const maxArgs = map ? MAX_ARGS_MAP : MAX_ARGS_SINGLE
  if (p.args !== undefined && !Array.isArray(p.args)) throw invalid('args', 'must be an array of integers (decimal strings)')
  const rawArgs = (p.args ?? []) as unknown[]
  if (rawArgs.length > maxArgs) throw invalid('args', `at most ${maxArgs} arguments${map ? ' in the map form (r1, r2 are the segment)' : ' (r1-r15)'}, got ${rawArgs.length}`)
  const args = rawArgs.map((a, i) => decimal(a, `args[${i}]`, MAX_ARG_BITS).toString())
  const fuel = intField(p.fuel, 'fuel', 0, MAX_FUEL, DEFAULT_FUEL)
  const out: VasmParams = { program: Buffer.from(prog.bytes).toString('base64'), hash: prog.hash, args, fuel }
  if (!map) {
    for (const k of ['segments', 'reduce', 'cost'] as const) if (p[k] !== undefined) throw invalid(k, 'only in the map form (with range)')
    return out
  }
  if (typeof p.range !== 'object' || p.range === null || Array.isArray(p.range)) throw invalid('range', 'must be an object { start, end }')
  const r = p.range as Record<string, unknown>
  const start = rangeBound(r.start, 'range.start')
  const end = rangeBound(r.end, 'range.end')
  if (end < start) throw invalid('range', `end (${end}) is below start (${start})`)
  const size = end - start
  if (!Number.isSafeInteger(size)) throw invalid('range', `end - start must be at most ${MAX_RANGE_ABS}`)
  const segments = intField(p.segments, 'segments', 1, Math.min(MAX_SEGMENTS, Math.max(size, 1)))
  const reduce = parseReduce(p.reduce)
  const cost = p.cost ?? 'flat'
  if (cost !== 'flat' && cost !== 'linear') throw invalid('cost', `must be "flat" or "linear", got ${JSON.stringify(cost)?.slice(0, 40)}`)
  return { ...out, range: { start, end }, segments, reduce, ...(cost === 'linear' ? { cost } : {}) }
}

/**
 * The segments: one `{ start: null, end: null }` in the single form; in the map form contiguous
 * [s, e) covering the range, equal lengths (`flat`) or boundaries at start + size·sqrt(i/S)
 * (`linear`: index k costs about k, so each segment costs about the same). Every segment is
 * non-empty when the range is.
 */
export function splitVasm (p: VasmParams): VasmSegment[] {
  if (p.range === undefined || p.segments === undefined) return [{ start: null, end: null }]
  const { start, end } = p.range
  const n = p.segments
  const size = end - start
  const cuts: number[] = [start]
  for (let i = 1; i < n; i++) {
    const frac = p.cost === 'linear' ? Math.sqrt(i / n) : i / n
    // Strictly increasing and leaving room for the rest, so no segment is empty.
    const at = Math.min(end - (n - i), Math.max(cuts[i - 1] + (size > 0 ? 1 : 0), start + Math.floor(size * frac)))
    cuts.push(at)
  }
  cuts.push(end)
  const out: VasmSegment[] = []
  for (let i = 0; i < n; i++) out.push({ start: cuts[i], end: cuts[i + 1] })
  return out
}

/** A segment's value, checked: `value` a decimal string, `fuelUsed` an integer in [0, fuel]. */
export interface VasmValue {
  value: string
  fuelUsed: number
}

/** The job's result: `value` a decimal string (a list of them for `list`), `fuelUsed` the total. */
export interface VasmResult {
  value: string | string[]
  fuelUsed: number
}

export function reduceValues (p: VasmParams, values: readonly VasmValue[]): VasmResult {
  let fuelUsed = 0
  for (const v of values) fuelUsed += v.fuelUsed
  if (p.reduce === undefined) return { value: values[0].value, fuelUsed }
  if (p.reduce === 'list') return { value: values.map(v => v.value), fuelUsed }
  const nums = values.map(v => BigInt(v.value))
  let acc: bigint
  if (p.reduce === 'min') acc = nums.reduce((a, b) => b < a ? b : a)
  else if (p.reduce === 'max') acc = nums.reduce((a, b) => b > a ? b : a)
  else if (p.reduce === 'sum') acc = nums.reduce((a, b) => a + b, 0n)
  else {
    const m = BigInt(p.reduce.slice('summod:'.length))
    // The mathematical residue in [0, M) (VASM's MOD takes the dividend's sign).
    acc = nums.reduce((a, b) => (a + b % m) % m, 0n)
    if (acc < 0n) acc += m
  }
  return { value: acc.toString(), fuelUsed }
}
