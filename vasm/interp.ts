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
import assert from 'node:assert/strict'
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
 * Opcodes as literals for the interpreter's `switch` (a const enum is inlined by tsc): with
 * literal cases the engine dispatches through a jump table; with `Op.X` property loads it tests
 * the cases one after another. Checked against isa.ts below.
 */
const enum O {
  HALT = 0, LOAD_CONST = 1, MOV = 2, ADD = 3, SUB = 4, MUL = 5, DIV = 6, MOD = 7, INC = 8, DEC = 9,
  CMPLT = 10, CMPLE = 11, CMPEQ = 12, CMPNE = 13, AND = 14, OR = 15, NOT = 16, JMP = 17, JIF = 18,
  CALL = 19, RET = 20, PUSH = 21, POP = 22, CMPGT = 23, CMPGE = 24, JZ = 25, NEG = 26, ABS = 27,
  BAND = 28, BOR = 29, BXOR = 30, SHL = 31, SHR = 32, NOP = 33,
  /** After the last instruction: running off the end needs no bounds test per step. */
  END = 34,
  /** A compare followed by JZ / JIF on its result (the pair, run as one step when both fit the fuel). */
  CMP_JZ = 35,
  CMP_JIF = 36
}
const LITERALS: ReadonlyArray<[number, number]> = [
  [O.HALT, Op.HALT], [O.LOAD_CONST, Op.LOAD_CONST], [O.MOV, Op.MOV], [O.ADD, Op.ADD], [O.SUB, Op.SUB], [O.MUL, Op.MUL], [O.DIV, Op.DIV], [O.MOD, Op.MOD], [O.INC, Op.INC], [O.DEC, Op.DEC], [O.CMPLT, Op.CMPLT], [O.CMPLE, Op.CMPLE], [O.CMPEQ, Op.CMPEQ], [O.CMPNE, Op.CMPNE], [O.AND, Op.AND], [O.OR, Op.OR], [O.NOT, Op.NOT], [O.JMP, Op.JMP], [O.JIF, Op.JIF], [O.CALL, Op.CALL], [O.RET, Op.RET], [O.PUSH, Op.PUSH], [O.POP, Op.POP], [O.CMPGT, Op.CMPGT], [O.CMPGE, Op.CMPGE], [O.JZ, Op.JZ], [O.NEG, Op.NEG], [O.ABS, Op.ABS], [O.BAND, Op.BAND], [O.BOR, Op.BOR], [O.BXOR, Op.BXOR], [O.SHL, Op.SHL], [O.SHR, Op.SHR], [O.NOP, Op.NOP]
]
for (const [lit, code] of LITERALS) assert.equal(lit, code, 'vasm/interp: opcode literals out of step with isa.ts')
assert.equal(LITERALS.length, OP_COUNT)
assert.equal(O.END, OP_COUNT)

/**
 * The interpreter's form of the code, SLOTS int32 per instruction (and one END instruction):
 * [op | x << 8 | y << 12 | z << 16 (register operands, 4 bits each), x, y, z, next, cmp, target, 0];
 * the operands in full (labels, constant indices) are in slots 1-3. `next` is where a non-branching instruction continues:
 * pc + 1, or -(t + 1) when pc + 1 is `JMP t` (the jump then runs in the same step if the fuel for
 * it is there; otherwise the JMP runs on its own and fails as usual). For CMP_JZ / CMP_JIF, `cmp`
 * is the compare's opcode and `target` the branch's; the branch instruction stays at pc + 1 for
 * jumps to it and for the unfused path.
 */
const SLOTS = 8
const streams = new WeakMap<Int32Array, Int32Array>()

function stream (vp: VerifiedProgram): Int32Array {
  let s = streams.get(vp.code)
  if (s !== undefined) return s
  const c = vp.code
  const n = vp.length
  s = new Int32Array((n + 1) * SLOTS)
  for (let pc = 0; pc < n; pc++) {
    const o = pc * SLOTS
    // Register operands (0-15) packed with the opcode: one load per step decodes them all.
    s[o] = c[pc * 4] | (c[pc * 4 + 1] & 15) << 8 | (c[pc * 4 + 2] & 15) << 12 | (c[pc * 4 + 3] & 15) << 16
    for (let k = 1; k < 4; k++) s[o + k] = c[pc * 4 + k]
    s[o + 4] = pc + 1 < n && c[(pc + 1) * 4] === O.JMP ? -(c[(pc + 1) * 4 + 1] + 1) : pc + 1
    const op = c[pc * 4]
    const isCmp = (op >= O.CMPLT && op <= O.CMPNE) || op === O.CMPGT || op === O.CMPGE
    const nextOp = pc + 1 < n ? c[(pc + 1) * 4] : -1
    if (isCmp && (nextOp === O.JZ || nextOp === O.JIF) && c[(pc + 1) * 4 + 1] === c[pc * 4 + 1]) {
      s[o] = (s[o] & ~255) | (nextOp === O.JZ ? O.CMP_JZ : O.CMP_JIF)
      s[o + 5] = op
      s[o + 6] = c[(pc + 1) * 4 + 2]
    }
  }
  s[n * SLOTS] = O.END
  streams.set(vp.code, s)
  return s
}

