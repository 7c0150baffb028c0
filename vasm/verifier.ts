/**
 * Program → VerifiedProgram. Only verified programs reach the engines (they take nothing else).
 *
 * Structural checks (always): size bounds, known opcodes, operand count and kinds, register
 * indices 0-15, branch targets 0..length (the end means "stop"), immediates within maxConstBits,
 * labels valid and unique, debug positions one per instruction.
 *
 * Static checks (where knowable; run-time limits always apply anyway):
 * - the call graph of routines (the entry and every CALL target) without recursion must not nest
 *   deeper than maxCallDepth;
 * - in the entry routine, where the value-stack height at an instruction is the same on every
 *   path, a POP at height 0 is a certain underflow and a PUSH at maxStack a certain overflow.
 * The analysis stops early (and leaves the rest to the run-time limits) past ANALYSIS_STEP_LIMIT
 * steps, so a hostile program cannot make verification slow.
 */
import { createHash } from 'node:crypto'
import { verifyError, VasmErrorCode } from './errors.js'
import { OPS, OP_COUNT, Op, REGISTER_COUNT } from './isa.js'
import { LABEL_RE, bitLength, resolveProgramLimits, type Program, type ProgramLimits } from './program.js'
import { encode } from './binary.js'
import { lower, type Lowered } from './lower.js'

/** Upper bound of abstract-interpretation steps over all routines. */
export const ANALYSIS_STEP_LIMIT = 2_000_000

export interface VerifiedProgram extends Lowered {
  readonly program: Program
  /** Canonical binary encoding (with labels and debug section). */
  readonly bytes: Uint8Array
  /** Hex SHA-256 of `bytes`: the program's identity (compile cache, content addressing). */
  readonly hash: string
  /** Statically known largest call depth, or undefined when the program recurses. */
  readonly staticCallDepth: number | undefined
}

const verified = new WeakSet<object>()

/** True for objects made by `verify` (the engines refuse anything else). */
export function isVerified (p: unknown): p is VerifiedProgram {
  return typeof p === 'object' && p !== null && verified.has(p)
}

export function verify (p: Program, limitsIn?: Partial<ProgramLimits>): VerifiedProgram {
  const limits = resolveProgramLimits(limitsIn)
  const n = p.instrs.length
  const at = (pc: number, detail: string, code: typeof VasmErrorCode[keyof typeof VasmErrorCode] = VasmErrorCode.VERIFY): never => {
    const pos = p.debug?.[pc]
    throw verifyError(pc, pos?.line, pos?.col, detail, code)
  }
  if (n > limits.maxInstructions) at(limits.maxInstructions, `more than ${limits.maxInstructions} instructions`, VasmErrorCode.PROGRAM_TOO_LARGE)
  if (p.debug !== undefined && p.debug.length !== n) at(0, `debug section has ${p.debug.length} positions for ${n} instructions`)
  for (let pc = 0; pc < n; pc++) checkInstr(p, pc, limits, at)
  checkLabels(p, limits, at)
  const staticCallDepth = analyze(p, limits, at)
  const bytes = encode(p)
  const hash = createHash('sha256').update(bytes).digest('hex')
  const frozen = freezeProgram(p)
  const vp: VerifiedProgram = Object.freeze({ ...lower(frozen), program: frozen, bytes, hash, staticCallDepth })
  verified.add(vp)
  return vp
}

function checkInstr (p: Program, pc: number, limits: ProgramLimits, at: (pc: number, d: string) => never): void {
  const ins = p.instrs[pc]
  if (typeof ins !== 'object' || ins === null || !Number.isInteger(ins.op) || ins.op < 0 || ins.op >= OP_COUNT) {
    at(pc, `expected an opcode 0-${OP_COUNT - 1}, found ${String(ins?.op)}`)
  }
  const info = OPS[ins.op]
  if (!Array.isArray(ins.args) || ins.args.length !== info.operands.length) {
    at(pc, `${info.name} takes ${info.operands.length} operands, found ${String(ins.args?.length)}`)
  }
  info.operands.forEach((kind, k) => {
    const v = ins.args[k]
    if (kind === 'reg') {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= REGISTER_COUNT) {
        at(pc, `${info.name} operand ${info.names[k]}: expected a register r0-r15, found ${String(v)}`)
      }
    } else if (kind === 'label') {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > p.instrs.length) {
        at(pc, `${info.name}: expected a jump target 0-${p.instrs.length}, found ${String(v)}`)
      }
    } else if (typeof v !== 'bigint' || bitLength(v) > limits.maxConstBits) {
      at(pc, `${info.name}: expected an integer constant of at most ${limits.maxConstBits} bits`)
    }
  })
}

