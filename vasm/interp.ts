/**
 * The reference engine: a loop over the lowered code. It defines the semantics; the compiled
 * engine hands over to it (at the exact pc and fuel) whenever anything unusual happens, so
 * errors are only ever raised here.
 *
 * Fuel: before an instruction runs its cost c is computed from its operands (isa.ts fuel
 * classes, values.ts); if fuelUsed + c > budget the run stops with `fuel exhausted`, otherwise
 * the instruction runs and fuelUsed += c. An instruction that fails charges nothing: every
 * runtime error reports the fuel used by the instructions that completed.
 */
import { runtimeError, type RuntimeCode, type VasmError } from './errors.js'
import { Op } from './isa.js'
import { formatInstr, type RunLimits } from './program.js'
import { labelNames } from './disasm.js'
import {
  abs, add, band, bor, bxor, costLin, costMul, costShift, div, mod, mul, neg, shl, shr, sub, words,
  MAX_SAFE, type IntLimit, type Val
} from './values.js'
import type { VerifiedProgram } from './verifier.js'

/** The machine state: what the compiled engine hands over when it bails out. */
export interface Machine {
  regs: Val[]
  /** Value stack (PUSH/POP). */
  vs: Val[]
  /** Call stack: return pcs. */
  cs: number[]
  pc: number
  /** Fuel used so far. */
  fuel: number
}

export interface RunEnv {
  readonly limits: RunLimits
  readonly L: IntLimit
}

export interface RawResult {
  value: Val
  fuel: number
}

export function failure (vp: VerifiedProgram, code: RuntimeCode, pc: number, fuel: number): VasmError {
  const names = labelNames(vp.program)
  const text = formatInstr(vp.program.instrs[pc], t => names.get(t)?.[0] ?? `L${t}`)
  const pos = vp.program.debug?.[pc]
  return runtimeError(code, pc, pos?.line, pos?.col, text, fuel)
}

