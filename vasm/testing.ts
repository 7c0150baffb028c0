/**
 * Seeded generators for the differential tests and the fuzzer (vasm/*.test.ts, vasm/fuzz.ts).
 * Deterministic: the same seed gives the same cases on every machine.
 */
import { OPS, Op, REGISTER_COUNT } from './isa.js'
import type { Instr, Program } from './program.js'
import { VasmError } from './errors.js'
import type { RunOptions } from './index.js'

/** mulberry32: a small, fast, well-distributed 32-bit PRNG. */
export function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export class Gen {
  readonly next: () => number
  constructor (seed: number) { this.next = rng(seed) }
  int (lo: number, hi: number): number { return lo + Math.floor(this.next() * (hi - lo + 1)) }
  pick<T> (xs: readonly T[]): T { return xs[Math.floor(this.next() * xs.length)] }
  chance (p: number): boolean { return this.next() < p }

  /** An integer: mostly small, sometimes near 2^53, sometimes big (up to `maxBits` bits), either sign. */
  bigint (maxBits = 300): bigint {
    const r = this.next()
    let v: bigint
    if (r < 0.55) v = BigInt(this.int(0, 12))
    else if (r < 0.7) v = BigInt(this.int(0, 1_000_000))
    else if (r < 0.82) v = 2n ** 53n + BigInt(this.int(-3, 3))
    else if (r < 0.9) v = 2n ** 64n + BigInt(this.int(-3, 3))
    else {
      const bits = this.int(1, maxBits)
      v = 0n
      for (let i = 0; i < bits; i += 30) v = (v << 30n) | BigInt(this.int(0, 2 ** 30 - 1))
      v = BigInt.asUintN(bits, v)
    }
    return this.chance(0.35) ? -v : v
  }

  reg (): number { return this.chance(0.8) ? this.int(0, 5) : this.int(0, REGISTER_COUNT - 1) }
}

const WEIGHTED: number[] = [
  ...Array<number>(6).fill(Op.LOAD_CONST), ...Array<number>(3).fill(Op.MOV),
  ...Array<number>(4).fill(Op.ADD), ...Array<number>(3).fill(Op.SUB), ...Array<number>(4).fill(Op.MUL),
  ...Array<number>(2).fill(Op.DIV), ...Array<number>(2).fill(Op.MOD), ...Array<number>(3).fill(Op.INC),
  ...Array<number>(2).fill(Op.DEC), Op.CMPLT, Op.CMPLE, Op.CMPEQ, Op.CMPNE, Op.CMPGT, Op.CMPGE,
  Op.AND, Op.OR, Op.NOT, ...Array<number>(2).fill(Op.JMP), ...Array<number>(3).fill(Op.JIF),
  ...Array<number>(2).fill(Op.JZ), ...Array<number>(2).fill(Op.CALL), ...Array<number>(2).fill(Op.RET),
  ...Array<number>(2).fill(Op.PUSH), ...Array<number>(2).fill(Op.POP), Op.HALT, Op.NEG, Op.ABS,
  Op.BAND, Op.BOR, Op.BXOR, Op.SHL, Op.SHR, Op.NOP
]

/** A structurally valid program (it may still fail the static checks): random instructions and targets. */
export function randomProgram (g: Gen, maxLen = 40): Program {
  const n = g.int(1, maxLen)
  const instrs: Instr[] = []
  for (let pc = 0; pc < n; pc++) {
    const op = g.pick(WEIGHTED)
    const args = OPS[op].operands.map(kind => {
      if (kind === 'reg') return g.reg()
      if (kind === 'label') return g.chance(0.6) ? g.int(0, Math.max(0, pc)) : g.int(0, n) // favour back edges: loops
      return g.bigint()
    })
    // Small shift distances mostly, so SHL/SHR do not all end in "integer too large".
    if ((op === Op.SHL || op === Op.SHR) && g.chance(0.7)) instrs.push({ op: Op.LOAD_CONST, args: [args[2], BigInt(g.int(-70, 70))] })
    instrs.push({ op, args })
  }
  return { instrs: instrs.slice(0, Math.max(n, 1)), labels: [], debug: undefined }
}

