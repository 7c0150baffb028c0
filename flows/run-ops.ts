/**
 * What each op does when its step runs. `runOp` gets a context that resolves references to the
 * values of finished steps and inputs; row ops may return a RowStream (the executor materializes
 * it unless the planner fused the step into its consumer).
 */
import { resolve as resolvePath, dirname } from 'node:path'
import { FlowError } from './errors.js'
import type { Count, OpNode, Pos, Ref, Value } from './ast.js'
import { compileExpr, renderTemplate, toText, type Resolve } from './values.js'
import { csvRows, filterRows, groupRows, joinRows, mapRows, materialize, sortRows, takeRows, describeType } from './data.js'
import { FileValue, type FlowFs } from './inputs.js'
import { TERMINAL, type GridJob, type GridPort } from './grid-port.js'

export interface ExecLimits {
  /** Rows in any materialized table. */
  maxRows: number
  /** Groups one GROUP may hold. */
  maxGroups: number
  /** Bytes read from one file. */
  maxFileBytes: number
  /** Bytes of one CSV record. */
  maxRecordBytes: number
  /** Bytes of an OUTPUT_TEXT value. */
  maxTextBytes: number
  /** Bytes of a VASM program or called flow. */
  maxProgramBytes: number
  /** Nested CALL FLOW depth. */
  maxCallDepth: number
  /** A grid job taking longer is cancelled and the step fails. */
  jobTimeoutMs: number
}

export const DEFAULT_EXEC_LIMITS: ExecLimits = {
  maxRows: 2_000_000,
  maxGroups: 1_000_000,
  maxFileBytes: 2 * 1024 ** 3,
  maxRecordBytes: 1 << 20,
  maxTextBytes: 16 << 20,
  maxProgramBytes: 1 << 20,
  maxCallDepth: 8,
  jobTimeoutMs: 600_000
}

/** Runs a called flow (given by the executor, which owns planning and execution). */
export type CallFlow = (path: string, inputs: Record<string, unknown>, at: Pos, signal: AbortSignal) => Promise<Record<string, unknown>>

export interface OpContext {
  step: string
  signal: AbortSignal
  limits: ExecLimits
  fs: FlowFs
  port: GridPort | null
  /** Directory that RUN VASM and CALL FLOW paths are relative to. */
  baseDir: string
  /** Value of a step or input along a path. */
  resolve: Resolve
  /** The whole value a reference names (row ops need streams unwrapped, not paths). */
  refValue: (ref: Ref) => unknown
  callFlow: CallFlow
  /** Called with the job id once a RUN JOB / RUN VASM job is submitted. */
  onJob: (jobId: string) => void
}

function fail (at: Pos, detail: string, hint?: string): FlowError {
  return new FlowError('ERR_RUNTIME', detail, { line: at.line, col: at.col, hint })
}

const refText = (r: Ref): string => r.path.join('.')

