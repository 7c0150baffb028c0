/**
 * The program model shared by the assembler, binary codec, verifier and engines, and the limits.
 * A Program is plain data; only `verify` turns it into a VerifiedProgram that the engines accept.
 */
import { OPS } from './isa.js'
import { optionsError } from './errors.js'

/**
 * One instruction. `args` follow the opcode's operand kinds (isa.ts): a register is its index
 * (0-15), a label is the target instruction index (0 ≤ target ≤ instrs.length; the end means
 * "stop"), an immediate is a bigint.
 */
export interface Instr {
  op: number
  args: Array<number | bigint>
}

export interface Label {
  name: string
  /** The instruction the label stands before (instrs.length for a label at the end). */
  pc: number
}

/** Source position of an instruction's mnemonic: 1-based line and column. */
export interface SourcePos {
  line: number
  col: number
}

export interface Program {
  instrs: Instr[]
  /** Label names in definition order (several may share a pc). Disassembly invents names for targets without one. */
  labels: Label[]
  /** One position per instruction, or undefined when unknown (e.g. a binary without debug section). */
  debug: SourcePos[] | undefined
}

/** Static limits: what a program may be. Checked by the assembler, decoder and verifier. */
export interface ProgramLimits {
  /** Largest source text, in bytes (UTF-8). */
  maxSourceBytes: number
  /** Largest binary program, in bytes. */
  maxBinaryBytes: number
  /** Most instructions in one program. */
  maxInstructions: number
  /** Longest label name, in characters. */
  maxLabelLength: number
  /** Largest immediate, in bits of its magnitude. */
  maxConstBits: number
  /** Statically known call depth above this is rejected (recursion is bounded at run time). */
  maxCallDepth: number
  /** Statically known value-stack height above this is rejected. */
  maxStack: number
}

export const DEFAULT_PROGRAM_LIMITS: Readonly<ProgramLimits> = Object.freeze({
  maxSourceBytes: 1 << 20,
  maxBinaryBytes: 1 << 20,
  maxInstructions: 65_536,
  maxLabelLength: 64,
  maxConstBits: 1_000_000,
  maxCallDepth: 10_000,
  maxStack: 65_536
})

/** Runtime limits: what one run may use. */
export interface RunLimits {
  /** Fuel budget (vasm/README.md "Fuel"). */
  fuel: number
  /** Largest integer magnitude, in bits: a result with |v| ≥ 2^maxBits is `integer too large`. */
  maxBits: number
  /** Most nested CALLs without RET. */
  maxCallDepth: number
  /** Most values on the value stack (PUSH/POP). */
  maxStack: number
}

export const DEFAULT_RUN_LIMITS: Readonly<RunLimits> = Object.freeze({
  fuel: 10_000_000,
  maxBits: 1_000_000,
  maxCallDepth: 10_000,
  maxStack: 65_536
})

/** Hard bounds of the limits themselves (so options cannot switch the limits off). */
export const LIMIT_BOUNDS = Object.freeze({
  fuel: [0, 1e12],
  maxBits: [64, 1 << 24],
  maxCallDepth: [1, 1_000_000],
  maxStack: [1, 1_000_000],
  maxSourceBytes: [1, 64 << 20],
  maxBinaryBytes: [1, 64 << 20],
  maxInstructions: [1, 1 << 20],
  maxLabelLength: [1, 1024],
  maxConstBits: [64, 1 << 24]
} as const)

/** Validates one integer option against LIMIT_BOUNDS; `undefined` takes the default. */
export function checkLimit (field: keyof typeof LIMIT_BOUNDS, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  const [lo, hi] = LIMIT_BOUNDS[field]
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < lo || value > hi) {
    throw optionsError(field, `must be an integer from ${lo} to ${hi}, got ${String(value)}`)
  }
  return value
}

export function resolveProgramLimits (partial: Partial<ProgramLimits> = {}): ProgramLimits {
  const d = DEFAULT_PROGRAM_LIMITS
  return {
    maxSourceBytes: checkLimit('maxSourceBytes', partial.maxSourceBytes, d.maxSourceBytes),
    maxBinaryBytes: checkLimit('maxBinaryBytes', partial.maxBinaryBytes, d.maxBinaryBytes),
    maxInstructions: checkLimit('maxInstructions', partial.maxInstructions, d.maxInstructions),
    maxLabelLength: checkLimit('maxLabelLength', partial.maxLabelLength, d.maxLabelLength),
    maxConstBits: checkLimit('maxConstBits', partial.maxConstBits, d.maxConstBits),
    maxCallDepth: checkLimit('maxCallDepth', partial.maxCallDepth, d.maxCallDepth),
    maxStack: checkLimit('maxStack', partial.maxStack, d.maxStack)
  }
}

export function resolveRunLimits (partial: Partial<RunLimits> = {}): RunLimits {
  const d = DEFAULT_RUN_LIMITS
  return {
    fuel: checkLimit('fuel', partial.fuel, d.fuel),
    maxBits: checkLimit('maxBits', partial.maxBits, d.maxBits),
    maxCallDepth: checkLimit('maxCallDepth', partial.maxCallDepth, d.maxCallDepth),
    maxStack: checkLimit('maxStack', partial.maxStack, d.maxStack)
  }
}

/** A label name: ASCII letter, `_`, `.` or `$`, then also digits. */
export const LABEL_RE = /^[A-Za-z_.$][A-Za-z0-9_.$]*$/

/** Canonical text of one instruction, e.g. `ADD r0, r1, r2` or `JIF r3, loop`. */
export function formatInstr (instr: Instr, labelName: (pc: number) => string): string {
  const info = OPS[instr.op]
  if (info === undefined) return `<opcode ${instr.op}>`
  const parts = info.operands.map((kind, i) => {
    const v = instr.args[i]
    if (kind === 'reg') return `r${String(v)}`
    if (kind === 'label') return labelName(Number(v))
    return String(v)
  })
  return parts.length === 0 ? info.name : `${info.name} ${parts.join(', ')}`
}

/** Bit length of |v| (0 for 0). Linear in the size of v; used off the hot paths only. */
export function bitLength (v: bigint): number {
  if (v < 0n) v = -v
  if (v === 0n) return 0
  const hex = v.toString(16)
  return (hex.length - 1) * 4 + (32 - Math.clz32(parseInt(hex[0], 16)))
}