/** Random run options with small limits, so every kind of runtime error shows up. */
export function randomRunOptions (g: Gen): RunOptions {
  return {
    args: Array.from({ length: g.int(0, 4) }, () => g.bigint(200)),
    fuel: g.pick([0, 1, 5, 50, 300, 2000, 20_000]),
    maxBits: g.pick([64, 100, 256, 1024, 4096]),
    maxCallDepth: g.pick([1, 3, 16, 200]),
    maxStack: g.pick([1, 4, 64, 1000])
  }
}

/** A run's outcome in comparable form: result and fuel, or the error's code, message and fuel. */
export function outcome (f: () => { value: bigint, fuelUsed: number }): string {
  try {
    const r = f()
    return `ok ${r.value} fuel ${r.fuelUsed}`
  } catch (err) {
    if (err instanceof VasmError) return `error ${err.code} ${err.message} fuel ${String(err.fuelUsed)} pc ${String(err.pc)}`
    throw err
  }
}

/** Random bytes, or a valid encoding with mutations (bit flips, cuts, insertions), optionally with a fixed-up checksum. */
export function mutateBytes (g: Gen, valid: Uint8Array, fixCrc: (b: Uint8Array) => void): Uint8Array {
  if (g.chance(0.15)) return Uint8Array.from({ length: g.int(0, 64) }, () => g.int(0, 255))
  let b = Array.from(valid)
  const edits = g.int(1, 4)
  for (let e = 0; e < edits; e++) {
    const r = g.next()
    const at = g.int(0, Math.max(0, b.length - 1))
    if (r < 0.5) b[at] = b[at] ^ (1 << g.int(0, 7))
    else if (r < 0.65) b = b.slice(0, at)
    else if (r < 0.8) b.splice(at, 0, g.int(0, 255))
    else if (r < 0.9) b.splice(at, 1)
    else b[at] = g.pick([0, 0x7f, 0x80, 0xff])
  }
  const out = Uint8Array.from(b)
  if (out.length >= 12 && g.chance(0.7)) fixCrc(out)
  return out
}

const NOISE = [' ', ',', ':', ';', '#', '\n', '\t', 'r', '1', '6', '-', '+', '9', 'x', 'L', '.', '$', '\r', 'é', '\u0000', 'JMP', 'r16', '99999999999999999999']

/** Source text with random edits. */
export function mutateSource (g: Gen, text: string): string {
  let s = text
  const edits = g.int(1, 5)
  for (let e = 0; e < edits; e++) {
    const at = g.int(0, s.length)
    const r = g.next()
    if (r < 0.4) s = s.slice(0, at) + g.pick(NOISE) + s.slice(at)
    else if (r < 0.7) s = s.slice(0, at) + s.slice(at + g.int(1, 6))
    else s = s.slice(0, at) + g.pick(NOISE) + s.slice(at + 1)
  }
  return s
}

/** Random instruction-like objects, often invalid: for the verifier. */
export function randomRawProgram (g: Gen): Program {
  const n = g.int(0, 12)
  const instrs: Instr[] = []
  for (let i = 0; i < n; i++) {
    const op = g.chance(0.9) ? g.int(0, OPS.length - 1) : g.int(-2, 300)
    const count = g.chance(0.9) && op >= 0 && op < OPS.length ? OPS[op].operands.length : g.int(0, 4)
    const args = Array.from({ length: count }, () => g.pick<number | bigint>([g.int(-2, 20), g.bigint(80), 1.5, g.int(0, n)]))
    instrs.push({ op, args })
  }
  return { instrs, labels: g.chance(0.2) ? [{ name: g.pick(['a', '1x', 'a']), pc: g.int(-1, n + 1) }] : [], debug: undefined }
}