export async function runOp (op: OpNode, cx: OpContext): Promise<unknown> {
  const L = cx.limits
  switch (op.op) {
    case 'LOAD_CSV': {
      const v = cx.refValue(op.source)
      const name = v instanceof FileValue ? v.name : refText(op.source)
      let chunks: () => AsyncIterable<Uint8Array | string>
      if (v instanceof FileValue) chunks = () => v.chunks({ signal: cx.signal, maxBytes: L.maxFileBytes })
      else if (typeof v === 'string' || v instanceof Uint8Array) chunks = async function * () { yield v }
      else throw fail(op.source, `LOAD CSV needs a file or text, but ${refText(op.source)} is ${describeType(v)}`)
      return csvRows(chunks, { name, at: op, maxRecordBytes: L.maxRecordBytes, signal: cx.signal })
    }
    case 'LOAD_JSON': {
      const v = cx.refValue(op.source)
      let text: string
      if (v instanceof FileValue) text = Buffer.from(await v.bytes({ signal: cx.signal, maxBytes: L.maxFileBytes })).toString('utf8')
      else if (typeof v === 'string') text = v
      else if (v instanceof Uint8Array) text = Buffer.from(v).toString('utf8')
      else return v
      try { return JSON.parse(text) } catch (e) { throw fail(op.source, `LOAD JSON: ${refText(op.source)} is not valid JSON: ${(e as Error).message}`) }
    }
    case 'FILTER': return filterRows(cx.refValue(op.source), op.source, refText(op.source), compileExpr(op.where, cx.resolve))
    case 'MAP': return mapRows(cx.refValue(op.source), op.source, refText(op.source), op.fields.map(f => ({ name: f.name, fn: compileExpr(f.expr, cx.resolve) })))
    case 'GROUP': return await groupRows(cx.refValue(op.source), op.source, refText(op.source), op.by, op.aggs, L.maxGroups)
    case 'TAKE': return takeRows(cx.refValue(op.source), op.source, refText(op.source), count(op.n, cx, op))
    case 'SORT': {
      const rows = await materialize(cx.refValue(op.source), op.source, refText(op.source), L.maxRows)
      const sorted = sortRows(rows, op.keys)
      return op.take === null ? sorted : sorted.slice(0, count(op.take, cx, op))
    }
    case 'JOIN': {
      const left = await materialize(cx.refValue(op.left), op.left, refText(op.left), L.maxRows)
      const right = await materialize(cx.refValue(op.right), op.right, refText(op.right), L.maxRows)
      return joinRows(left, right, { leftKey: op.leftKey, rightKey: op.rightKey, mode: op.mode, rightName: op.right.path[op.right.path.length - 1]!, at: op, maxRows: L.maxRows })
    }
    case 'OUTPUT': return await outputValue(cx.refValue(op.source), op.source, L.maxRows)
    case 'OUTPUT_TEXT': {
      const text = op.template !== null ? renderTemplate(op.template, cx.resolve) : toText(await outputValue(cx.resolve(op.source!.path, op.source!), op.source!, L.maxRows))
      if (Buffer.byteLength(text) > L.maxTextBytes) throw new FlowError('ERR_LIMIT', `OUTPUT_TEXT is larger than maxTextBytes (${L.maxTextBytes})`, { line: op.line, col: op.col })
      return text
    }
    case 'RUN_JOB': return await runJob(op.kind, payload(op.with, cx), op, cx)
    case 'RUN_VASM': return await runJob('vasm', await vasmParams(op.path, op.with, op, cx), op, cx)
    case 'CALL_FLOW': return await cx.callFlow(op.path, payload(op.with, cx), op, cx.signal)
    case 'RUN_AGENT': case 'ASK_AI':
      // The planner rejects these; reaching here would be a planner bug.
      throw new FlowError('ERR_NO_AGENT', 'no agent backend configured', { line: op.line, col: op.col })
  }
}

async function outputValue (v: unknown, at: Pos, maxRows: number): Promise<unknown> {
  if (typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'row-stream') return await materialize(v, at, 'output', maxRows)
  return v
}

function count (c: Count, cx: OpContext, at: Pos): number {
  const v = c.kind === 'lit' ? c.value : cx.resolve(c.ref.path, c.ref)
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    const what = c.kind === 'ref' ? `$${refText(c.ref)} is ${JSON.stringify(v)}` : String(v)
    throw fail(at, `TAKE needs a whole number ≥ 0; ${what}`, c.kind === 'ref' ? 'pass the input, or drop TAKE' : undefined)
  }
  return v
}

/** Evaluates a WITH payload: references become values, templates text. */
export function evalValue (v: Value, cx: Pick<OpContext, 'resolve'>): unknown {
  switch (v.kind) {
    case 'lit': return v.value
    case 'ref': {
      const x = cx.resolve(v.ref.path, v.ref)
      return x instanceof FileValue ? x.toJSON() : x
    }
    case 'template': return renderTemplate(v.parts, cx.resolve)
    case 'array': return v.items.map(i => evalValue(i, cx))
    case 'object': return Object.fromEntries(v.entries.map(([k, x]) => [k, evalValue(x, cx)]))
  }
}

function payload (w: Value | null, cx: OpContext): Record<string, unknown> {
  if (w === null) return {}
  return evalValue(w, cx) as Record<string, unknown>
}

const VASM_KEYS = new Set(['args', 'fuel', 'range', 'segments', 'reduce'])

