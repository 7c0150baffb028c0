/**
 * The executor: runs a planned flow. Independent steps run concurrently (at most `concurrency`
 * at once), a step starts when the steps it reads are done; a failed step stops its dependents
 * and nothing else. Each step has a key (hash of op version, parameters, and the keys of what it
 * reads; files by content): with a StepCache, steps whose key is cached are reused and steps only
 * needed by reused steps do not run. A run record (plan hash, each step's status, key and value)
 * lets a failed or cancelled run resume from where it stopped.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { dirname, resolve as resolvePath } from 'node:path'
import { FlowError } from './errors.js'
import type { Flow, Pos, Ref, Step } from './ast.js'
import type { Plan, Planned, PlanNode } from './planner.js'
import { canonical, getPath, sha256 } from './values.js'
import { isRowStream, materialize, stream, type RowStream } from './data.js'
import { FileValue, inputKey, nodeFs, normalizeInputs, type FlowFs } from './inputs.js'
import { DEFAULT_EXEC_LIMITS, runOp, type ExecLimits } from './run-ops.js'
import type { GridPort } from './grid-port.js'
import type { RunRecord, RunStore, StepCache, StepRecord } from './cache.js'
import { planSource } from './planner.js'

export interface ExecuteOptions {
  /** The grid, for RUN JOB and RUN VASM steps. */
  port?: GridPort | null
  fs?: FlowFs
  /** RUN VASM and CALL FLOW paths are relative to this (the flow file's folder). Default: cwd. */
  baseDir?: string
  /** Reads a called flow's source; default: fs.readFile. */
  loadFlow?: (path: string, signal: AbortSignal) => Promise<string>
  cache?: StepCache | null
  /** Ignore the cache (steps still store their results). */
  noCache?: boolean
  /** Where run records go (needed for resume by id). */
  runs?: RunStore | null
  /** A run (record or id in `runs`) to resume: its finished steps are reused. */
  resume?: RunRecord | string | null
  signal?: AbortSignal
  /** Steps running at once (1..64, default 4). */
  concurrency?: number
  limits?: Partial<ExecLimits>
  onEvent?: (e: StepEvent) => void
  runId?: string
  /** Internal: depth of CALL FLOW nesting. */
  callDepth?: number
  /** A value bigger than this (JSON bytes) is not kept in the run record. */
  maxRecordValueBytes?: number
}

export interface StepEvent {
  type: 'step-start' | 'step-end'
  step: string
  status?: StepRecord['status']
  ms?: number
  rowsOut?: number | null
  error?: string
}

export interface StepMetrics {
  op: string
  version: string
  status: StepRecord['status']
  /** How the value was obtained. */
  source: 'run' | 'cache' | 'resume' | 'none'
  fused: boolean
  key: string
  startedAtMs: number | null
  ms: number | null
  rowsIn: number | null
  rowsOut: number | null
  jobIds: string[]
  error: string | null
}

export interface FlowMetrics {
  runId: string
  flow: string
  planHash: string
  totalMs: number
  stepsRun: number
  stepsReused: number
  /** Most steps that were running at the same time. */
  maxConcurrent: number
  steps: Record<string, StepMetrics>
}

export interface FlowResult {
  outputs: Record<string, unknown>
  metrics: FlowMetrics
  run: RunRecord
}

/** A run that did not succeed: `first` is the root failure; `result` has what did finish. */
export class FlowRunError extends Error {
  readonly code: FlowError['code']
  constructor (readonly first: FlowError, readonly result: FlowResult) {
    super(first.message)
    this.name = 'FlowRunError'
    this.code = first.code
  }
}

interface NodeState {
  node: PlanNode
  step: Step
  key: string
  source: StepMetrics['source']
  needed: boolean
  status: StepRecord['status']
  value: unknown
  metrics: StepMetrics
  error: FlowError | null
  users: string[]
}