function checkLabels (p: Program, limits: ProgramLimits, at: (pc: number, d: string) => never): void {
  const seen = new Set<string>()
  for (const l of p.labels) {
    const pc = Math.min(Math.max(0, Number(l.pc) || 0), Math.max(0, p.instrs.length - 1))
    if (typeof l.name !== 'string' || !LABEL_RE.test(l.name) || l.name.length > limits.maxLabelLength) {
      at(pc, `invalid label name ${JSON.stringify(String(l.name)).slice(0, 80)}`)
    }
    if (seen.has(l.name)) at(pc, `duplicate label ${JSON.stringify(l.name)}`)
    seen.add(l.name)
    if (!Number.isInteger(l.pc) || l.pc < 0 || l.pc > p.instrs.length) at(pc, `label ${JSON.stringify(l.name)} points outside the program`)
  }
}

/** Successors inside a routine (a CALL continues at pc + 1 once the callee returns). */
function successors (p: Program, pc: number): number[] {
  const ins = p.instrs[pc]
  switch (ins.op) {
    case Op.HALT: case Op.RET: return []
    case Op.JMP: return [Number(ins.args[0])]
    case Op.JIF: case Op.JZ: return [Number(ins.args[1]), pc + 1]
    default: return [pc + 1]
  }
}

interface Routine { entry: number, callees: Set<number>, callSites: Map<number, number> }

/** Static call-depth and stack checks; returns the static call depth (undefined with recursion or when the analysis gave up). */
function analyze (p: Program, limits: ProgramLimits, at: (pc: number, d: string) => never): number | undefined {
  const n = p.instrs.length
  const budget = { steps: ANALYSIS_STEP_LIMIT }
  const routines = new Map<number, Routine>()
  const pending = [0]
  while (pending.length > 0) {
    const entry = pending.pop() as number
    if (routines.has(entry)) continue
    const r: Routine = { entry, callees: new Set(), callSites: new Map() }
    routines.set(entry, r)
    const seen = new Uint8Array(n + 1)
    const work = [entry]
    while (work.length > 0) {
      if (--budget.steps < 0) return undefined
      const pc = work.pop() as number
      if (pc >= n || seen[pc] === 1) continue
      seen[pc] = 1
      const ins = p.instrs[pc]
      if (ins.op === Op.CALL) {
        const t = Number(ins.args[0])
        r.callees.add(t)
        if (!r.callSites.has(t)) r.callSites.set(t, pc)
        pending.push(t)
      }
      for (const s of successors(p, pc)) work.push(s)
    }
  }
  const depth = callDepths(routines)
  if (depth === undefined) return undefined
  const mainDepth = depth.get(0) ?? 0
  if (mainDepth > limits.maxCallDepth) {
    // Name the first CALL of the deepest chain from the entry.
    const main = routines.get(0) as Routine
    let site = 0
    for (const [callee, pc] of main.callSites) if ((depth.get(callee) ?? 0) + 1 === mainDepth) { site = pc; break }
    at(site, `calls nest ${mainDepth} deep, above the call depth limit of ${limits.maxCallDepth}`)
  }
  const effects = new Map<number, number | undefined>()
  const order = [...routines.keys()].sort((a, b) => (depth.get(a) ?? 0) - (depth.get(b) ?? 0))
  for (const entry of order) {
    const effect = stackHeights(p, entry, effects, entry === 0 ? limits : undefined, budget, at)
    if (effect === null) return mainDepth
    effects.set(entry, effect)
  }
  return mainDepth
}

