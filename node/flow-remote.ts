/**
 * `voike flow run|explain` against a node: a FlowRunner over gRPC `voike.v1.Flow`. The flow's
 * source goes with the request (or just its name, for a flow the node watches), with the files
 * it reads: file inputs, RUN VASM programs and CALL FLOW files (those of called flows too), keyed
 * by their path relative to the flow's folder. Aborting the run (Ctrl-C) asks the node to cancel
 * it (CancelRun: its grid jobs are cancelled) and waits for the cancelled result, so the run id
 * printed can be resumed.
 */
import { readFile } from 'node:fs/promises'
import { basename, dirname, relative, resolve as resolvePath, sep } from 'node:path'
import { credentials, Metadata, status as Status, type Client, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js'
import {
  parseFlow, FlowError, FlowRunError,
  type ExplainStep, type Flow, type FlowErrorCode, type FlowMetrics, type FlowResult, type RunRecord
} from '../flows/index.js'
import { loadFlowProto } from './grpc-flow.js'
import { MAX_PARENT_HOPS } from './flow-service.js'
import type { FlowRunner, RunRequest } from './flow-cli.js'

export interface RemoteOptions {
  /** host:port of the node's gRPC API. */
  address: string
  apiKey?: string
  /** Deadline of unary calls. Default 30 000 ms. */
  timeoutMs?: number
  /** How long a cancelled run may take to report back before the call is dropped. Default 15 000 ms. */
  cancelWaitMs?: number
  /** Files sent with one run at most (the node's own limit is limits.maxFiles). */
  maxFiles?: number
}

type Unary = (req: unknown, md: Metadata, opts: { deadline: number }, cb: (err: ServiceError | null, res: { json: string }) => void) => void

export function remoteRunner (o: RemoteOptions): FlowRunner & { close: () => void } {
  const Flow = loadFlowProto()
  const client = new Flow(o.address, credentials.createInsecure(), { 'grpc.max_send_message_length': 32 << 20, 'grpc.max_receive_message_length': 64 << 20 }) as Client & Record<string, Unary & ((req: unknown, md: Metadata) => ClientReadableStream<unknown>)>
  const timeoutMs = o.timeoutMs ?? 30_000
  const md = (): Metadata => {
    const m = new Metadata()
    if (o.apiKey !== undefined) m.set('x-voike-api-key', o.apiKey)
    return m
  }
  const call = async <T>(method: string, req: unknown): Promise<T> => await new Promise((resolve, reject) => {
    client[method](req, md(), { deadline: Date.now() + timeoutMs }, (err, res) => {
      if (err !== null) reject(fromGrpc(err, o.address)); else resolve(JSON.parse(res.json) as T)
    })
  })

  return {
    source: async (name) => {
      try {
        return (await call<{ source: string }>('GetPlan', { id: name })).source
      } catch (e) {
        if (e instanceof FlowError && (e as { grpcCode?: number }).grpcCode === Status.NOT_FOUND) return null
        throw e
      }
    },
    explain: async (r) => await call<ExplainStep[]>('Explain', await request(r, o.maxFiles ?? 64)),
    run: async (r) => await execute(client, md(), await request(r, o.maxFiles ?? 64), r, o),
    close: () => { client.close() }
  }
}

interface ProtoEvent {
  started?: { runId: string, flow: string, planHash: string }
  step?: { type: 'step-start' | 'step-end', step: string, status: string, ms: number, rowsOut: number, error: string }
  result?: { runId: string, status: RunRecord['status'], outputsJson: string, metricsJson: string, errorJson: string }
}

async function execute (client: Client & Record<string, Function>, m: Metadata, req: Record<string, unknown>, r: RunRequest, o: RemoteOptions): Promise<FlowResult> {
  const stream = client.Execute(req, m) as ClientReadableStream<ProtoEvent>
  let runId: string | null = null
  let result: ProtoEvent['result'] | undefined
  let dropTimer: NodeJS.Timeout | undefined
  const onAbort = (): void => {
    // Ask the node to cancel (its grid jobs too), then keep reading for the cancelled result.
    if (runId !== null) {
      client.CancelRun({ id: runId }, m, { deadline: Date.now() + 10_000 }, () => {})
    } else stream.cancel()
    dropTimer = setTimeout(() => { stream.cancel() }, o.cancelWaitMs ?? 15_000)
  }
  r.signal.addEventListener('abort', onAbort, { once: true })
  try {
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (e: ProtoEvent) => {
        if (e.started !== undefined) { runId = e.started.runId; if (r.signal.aborted) onAbort() }
        if (e.step !== undefined) r.onEvent({ type: e.step.type, step: e.step.step, status: (e.step.status === '' ? undefined : e.step.status) as never, ms: e.step.ms, rowsOut: e.step.rowsOut < 0 ? null : e.step.rowsOut, error: e.step.error === '' ? undefined : e.step.error })
        if (e.result !== undefined) result = e.result
      })
      stream.on('error', (err: ServiceError) => { reject(err.code === Status.CANCELLED && r.signal.aborted ? new FlowError('ERR_CANCELLED', `the run ${runId ?? ''} was cancelled (no answer from the node)`) : fromGrpc(err, '')) })
      stream.on('end', () => { resolve() })
    })
  } finally {
    r.signal.removeEventListener('abort', onAbort)
    clearTimeout(dropTimer)
  }
  if (result === undefined) throw new Error('the node ended the run without a result')
  const metrics = JSON.parse(result.metricsJson) as FlowMetrics
  const outputs = JSON.parse(result.outputsJson) as Record<string, unknown>
  const run: RunRecord = { runId: result.runId, flow: metrics.flow, planHash: metrics.planHash, status: result.status, startedAtMs: 0, finishedAtMs: null, resumedFrom: null, steps: {} }
  const res: FlowResult = { outputs, metrics, run }
  if (result.status !== 'succeeded') throw new FlowRunError(flowError(JSON.parse(result.errorJson === '' ? '{}' : result.errorJson) as Record<string, unknown>), res)
  return res
}