function checkOptions (o: ExecuteOptions): { concurrency: number, limits: ExecLimits } {
  const concurrency = o.concurrency ?? 4
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new FlowError('ERR_BAD_OPTION', `concurrency must be an integer in 1..64, got ${String(o.concurrency)}`)
  const limits = { ...DEFAULT_EXEC_LIMITS, ...o.limits }
  for (const [k, v] of Object.entries(limits)) {
    if (!Number.isSafeInteger(v) || v < 0) throw new FlowError('ERR_BAD_OPTION', `limits.${k} must be a non-negative integer, got ${String(v)}`)
  }
  return { concurrency, limits }
}

/** Step keys, in plan order: each hashes its op version, parameters, referenced keys and external files. */
export async function stepKeys (p: Planned, inputs: Map<string, unknown>, o: ExecuteOptions, signal?: AbortSignal): Promise<Map<string, string>> {
  const limits = { ...DEFAULT_EXEC_LIMITS, ...o.limits }
  const fs = o.fs ?? nodeFs
  const inKeys = new Map<string, string>()
  for (const [k, v] of inputs) inKeys.set(k, await inputKey(v, { signal, maxBytes: limits.maxFileBytes }))
  const keys = new Map<string, string>()
  const byId = new Map(p.plan.nodes.map(n => [n.id, n]))
  const steps = new Map(p.flow.steps.map(s => [s.name, s]))
  for (const id of p.plan.order) {
    const n = byId.get(id)!
    const op = steps.get(id)!.op
    let external: string | null = null
    if (op.op === 'RUN_VASM' || op.op === 'CALL_FLOW') {
      // The program or called flow is part of what the step computes.
      const file = resolvePath(o.baseDir ?? process.cwd(), op.path)
      external = await fs.readFile(file, { signal, maxBytes: limits.maxProgramBytes }).then(b => sha256(b), (e: Error) => `unreadable:${e.message}`)
    }
    keys.set(id, sha256(canonical({
      version: n.version,
      params: n.params,
      steps: Object.fromEntries(n.deps.map(d => [d, keys.get(d)!])),
      inputs: Object.fromEntries(n.inputs.map(i => [i, inKeys.get(i)!])),
      external
    })))
  }
  return keys
}

async function loadResume (o: ExecuteOptions, plan: Plan): Promise<RunRecord | null> {
  if (o.resume === undefined || o.resume === null) return null
  let rec: RunRecord | undefined
  if (typeof o.resume === 'string') {
    if (o.runs === undefined || o.runs === null) throw new FlowError('ERR_RESUME', `cannot resume run ${o.resume}: no run store`)
    rec = await o.runs.get(o.resume)
    if (rec === undefined) throw new FlowError('ERR_RESUME', `no run ${o.resume} to resume`, { hint: 'run records are kept for a bounded number of runs' })
  } else rec = o.resume
  if (rec.planHash !== plan.hash) throw new FlowError('ERR_RESUME', `run ${rec.runId} ran plan ${rec.planHash.slice(0, 12)}, but the flow now plans to ${plan.hash.slice(0, 12)}`, { hint: 'the flow changed since; run it without --resume' })
  return rec
}

