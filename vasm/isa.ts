/**
 * The instruction set: one table that the assembler, disassembler, binary codec, verifier and
 * both engines read, so an opcode's name, number, operands and fuel class are defined once.
 * Opcode numbers are part of the binary format (version 1) and never change meaning.
 */

/** Operand kinds: a register r0-r15, an immediate integer, a label (an instruction index). */
export type OperandKind = 'reg' | 'imm' | 'label'

/**
 * How an instruction is charged (vasm/README.md "Fuel"):
 * - `one`: 1 fuel, whatever the values.
 * - `linear`: max(1, W) where W is the size class in 64-bit words of the largest operand.
 * - `mul`: the Karatsuba-shaped cost of the two operands' size classes (see values.ts costMul).
 * - `shift`: W(ra) plus the left shift distance in words.
 */
export type FuelClass = 'one' | 'linear' | 'mul' | 'shift'

export interface OpInfo {
  readonly name: string
  readonly code: number
  readonly operands: readonly OperandKind[]
  /** Operand names for messages, e.g. ['rd', 'ra', 'rb']. */
  readonly names: readonly string[]
  readonly fuel: FuelClass
  /** Part of the contract's fixed core (the others are VOIKE extensions). */
  readonly core: boolean
}

function op (name: string, code: number, names: string[], fuel: FuelClass, core: boolean): OpInfo {
  const operands = names.map((n): OperandKind => n === 'imm' ? 'imm' : n === 'label' ? 'label' : 'reg')
  return Object.freeze({ name, code, operands: Object.freeze(operands), names: Object.freeze(names), fuel, core })
}

const R3 = ['rd', 'ra', 'rb']

export const Op = {
  HALT: 0,
  LOAD_CONST: 1,
  MOV: 2,
  ADD: 3,
  SUB: 4,
  MUL: 5,
  DIV: 6,
  MOD: 7,
  INC: 8,
  DEC: 9,
  CMPLT: 10,
  CMPLE: 11,
  CMPEQ: 12,
  CMPNE: 13,
  AND: 14,
  OR: 15,
  NOT: 16,
  JMP: 17,
  JIF: 18,
  CALL: 19,
  RET: 20,
  PUSH: 21,
  POP: 22,
  CMPGT: 23,
  CMPGE: 24,
  JZ: 25,
  NEG: 26,
  ABS: 27,
  BAND: 28,
  BOR: 29,
  BXOR: 30,
  SHL: 31,
  SHR: 32,
  NOP: 33
} as const

export const OPS: readonly OpInfo[] = Object.freeze([
  op('HALT', Op.HALT, [], 'one', true),
  op('LOAD_CONST', Op.LOAD_CONST, ['rd', 'imm'], 'one', true),
  op('MOV', Op.MOV, ['rd', 'rs'], 'one', true),
  op('ADD', Op.ADD, R3, 'linear', true),
  op('SUB', Op.SUB, R3, 'linear', true),
  op('MUL', Op.MUL, R3, 'mul', true),
  op('DIV', Op.DIV, R3, 'mul', true),
  op('MOD', Op.MOD, R3, 'mul', true),
  op('INC', Op.INC, ['rd'], 'linear', true),
  op('DEC', Op.DEC, ['rd'], 'linear', true),
  op('CMPLT', Op.CMPLT, R3, 'linear', true),
  op('CMPLE', Op.CMPLE, R3, 'linear', true),
  op('CMPEQ', Op.CMPEQ, R3, 'linear', true),
  op('CMPNE', Op.CMPNE, R3, 'linear', true),
  op('AND', Op.AND, R3, 'one', true),
  op('OR', Op.OR, R3, 'one', true),
  op('NOT', Op.NOT, ['rd', 'rs'], 'one', true),
  op('JMP', Op.JMP, ['label'], 'one', true),
  op('JIF', Op.JIF, ['rs', 'label'], 'one', true),
  op('CALL', Op.CALL, ['label'], 'one', true),
  op('RET', Op.RET, [], 'one', true),
  op('PUSH', Op.PUSH, ['rs'], 'one', true),
  op('POP', Op.POP, ['rd'], 'one', true),
  op('CMPGT', Op.CMPGT, R3, 'linear', false),
  op('CMPGE', Op.CMPGE, R3, 'linear', false),
  op('JZ', Op.JZ, ['rs', 'label'], 'one', false),
  op('NEG', Op.NEG, ['rd', 'rs'], 'linear', false),
  op('ABS', Op.ABS, ['rd', 'rs'], 'linear', false),
  op('BAND', Op.BAND, R3, 'linear', false),
  op('BOR', Op.BOR, R3, 'linear', false),
  op('BXOR', Op.BXOR, R3, 'linear', false),
  op('SHL', Op.SHL, R3, 'shift', false),
  op('SHR', Op.SHR, R3, 'shift', false),
  op('NOP', Op.NOP, [], 'one', false)
])

for (let i = 0; i < OPS.length; i++) {
  // The table is indexed by opcode: a gap or a misordered row would silently remap opcodes.
  if (OPS[i].code !== i) throw new Error(`vasm/isa: opcode table out of order at ${i}`)
}

export const OP_COUNT = OPS.length

const BY_NAME = new Map(OPS.map(o => [o.name, o]))

/** Looks a mnemonic up, case-insensitively. */
export function opByName (name: string): OpInfo | undefined {
  return BY_NAME.get(name.toUpperCase())
}

/** Number of registers; register operands are 0 ≤ r < REGISTER_COUNT. */
export const REGISTER_COUNT = 16

/** Instructions that never continue to pc + 1. */
export function endsFlow (code: number): boolean {
  return code === Op.HALT || code === Op.JMP || code === Op.RET
}

/** Instructions with a label operand. */
export function isBranch (code: number): boolean {
  return code === Op.JMP || code === Op.JIF || code === Op.JZ || code === Op.CALL
}
