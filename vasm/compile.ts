/**
 * The compiled engine: a verified program becomes one JavaScript function, a `switch` over its
 * blocks inside a loop, registers in local variables, numbers on the fast paths. A block starts
 * at the entry, at every branch target and after JMP, CALL, RET and HALT; JIF and JZ may leave
 * it in the middle (refunding the base fuel of the skipped rest). A block that ends by jumping to
 * its own start becomes a JavaScript loop of its own.
 *
 * Identical to the interpreter by construction:
 * - Fuel: a block of k instructions is charged k on entry when k fits the budget; instruction j
 *   of the block then knows the interpreter's fuel exactly (fuel - (k - j) before it). A
 *   size-dependent extra is paid inline only while the fuel charged so far (including the rest of
 *   the block's base costs) stays within the budget, so the compiled fuel never passes it.
 * - Anything unusual (fuel short at a block entry or for an extra, division by zero, a stack
 *   limit, an integer above maxBits) hands the exact machine state (pc, fuel, registers, stacks)
 *   to the interpreter, which finishes the run. Errors are therefore only ever raised by the
 *   interpreter, and the handover happens before the instruction has any effect.
 *
 * Safety: the generated source is built only from opcodes, register indices, pcs, block sizes
 * and safe-integer constants of a verified program (all numbers), never from user strings.
 */
import { Op, endsFlow, isBranch } from './isa.js'
import { interpret, type Machine, type RawResult, type RunEnv } from './interp.js'
import * as H from './values.js'
import type { Val } from './values.js'
import type { VerifiedProgram } from './verifier.js'

/** Programs longer than this run on the interpreter (generated code would be too large to pay off). */
export const MAX_COMPILED_INSTRUCTIONS = 16_384
/** Compiled functions kept, by program hash (least recently used evicted). */
export const COMPILE_CACHE_ENTRIES = 64

type Bail = (pc: number, fuel: number, regs: Val[], vs: Val[], cs: number[]) => RawResult
type CompiledFn = (h: typeof H, bail: Bail, k: readonly Val[], regs: Val[], vs: Val[], cs: number[],
  budget: number, maxDepth: number, maxStack: number, L: H.IntLimit) => RawResult

const cache = new Map<string, CompiledFn>()
let compiledCount = 0

/** How many programs were compiled since start (cache misses), for tests and metrics. */
export function compileCount (): number { return compiledCount }

export function compiledFunction (vp: VerifiedProgram): CompiledFn {
  const hit = cache.get(vp.hash)
  if (hit !== undefined) {
    cache.delete(vp.hash)
    cache.set(vp.hash, hit)
    return hit
  }
  // eslint-disable-next-line @typescript-eslint/no-implied-eval, no-new-func
  const fn = new Function(generate(vp))() as CompiledFn
  compiledCount++
  cache.set(vp.hash, fn)
  if (cache.size > COMPILE_CACHE_ENTRIES) cache.delete(cache.keys().next().value as string)
  return fn
}

/** Runs a fresh machine (pc 0, fuel 0) on compiled code. */
export function runCompiled (vp: VerifiedProgram, m: Machine, env: RunEnv): RawResult {
  if (vp.length > MAX_COMPILED_INSTRUCTIONS || vp.maxConstBits > env.limits.maxBits || m.pc !== 0 || m.fuel !== 0) {
    return interpret(vp, m, env)
  }
  const fn = compiledFunction(vp)
  const bail: Bail = (pc, fuel, regs, vs, cs) => interpret(vp, { regs, vs, cs, pc, fuel }, env)
  const { fuel, maxCallDepth, maxStack } = env.limits
  return fn(H, bail, vp.consts, m.regs, m.vs, m.cs, fuel, maxCallDepth, maxStack, env.L)
}

const MS = String(Number.MAX_SAFE_INTEGER)
const REGS = Array.from({ length: 16 }, (_, i) => `r${i}`).join(', ')