/** The result of a compare from d = a - b (numbers: d has the sign of the exact difference). */
function compare (op: number, d: number): number {
  return (op === O.CMPLT ? d < 0 : op === O.CMPLE ? d <= 0 : op === O.CMPEQ ? d === 0
    : op === O.CMPNE ? d !== 0 : op === O.CMPGT ? d > 0 : d >= 0) ? 1 : 0
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
    const i = pc * SLOTS
    const w = code[i]
    const op = w & 255
    if (fuel >= budget) {
      if (op === O.END) return { value: get(F, B, 0), fuel }
      throw failure(vp, 'ERR_VASM_FUEL_EXHAUSTED', pc, fuel)
    }
    const x = (w >> 8) & 15
    const y = (w >> 12) & 15
    const z = (w >> 16) & 15
    switch (op) {
      case O.ADD: {
        const t = F[y] + F[z]
        if (Math.abs(t) <= MAX_SAFE) { F[x] = t; fuel++ } else fuel += slow(vp, op, x, y, z, F, B, fuel, budget, L, pc)
        break
      }
      case O.SUB: {
        const t = F[y] - F[z]
        if (Math.abs(t) <= MAX_SAFE) { F[x] = t; fuel++ } else fuel += slow(vp, op, x, y, z, F, B, fuel, budget, L, pc)
        break
      }
      case O.MUL: {
        const t = F[y] * F[z]
        if (Math.abs(t) <= MAX_SAFE) { F[x] = t + 0; fuel++ } else fuel += slow(vp, op, x, y, z, F, B, fuel, budget, L, pc)
        break
      }
      case O.DIV: case O.MOD: {
        const a = F[y]
        const b = F[z]
        const d = a - b
        if (d === d && b !== 0) {
          F[x] = op === O.DIV ? Math.trunc(a / b) + 0 : (a % b) + 0
          fuel++
        } else fuel += slow(vp, op, x, y, z, F, B, fuel, budget, L, pc)
        break
      }
      case O.INC: {
        const t = F[x] + 1
        if (t <= MAX_SAFE) { F[x] = t; fuel++ } else fuel += slow(vp, op, x, y, z, F, B, fuel, budget, L, pc)
        break
      }
      case O.DEC: {
        const t = F[x] - 1
        if (t >= -MAX_SAFE) { F[x] = t; fuel++ } else fuel += slow(vp, op, x, y, z, F, B, fuel, budget, L, pc)
        break
      }
      case O.CMPLT: case O.CMPLE: case O.CMPEQ: case O.CMPNE: case O.CMPGT: case O.CMPGE: {
        const a = F[y]
        const b = F[z]
        const d = a - b
        // d has the sign of the exact difference (rounding never crosses 0), and is NaN for a bigint.
        if (d === d) {
          F[x] = compare(op, d)
          fuel++
        } else fuel += slow(vp, op, x, y, z, F, B, fuel, budget, L, pc)
        break
      }
      case O.BAND: case O.BOR: case O.BXOR: {
        const a = F[y]
        const b = F[z]
        if ((a | 0) === a && (b | 0) === b) {
          F[x] = op === O.BAND ? a & b : op === O.BOR ? a | b : a ^ b
          fuel++
        } else fuel += slow(vp, op, x, y, z, F, B, fuel, budget, L, pc)
        break
      }
      case O.CMP_JZ: case O.CMP_JIF: {
        const a = F[y]
        const b = F[z]
        const d = a - b
        const cmp = code[i + 5]
        if (d === d && fuel + 1 < budget) {
          // Both instructions fit the fuel (fuel + 2 <= budget): run the pair.
          const r = compare(cmp, d)
          F[x] = r
          fuel += 2
          pc = (r === 0) === (op === O.CMP_JZ) ? code[i + 6] : pc + 2
          continue
        }
        // Otherwise the compare alone; the branch runs as its own step at pc + 1.
        if (d === d) { F[x] = compare(cmp, d); fuel++ } else fuel += slow(vp, cmp, x, y, z, F, B, fuel, budget, L, pc)
        pc++
        continue
      }
      case O.JMP: pc = code[i + 1]; fuel++; continue
      case O.JIF: fuel++; if (F[x] !== 0) { pc = code[i + 2]; continue } break
      case O.JZ: fuel++; if (F[x] === 0) { pc = code[i + 2]; continue } break
      case O.MOV: {
        const v = F[y]
        F[x] = v
        if (v !== v) B[x] = B[y]
        fuel++
        break
      }
      case O.LOAD_CONST: {
        const k = code[i + 2]
        const v = consts[k]
        if (typeof v === 'number') {
          F[x] = v
        } else {
          if (vp.constBits[k] > L.maxBits) throw failure(vp, 'ERR_VASM_INTEGER_TOO_LARGE', pc, fuel)
          F[x] = MARK
          B[x] = v
        }
        fuel++
        break
      }
      case O.AND: F[x] = F[y] !== 0 && F[z] !== 0 ? 1 : 0; fuel++; break
      case O.OR: F[x] = F[y] !== 0 || F[z] !== 0 ? 1 : 0; fuel++; break
      case O.NOT: F[x] = F[y] === 0 ? 1 : 0; fuel++; break
      case O.NEG: case O.ABS: {
        const a = F[y]
        if (a === a) { F[x] = op === O.NEG ? 0 - a : Math.abs(a); fuel++ } else fuel += slow(vp, op, x, y, z, F, B, fuel, budget, L, pc)
        break
      }
      case O.SHL: case O.SHR: fuel += slow(vp, op, x, y, z, F, B, fuel, budget, L, pc); break
      case O.NOP: fuel++; break
      case O.CALL:
        if (cs.length >= maxCallDepth) throw failure(vp, 'ERR_VASM_CALL_STACK_OVERFLOW', pc, fuel)
        cs.push(pc + 1)
        pc = code[i + 1]
        fuel++
        continue
      case O.RET:
        fuel++
        if (cs.length === 0) return { value: get(F, B, 0), fuel }
        pc = cs.pop() as number
        continue
      case O.PUSH:
        if (vs.length >= maxStack) throw failure(vp, 'ERR_VASM_STACK_OVERFLOW', pc, fuel)
        vs.push(get(F, B, x))
        fuel++
        break
      case O.POP:
        if (vs.length === 0) throw failure(vp, 'ERR_VASM_STACK_UNDERFLOW', pc, fuel)
        set(F, B, x, vs.pop() as Val)
        fuel++
        break
      case O.HALT: return { value: get(F, B, 0), fuel: fuel + 1 }
      case O.END: return { value: get(F, B, 0), fuel }
      default:
        // Verified programs hold only known opcodes: reaching this is a bug in the library.
        throw new Error(`vasm: unknown opcode ${op} at ${pc} in a verified program`)
    }
    const next = code[i + 4]
    if (next >= 0) {
      pc = next
    } else if (fuel < budget) {
      fuel++ // the JMP at pc + 1, run in this step
      pc = -next - 1
    } else {
      pc++ // the JMP runs on its own and stops with fuel exhausted
    }
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
  if (op === O.INC || op === O.DEC) {
    const a = get(F, B, x)
    cost = words(a)
    if (fuel + cost > budget) throw failure(vp, 'ERR_VASM_FUEL_EXHAUSTED', pc, fuel)
    r = op === O.INC ? add(a, 1, L) : sub(a, 1, L)
  } else if (op === O.NEG || op === O.ABS) {
    const a = get(F, B, y)
    cost = words(a)
    if (fuel + cost > budget) throw failure(vp, 'ERR_VASM_FUEL_EXHAUSTED', pc, fuel)
    r = op === O.NEG ? neg(a) : abs(a)
  } else {
    const a = get(F, B, y)
    const b = get(F, B, z)
    if (op === O.MUL || op === O.DIV || op === O.MOD) {
      cost = costMul(a, b)
      if (fuel + cost > budget) throw failure(vp, 'ERR_VASM_FUEL_EXHAUSTED', pc, fuel)
      if (op === O.MUL) {
        r = mul(a, b, L)
      } else {
        if (b === 0) throw failure(vp, 'ERR_VASM_DIVISION_BY_ZERO', pc, fuel)
        r = op === O.DIV ? div(a, b) : mod(a, b)
      }
    } else if (op === O.SHL || op === O.SHR) {
      const left = op === O.SHL
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
    case O.ADD: return add(a, b, L)
    case O.SUB: return sub(a, b, L)
    case O.CMPLT: return a < b ? 1 : 0
    case O.CMPLE: return a <= b ? 1 : 0
    case O.CMPEQ: return a === b ? 1 : 0
    case O.CMPNE: return a !== b ? 1 : 0
    case O.CMPGT: return a > b ? 1 : 0
    case O.CMPGE: return a >= b ? 1 : 0
    case O.BAND: return band(a, b, L)
    case O.BOR: return bor(a, b, L)
    default: return bxor(a, b, L)
  }
}
