/**
 * Lowering of a checked Program into the flat form both engines execute: four int32 slots per
 * instruction [opcode, x, y, z] where x, y, z are the operands in table order (a register index,
 * a target pc, or an index into `consts` for an immediate).
 */
import { OPS } from './isa.js'
import { bitLength, type Program } from './program.js'
import { toVal, type Val } from './values.js'

export interface Lowered {
  /** Number of instructions. */
  readonly length: number
  /** [op, x, y, z] per instruction. */
  readonly code: Int32Array
  /** Immediates in engine form (number when safe, else bigint). */
  readonly consts: readonly Val[]
  /** Bit length of each immediate's magnitude (checked against maxBits per run). */
  readonly constBits: readonly number[]
  /** Largest entry of constBits (0 without immediates). */
  readonly maxConstBits: number
}

export function lower (p: Program): Lowered {
  const code = new Int32Array(p.instrs.length * 4)
  const consts: Val[] = []
  const constBits: number[] = []
  p.instrs.forEach((ins, pc) => {
    code[pc * 4] = ins.op
    OPS[ins.op].operands.forEach((kind, k) => {
      const v = ins.args[k]
      if (kind === 'imm') {
        code[pc * 4 + 1 + k] = consts.length
        consts.push(toVal(v as bigint))
        constBits.push(bitLength(v as bigint))
      } else {
        code[pc * 4 + 1 + k] = Number(v)
      }
    })
  })
  return {
    length: p.instrs.length,
    code,
    consts: Object.freeze(consts),
    constBits: Object.freeze(constBits),
    maxConstBits: constBits.reduce((a, b) => Math.max(a, b), 0)
  }
}
