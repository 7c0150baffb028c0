/**
 * The planner: a DAG of steps from every reference a step makes (its source, `$refs` in
 * conditions, references and `${}` templates inside WITH payloads and OUTPUT_TEXT). Unknown
 * references, cycles, duplicate output labels and agent ops are errors naming steps and lines.
 * The plan hash is the SHA-256 of the canonical plan (positions left out: moving text around
 * does not change what runs).
 */
import { FlowError, FlowErrors } from './errors.js'
import { opRefs, type Flow, type InputDecl, type OpName, type Ref, type Step, type Warning } from './ast.js'
import { resolveOp, spell, type OpContract } from './ops.js'
import { canonical, sha256 } from './values.js'
import { parse, type ParseLimits } from './parser.js'

export interface PlanNode {
  id: string
  op: OpName
  /** `NAME@MAJOR.MINOR` of the contract serving it. */
  version: string
  line: number
  col: number
  /** Steps it reads, in first-reference order. */
  deps: string[]
  /** Inputs it reads. */
  inputs: string[]
  /** The op's parameters without positions (what the step key hashes). */
  params: unknown
  /** Set when this step's rows stream straight into that step (its only consumer). */
  fusedInto: string | null
}

export interface Plan {
  flow: string
  hash: string
  inputs: Array<Pick<InputDecl, 'name' | 'type' | 'optional'>>
  nodes: PlanNode[]
  edges: Array<{ from: string, to: string }>
  /** A topological order (ties in source order). */
  order: string[]
  /** OUTPUT labels and OUTPUT_TEXT step names → the step publishing them. */
  outputs: Array<{ label: string, step: string }>
  warnings: Warning[]
}

/** A plan plus the syntax tree the executor runs. */
export interface Planned { plan: Plan, flow: Flow }

function stripPositions (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripPositions)
  if (v === null || typeof v !== 'object') return v
  const o: Record<string, unknown> = {}
  for (const [k, x] of Object.entries(v)) if (k !== 'line' && k !== 'col') o[k] = stripPositions(x)
  return o
}

function distance (a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!
    d[0] = i
    for (let j = 1; j <= b.length; j++) {
      const t = d[j]!
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = t
    }
  }
  return d[b.length]!
}

function suggest (name: string, known: string[]): string | undefined {
  const best = known.map(k => ({ k, d: distance(name, k) })).sort((x, y) => x.d - y.d)[0]
  return best !== undefined && best.d <= Math.max(1, Math.floor(name.length / 3)) ? `did you mean ${best.k}?` : undefined
}

export function planFlow (flow: Flow, warnings: Warning[] = []): Planned {
  const errors: FlowError[] = []
  const steps = new Map<string, Step>(flow.steps.map(s => [s.name, s]))
  const inputs = new Map<string, InputDecl>(flow.inputs.map(i => [i.name, i]))
  const known = [...steps.keys(), ...inputs.keys()]
  const contracts = new Map<string, OpContract>()
  const nodes: PlanNode[] = []
  const refsOf = new Map<string, Ref[]>()
  for (const s of flow.steps) {
    const k = resolveOp(s.op.op, s.op.pin)
    contracts.set(s.name, k)
    if (k.needsAgent) {
      errors.push(new FlowError('ERR_NO_AGENT', `step ${s.name}: ${spell(s.op.op)} needs an agent, and no agent backend configured`, { line: s.op.line, col: s.op.col, text: spell(s.op.op), step: s.name, hint: 'this runtime has no model; remove the step or compute the value with RUN JOB' }))
    }
    const refs = opRefs(s.op)
    refsOf.set(s.name, refs)
    const deps: string[] = []
    const ins: string[] = []
    for (const r of refs) {
      const name = r.path[0]!
      if (steps.has(name)) { if (!deps.includes(name)) deps.push(name) } else if (inputs.has(name)) { if (!ins.includes(name)) ins.push(name) } else {
        errors.push(new FlowError('ERR_UNKNOWN_REF', `step ${s.name} refers to ${JSON.stringify(name)}, which is no step or input`, { line: r.line, col: r.col, text: name, step: s.name, hint: suggest(name, known) }))
      }
    }
    nodes.push({ id: s.name, op: s.op.op, version: k.version, line: s.line, col: s.col, deps, inputs: ins, params: stripPositions({ ...s.op, pin: undefined }), fusedInto: null })
  }
  const outputs = collectOutputs(flow, errors)
  const order = errors.some(e => e.code === 'ERR_UNKNOWN_REF') ? [] : topo(nodes, steps, errors)
  if (errors.length > 0) throw new FlowErrors(errors)
  fuse(nodes, contracts, refsOf)
  const edges = nodes.flatMap(n => n.deps.map(d => ({ from: d, to: n.id })))
  const inputList = flow.inputs.map(i => ({ name: i.name, type: i.type, optional: i.optional }))
  const hash = sha256(canonical({ flow: flow.name, inputs: inputList, nodes: nodes.map(n => ({ id: n.id, version: n.version, params: n.params })) }))
  return { flow, plan: { flow: flow.name, hash, inputs: inputList, nodes, edges, order, outputs, warnings } }
}