function leaders (vp: VerifiedProgram): number[] {
  const n = vp.length
  const lead = new Uint8Array(n + 1)
  lead[0] = 1
  lead[n] = 1
  for (let pc = 0; pc < n; pc++) {
    const op = vp.code[pc * 4]
    if (isBranch(op)) lead[op === Op.JMP || op === Op.CALL ? vp.code[pc * 4 + 1] : vp.code[pc * 4 + 2]] = 1
    // Conditional branches do not end a block (they leave it with a fuel refund), so a loop
    // body is one block; the pc after a CALL is where RET lands, so it starts one.
    if (op === Op.CALL || endsFlow(op)) lead[pc + 1] = 1
  }
  const out: number[] = []
  for (let pc = 0; pc <= n; pc++) if (lead[pc] === 1) out.push(pc)
  return out
}

export function generate (vp: VerifiedProgram): string {
  const starts = leaders(vp)
  const out: string[] = [
    '"use strict";',
    'return function vasmCompiled (H, S, K, R, vs, cs, budget, md, ms, L) {',
    `  let ${Array.from({ length: 16 }, (_, i) => `r${i} = R[${i}]`).join(', ')};`,
    '  let fuel = 0, pc = 0, t, x;',
    '  dispatch: for (;;) {',
    '    switch (pc) {'
  ]
  for (let b = 0; b < starts.length - 1; b++) {
    const s = starts[b]
    const k = starts[b + 1] - s
    const lastPc = s + k - 1
    // A block ending in a jump to its own start is a loop of its own: no dispatch per trip.
    const selfLoop = vp.code[lastPc * 4] === Op.JMP && vp.code[lastPc * 4 + 1] === s
    out.push(`      case ${s}:`)
    if (selfLoop) out.push(`        b${s}: for (;;) {`)
    out.push(`        if (fuel > budget - ${k}) return S(${s}, fuel, [${REGS}], vs, cs);`)
    out.push(`        fuel += ${k};`)
    for (let j = 0; j < k; j++) out.push('        ' + instr(vp, s + j, j, k, selfLoop ? s : -1))
    if (selfLoop) out.push('        }')
  }
  out.push(`      case ${vp.length}: return { value: r0, fuel };`)
  out.push('      default: throw new Error("vasm: compiled code reached an unknown pc " + pc);')
  out.push('    }', '  }', '};')
  return out.join('\n')
}

