/**
 * The binary format, version 1 (vasm/README.md "Binary format"):
 *
 *   "VASM" | version u8 = 1 | flags u8 (bit 0: debug section) |
 *   varint instruction count | instructions | varint label count | labels | [debug] | CRC-32 u32 LE
 *
 * An instruction is its opcode byte then its operands in table order: a register is one byte, a
 * label is a varint instruction index, an immediate is a zigzag LEB128 varint (any size). A label
 * is varint pc, varint name length, ASCII name. The debug section is varint line, varint col per
 * instruction. The CRC-32 (IEEE) covers every byte before it. Varints are unsigned LEB128 and must
 * be minimal, and nothing may follow the checksum, so every valid program has exactly one
 * encoding: decode(encode(p)) = p and encode(decode(b)) = b.
 */
import { decodeError, VasmErrorCode } from './errors.js'
import { OPS, OP_COUNT, REGISTER_COUNT } from './isa.js'
import { LABEL_RE, resolveProgramLimits, type Instr, type Label, type Program, type ProgramLimits, type SourcePos } from './program.js'

export const MAGIC = Uint8Array.of(0x56, 0x41, 0x53, 0x4d) // "VASM"
export const FORMAT_VERSION = 1
const FLAG_DEBUG = 1
/** Largest line or column the debug section may hold. */
const MAX_POSITION = 0x7fffffff

/** True when `bytes` starts with the magic (binary) rather than being text. */
export function isBinary (bytes: Uint8Array): boolean {
  return bytes.length >= 4 && MAGIC.every((b, i) => bytes[i] === b)
}

// ---- CRC-32 (IEEE 802.3, as zlib) ----------------------------------------------------------------
const CRC_TABLE = (() => {
  const t = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c >>> 0
  }
  return t
})()

