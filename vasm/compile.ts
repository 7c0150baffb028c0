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
 * - Self-loops of register instructions also get a typed kernel (typedLoop below): number-only
 *   trips over unboxed registers, each a transaction that the generic block code redoes exactly
 *   when the number path cannot finish it.
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
  const kernels: string[] = []
  const body: string[] = []
  const misses: string[] = []
  const typedStarts: number[] = []
  for (let b = 0; b < starts.length - 1; b++) {
    const s = starts[b]
    const k = starts[b + 1] - s
    const lastPc = s + k - 1
    // A block ending in a jump to its own start is a loop of its own: no dispatch per trip.
    const selfLoop = vp.code[lastPc * 4] === Op.JMP && vp.code[lastPc * 4 + 1] === s
    body.push(`      case ${s}:`)
    if (selfLoop) {
      body.push(`        b${s}: for (;;) {`)
      const typed = typedLoop(vp, s, k)
      if (typed !== undefined) {
        kernels.push(...typed.kernel)
        body.push(...typed.entry)
        misses.push(`, miss${s} = 0`)
        typedStarts.push(s)
      }
    }
    body.push(`        if (fuel > budget - ${k}) return S(${s}, fuel, [${REGS}], vs, cs);`)
    body.push(`        fuel += ${k};`)
    for (let j = 0; j < k; j++) body.push('        ' + instr(vp, s + j, j, k, selfLoop ? s : -1))
    if (selfLoop) body.push('        }')
  }
  return [
    '"use strict";',
    ...kernels,
    // Kernels run a long loop on their first calls; warmed with empty runs (tr = 0: no trip, no
    // effect) they have feedback for their entry and exit too, so the optimiser does not compile
    // them without it and fall back (measured: several slow runs before settling otherwise).
    ...(kernels.length > 0 ? [`{ const W = new Float64Array(${TYPED_STATE_SLOTS}); for (let i = 0; i < 256; i++) { ${typedStarts.map(s => `T${s}(W, 0);`).join(' ')} } }`] : []),
    'return function vasmCompiled (H, S, K, R, vs, cs, budget, md, ms, L) {',
    `  let ${Array.from({ length: 16 }, (_, i) => `r${i} = R[${i}]`).join(', ')};`,
    // miss<s>: entries into block s's typed loop that aborted before completing a trip (see typedLoop).
    `  let fuel = 0, pc = 0, t, x${misses.join('')};`,
    ...(kernels.length > 0 ? [`  const N = new Float64Array(${TYPED_STATE_SLOTS});`] : []),
    '  dispatch: for (;;) {',
    '    switch (pc) {',
    ...body,
    `      case ${vp.length}: return { value: r0, fuel };`,
    '      default: throw new Error("vasm: compiled code reached an unknown pc " + pc);',
    '    }', '  }', '};'
  ].join('\n')
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

/** Instructions a typed loop can run: they touch only registers and cost 1 on numbers. */
const TYPED_OK = new Set<number>([
  Op.NOP, Op.LOAD_CONST, Op.MOV, Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.MOD, Op.INC, Op.DEC,
  Op.CMPLT, Op.CMPLE, Op.CMPEQ, Op.CMPNE, Op.CMPGT, Op.CMPGE, Op.AND, Op.OR, Op.NOT, Op.NEG, Op.ABS,
  Op.BAND, Op.BOR, Op.BXOR, Op.JIF, Op.JZ, Op.JMP
])
/** Zero-progress entries after which a block stops trying its typed loop for the rest of the run. */
const TYPED_MISS_LIMIT = 4
/** Most trips granted at once (keeps the trip counter a small integer); the loop re-enters after. */
const TYPED_TRIPS_CAP = 1 << 30