/** Code for instruction `pc`, the j-th of a block of k (`loopStart`: the block's start when it loops on itself, else -1). */
function instr (vp: VerifiedProgram, pc: number, j: number, k: number, loopStart: number): string {
  const c = vp.code
  const op = c[pc * 4]
  const x = c[pc * 4 + 1]
  const y = c[pc * 4 + 2]
  const z = c[pc * 4 + 3]
  const D = `r${x}`
  const A = `r${y}`
  const B = `r${z}`
  const bail = `return S(${pc}, fuel - ${k - j}, [${REGS}], vs, cs);`
  // The interpreter's fuel after this instruction's base cost of 1 is `fuel - after`.
  const after = k - j - 1
  // Leaving the block after this instruction: refund the base costs of the instructions skipped.
  const goto = (target: number, refund: number): string => {
    const pay = refund > 0 ? `fuel -= ${refund}; ` : ''
    return target === loopStart ? `${pay}continue b${loopStart};` : `${pay}pc = ${target}; continue dispatch;`
  }
  // An extra is paid only when the whole rest of the block still fits with it (fuel already holds
  // the block's base costs); otherwise the interpreter takes over at this instruction. Bailing
  // earlier than strictly needed is always correct: the interpreter is the reference.
  const extra = (costExpr: string): string => `x = ${costExpr} - 1; if (x > 0 && fuel + x > budget) ${bail}`
  const both = `typeof ${A} === "number" && typeof ${B} === "number"`
  const arith = (sym: string, helper: string, costFn: string, fix: string): string =>
    `if (${both} && (t = ${A} ${sym} ${B}) <= ${MS} && t >= -${MS}) ${D} = t${fix}; ` +
    `else { ${extra(`H.${costFn}(${A}, ${B})`)} t = H.${helper}(${A}, ${B}, L); if (t === undefined) ${bail} fuel += x; ${D} = t; }`
  const cmp = (sym: string): string =>
    `if (${both}) ${D} = ${A} ${sym} ${B} ? 1 : 0; else { ${extra(`H.costLin(${A}, ${B})`)} fuel += x; ${D} = ${A} ${sym} ${B} ? 1 : 0; }`
  const bits = (sym: string, helper: string): string =>
    `if (${both} && (${A} | 0) === ${A} && (${B} | 0) === ${B}) ${D} = ${A} ${sym} ${B}; ` +
    `else { ${extra(`H.costLin(${A}, ${B})`)} t = H.${helper}(${A}, ${B}, L); if (t === undefined) ${bail} fuel += x; ${D} = t; }`
  const divide = (expr: string, helper: string): string =>
    `if (${both} && ${B} !== 0) ${D} = ${expr} + 0; ` +
    `else { ${extra(`H.costMul(${A}, ${B})`)} if (${B} === 0) ${bail} fuel += x; ${D} = H.${helper}(${A}, ${B}); }`
  const shift = (left: boolean): string =>
    `${extra(`H.costShift(${A}, ${B}, ${String(left)}, L)`)} t = H.${left ? 'shl' : 'shr'}(${A}, ${B}, L); if (t === undefined) ${bail} fuel += x; ${D} = t;`
  switch (op) {
    case Op.HALT: return `return { value: r0, fuel: fuel - ${after} };`
    case Op.NOP: return ';'
    case Op.LOAD_CONST: {
      const v = vp.consts[y]
      return typeof v === 'number' ? `${D} = ${String(v)};` : `${D} = K[${y}];`
    }
    case Op.MOV: return `${D} = ${A};`
    case Op.ADD: return arith('+', 'add', 'costLin', '')
    case Op.SUB: return arith('-', 'sub', 'costLin', '')
    case Op.MUL: return arith('*', 'mul', 'costMul', ' + 0')
    case Op.DIV: return divide(`Math.trunc(${A} / ${B})`, 'div')
    case Op.MOD: return divide(`(${A} % ${B})`, 'mod')
    case Op.INC:
      return `if (typeof ${D} === "number" && ${D} < ${MS}) ${D} = ${D} + 1; ` +
        `else { ${extra(`H.words(${D})`)} t = H.add(${D}, 1, L); if (t === undefined) ${bail} fuel += x; ${D} = t; }`
    case Op.DEC:
      return `if (typeof ${D} === "number" && ${D} > -${MS}) ${D} = ${D} - 1; ` +
        `else { ${extra(`H.words(${D})`)} t = H.sub(${D}, 1, L); if (t === undefined) ${bail} fuel += x; ${D} = t; }`
    case Op.CMPLT: return cmp('<')
    case Op.CMPLE: return cmp('<=')
    case Op.CMPEQ: return cmp('===')
    case Op.CMPNE: return cmp('!==')
    case Op.CMPGT: return cmp('>')
    case Op.CMPGE: return cmp('>=')
    case Op.AND: return `${D} = ${A} !== 0 && ${B} !== 0 ? 1 : 0;`
    case Op.OR: return `${D} = ${A} !== 0 || ${B} !== 0 ? 1 : 0;`
    case Op.NOT: return `${D} = ${A} === 0 ? 1 : 0;`
    case Op.NEG: case Op.ABS: {
      const fast = op === Op.NEG ? `0 - ${A}` : `Math.abs(${A})`
      return `if (typeof ${A} === "number") ${D} = ${fast}; else { ${extra(`H.words(${A})`)} fuel += x; ${D} = H.${op === Op.NEG ? 'neg' : 'abs'}(${A}); }`
    }
    case Op.BAND: return bits('&', 'band')
    case Op.BOR: return bits('|', 'bor')
    case Op.BXOR: return bits('^', 'bxor')
    case Op.SHL: return shift(true)
    case Op.SHR: return shift(false)
    case Op.JMP: return goto(x, after)
    case Op.JIF: return `if (r${x} !== 0) { ${goto(y, after)} }`
    case Op.JZ: return `if (r${x} === 0) { ${goto(y, after)} }`
    case Op.CALL: return `if (cs.length >= md) ${bail} cs.push(${pc + 1}); ${goto(x, after)}`
    case Op.RET: return `if (cs.length === 0) return { value: r0, fuel: fuel - ${after} }; pc = cs.pop(); ${after > 0 ? `fuel -= ${after}; ` : ''}continue dispatch;`
    case Op.PUSH: return `if (vs.length >= ms) ${bail} vs.push(r${x});`
    case Op.POP: return `if (vs.length === 0) ${bail} ${D} = vs.pop();`
    default: throw new Error(`vasm: unknown opcode ${op} at ${pc} in a verified program`)
  }
}