export function crc32 (bytes: Uint8Array, end = bytes.length): number {
  let c = 0xffffffff
  for (let i = 0; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

// ---- writer -------------------------------------------------------------------------------------
class Writer {
  private buf = new Uint8Array(256)
  length = 0

  byte (b: number): void {
    if (this.length === this.buf.length) {
      const next = new Uint8Array(this.buf.length * 2)
      next.set(this.buf)
      this.buf = next
    }
    this.buf[this.length++] = b
  }

  uint (v: number): void {
    // Unsigned LEB128 for a safe non-negative integer.
    while (v >= 0x80) {
      this.byte((v % 0x80) | 0x80)
      v = Math.floor(v / 0x80)
    }
    this.byte(v)
  }

  bigint (v: bigint): void {
    const zz = v >= 0n ? v << 1n : ((-v) << 1n) - 1n
    if (zz <= BigInt(Number.MAX_SAFE_INTEGER)) return this.uint(Number(zz))
    for (const g of toSevenBitGroups(zz)) this.byte(g)
  }

  bytes (): Uint8Array { return this.buf.slice(0, this.length) }
}

/** LEB128 groups of a non-negative bigint, in linear time (via hex, not repeated shifts). */
function toSevenBitGroups (v: bigint): number[] {
  const hex = v.toString(16)
  const groups: number[] = []
  let acc = 0
  let accBits = 0
  for (let i = hex.length - 1; i >= 0; i--) {
    acc |= parseInt(hex[i], 16) << accBits
    accBits += 4
    while (accBits >= 7) {
      groups.push(acc & 0x7f)
      acc >>>= 7
      accBits -= 7
    }
  }
  if (accBits > 0) groups.push(acc)
  while (groups.length > 1 && groups[groups.length - 1] === 0) groups.pop()
  for (let i = 0; i < groups.length - 1; i++) groups[i] |= 0x80
  return groups
}

export function encode (p: Program): Uint8Array {
  const w = new Writer()
  for (const b of MAGIC) w.byte(b)
  w.byte(FORMAT_VERSION)
  w.byte(p.debug !== undefined ? FLAG_DEBUG : 0)
  w.uint(p.instrs.length)
  for (const ins of p.instrs) {
    w.byte(ins.op)
    OPS[ins.op].operands.forEach((kind, k) => {
      const v = ins.args[k]
      if (kind === 'reg') w.byte(Number(v))
      else if (kind === 'label') w.uint(Number(v))
      else w.bigint(BigInt(v))
    })
  }
  w.uint(p.labels.length)
  for (const l of p.labels) {
    w.uint(l.pc)
    w.uint(l.name.length)
    for (let i = 0; i < l.name.length; i++) w.byte(l.name.charCodeAt(i))
  }
  if (p.debug !== undefined) {
    for (const d of p.debug) {
      w.uint(d.line)
      w.uint(d.col)
    }
  }
  const crc = crc32(w.bytes())
  for (let i = 0; i < 4; i++) w.byte((crc >>> (8 * i)) & 0xff)
  return w.bytes()
}

// ---- reader -------------------------------------------------------------------------------------
class Reader {
  pos = 0
  constructor (readonly bytes: Uint8Array, readonly end: number) {}

  byte (what: string): number {
    if (this.pos >= this.end) throw decodeError(this.pos, `unexpected end of program, expected ${what}`)
    return this.bytes[this.pos++]
  }

  /** A minimal unsigned LEB128 varint ≤ max. */
  uint (what: string, max: number): number {
    const start = this.pos
    let v = 0
    let scale = 1
    for (let i = 0; ; i++) {
      const b = this.byte(what)
      if (i > 0 && b === 0) throw decodeError(start, `${what}: varint is not minimal`)
      v += (b & 0x7f) * scale
      if (v > max) throw decodeError(start, `${what} is above the limit of ${max}`)
      if ((b & 0x80) === 0) return v
      scale *= 0x80
    }
  }

  /** A zigzag LEB128 bigint of at most maxBits bits of magnitude. */
  bigint (what: string, maxBits: number): bigint {
    const start = this.pos
    const maxGroups = Math.ceil((maxBits + 1) / 7) + 1
    const groups: number[] = []
    for (;;) {
      const b = this.byte(what)
      groups.push(b & 0x7f)
      if (groups.length > maxGroups) throw decodeError(start, `${what}: integer constant larger than ${maxBits} bits`)
      if ((b & 0x80) === 0) break
    }
    if (groups.length > 1 && groups[groups.length - 1] === 0) throw decodeError(start, `${what}: varint is not minimal`)
    const zz = fromSevenBitGroups(groups)
    const v = (zz & 1n) === 0n ? zz >> 1n : -((zz + 1n) >> 1n)
    const mag = v < 0n ? -v : v
    if (mag !== 0n && mag.toString(2).length > maxBits) {
      throw decodeError(start, `${what}: integer constant larger than ${maxBits} bits`)
    }
    return v
  }
}

function fromSevenBitGroups (groups: number[]): bigint {
  if (groups.length <= 7) {
    let v = 0
    for (let i = groups.length - 1; i >= 0; i--) v = v * 128 + groups[i]
    return BigInt(v)
  }
  const nibbles: string[] = []
  let acc = 0
  let accBits = 0
  for (const g of groups) {
    acc |= g << accBits
    accBits += 7
    while (accBits >= 4) {
      nibbles.push((acc & 0xf).toString(16))
      acc >>>= 4
      accBits -= 4
    }
  }
  if (accBits > 0) nibbles.push(acc.toString(16))
  return BigInt('0x' + nibbles.reverse().join(''))
}

export function decode (bytes: Uint8Array, limitsIn?: Partial<ProgramLimits>): Program {
  const limits = resolveProgramLimits(limitsIn)
  if (bytes.length > limits.maxBinaryBytes) {
    throw decodeError(0, `program is ${bytes.length} bytes, above the limit of ${limits.maxBinaryBytes}`, VasmErrorCode.PROGRAM_TOO_LARGE)
  }
  if (!isBinary(bytes)) throw decodeError(0, 'expected the magic "VASM"')
  if (bytes.length < 4 + 2 + 1 + 1 + 4) throw decodeError(bytes.length, 'unexpected end of program, expected at least 12 bytes')
  const end = bytes.length - 4
  const stored = (bytes[end] | (bytes[end + 1] << 8) | (bytes[end + 2] << 16) | (bytes[end + 3] << 24)) >>> 0
  const actual = crc32(bytes, end)
  if (stored !== actual) {
    throw decodeError(end, `checksum mismatch: stored ${stored.toString(16).padStart(8, '0')}, computed ${actual.toString(16).padStart(8, '0')}`)
  }
  const r = new Reader(bytes, end)
  r.pos = 4
  const version = r.byte('the version')
  if (version !== FORMAT_VERSION) throw decodeError(4, `unsupported format version ${version}, expected ${FORMAT_VERSION}`)
  const flags = r.byte('the flags')
  if ((flags & ~FLAG_DEBUG) !== 0) throw decodeError(5, `unknown flags 0x${flags.toString(16)}`)
  const n = r.uint('the instruction count', limits.maxInstructions)
  const instrs: Instr[] = []
  for (let i = 0; i < n; i++) instrs.push(readInstr(r, i, n, limits))
  const labelCount = r.uint('the label count', limits.maxInstructions + 1)
  const labels: Label[] = []
  const names = new Set<string>()
  for (let i = 0; i < labelCount; i++) {
    const at = r.pos
    const pc = r.uint(`label ${i}'s instruction index`, n)
    const len = r.uint(`label ${i}'s name length`, limits.maxLabelLength)
    let name = ''
    for (let k = 0; k < len; k++) name += String.fromCharCode(r.byte(`label ${i}'s name`))
    if (!LABEL_RE.test(name)) throw decodeError(at, `label ${i} has an invalid name ${JSON.stringify(name)}`)
    if (names.has(name)) throw decodeError(at, `duplicate label ${JSON.stringify(name)}`)
    names.add(name)
    labels.push({ name, pc })
  }
  let debug: SourcePos[] | undefined
  if ((flags & FLAG_DEBUG) !== 0) {
    debug = []
    for (let i = 0; i < n; i++) {
      const line = r.uint(`instruction ${i}'s line`, MAX_POSITION)
      const col = r.uint(`instruction ${i}'s column`, MAX_POSITION)
      if (line === 0 || col === 0) throw decodeError(r.pos - 1, `instruction ${i}'s line and column must be at least 1`)
      debug.push({ line, col })
    }
  }
  if (r.pos !== end) throw decodeError(r.pos, `${end - r.pos} unexpected bytes before the checksum`)
  return { instrs, labels, debug }
}

function readInstr (r: Reader, i: number, n: number, limits: ProgramLimits): Instr {
  const at = r.pos
  const op = r.byte(`instruction ${i}`)
  if (op >= OP_COUNT) throw decodeError(at, `instruction ${i}: unknown opcode ${op}`)
  const info = OPS[op]
  const args = info.operands.map((kind, k): number | bigint => {
    const what = `instruction ${i} (${info.name}) operand ${info.names[k]}`
    if (kind === 'reg') {
      const regAt = r.pos
      const reg = r.byte(what)
      if (reg >= REGISTER_COUNT) throw decodeError(regAt, `${what}: expected a register 0-15, found ${reg}`)
      return reg
    }
    if (kind === 'label') return r.uint(what, n)
    return r.bigint(what, limits.maxConstBits)
  })
  return { op, args }
}