/** Which steps run and which are reused; shared by execute and explain. */
async function decide (p: Planned, keys: Map<string, string>, o: ExecuteOptions, resumed: RunRecord | null): Promise<Map<string, NodeState>> {
  const steps = new Map(p.flow.steps.map(s => [s.name, s]))
  const states = new Map<string, NodeState>()
  for (const n of p.plan.nodes) {
    const key = keys.get(n.id)!
    let source: StepMetrics['source'] = 'run'
    let value: unknown
    const rec = resumed?.steps[n.id]
    if (rec !== undefined && (rec.status === 'succeeded' || rec.status === 'reused') && rec.key === key && Object.prototype.hasOwnProperty.call(rec, 'value')) {
      source = 'resume'; value = rec.value
    } else if (n.fusedInto === null && o.noCache !== true && o.cache !== undefined && o.cache !== null) {
      const hit = await o.cache.get(key)
      if (hit !== undefined) { source = 'cache'; value = hit.value }
    }
    states.set(n.id, {
      node: n, step: steps.get(n.id)!, key, source, needed: false, status: 'pending', value, error: null, users: [],
      metrics: { op: n.op, version: n.version, status: 'pending', source, fused: n.fusedInto !== null, key, startedAtMs: null, ms: null, rowsIn: null, rowsOut: null, jobIds: [], error: null }
    })
  }
  for (const s of states.values()) for (const d of s.node.deps) states.get(d)!.users.push(s.node.id)
  // A step is needed when nothing reads it (a sink), or a needed step that runs reads it.
  for (const id of [...p.plan.order].reverse()) {
    const s = states.get(id)!
    s.needed = s.users.length === 0 || s.users.some(u => { const x = states.get(u)!; return x.needed && x.source === 'run' })
    if (!s.needed) { s.status = 'not-needed'; s.metrics.status = 'not-needed'; s.metrics.source = 'none' }
  }
  return states
}

export async function execute (p: Planned, given: Record<string, unknown>, o: ExecuteOptions = {}): Promise<FlowResult> {
  const t0 = performance.now()
  const { concurrency, limits } = checkOptions(o)
  const fs = o.fs ?? nodeFs
  const runId = o.runId ?? randomUUID()
  const ac = new AbortController()
  const onAbort = (): void => ac.abort(o.signal?.reason)
  if (o.signal !== undefined) {
    if (o.signal.aborted) ac.abort(o.signal.reason)
    else o.signal.addEventListener('abort', onAbort, { once: true })
  }
  try {
    const inputs = normalizeInputs(p.flow.inputs, given, fs)
    const resumed = await loadResume(o, p.plan)
    const keys = await stepKeys(p, inputs, o, ac.signal)
    const states = await decide(p, keys, o, resumed)
    const run: RunRecord = { runId, flow: p.plan.flow, planHash: p.plan.hash, status: 'running', startedAtMs: Date.now(), finishedAtMs: null, resumedFrom: resumed?.runId ?? null, steps: {} }
    const r = new Runner(p, o, states, inputs, limits, fs, ac.signal, concurrency)
    await r.run()
    return await finish(p, o, r, run, t0, ac.signal.aborted)
  } finally {
    o.signal?.removeEventListener('abort', onAbort)
  }
}

class Runner {
  running = 0
  maxConcurrent = 0
  constructor (readonly p: Planned, readonly o: ExecuteOptions, readonly states: Map<string, NodeState>, readonly inputs: Map<string, unknown>,
    readonly limits: ExecLimits, readonly fs: FlowFs, readonly signal: AbortSignal, readonly concurrency: number) {}

  resolveValue (path: readonly string[], at: Pos): unknown {
    const name = path[0]!
    let base: unknown
    if (this.inputs.has(name)) base = this.inputs.get(name)
    else {
      const s = this.states.get(name)
      assert.ok(s !== undefined && (s.status === 'succeeded' || s.status === 'reused'), `reference ${name} at ${at.line}:${at.col} read before its step finished`)
      base = s.value
    }
    if (path.length > 1 && isRowStream(base)) throw new FlowError('ERR_RUNTIME', `cannot read ${path.join('.')} from a streamed table`, { line: at.line, col: at.col })
    return getPath(base, path, 1)
  }

