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
import { Op, OP_COUNT } from './isa.js'
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

/**
 * Register file of the interpreter. A register holding a number keeps it in F; one holding a
 * bigint has NaN in F and the value in B. Numbers are finite safe integers, so NaN is free as the
 * marker, and the number fast paths need no separate type test: NaN poisons arithmetic (a NaN
 * sum fails the |t| ≤ 2^53 - 1 test, a NaN difference fails `d === d`), and a bigint is never 0
 * (|bigint| > 2^53 - 1), so `F[r] === 0` is exactly "r is zero". Numbers in F are also unboxed:
 * no heap number is allocated per result.
 */
const MARK = NaN

function get (F: Float64Array, B: Val[], r: number): Val {
  const v = F[r]
  return v === v ? v : B[r]
}

function set (F: Float64Array, B: Val[], r: number, v: Val): void {
  if (typeof v === 'number') {
    F[r] = v
  } else {
    F[r] = MARK
    B[r] = v
  }
}

/**
 * An end marker after the last instruction: running off the end needs no bounds test per step.
 * The next number after the opcodes, so the `switch` stays dense (a jump table).
 */
const END = OP_COUNT
const streams = new WeakMap<Int32Array, Int32Array>()

/** The lowered code with END appended (cached per program). */
function stream (vp: VerifiedProgram): Int32Array {
  let s = streams.get(vp.code)
  if (s === undefined) {
    s = new Int32Array(vp.code.length + 4)
    s.set(vp.code)
    s[vp.code.length] = END
    streams.set(vp.code, s)
  }
  return s
}

export function interpret (vp: VerifiedProgram, m: Machine, env: RunEnv): RawResult {
  const code = stream(vp)
  const consts = vp.consts
  const F = new Float64Array(16)
  const B: Val[] = new Array<Val>(16).fill(0)
  for (let r = 0; r < 16; r++) set(F, B, r, m.regs[r])
  const vs = m.vs
  const cs = m.cs
  const { fuel: budget, maxStack, maxCallDepth } = env.limits
  const L = env.L
  let pc = m.pc
  let fuel = m.fuel
  // No closure over pc/fuel here: captured locals would live in a context object and slow the loop.
  // Each case runs the number fast path inline and leaves everything else (bigints, results beyond
  // 2^53 - 1, division by zero) to `slow`, which computes the exact cost first.
  for (;;) {
    const i = pc << 2
    const op = code[i]
    if (fuel >= budget) {
      if (op === END) return { value: get(F, B, 0), fuel }
      throw failure(vp, 'ERR_VASM_FUEL_EXHAUSTED', pc, fuel)
    }
    const x = code[i + 1]
    const y = code[i + 2]
    const z = code[i + 3]
    switch (op) {
      case Op.ADD: {
        const t = F[y] + F[z]
        if (Math.abs(t) <= MAX_SAFE) { F[x] = t; fuel++ } else fuel += slow(vp, op, x, y, z, F, B, fuel, budget, L, pc)
        break
      }
      case Op.SUB: {
        const t = F[y] - F[z]
        if (Math.abs(t) <= MAX_SAFE) { F[x] = t; fuel++ } else fuel += slow(vp, op, x, y, z, F, B, fuel, budget, L, pc)
        break
      }
      case Op.MUL: {
        const t = F[y] * F[z]
        if (Math.abs(t) <= MAX_SAFE) { F[x] = t + 0; fuel++ } else fuel += slow(vp, op, x, y, z, F, B, fuel, budget, L, pc)
        break
      }
      case Op.DIV: case Op.MOD: {
        const a = F[y]
        const b = F[z]
        const d = a - b
        if (d === d && b !== 0) {
          F[x] = op === Op.DIV ? Math.trunc(a / b) + 0 : (a % b) + 0
          fuel++
        } else fuel += slow(vp, op, x, y, z, F, B, fuel, budget, L, pc)
        break
      }
      case Op.INC: {
        const t = F[x] + 1
        if (t <= MAX_SAFE) { F[x] = t; fuel++ } else fuel += slow(vp, op, x, y, z, F, B, fuel, budget, L, pc)
        break
      }
      case Op.DEC: {
        const t = F[x] - 1
        if (t >= -MAX_SAFE) { F[x] = t; fuel++ } else fuel += slow(vp, op, x, y, z, F, B, fuel, budget, L, pc)
        break
      }
      case Op.CMPLT: case Op.CMPLE: case Op.CMPEQ: case Op.CMPNE: case Op.CMPGT: case Op.CMPGE: {
        const a = F[y]
        const b = F[z]
        const d = a - b
        // d has the sign of the exact difference (rounding never crosses 0), and is NaN for a bigint.
        if (d === d) {
          F[x] = (op === Op.CMPLT ? d < 0 : op === Op.CMPLE ? d <= 0 : op === Op.CMPEQ ? d === 0
            : op === Op.CMPNE ? d !== 0 : op === Op.CMPGT ? d > 0 : d >= 0) ? 1 : 0
          fuel++
        } else fuel += slow(vp, op, x, y, z, F, B, fuel, budget, L, pc)
        break
      }
      case Op.BAND: case Op.BOR: case Op.BXOR: {
        const a = F[y]
        const b = F[z]
        if ((a | 0) === a && (b | 0) === b) {
          F[x] = op === Op.BAND ? a & b : op === Op.BOR ? a | b : a ^ b
          fuel++
        } else fuel += slow(vp, op, x, y, z, F, B, fuel, budget, L, pc)
        break
      }
      case Op.JMP: pc = x; fuel++; continue
      case Op.JIF: fuel++; if (F[x] !== 0) { pc = y; continue } break
      case Op.JZ: fuel++; if (F[x] === 0) { pc = y; continue } break
      case Op.MOV: {
        const v = F[y]
        F[x] = v
        if (v !== v) B[x] = B[y]
        fuel++
        break
      }
      case Op.LOAD_CONST: {
        const v = consts[y]
        if (typeof v === 'number') {
          F[x] = v
        } else {
          if (vp.constBits[y] > L.maxBits) throw failure(vp, 'ERR_VASM_INTEGER_TOO_LARGE', pc, fuel)
          F[x] = MARK
          B[x] = v
        }
        fuel++
        break
      }
      case Op.AND: F[x] = F[y] !== 0 && F[z] !== 0 ? 1 : 0; fuel++; break
      case Op.OR: F[x] = F[y] !== 0 || F[z] !== 0 ? 1 : 0; fuel++; break
      case Op.NOT: F[x] = F[y] === 0 ? 1 : 0; fuel++; break
      case Op.NEG: case Op.ABS: {
        const a = F[y]
        if (a === a) { F[x] = op === Op.NEG ? 0 - a : Math.abs(a); fuel++ } else fuel += slow(vp, op, x, y, z, F, B, fuel, budget, L, pc)
        break
      }
      case Op.SHL: case Op.SHR: fuel += slow(vp, op, x, y, z, F, B, fuel, budget, L, pc); break
      case Op.NOP: fuel++; break
      case Op.CALL:
        if (cs.length >= maxCallDepth) throw failure(vp, 'ERR_VASM_CALL_STACK_OVERFLOW', pc, fuel)
        cs.push(pc + 1)
        pc = x
        fuel++
        continue
      case Op.RET:
        fuel++
        if (cs.length === 0) return { value: get(F, B, 0), fuel }
        pc = cs.pop() as number
        continue
      case Op.PUSH:
        if (vs.length >= maxStack) throw failure(vp, 'ERR_VASM_STACK_OVERFLOW', pc, fuel)
        vs.push(get(F, B, x))
        fuel++
        break
      case Op.POP:
        if (vs.length === 0) throw failure(vp, 'ERR_VASM_STACK_UNDERFLOW', pc, fuel)
        set(F, B, x, vs.pop() as Val)
        fuel++
        break
      case Op.HALT: return { value: get(F, B, 0), fuel: fuel + 1 }
      case END: return { value: get(F, B, 0), fuel }
      default:
        // Verified programs hold only known opcodes: reaching this is a bug in the library.
        throw new Error(`vasm: unknown opcode ${op} at ${pc} in a verified program`)
    }
    pc++
  }
}