/** A FlowError from its JSON (toJSON): the same message, code and position. */
function flowError (j: Record<string, unknown>): FlowError {
  const hint = typeof j.hint === 'string' ? j.hint : undefined
  let detail = typeof j.message === 'string' ? j.message : 'the run failed'
  detail = detail.replace(/^\d+:\d+: /, '')
  if (hint !== undefined && detail.endsWith(` (hint: ${hint})`)) detail = detail.slice(0, -` (hint: ${hint})`.length)
  return new FlowError((typeof j.code === 'string' ? j.code : 'ERR_RUNTIME') as FlowErrorCode, detail, {
    line: typeof j.line === 'number' ? j.line : undefined, col: typeof j.col === 'number' ? j.col : undefined, hint, step: typeof j.step === 'string' ? j.step : undefined
  })
}

/** Caller errors (bad inputs, unknown flows) exit 2 through ERR_INPUT; the rest are plain errors. */
function fromGrpc (err: ServiceError, address: string): Error {
  if (err.code === Status.INVALID_ARGUMENT || err.code === Status.NOT_FOUND || err.code === Status.UNAUTHENTICATED) {
    return Object.assign(new FlowError('ERR_INPUT', err.details), { grpcCode: err.code })
  }
  if (err.code === Status.UNAVAILABLE) return new Error(`cannot reach the node's API${address !== '' ? ` at ${address}` : ''}: ${err.details}`)
  return new Error(err.details ?? err.message)
}

/** The request: source (or name), inputs with file inputs sent as files, and the flow's files. */
async function request (r: Omit<RunRequest, 'onEvent'>, maxFiles: number): Promise<Record<string, unknown>> {
  const files: Record<string, Buffer> = {}
  const inputs: Record<string, unknown> = { ...r.inputs }
  const add = (key: string, bytes: Buffer): void => {
    if (Object.keys(files).length >= maxFiles) throw new FlowError('ERR_LIMIT', `the flow reads more than ${maxFiles} files`)
    files[key] = bytes
  }
  for (const d of r.planned.flow.inputs) {
    const v = r.inputs[d.name]
    if (d.type !== 'file' || typeof v !== 'string') continue
    const bytes = await readFile(v).catch((e: NodeJS.ErrnoException) => { throw new FlowError('ERR_INPUT', `cannot read ${v} (input ${d.name}): ${e.code ?? e.message}`) })
    const key = `.inputs/${d.name}/${basename(v)}`
    add(key, bytes)
    inputs[d.name] = { path: key }
  }
  if (!r.named) await bundle(r.planned.flow, dirname(resolvePath(r.file)), dirname(resolvePath(r.file)), files, add, 0)
  return { ...(r.named ? { name: r.file } : { source: r.source }), inputsJson: JSON.stringify(inputs), files, noCache: r.noCache, resume: r.resume ?? '' }
}

/** RUN VASM programs and CALL FLOW files (and theirs), keyed relative to the top flow's folder. */
async function bundle (flow: Flow, dir: string, top: string, files: Record<string, Buffer>, add: (k: string, b: Buffer) => void, depth: number): Promise<void> {
  if (depth > 8) return // the node stops deeper CALL FLOW chains itself (maxCallDepth)
  for (const s of flow.steps) {
    if (s.op.op !== 'RUN_VASM' && s.op.op !== 'CALL_FLOW') continue
    const abs = resolvePath(dir, s.op.path)
    const key = relative(top, abs).split(sep).join('/')
    if (files[key] !== undefined || key.split('/').filter(p => p === '..').length > MAX_PARENT_HOPS) continue
    let bytes: Buffer
    try { bytes = await readFile(abs) } catch { continue } // the node names the missing file at its step
    add(key, bytes)
    if (s.op.op === 'CALL_FLOW') {
      const sub = parseFlow(bytes.toString('utf8'))
      if (sub.flow !== null) await bundle(sub.flow, dirname(abs), top, files, add, depth + 1)
    }
  }
}