  /** Starts every ready step, up to the concurrency bound, until all are settled. */
  async run (): Promise<void> {
    const order = this.p.plan.order.map(id => this.states.get(id)!)
    await new Promise<void>((resolve) => {
      const pump = (): void => {
        if (this.signal.aborted) {
          for (const s of order) if (s.status === 'pending') this.settle(s, 'cancelled', null)
        }
        for (const s of order) {
          if (this.running >= this.concurrency) break
          if (s.status !== 'pending') continue
          const deps = s.source === 'run' ? s.node.deps.map(d => this.states.get(d)!) : []
          if (deps.some(d => d.status === 'failed' || d.status === 'skipped' || d.status === 'cancelled')) {
            const bad = deps.find(d => d.status === 'failed' || d.status === 'skipped' || d.status === 'cancelled')!
            this.settle(s, 'skipped', new FlowError('ERR_UPSTREAM', `step ${s.node.id} did not run: step ${bad.node.id} (line ${bad.node.line}) ${bad.status === 'failed' ? 'failed' : 'did not run'}`, { line: s.node.line, col: s.node.col, step: s.node.id }))
            continue
          }
          if (!deps.every(d => d.status === 'succeeded' || d.status === 'reused')) continue
          this.start(s).then(pump, pump)
        }
        if (this.running === 0 && order.every(s => s.status !== 'pending')) resolve()
      }
      pump()
    })
  }

  settle (s: NodeState, status: StepRecord['status'], error: FlowError | null): void {
    s.status = status
    s.error = error
    s.metrics.status = status
    if (error !== null) s.metrics.error = error.message
    this.o.onEvent?.({ type: 'step-end', step: s.node.id, status, ms: s.metrics.ms ?? undefined, rowsOut: s.metrics.rowsOut, error: error?.message })
  }

  async start (s: NodeState): Promise<void> {
    s.status = 'running'
    if (s.source !== 'run') {
      s.value = s.value ?? null
      s.metrics.rowsOut = Array.isArray(s.value) ? s.value.length : null
      this.settle(s, 'reused', null)
      return
    }
    this.running++
    this.maxConcurrent = Math.max(this.maxConcurrent, this.running)
    s.metrics.startedAtMs = Date.now()
    const t = performance.now()
    this.o.onEvent?.({ type: 'step-start', step: s.node.id })
    try {
      let v = await runOp(s.step.op, {
        step: s.node.id,
        signal: this.signal,
        limits: this.limits,
        fs: this.fs,
        port: this.o.port ?? null,
        baseDir: this.o.baseDir ?? process.cwd(),
        resolve: (path, at) => this.resolveValue(path, at),
        refValue: (ref: Ref) => this.resolveValue(ref.path, ref),
        callFlow: async (path, inputs, at, signal) => await this.callFlow(path, inputs, at, signal),
        onJob: (id) => { s.metrics.jobIds.push(id) }
      })
      if (isRowStream(v)) {
        if (s.node.fusedInto !== null) v = this.counted(s, v, t)
        else v = await materialize(v, s.step.op, s.node.id, this.limits.maxRows)
      }
      s.value = v
      if (!isRowStream(v)) {
        s.metrics.ms = performance.now() - t
        s.metrics.rowsOut = Array.isArray(v) ? v.length : null
      }
      this.settle(s, 'succeeded', null)
      if (!isRowStream(v) && this.o.cache !== undefined && this.o.cache !== null) await this.store(s)
    } catch (e) {
      s.metrics.ms = performance.now() - t
      this.fail(s, e)
    } finally {
      this.running--
    }
  }

  fail (s: NodeState, e: unknown): void {
    if (e instanceof UpstreamFailure) {
      const up = this.states.get(e.step)!
      this.settle(s, 'skipped', new FlowError('ERR_UPSTREAM', `step ${s.node.id} did not run: step ${up.node.id} (line ${up.node.line}) failed`, { line: s.node.line, col: s.node.col, step: s.node.id }))
      return
    }
    if (this.signal.aborted) {
      this.settle(s, 'cancelled', new FlowError('ERR_CANCELLED', `step ${s.node.id} was cancelled`, { line: s.node.line, col: s.node.col, step: s.node.id }))
      return
    }
    this.settle(s, 'failed', stepError(s, e))
  }