export function interpret (vp: VerifiedProgram, m: Machine, env: RunEnv): RawResult {
  const code = vp.code
  const consts = vp.consts
  const n = vp.length
  const R = m.regs
  const vs = m.vs
  const cs = m.cs
  const { fuel: budget, maxStack, maxCallDepth, maxBits } = env.limits
  const L = env.L
  let pc = m.pc
  let fuel = m.fuel
  // No closure over pc/fuel here: captured locals would live in a context object and slow the loop.
  for (;;) {
    if (pc >= n) return { value: R[0], fuel }
    if (fuel >= budget) throw failure(vp, 'ERR_VASM_FUEL_EXHAUSTED', pc, fuel)
    const i = pc << 2
    const x = code[i + 1]
    const y = code[i + 2]
    const z = code[i + 3]
    let cost = 1
    let next = pc + 1
    switch (code[i]) {
      case Op.HALT: return { value: R[0], fuel: fuel + 1 }
      case Op.NOP: break
      case Op.LOAD_CONST:
        if (vp.constBits[y] > maxBits) throw failure(vp, 'ERR_VASM_INTEGER_TOO_LARGE', pc, fuel)
        R[x] = consts[y]
        break
      case Op.MOV: R[x] = R[y]; break
      case Op.ADD: case Op.SUB: case Op.CMPLT: case Op.CMPLE: case Op.CMPEQ: case Op.CMPNE:
      case Op.CMPGT: case Op.CMPGE: case Op.BAND: case Op.BOR: case Op.BXOR: {
        const a = R[y]
        const b = R[z]
        cost = costLin(a, b)
        if (fuel + cost > budget) throw failure(vp, 'ERR_VASM_FUEL_EXHAUSTED', pc, fuel)
        const r = linear(code[i], a, b, L)
        if (r === undefined) throw failure(vp, 'ERR_VASM_INTEGER_TOO_LARGE', pc, fuel)
        R[x] = r
        break
      }
      case Op.MUL: case Op.DIV: case Op.MOD: {
        const a = R[y]
        const b = R[z]
        cost = costMul(a, b)
        if (fuel + cost > budget) throw failure(vp, 'ERR_VASM_FUEL_EXHAUSTED', pc, fuel)
        if (code[i] === Op.MUL) {
          const r = mul(a, b, L)
          if (r === undefined) throw failure(vp, 'ERR_VASM_INTEGER_TOO_LARGE', pc, fuel)
          R[x] = r
        } else {
          if (b === 0) throw failure(vp, 'ERR_VASM_DIVISION_BY_ZERO', pc, fuel)
          R[x] = code[i] === Op.DIV ? div(a, b) : mod(a, b)
        }
        break
      }
      case Op.INC: case Op.DEC: {
        const a = R[x]
        if (typeof a === 'number' && a < MAX_SAFE && a > -MAX_SAFE) {
          R[x] = code[i] === Op.INC ? a + 1 : a - 1
          break
        }
        cost = words(a)
        if (fuel + cost > budget) throw failure(vp, 'ERR_VASM_FUEL_EXHAUSTED', pc, fuel)
        const r = code[i] === Op.INC ? add(a, 1, L) : sub(a, 1, L)
        if (r === undefined) throw failure(vp, 'ERR_VASM_INTEGER_TOO_LARGE', pc, fuel)
        R[x] = r
        break
      }
      case Op.NEG: case Op.ABS: {
        const a = R[y]
        cost = words(a)
        if (fuel + cost > budget) throw failure(vp, 'ERR_VASM_FUEL_EXHAUSTED', pc, fuel)
        R[x] = code[i] === Op.NEG ? neg(a) : abs(a)
        break
      }
      case Op.SHL: case Op.SHR: {
        const a = R[y]
        const b = R[z]
        const left = code[i] === Op.SHL
        cost = costShift(a, b, left, L)
        if (fuel + cost > budget) throw failure(vp, 'ERR_VASM_FUEL_EXHAUSTED', pc, fuel)
        const r = left ? shl(a, b, L) : shr(a, b, L)
        if (r === undefined) throw failure(vp, 'ERR_VASM_INTEGER_TOO_LARGE', pc, fuel)
        R[x] = r
        break
      }
      case Op.AND: R[x] = R[y] !== 0 && R[z] !== 0 ? 1 : 0; break
      case Op.OR: R[x] = R[y] !== 0 || R[z] !== 0 ? 1 : 0; break
      case Op.NOT: R[x] = R[y] === 0 ? 1 : 0; break
      case Op.JMP: next = x; break
      case Op.JIF: if (R[x] !== 0) next = y; break
      case Op.JZ: if (R[x] === 0) next = y; break
      case Op.CALL:
        if (cs.length >= maxCallDepth) throw failure(vp, 'ERR_VASM_CALL_STACK_OVERFLOW', pc, fuel)
        cs.push(pc + 1)
        next = x
        break
      case Op.RET:
        if (cs.length === 0) return { value: R[0], fuel: fuel + 1 }
        next = cs.pop() as number
        break
      case Op.PUSH:
        if (vs.length >= maxStack) throw failure(vp, 'ERR_VASM_STACK_OVERFLOW', pc, fuel)
        vs.push(R[x])
        break
      case Op.POP:
        if (vs.length === 0) throw failure(vp, 'ERR_VASM_STACK_UNDERFLOW', pc, fuel)
        R[x] = vs.pop() as Val
        break
      default:
        // Verified programs hold only known opcodes: reaching this is a bug in the library.
        throw new Error(`vasm: unknown opcode ${code[i]} at ${pc} in a verified program`)
    }
    fuel += cost
    pc = next
  }
}

function linear (op: number, a: Val, b: Val, L: IntLimit): Val | undefined {
  switch (op) {
    case Op.ADD: return add(a, b, L)
    case Op.SUB: return sub(a, b, L)
    case Op.CMPLT: return a < b ? 1 : 0
    case Op.CMPLE: return a <= b ? 1 : 0
    case Op.CMPEQ: return a === b ? 1 : 0
    case Op.CMPNE: return a !== b ? 1 : 0
    case Op.CMPGT: return a > b ? 1 : 0
    case Op.CMPGE: return a >= b ? 1 : 0
    case Op.BAND: return band(a, b, L)
    case Op.BOR: return bor(a, b, L)
    default: return bxor(a, b, L)
  }
}