function collectOutputs (flow: Flow, errors: FlowError[]): Plan['outputs'] {
  const out: Plan['outputs'] = []
  const where = new Map<string, number>()
  for (const s of flow.steps) {
    const label = s.op.op === 'OUTPUT' ? s.op.label : s.op.op === 'OUTPUT_TEXT' ? s.name : null
    if (label === null) continue
    const prev = where.get(label)
    if (prev !== undefined) {
      errors.push(new FlowError('ERR_DUPLICATE', `step ${s.name}: output ${JSON.stringify(label)} is already published on line ${prev}`, { line: s.op.line, col: s.op.col, step: s.name, text: label }))
      continue
    }
    where.set(label, s.line)
    out.push({ label, step: s.name })
  }
  return out
}

/** Kahn's algorithm in source order; what is left over sits on a cycle, which is reported. */
function topo (nodes: PlanNode[], steps: Map<string, Step>, errors: FlowError[]): string[] {
  const indeg = new Map(nodes.map(n => [n.id, n.deps.length]))
  const users = new Map<string, string[]>(nodes.map(n => [n.id, []]))
  for (const n of nodes) for (const d of n.deps) users.get(d)!.push(n.id)
  const order: string[] = []
  const ready = nodes.filter(n => n.deps.length === 0).map(n => n.id)
  while (ready.length > 0) {
    const id = ready.shift()!
    order.push(id)
    for (const u of users.get(id)!) {
      const k = indeg.get(u)! - 1
      indeg.set(u, k)
      if (k === 0) ready.push(u)
    }
  }
  if (order.length === nodes.length) return order
  const left = new Set(nodes.filter(n => !order.includes(n.id)).map(n => n.id))
  const byId = new Map(nodes.map(n => [n.id, n]))
  const reported = new Set<string>()
  for (const start of left) {
    if (reported.has(start)) continue
    // Walk dependencies inside the leftover set until a step repeats: that loop is a cycle.
    const path: string[] = []
    let cur = start
    while (!path.includes(cur)) { path.push(cur); cur = byId.get(cur)!.deps.find(d => left.has(d))! }
    const cycle = path.slice(path.indexOf(cur))
    if (cycle.some(c => reported.has(c))) continue
    for (const c of cycle) reported.add(c)
    // `cycle` follows "reads": a reads b reads a.
    const ring = cycle
    const text = [...ring, ring[0]!].map(c => `${c} (line ${steps.get(c)!.line})`).join(' → ')
    const first = steps.get(ring[0]!)!
    errors.push(new FlowError('ERR_CYCLE', `steps depend on each other: ${text}`, { line: first.line, col: first.col, text: first.name, step: first.name, hint: 'a step can only use steps that do not use it' }))
  }
  return []
}

function fuse (nodes: PlanNode[], contracts: Map<string, OpContract>, refsOf: Map<string, Ref[]>): void {
  const users = new Map<string, string[]>()
  for (const n of nodes) for (const d of n.deps) users.set(d, [...(users.get(d) ?? []), n.id])
  for (const p of nodes) {
    const u = users.get(p.id) ?? []
    if (u.length !== 1 || !contracts.get(p.id)!.streamsOut) continue
    const c = u[0]!
    if (!contracts.get(c)!.streamsIn) continue
    const refs = refsOf.get(c)!.filter(r => r.path[0] === p.id)
    if (refs.length !== 1 || refs[0]!.path.length !== 1) continue
    p.fusedInto = c
  }
}

/** Parses and plans in one go; throws FlowErrors. */
export function planSource (source: string, limits?: ParseLimits): Planned {
  const { flow, warnings } = parse(source, limits)
  return planFlow(flow, warnings)
}

/** The plan as JSON (what `voike flow plan --json` prints). */
export function planJson (p: Plan): Record<string, unknown> {
  return { flow: p.flow, hash: p.hash, inputs: p.inputs, nodes: p.nodes, edges: p.edges, order: p.order, outputs: p.outputs, warnings: p.warnings }
}