/** Longest CALL chain below each routine, or undefined when the call graph has a cycle. */
function callDepths (routines: Map<number, Routine>): Map<number, number> | undefined {
  const depth = new Map<number, number>()
  const state = new Map<number, 1 | 2>() // 1 = on the DFS path, 2 = done
  for (const root of routines.keys()) {
    if (state.has(root)) continue
    const stack: Array<{ entry: number, it: Iterator<number> }> = [{ entry: root, it: (routines.get(root) as Routine).callees.values() }]
    state.set(root, 1)
    while (stack.length > 0) {
      const top = stack[stack.length - 1]
      const next = top.it.next()
      if (next.done === true) {
        let d = 0
        for (const c of (routines.get(top.entry) as Routine).callees) d = Math.max(d, (depth.get(c) ?? 0) + 1)
        depth.set(top.entry, d)
        state.set(top.entry, 2)
        stack.pop()
        continue
      }
      const s = state.get(next.value)
      if (s === 1) return undefined
      if (s === undefined) {
        state.set(next.value, 1)
        stack.push({ entry: next.value, it: (routines.get(next.value) as Routine).callees.values() })
      }
    }
  }
  return depth
}

const UNKNOWN = Number.NaN

/**
 * Relative value-stack heights through one routine. Returns its net effect at RET (undefined
 * when unknown or when it never returns), or null when the step budget ran out. With `limits`
 * (the entry routine, whose heights are absolute) certain underflows and overflows are errors.
 */
function stackHeights (p: Program, entry: number, effects: Map<number, number | undefined>, limits: ProgramLimits | undefined,
  budget: { steps: number }, at: (pc: number, d: string) => never): number | undefined | null {
  const n = p.instrs.length
  const height = new Map<number, number>()
  let retEffect: number | undefined
  let returns = false
  const work: Array<[number, number]> = [[entry, 0]]
  while (work.length > 0) {
    if (--budget.steps < 0) return null
    const [pc, h] = work.pop() as [number, number]
    if (pc >= n) continue
    const old = height.get(pc)
    let cur = h
    if (old !== undefined) {
      if (Object.is(old, h) || Number.isNaN(old)) continue
      cur = UNKNOWN
    }
    height.set(pc, cur)
    const ins = p.instrs[pc]
    let next = cur
    if (ins.op === Op.PUSH) {
      next = cur + 1
    } else if (ins.op === Op.POP) {
      next = cur - 1
    } else if (ins.op === Op.CALL) {
      const e = effects.get(Number(ins.args[0]))
      next = e === undefined ? UNKNOWN : cur + e
    } else if (ins.op === Op.RET) {
      if (!returns) retEffect = cur
      else if (!Object.is(retEffect, cur)) retEffect = UNKNOWN
      returns = true
    }
    for (const s of successors(p, pc)) work.push([s, next])
  }
  // Only at the fixpoint is a known height the height of every path (checking earlier would
  // reject a POP that another, later explored path reaches with values on the stack).
  if (limits !== undefined) {
    const pcs = [...height.keys()].sort((a, b) => a - b)
    for (const pc of pcs) {
      const h = height.get(pc) as number
      const op = p.instrs[pc].op
      if (op === Op.POP && h === 0) at(pc, 'POP from an empty value stack (on every path here)')
      if (op === Op.PUSH && h >= limits.maxStack) at(pc, `PUSH onto a full value stack (${limits.maxStack} values on every path here)`)
    }
  }
  return returns && retEffect !== undefined && !Number.isNaN(retEffect) ? retEffect : undefined
}

function freezeProgram (p: Program): Program {
  return Object.freeze({
    instrs: Object.freeze(p.instrs.map(i => Object.freeze({ op: i.op, args: Object.freeze([...i.args]) }))) as unknown as Program['instrs'],
    labels: Object.freeze(p.labels.map(l => Object.freeze({ name: l.name, pc: l.pc }))) as unknown as Program['labels'],
    debug: p.debug === undefined ? undefined : Object.freeze(p.debug.map(d => Object.freeze({ line: d.line, col: d.col }))) as unknown as Program['debug']
  })
}