  /** A fused step's rows, counted as its consumer reads them; a failure there is this step's. */
  counted (s: NodeState, v: RowStream, t: number): RowStream {
    return stream(async function * (this: Runner) {
      let n = 0
      try {
        for await (const b of v.batches()) { n += b.length; yield b }
      } catch (e) {
        s.metrics.rowsOut = n
        s.metrics.ms = performance.now() - t
        if (e instanceof UpstreamFailure) throw e
        s.status = 'failed'
        this.fail(s, e)
        throw new UpstreamFailure(s.node.id)
      }
      s.metrics.rowsOut = n
      s.metrics.ms = performance.now() - t
    }.bind(this))
  }

  async store (s: NodeState): Promise<void> {
    if (s.value instanceof FileValue) return
    const json = JSON.stringify(s.value) ?? 'null'
    await this.o.cache!.put(s.key, { value: s.value, op: s.node.version, rowsOut: s.metrics.rowsOut, sizeBytes: json.length, createdAtMs: Date.now() })
  }

  async callFlow (path: string, inputs: Record<string, unknown>, at: Pos, signal: AbortSignal): Promise<Record<string, unknown>> {
    const depth = (this.o.callDepth ?? 0) + 1
    if (depth > this.limits.maxCallDepth) throw new FlowError('ERR_LIMIT', `CALL FLOW ${JSON.stringify(path)} nests deeper than maxCallDepth (${this.limits.maxCallDepth})`, { line: at.line, col: at.col, hint: 'does a flow call itself?' })
    const file = resolvePath(this.o.baseDir ?? process.cwd(), path)
    const source = this.o.loadFlow !== undefined
      ? await this.o.loadFlow(file, signal)
      : Buffer.from(await this.fs.readFile(file, { signal, maxBytes: this.limits.maxProgramBytes })).toString('utf8')
    let sub: Planned
    try { sub = planSource(source) } catch (e) {
      throw new FlowError('ERR_RUNTIME', `called flow ${path} does not plan: ${(e as Error).message}`, { line: at.line, col: at.col, cause: e })
    }
    try {
      const r = await execute(sub, inputs, { ...this.o, baseDir: dirname(file), callDepth: depth, runId: undefined, resume: null, signal, onEvent: undefined })
      return r.outputs
    } catch (e) {
      if (e instanceof FlowRunError) throw new FlowError(e.code === 'ERR_LIMIT' ? 'ERR_LIMIT' : 'ERR_RUNTIME', `called flow ${path}: ${e.first.message}`, { line: at.line, col: at.col, cause: e })
      if (e instanceof FlowError) throw new FlowError(e.code, `called flow ${path}: ${e.message}`, { line: at.line, col: at.col, cause: e })
      throw e
    }
  }
}

class UpstreamFailure extends Error {
  constructor (readonly step: string) { super(`upstream step ${step} failed`) }
}

function rowsIn (s: NodeState, states: Map<string, NodeState>): number | null {
  let n: number | null = null
  for (const d of s.node.deps) {
    const r = states.get(d)!.metrics.rowsOut
    if (r !== null) n = (n ?? 0) + r
  }
  return n
}

/** Names the step and its line; keeps the op's own line:col when it has one. */
function stepError (s: NodeState, e: unknown): FlowError {
  const where = `step ${s.node.id} (line ${s.node.line})`
  if (e instanceof FlowError) {
    if (e.detail.startsWith(`step ${s.node.id}`)) return new FlowError(e.code, e.detail, { line: e.line ?? s.node.line, col: e.col ?? s.node.col, hint: e.hint, step: s.node.id, cause: e })
    return new FlowError(e.code, `${where}: ${e.detail}`, { line: e.line ?? s.node.line, col: e.col ?? s.node.col, hint: e.hint, step: s.node.id, cause: e })
  }
  const msg = e instanceof Error ? e.message : String(e)
  return new FlowError('ERR_RUNTIME', `${where}: ${msg}`, { line: s.node.line, col: s.node.col, step: s.node.id, cause: e })
}