/** Registers an instruction reads and writes (operands in table order; jumps read only JIF/JZ's register). */
function regsOf (op: number, x: number, y: number, z: number): { reads: number[], writes: number[] } {
  switch (op) {
    case Op.NOP: case Op.JMP: return { reads: [], writes: [] }
    case Op.LOAD_CONST: return { reads: [], writes: [x] }
    case Op.MOV: case Op.NOT: case Op.NEG: case Op.ABS: return { reads: [y], writes: [x] }
    case Op.INC: case Op.DEC: return { reads: [x], writes: [x] }
    case Op.JIF: case Op.JZ: return { reads: [x], writes: [] }
    default: return { reads: [y, z], writes: [x] }
  }
}

/** Slots of the typed loops' state array: the 16 registers, then the trips done. */
const TYPED_STATE_SLOTS = 17
/** Trips per kernel call: many short calls let the engine optimise the kernel as a whole function. */
const TYPED_CHUNK_TRIPS = 4096

/**
 * A number-only version of a self-looping block. While every register the block touches holds a
 * number, trips run in a separate kernel function `T<s>(N, tr)` over a Float64Array of the
 * registers, so the engine keeps them unboxed: no type checks, no boxing, a trip counter instead
 * of fuel arithmetic. The kernel runs at most `tr` trips per call (a chunk: short calls get the
 * kernel optimised as a whole function rather than by on-stack replacement) and stores the trips
 * done in N[16].
 *
 * Each trip is a transaction: the registers it writes are saved at its start, and anything the
 * number path cannot do exactly (a result beyond 2^53 - 1, a bitwise operand beyond int32,
 * division by zero) restores them and returns -2 before the trip has any effect; the generic code
 * of the same block then runs that trip (and raises errors through the interpreter as usual).
 * Fuel is exact: only trips whose whole base cost fits are granted, every instruction here costs
 * 1 on numbers (W = 1, M = 1), and a conditional exit after the block's j-th instruction returns
 * j and is charged j + 1 for the partial trip, as the interpreter would. A kernel returns -1 when
 * it used up its trips.
 *
 * Returns undefined when the block has instructions outside TYPED_OK or a big constant.
 */