/**
 * The general case of a sized instruction (any operand types): its cost from the operands
 * (isa.ts fuel classes), `fuel exhausted` when it does not fit, the operation (with `integer too
 * large` and `division by zero`), the result stored. Returns the cost; charges nothing on failure.
 */
function slow (vp: VerifiedProgram, op: number, x: number, y: number, z: number, F: Float64Array, B: Val[],
  fuel: number, budget: number, L: IntLimit, pc: number): number {
  let cost: number
  let r: Val | undefined
  if (op === Op.INC || op === Op.DEC) {
    const a = get(F, B, x)
    cost = words(a)
    if (fuel + cost > budget) throw failure(vp, 'ERR_VASM_FUEL_EXHAUSTED', pc, fuel)
    r = op === Op.INC ? add(a, 1, L) : sub(a, 1, L)
  } else if (op === Op.NEG || op === Op.ABS) {
    const a = get(F, B, y)
    cost = words(a)
    if (fuel + cost > budget) throw failure(vp, 'ERR_VASM_FUEL_EXHAUSTED', pc, fuel)
    r = op === Op.NEG ? neg(a) : abs(a)
  } else {
    const a = get(F, B, y)
    const b = get(F, B, z)
    if (op === Op.MUL || op === Op.DIV || op === Op.MOD) {
      cost = costMul(a, b)
      if (fuel + cost > budget) throw failure(vp, 'ERR_VASM_FUEL_EXHAUSTED', pc, fuel)
      if (op === Op.MUL) {
        r = mul(a, b, L)
      } else {
        if (b === 0) throw failure(vp, 'ERR_VASM_DIVISION_BY_ZERO', pc, fuel)
        r = op === Op.DIV ? div(a, b) : mod(a, b)
      }
    } else if (op === Op.SHL || op === Op.SHR) {
      const left = op === Op.SHL
      cost = costShift(a, b, left, L)
      if (fuel + cost > budget) throw failure(vp, 'ERR_VASM_FUEL_EXHAUSTED', pc, fuel)
      r = left ? shl(a, b, L) : shr(a, b, L)
    } else {
      cost = costLin(a, b)
      if (fuel + cost > budget) throw failure(vp, 'ERR_VASM_FUEL_EXHAUSTED', pc, fuel)
      r = linear(op, a, b, L)
    }
  }
  if (r === undefined) throw failure(vp, 'ERR_VASM_INTEGER_TOO_LARGE', pc, fuel)
  set(F, B, x, r)
  return cost
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
