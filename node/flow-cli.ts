/**
 * `voike flow parse|plan|explain|run`: the FLOW commands, as a function the CLI (node/cli.ts)
 * calls with its argv after `flow`. Parse, plan and explain work offline; run goes through a
 * FlowRunner: `localRunner` executes in this process through a grid port, a remote runner (the
 * node's API) can be injected. Exit status: 0 ok; 1 the run failed or was cancelled; 2 bad input
 * (usage, parse and plan errors naming line:col, bad inputs).
 */
import { parseArgs } from 'node:util'
import { readFile } from 'node:fs/promises'
import { dirname, resolve as resolvePath } from 'node:path'
import {
  parseFlow, planFlow, planJson, execute, explain, inputFromCli, nodeFs,
  FlowError, FlowErrors, FlowRunError,
  type ExplainStep, type FlowResult, type GridPort, type Planned, type StepCache, type RunStore, type StepEvent, type Flow
} from '../flows/index.js'

export interface FlowIo {
  stdout: (text: string) => void
  stderr: (text: string) => void
  /** Progress redraws in place on a terminal. */
  isTTY?: boolean
  /** Aborts a run (the CLI wires Ctrl-C here); its grid jobs are cancelled. */
  signal?: AbortSignal
  /** Reads FILE; default fs. */
  readFile?: (path: string) => Promise<string>
}

export interface RunRequest {
  /** The flow file as given (a path, or a watched flow's name for remote runners). */
  file: string
  /** The flow's text as read (from FILE, or from the runner for a bare name). */
  source: string
  /** True when FILE was no readable file but a name the runner knows (a node's watched flow). */
  named: boolean
  planned: Planned
  /** Values typed by the flow's INPUTS (file inputs are paths). */
  inputs: Record<string, unknown>
  /** `--input` pairs as typed on the command line (remote runners upload @files themselves). */
  rawInputs: Array<[string, string]>
  noCache: boolean
  resume: string | null
  signal: AbortSignal
  onEvent: (e: StepEvent) => void
}

export interface FlowRunner {
  /**
   * The source of a flow known by name where the runner runs (a node's `--flows DIR`); null when
   * unknown. Used when FILE is not a readable file but looks like a name (`voike flow run fib`).
   */
  source?: (name: string, signal: AbortSignal) => Promise<string | null>
  run: (req: RunRequest) => Promise<FlowResult>
  explain: (req: Omit<RunRequest, 'onEvent'>) => Promise<ExplainStep[]>
}

export interface FlowCommandDeps {
  /** Makes the runner for `run` and `explain`; `api` is --api when given. Default: localRunner({ port }). */
  runner?: (o: { api: string | null }) => FlowRunner
  /** The grid for the default local runner (none: RUN JOB steps fail with a clear error). */
  port?: GridPort | null
  cache?: StepCache | null
  runs?: RunStore | null
}

/** Runs flows in this process: RUN JOB through `port`, results cached in `cache`, run records in `runs`. */
export function localRunner (o: { port?: GridPort | null, cache?: StepCache | null, runs?: RunStore | null }): FlowRunner {
  const base = (r: Omit<RunRequest, 'onEvent'>): Parameters<typeof execute>[2] => ({
    port: o.port ?? null, cache: o.cache ?? null, runs: o.runs ?? null, noCache: r.noCache, resume: r.resume, signal: r.signal, baseDir: dirname(resolvePath(r.file))
  })
  return {
    run: async (r) => await execute(r.planned, r.inputs, { ...base(r), onEvent: r.onEvent }),
    explain: async (r) => await explain(r.planned, r.inputs, base(r))
  }
}

const USAGE = `usage:
  voike flow parse FILE [--json]
  voike flow plan FILE [--json]
  voike flow explain FILE [--input name=value|name=@path]... [--no-cache] [--resume RUN_ID] [--json]
  voike flow run FILE [--input name=value|name=@path]... [--json] [--no-cache] [--resume RUN_ID] [--api HOST:PORT]`

class Usage extends Error {}