/** Job parameters of a `vasm` grid job: {program, args, fuel?, range?: {start, end}, segments?, reduce?}. */
async function vasmParams (path: string, w: Value | null, at: Pos, cx: OpContext): Promise<Record<string, unknown>> {
  const p = payload(w, cx)
  for (const k of Object.keys(p)) if (!VASM_KEYS.has(k)) throw fail(at, `RUN VASM does not take ${JSON.stringify(k)}`, `keys are ${[...VASM_KEYS].join(', ')}`)
  const file = resolvePath(cx.baseDir, path)
  // The `vasm` job kind takes the program as base64 (of VASM text or of a binary program).
  const program = Buffer.from(await cx.fs.readFile(file, { signal: cx.signal, maxBytes: cx.limits.maxProgramBytes })).toString('base64')
  const args = p.args ?? []
  if (!Array.isArray(args)) throw fail(at, 'RUN VASM args must be an array of integers')
  const out: Record<string, unknown> = {
    program,
    args: args.map((a, i) => {
      if ((typeof a === 'number' && Number.isSafeInteger(a)) || (typeof a === 'string' && /^-?[0-9]+$/.test(a))) return String(a)
      throw fail(at, `RUN VASM args[${i}] must be an integer, got ${JSON.stringify(a)}`)
    })
  }
  if (p.fuel !== undefined) {
    if (typeof p.fuel !== 'number' || !Number.isSafeInteger(p.fuel) || p.fuel < 1) throw fail(at, `RUN VASM fuel must be a positive integer, got ${JSON.stringify(p.fuel)}`)
    out.fuel = p.fuel
  }
  if (p.range !== undefined) {
    const r = p.range
    const m = typeof r === 'string' ? /^(-?[0-9]+):(-?[0-9]+)$/.exec(r) : null
    const pair = m !== null ? [Number(m[1]), Number(m[2])] : Array.isArray(r) && r.length === 2 ? r : null
    if (pair === null || !pair.every(x => typeof x === 'number' && Number.isSafeInteger(x)) || (pair[0] as number) > (pair[1] as number)) throw fail(at, `RUN VASM range must be "START:END" or [start, end] with start ≤ end, got ${JSON.stringify(r)}`)
    out.range = { start: pair[0], end: pair[1] }
    out.segments = p.segments ?? 1
    out.reduce = p.reduce ?? 'sum'
  } else if (p.segments !== undefined || p.reduce !== undefined) {
    throw fail(at, 'RUN VASM segments and reduce need a range', 'WITH { range: "0:1000", segments: 4, reduce: "sum" }')
  }
  return out
}

async function runJob (kind: string, params: Record<string, unknown>, at: Pos, cx: OpContext): Promise<GridJob> {
  if (cx.port === null) throw new FlowError('ERR_BAD_OPTION', `step ${cx.step}: RUN JOB needs a grid (run the flow on a node)`, { line: at.line, col: at.col })
  const timeout = AbortSignal.timeout(cx.limits.jobTimeoutMs)
  const signal = AbortSignal.any([cx.signal, timeout])
  let job: GridJob
  try {
    job = await cx.port.submit(kind, params, { signal })
  } catch (e) {
    if (e instanceof FlowError) throw e
    throw new FlowError('ERR_JOB_FAILED', `step ${cx.step}: the grid refused job ${JSON.stringify(kind)}: ${(e as Error).message}`, { line: at.line, col: at.col, cause: e })
  }
  cx.onJob(job.id)
  try {
    if (!TERMINAL.has(job.status)) job = await cx.port.wait(job.id, { signal })
  } catch (e) {
    // Aborted (run cancelled or job timed out) or the wait broke: the job must not run on.
    await cx.port.cancel(job.id).catch(() => {})
    if (timeout.aborted && !cx.signal.aborted) throw new FlowError('ERR_JOB_FAILED', `step ${cx.step}: job ${job.id} took longer than jobTimeoutMs (${cx.limits.jobTimeoutMs}) and was cancelled`, { line: at.line, col: at.col })
    throw e
  }
  if (job.status !== 'succeeded') {
    throw new FlowError('ERR_JOB_FAILED', `step ${cx.step}: job ${job.id} (${kind}) ${job.status}${job.error !== null && job.error !== undefined ? ': ' + job.error : ''}`, { line: at.line, col: at.col })
  }
  return job
}

export { dirname }