function typedLoop (vp: VerifiedProgram, s: number, k: number): { kernel: string[], entry: string[] } | undefined {
  const c = vp.code
  const used = new Set<number>()
  const written = new Set<number>()
  for (let pc = s; pc < s + k; pc++) {
    const op = c[pc * 4]
    if (!TYPED_OK.has(op)) return undefined
    if (op === Op.LOAD_CONST && typeof vp.consts[c[pc * 4 + 2]] !== 'number') return undefined
    const { reads, writes } = regsOf(op, c[pc * 4 + 1], c[pc * 4 + 2], c[pc * 4 + 3])
    for (const r of reads) used.add(r)
    for (const r of writes) { used.add(r); written.add(r) }
  }
  const regs = [...used].sort((a, b) => a - b)
  const saved = [...written].sort((a, b) => a - b)
  const guard = regs.map(r => ` && typeof r${r} === "number"`).join('')
  const restore = saved.map(r => `n${r} = s${r};`).join(' ')
  const abort = `{ ${restore} code = -2; break t; }`
  const kernel: string[] = [
    `const T${s} = function (N, tr) {`,
    `  let ${[...regs.map(r => `n${r} = N[${r}]`), 'dn = 0', 'code = -1', 't'].join(', ')};`,
    '  t: while (dn < tr) {'
  ]
  if (saved.length > 0) kernel.push(`    const ${saved.map(r => `s${r} = n${r}`).join(', ')};`)
  const exits: string[] = []
  for (let j = 0; j < k; j++) {
    const pc = s + j
    const op = c[pc * 4]
    const x = c[pc * 4 + 1]
    const y = c[pc * 4 + 2]
    const z = c[pc * 4 + 3]
    const D = `n${x}`
    const A = `n${y}`
    const B = `n${z}`
    const exit = (target: number): string => {
      exits.push(`if (t === ${j}) { fuel += ${j + 1}; pc = ${target}; continue dispatch; }`)
      return `{ code = ${j}; break t; }`
    }
    // One compare for |t| ≤ 2^53 - 1 (measured faster than two in the kernel's hot loop).
    const safe = (expr: string, fix: string): string =>
      `t = ${expr}; if (Math.abs(t) > ${MS}) ${abort} ${D} = t${fix};`
    const bits = (sym: string): string =>
      `if ((${A} | 0) !== ${A} || (${B} | 0) !== ${B}) ${abort} ${D} = ${A} ${sym} ${B};`
    let line: string
    switch (op) {
      case Op.NOP: line = ';'; break
      case Op.LOAD_CONST: line = `${D} = ${String(vp.consts[y])};`; break
      case Op.MOV: line = `${D} = ${A};`; break
      case Op.ADD: line = safe(`${A} + ${B}`, ''); break
      case Op.SUB: line = safe(`${A} - ${B}`, ''); break
      case Op.MUL: line = safe(`${A} * ${B}`, ' + 0'); break
      case Op.DIV: line = `if (${B} === 0) ${abort} ${D} = Math.trunc(${A} / ${B}) + 0;`; break
      case Op.MOD: line = `if (${B} === 0) ${abort} ${D} = (${A} % ${B}) + 0;`; break
      case Op.INC: line = `if (${D} >= ${MS}) ${abort} ${D} = ${D} + 1;`; break
      case Op.DEC: line = `if (${D} <= -${MS}) ${abort} ${D} = ${D} - 1;`; break
      case Op.CMPLT: line = `${D} = ${A} < ${B} ? 1 : 0;`; break
      case Op.CMPLE: line = `${D} = ${A} <= ${B} ? 1 : 0;`; break
      case Op.CMPEQ: line = `${D} = ${A} === ${B} ? 1 : 0;`; break
      case Op.CMPNE: line = `${D} = ${A} !== ${B} ? 1 : 0;`; break
      case Op.CMPGT: line = `${D} = ${A} > ${B} ? 1 : 0;`; break
      case Op.CMPGE: line = `${D} = ${A} >= ${B} ? 1 : 0;`; break
      case Op.AND: line = `${D} = ${A} !== 0 && ${B} !== 0 ? 1 : 0;`; break
      case Op.OR: line = `${D} = ${A} !== 0 || ${B} !== 0 ? 1 : 0;`; break
      case Op.NOT: line = `${D} = ${A} === 0 ? 1 : 0;`; break
      case Op.NEG: line = `${D} = 0 - ${A};`; break
      case Op.ABS: line = `${D} = Math.abs(${A});`; break
      case Op.BAND: line = bits('&'); break
      case Op.BOR: line = bits('|'); break
      case Op.BXOR: line = bits('^'); break
      case Op.JIF: line = `if (n${x} !== 0) ${exit(y)}`; break
      case Op.JZ: line = `if (n${x} === 0) ${exit(y)}`; break
      // The block's last instruction, back to its start: the trip is complete.
      case Op.JMP: line = 'dn++;'; break
      default: throw new Error(`vasm: opcode ${op} in a typed loop`)
    }
    kernel.push('    ' + line)
  }
  kernel.push('  }', `  ${regs.map(r => `N[${r}] = n${r};`).join(' ')} N[16] = dn;`, '  return code;', '};')
  const load = regs.map(r => `N[${r}] = r${r};`).join(' ')
  const store = regs.map(r => `r${r} = N[${r}] + 0;`).join(' ')
  const entry: string[] = [
    `        if (miss${s} < ${TYPED_MISS_LIMIT}${guard}) {`,
    `          ${load}`,
    '          for (;;) {',
    `            x = Math.min(Math.floor((budget - fuel) / ${k}), ${TYPED_CHUNK_TRIPS});`,
    `            t = T${s}(N, x);`,
    `            fuel += N[16] * ${k};`,
    `            if (t !== -1 || N[16] < ${TYPED_CHUNK_TRIPS}) break;`,
    '          }',
    `          ${store}`,
    ...exits.map(e => '          ' + e),
    `          if (t === -2 && N[16] === 0) miss${s}++;`,
    '        }'
  ]
  return { kernel, entry }
}