export async function flowCommand (argv: readonly string[], io: FlowIo, deps: FlowCommandDeps = {}): Promise<number> {
  try {
    return await command(argv, io, deps)
  } catch (e) {
    if (e instanceof Usage) { io.stderr(`${e.message}\n${USAGE}\n`); return 2 }
    if (e instanceof FlowRunError) return reportRunError(e, io, argv.includes('--json'))
    if (e instanceof FlowError) {
      io.stderr(`voike flow: ${e.message}\n`)
      return e.code === 'ERR_INPUT' || e.code === 'ERR_RESUME' || e.code === 'ERR_BAD_OPTION' ? 2 : 1
    }
    io.stderr(`voike flow: ${(e as Error).message}\n`)
    return 1
  }
}

async function command (argv: readonly string[], io: FlowIo, deps: FlowCommandDeps): Promise<number> {
  const [sub, ...rest] = argv
  if (sub === undefined || sub === '--help' || sub === 'help') { io.stdout(USAGE + '\n'); return sub === undefined ? 2 : 0 }
  if (!['parse', 'plan', 'explain', 'run'].includes(sub)) throw new Usage(`unknown flow command ${JSON.stringify(sub)}`)
  let parsed
  try {
    parsed = parseArgs({
      args: [...rest],
      allowPositionals: true,
      strict: true,
      options: { json: { type: 'boolean' }, input: { type: 'string', multiple: true }, 'no-cache': { type: 'boolean' }, resume: { type: 'string' }, api: { type: 'string' } }
    })
  } catch (e) { throw new Usage((e as Error).message) }
  const { values, positionals } = parsed
  if (positionals.length !== 1) throw new Usage(positionals.length === 0 ? 'missing FILE' : `unexpected argument ${positionals[1]!}`)
  if ((sub === 'parse' || sub === 'plan') && (values.input !== undefined || values['no-cache'] === true || values.resume !== undefined)) throw new Usage(`--input, --no-cache and --resume are for run and explain, not ${sub}`)
  const file = positionals[0]!
  const json = values.json === true
  const signal = io.signal ?? new AbortController().signal
  let made: FlowRunner | null = null
  const getRunner = (): FlowRunner => (made ??= deps.runner !== undefined ? deps.runner({ api: values.api ?? null }) : localRunner(deps))
  let named = false
  const source = await (io.readFile ?? (async (p: string) => await readFile(p, 'utf8')))(file).catch(async (e: NodeJS.ErrnoException) => {
    // `voike flow run NAME`: a flow the runner's node watches, named by its file name.
    const known = e.code === 'ENOENT' && /^[A-Za-z0-9_-]+$/.test(file) && getRunner().source !== undefined
      ? await getRunner().source!(file, signal)
      : null
    if (known === null) throw new FlowError('ERR_INPUT', `cannot read ${file}: ${e.code ?? e.message}`)
    named = true
    return known
  })
  const r = parseFlow(source)
  if (r.flow === null) return reportErrors(file, r.errors, io, json)
  for (const w of r.warnings) io.stderr(`${file}:${w.message.replace(/^(\d+:\d+): /, '$1: warning: ')}\n`)
  if (sub === 'parse') {
    if (json) io.stdout(JSON.stringify({ ok: true, flow: r.flow.name, inputs: r.flow.inputs.map(i => ({ name: i.name, type: i.type, optional: i.optional })), steps: r.flow.steps.map(s => ({ name: s.name, op: s.op.op, line: s.line })), warnings: r.warnings }) + '\n')
    else io.stdout(`ok: FLOW ${JSON.stringify(r.flow.name)}: ${r.flow.steps.length} steps, ${r.flow.inputs.length} inputs\n`)
    return 0
  }
  let planned: Planned
  try { planned = planFlow(r.flow, r.warnings) } catch (e) {
    if (e instanceof FlowErrors) return reportErrors(file, e.errors, io, json)
    throw e
  }
  if (sub === 'plan') {
    if (json) io.stdout(JSON.stringify(planJson(planned.plan)) + '\n')
    else io.stdout(planText(planned) + '\n')
    return 0
  }
  const rawInputs = (values.input ?? []).map(pair)
  const inputs = await typedInputs(r.flow, rawInputs)
  const runner = getRunner()
  const req = { file, source, named, planned, inputs, rawInputs, noCache: values['no-cache'] === true, resume: values.resume ?? null, signal }
  if (sub === 'explain') {
    const steps = await runner.explain(req)
    if (json) io.stdout(JSON.stringify(steps) + '\n')
    else for (const s of steps) io.stdout(`${s.action.padEnd(6)} ${s.step.padEnd(16)} ${s.op.padEnd(16)} ${s.why}\n`)
    return 0
  }
  const progress = json ? () => {} : progressPrinter(io)
  const result = await runner.run({ ...req, onEvent: progress })
  if (json) io.stdout(JSON.stringify({ outputs: result.outputs, metrics: result.metrics }) + '\n')
  else {
    for (const [label, v] of Object.entries(result.outputs)) io.stdout(`${label}:\n${typeof v === 'string' ? v : JSON.stringify(v, null, 2)}\n`)
    io.stderr(`run ${result.metrics.runId}: ${result.metrics.stepsRun} steps run, ${result.metrics.stepsReused} reused, ${result.metrics.totalMs.toFixed(1)} ms\n`)
  }
  return 0
}