async function finish (p: Planned, o: ExecuteOptions, r: Runner, run: RunRecord, t0: number, aborted: boolean): Promise<FlowResult> {
  const outputs: Record<string, unknown> = {}
  const steps: Record<string, StepMetrics> = {}
  const maxBytes = o.maxRecordValueBytes ?? 8 << 20
  let stepsRun = 0
  let stepsReused = 0
  let first: FlowError | null = null
  for (const id of p.plan.order) {
    const s = r.states.get(id)!
    if (s.status === 'succeeded') s.metrics.rowsIn = rowsIn(s, r.states)
    steps[id] = s.metrics
    if (s.status === 'succeeded') stepsRun++
    if (s.status === 'reused') stepsReused++
    const rec: StepRecord = { status: s.status, key: s.key }
    if ((s.status === 'succeeded' || s.status === 'reused') && !isRowStream(s.value) && !(s.value instanceof FileValue)) {
      const json = JSON.stringify(s.value) ?? 'null'
      if (json.length <= maxBytes) rec.value = JSON.parse(json)
    }
    if (s.error !== null) rec.error = s.error.toJSON()
    run.steps[id] = rec
    if (s.status === 'failed' && (first === null || first.code === 'ERR_CANCELLED')) first = s.error
    if (s.status === 'cancelled' && first === null) first = s.error
  }
  for (const out of p.plan.outputs) {
    const s = r.states.get(out.step)!
    if (s.status === 'succeeded' || s.status === 'reused') outputs[out.label] = s.value
  }
  const failed = first !== null || aborted
  run.status = aborted ? 'cancelled' : failed ? 'failed' : 'succeeded'
  run.finishedAtMs = Date.now()
  await o.runs?.put(run)
  const metrics: FlowMetrics = { runId: run.runId, flow: p.plan.flow, planHash: p.plan.hash, totalMs: performance.now() - t0, stepsRun, stepsReused, maxConcurrent: r.maxConcurrent, steps }
  const result: FlowResult = { outputs, metrics, run }
  if (failed) {
    throw new FlowRunError(first ?? new FlowError('ERR_CANCELLED', 'the run was cancelled'), result)
  }
  return result
}

export interface ExplainStep {
  step: string
  line: number
  op: string
  action: 'run' | 'reuse' | 'skip'
  why: string
  key: string
}

/** Which steps a run would run or reuse, and why (reads the cache; runs nothing). */
export async function explain (p: Planned, given: Record<string, unknown>, o: ExecuteOptions = {}): Promise<ExplainStep[]> {
  const inputs = normalizeInputs(p.flow.inputs, given, o.fs ?? nodeFs)
  const resumed = await loadResume(o, p.plan)
  const keys = await stepKeys(p, inputs, o)
  const states = await decide(p, keys, o, resumed)
  return p.plan.order.map(id => {
    const s = states.get(id)!
    const k = s.key.slice(0, 12)
    const base = { step: id, line: s.node.line, op: s.node.version, key: s.key }
    if (!s.needed) return { ...base, action: 'skip' as const, why: `not needed: every step reading it (${s.users.join(', ')}) is reused` }
    if (s.source === 'resume') return { ...base, action: 'reuse' as const, why: `finished in run ${resumed!.runId} with the same key ${k}` }
    if (s.source === 'cache') return { ...base, action: 'reuse' as const, why: `cached result for key ${k}` }
    if (s.node.fusedInto !== null) return { ...base, action: 'run' as const, why: `streams into ${s.node.fusedInto} (streamed steps are not cached)` }
    if (o.noCache === true) return { ...base, action: 'run' as const, why: 'cache disabled (--no-cache)' }
    if (o.cache === undefined || o.cache === null) return { ...base, action: 'run' as const, why: 'no cache configured' }
    return { ...base, action: 'run' as const, why: `no cached result for key ${k} (first run, or its op, parameters or inputs changed)` }
  })
}

export type { Flow }