function pair (raw: string): [string, string] {
  const i = raw.indexOf('=')
  if (i <= 0) throw new Usage(`--input needs name=value or name=@path, got ${JSON.stringify(raw)}`)
  return [raw.slice(0, i), raw.slice(i + 1)]
}

async function typedInputs (flow: Flow, raw: Array<[string, string]>): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {}
  for (const [name, value] of raw) {
    const d = flow.inputs.find(i => i.name === name)
    if (d === undefined) throw new FlowError('ERR_INPUT', `unknown input ${JSON.stringify(name)}`, { hint: flow.inputs.length === 0 ? 'this flow declares no inputs' : `inputs are ${flow.inputs.map(i => i.name).join(', ')}` })
    if (Object.prototype.hasOwnProperty.call(out, name)) throw new FlowError('ERR_INPUT', `input ${name} given twice`)
    out[name] = await inputFromCli(d, value, nodeFs, 64 << 20)
  }
  return out
}

function reportErrors (file: string, errors: readonly FlowError[], io: FlowIo, json: boolean): number {
  if (json) io.stdout(JSON.stringify({ ok: false, errors: errors.map(e => e.toJSON()) }) + '\n')
  for (const e of errors) io.stderr(`${file}:${e.message}\n`)
  return 2
}

function reportRunError (e: FlowRunError, io: FlowIo, json: boolean): number {
  if (json) io.stdout(JSON.stringify({ outputs: e.result.outputs, metrics: e.result.metrics, error: e.first.toJSON() }) + '\n')
  io.stderr(`voike flow: ${e.first.message}\n`)
  io.stderr(`run ${e.result.run.runId} ${e.result.run.status}; resume with --resume ${e.result.run.runId}\n`)
  return 1
}

function progressPrinter (io: FlowIo): (e: StepEvent) => void {
  return (e) => {
    if (e.type === 'step-start') { if (io.isTTY === true) io.stderr(`  … ${e.step}\n`); return }
    const ms = e.ms !== undefined ? ` ${e.ms.toFixed(1)} ms` : ''
    const rows = e.rowsOut !== null && e.rowsOut !== undefined ? `, ${e.rowsOut} rows` : ''
    const mark = e.status === 'succeeded' ? '✓' : e.status === 'reused' ? '=' : e.status === 'failed' ? '✗' : '-'
    io.stderr(`  ${mark} ${e.step} ${e.status ?? ''}${ms}${rows}${e.error !== undefined && e.status !== 'succeeded' ? ': ' + e.error : ''}\n`)
  }
}

function planText (p: Planned): string {
  const lines = [`FLOW ${JSON.stringify(p.plan.flow)}  plan ${p.plan.hash}`]
  for (const id of p.plan.order) {
    const n = p.plan.nodes.find(x => x.id === id)!
    const reads = [...n.deps, ...n.inputs.map(i => `input ${i}`)]
    lines.push(`  ${id.padEnd(16)} ${n.version.padEnd(16)} line ${String(n.line).padEnd(4)} ${reads.length > 0 ? '← ' + reads.join(', ') : ''}${n.fusedInto !== null ? `  (streams into ${n.fusedInto})` : ''}`)
  }
  if (p.plan.outputs.length > 0) lines.push(`  outputs: ${p.plan.outputs.map(o => `${JSON.stringify(o.label)} ← ${o.step}`).join(', ')}`)
  return lines.join('\n')
}
