/**
 * FLOW on the node: the one service behind HTTP `/flow/*` (node/http-flow.ts) and gRPC
 * `voike.v1.Flow` (node/grpc-flow.ts). It parses, plans, explains and runs flows sent as source
 * or named after a file of the watched `--flows DIR`; RUN JOB steps go to this node's grid
 * (GridPort over GridService), results are cached and run records kept in the store (bounded),
 * runs in flight can be cancelled by id (their grid jobs are cancelled).
 *
 * Requests are checked up front with errors naming the field (`FlowServiceError`,
 * ERR_INVALID_ARGUMENT); parse and plan errors are `FlowErrors` naming line:col.
 */
import { randomUUID } from 'node:crypto'
import { resolve as resolvePath, isAbsolute, posix } from 'node:path'
import type { Logger } from '../config/logger.js'
import { VoikeError } from '../config/errors.js'
import { resolveInts, type IntTable } from '../config/options.js'
import type { FlowStore } from '../store/index.js'
import {
  parseFlow, planFlow, planJson, execute, explain, listOps, watchFlows, normalizeInputs,
  FlowErrors, FlowRunError,
  type ExplainStep, type FlowMetrics, type FlowWatcher, type GridPort, type Planned, type RunRecord, type StepEvent, type StepRecord
} from '../flows/index.js'
import { cacheLimits, sandboxFs, storeRunStore, storeStepCache, type FlowCacheLimits } from './flow-ports.js'

export type FlowServiceErrorCode = 'ERR_INVALID_ARGUMENT' | 'ERR_NOT_FOUND' | 'ERR_OVERLOADED'

export class FlowServiceError extends VoikeError {
  declare readonly code: FlowServiceErrorCode
  constructor (code: FlowServiceErrorCode, message: string, field?: string) {
    super(code, message, { field })
    this.name = 'FlowServiceError'
  }
}

export interface FlowLimits extends FlowCacheLimits {
  /** Runs executing at once on this node; more are refused with ERR_OVERLOADED. */
  maxRunsInFlight: number
  /** Steps of one run running at once. */
  stepConcurrency: number
  /** Bytes of a flow's source in a request. */
  maxSourceBytes: number
  /** Nesting depth of `inputs` (objects and arrays). */
  maxInputDepth: number
  /** Files sent with one run, and their total bytes. */
  maxFiles: number
  maxFilesBytes: number
  /** Plans remembered for `/flow/plans/:hash` besides the watched flows. */
  maxRecentPlans: number
}

const LIMITS: IntTable<Exclude<keyof FlowLimits, keyof FlowCacheLimits>> = {
  maxRunsInFlight: { default: 16, min: 1, max: 1024 },
  stepConcurrency: { default: 8, min: 1, max: 64 },
  maxSourceBytes: { default: 1 << 20, min: 1024, max: 16 << 20 },
  maxInputDepth: { default: 32, min: 1, max: 256 },
  maxFiles: { default: 64, min: 0, max: 4096 },
  maxFilesBytes: { default: 16 << 20, min: 0, max: 256 << 20 },
  maxRecentPlans: { default: 64, min: 1, max: 10_000 }
}

export interface FlowServiceOptions {
  /** The grid RUN JOB / RUN VASM steps run on; null: those steps fail with a clear error. */
  port: GridPort | null
  store: FlowStore
  /** `--flows DIR`: watched; its flows run by name. */
  flowsDir?: string | null
  logger: Logger
  limits?: Partial<FlowLimits>
}

/** What names a flow in a request: its source, or a watched flow's name. */
export interface FlowRef { source?: unknown, name?: unknown }

export interface ExecuteRequest extends FlowRef {
  inputs?: unknown
  /** Files the flow reads (RUN VASM programs, CALL FLOW files, file inputs): path relative to the flow's folder → base64. */
  files?: unknown
  noCache?: unknown
  resume?: unknown
}

export interface ExecuteAnswer {
  runId: string
  status: RunRecord['status']
  outputs: Record<string, unknown>
  metrics: FlowMetrics
  /** The root failure of a failed or cancelled run. */
  error?: Record<string, unknown>
}

export interface RunStarted { runId: string, flow: string, planHash: string, steps: string[] }

export interface FlowService {
  /** Resolves once the watched folder was loaded the first time. */
  ready: Promise<void>
  parse: (req: FlowRef) => Record<string, unknown>
  plan: (req: FlowRef) => Record<string, unknown>
  explain: (req: ExecuteRequest, signal?: AbortSignal) => Promise<ExplainStep[]>
  execute: (req: ExecuteRequest, o?: { signal?: AbortSignal, onStart?: (s: RunStarted) => void, onEvent?: (e: StepEvent) => void }) => Promise<ExecuteAnswer>
  listPlans: () => Array<Record<string, unknown>>
  getPlan: (id: string) => Record<string, unknown>
  listOps: () => unknown[]
  getRun: (id: string) => Promise<Record<string, unknown>>
  cancelRun: (id: string) => Promise<Record<string, unknown>>
  close: () => void
}

/**
 * Where the files of a run sent as source appear to be: a folder that does not exist, deep
 * enough for `../` paths up to MAX_PARENT_HOPS (the CLI refuses deeper ones).
 */
export const VIRTUAL_BASE = '/voike-flow/1/2/3/4/5/6/7/8'
export const MAX_PARENT_HOPS = 8
const NAME = /^[A-Za-z0-9_.-]{1,128}$/
const RUN_ID = /^[A-Za-z0-9_-]{1,64}$/

interface InFlight { runId: string, flow: string, planHash: string, startedAtMs: number, steps: Record<string, StepRecord['status']>, ac: AbortController }

export function createFlowService (o: FlowServiceOptions): FlowService {
  const limits: FlowLimits = { ...cacheLimits(pick(o.limits, ['cacheMaxEntries', 'cacheMaxBytes', 'cacheMaxEntryBytes', 'maxRuns'])), ...resolveInts(LIMITS, omit(o.limits, ['cacheMaxEntries', 'cacheMaxBytes', 'cacheMaxEntryBytes', 'maxRuns']), bad, { strict: true, prefix: 'limits.' }) }
  const log = o.logger
  const cache = storeStepCache(o.store, limits, log)
  const runs = storeRunStore(o.store, limits, log)
  const inflight = new Map<string, InFlight>()
  const recent = new Map<string, { planned: Planned, source: string, name: string | null }>()
  const flowsDir = o.flowsDir === undefined || o.flowsDir === null ? null : resolvePath(o.flowsDir)
  const watcher: FlowWatcher | null = flowsDir === null
    ? null
    : watchFlows(flowsDir, {
      onChange: (v) => { log.info('flow loaded', { flow: v.name, version: v.version, planHash: v.planned.plan.hash }) },
      onError: (name, err) => { log.warn('flow did not load; its previous version stays', { flow: name, err }) },
      onRemove: (name) => { log.info('flow removed', { flow: name }) }
    })

  const remember = (planned: Planned, source: string, name: string | null): void => {
    recent.delete(planned.plan.hash)
    recent.set(planned.plan.hash, { planned, source, name })
    while (recent.size > limits.maxRecentPlans) recent.delete(recent.keys().next().value as string)
  }

  /** The flow a request names, planned (throws FlowErrors), with where its files are. */
  const resolveFlow = (req: FlowRef): { planned: Planned, source: string, name: string | null, base: string, roots: string[] } => {
    if (typeof req !== 'object' || req === null) throw bad('body', 'must be a JSON object')
    const hasSource = req.source !== undefined && req.source !== null && req.source !== ''
    const hasName = req.name !== undefined && req.name !== null && req.name !== ''
    if (hasSource === hasName) throw bad(hasSource ? 'name' : 'source', 'give exactly one of source (the flow text) and name (a watched flow)')
    if (hasSource) {
      if (typeof req.source !== 'string') throw bad('source', 'must be a string')
      if (Buffer.byteLength(req.source) > limits.maxSourceBytes) throw bad('source', `is larger than ${limits.maxSourceBytes} bytes`)
      const r = parseFlow(req.source)
      if (r.flow === null) throw new FlowErrors(r.errors)
      const planned = planFlow(r.flow, r.warnings)
      remember(planned, req.source, null)
      return { planned, source: req.source, name: null, base: VIRTUAL_BASE, roots: [] }
    }
    if (typeof req.name !== 'string' || !NAME.test(req.name)) throw bad('name', 'must be 1-128 of [A-Za-z0-9_.-]')
    const name = req.name.replace(/\.flow$/, '')
    if (watcher === null) throw new FlowServiceError('ERR_NOT_FOUND', `no flow named ${name}: this node watches no folder (start it with --flows DIR)`, 'name')
    const v = watcher.get(name)
    if (v === undefined) {
      const entry = watcher.list().find(e => e.name === name)
      throw new FlowServiceError('ERR_NOT_FOUND', entry?.error != null ? `flow ${name} has no valid version: ${entry.error.message}` : `no flow named ${name} in ${flowsDir!}`, 'name')
    }
    remember(v.planned, v.source, name)
    return { planned: v.planned, source: v.source, name, base: flowsDir!, roots: [flowsDir!] }
  }

  /** inputs, files, noCache, resume: checked; files decoded to absolute paths under `base`. */
  const runArgs = (req: ExecuteRequest, base: string): { inputs: Record<string, unknown>, files: Map<string, Uint8Array>, noCache: boolean, resume: string | null } => {
    if (req.inputs !== undefined && req.inputs !== null && (typeof req.inputs !== 'object' || Array.isArray(req.inputs))) throw bad('inputs', 'must be an object of input name → value')
    const inputs = (req.inputs ?? {}) as Record<string, unknown>
    checkDepth(inputs, limits.maxInputDepth, 'inputs')
    if (req.noCache !== undefined && req.noCache !== null && typeof req.noCache !== 'boolean') throw bad('noCache', 'must be true or false')
    if (req.resume !== undefined && req.resume !== null && req.resume !== '' && (typeof req.resume !== 'string' || !RUN_ID.test(req.resume))) throw bad('resume', 'must be a run id (1-64 of [A-Za-z0-9_-])')
    const files = new Map<string, Uint8Array>()
    if (req.files !== undefined && req.files !== null) {
      if (typeof req.files !== 'object' || Array.isArray(req.files)) throw bad('files', 'must be an object of relative path → base64 content')
      const entries = Object.entries(req.files as Record<string, unknown>)
      if (entries.length > limits.maxFiles) throw bad('files', `at most ${limits.maxFiles} files`)
      let total = 0
      for (const [path, b64] of entries) {
        if (path === '' || path.length > 1024 || isAbsolute(path) || path.includes('\0') || path.includes('\\')) throw bad(`files.${path}`, 'must be a relative path (/ separated)')
        if (posix.normalize(path).split('/').filter(p => p === '..').length > MAX_PARENT_HOPS) throw bad(`files.${path}`, `climbs more than ${MAX_PARENT_HOPS} folders up`)
        // Base64 text from JSON; bytes from gRPC.
        if (!(b64 instanceof Uint8Array) && (typeof b64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64))) throw bad(`files.${path}`, 'must be base64 text')
        const bytes = b64 instanceof Uint8Array ? b64 : Buffer.from(b64, 'base64')
        total += bytes.length
        if (total > limits.maxFilesBytes) throw bad('files', `more than ${limits.maxFilesBytes} bytes in all`)
        files.set(resolvePath(base, path), bytes)
      }
    }
    return { inputs, files, noCache: req.noCache === true, resume: typeof req.resume === 'string' && req.resume !== '' ? req.resume : null }
  }

  const execOptions = (f: ReturnType<typeof resolveFlow>, a: ReturnType<typeof runArgs>, signal: AbortSignal): Parameters<typeof execute>[2] => ({
    port: o.port, cache, runs, noCache: a.noCache, resume: a.resume, signal, concurrency: limits.stepConcurrency,
    baseDir: f.base, fs: sandboxFs({ base: f.base, files: a.files, roots: f.roots })
  })

  return {
    ready: watcher?.ready ?? Promise.resolve(),

    parse (req) {
      const f = resolveFlow(req)
      const flow = f.planned.flow
      return { ok: true, flow: flow.name, inputs: flow.inputs.map(i => ({ name: i.name, type: i.type, optional: i.optional })), steps: flow.steps.map(s => ({ name: s.name, op: s.op.op, line: s.line })), warnings: f.planned.plan.warnings }
    },

    plan (req) { return planJson(resolveFlow(req).planned.plan) as unknown as Record<string, unknown> },

    async explain (req, signal) {
      const f = resolveFlow(req)
      const a = runArgs(req, f.base)
      return await explain(f.planned, a.inputs, execOptions(f, a, signal ?? new AbortController().signal))
    },

    async execute (req, eo = {}) {
      const f = resolveFlow(req)
      const a = runArgs(req, f.base)
      // Input errors answer the request itself, before a run starts (execute checks them again).
      normalizeInputs(f.planned.flow.inputs, a.inputs, sandboxFs({ base: f.base, files: a.files, roots: f.roots }))
      if (inflight.size >= limits.maxRunsInFlight) throw new FlowServiceError('ERR_OVERLOADED', `${inflight.size} flow runs in flight (limits.maxRunsInFlight); try again later`)
      const runId = randomUUID()
      const ac = new AbortController()
      const onAbort = (): void => { ac.abort(eo.signal?.reason) }
      eo.signal?.addEventListener('abort', onAbort, { once: true })
      if (eo.signal?.aborted === true) ac.abort(eo.signal.reason)
      const plan = f.planned.plan
      const run: InFlight = { runId, flow: plan.flow, planHash: plan.hash, startedAtMs: Date.now(), steps: Object.fromEntries(plan.order.map(s => [s, 'pending' as const])), ac }
      inflight.set(runId, run)
      log.info('flow run started', { runId, flow: plan.flow, planHash: plan.hash, name: f.name })
      try {
        eo.onStart?.({ runId, flow: plan.flow, planHash: plan.hash, steps: [...plan.order] })
        const onEvent = (e: StepEvent): void => {
          run.steps[e.step] = e.type === 'step-start' ? 'running' : e.status ?? run.steps[e.step]!
          eo.onEvent?.(e)
        }
        const r = await execute(f.planned, a.inputs, { ...execOptions(f, a, ac.signal), runId, onEvent })
        log.info('flow run finished', { runId, status: 'succeeded', ms: Math.round(r.metrics.totalMs), stepsRun: r.metrics.stepsRun, stepsReused: r.metrics.stepsReused })
        return { runId, status: 'succeeded', outputs: r.outputs, metrics: r.metrics }
      } catch (e) {
        if (!(e instanceof FlowRunError)) throw e
        log.info('flow run finished', { runId, status: e.result.run.status, error: e.first.message })
        return { runId, status: e.result.run.status, outputs: e.result.outputs, metrics: e.result.metrics, error: e.first.toJSON() }
      } finally {
        inflight.delete(runId)
        eo.signal?.removeEventListener('abort', onAbort)
      }
    },

    listPlans () {
      return (watcher?.list() ?? []).map(e => ({
        name: e.name,
        file: e.file,
        version: e.current?.version ?? null,
        planHash: e.current?.planned.plan.hash ?? null,
        flow: e.current?.planned.plan.flow ?? null,
        loadedAtMs: e.current?.loadedAtMs ?? null,
        error: e.error
      })).sort((x, y) => x.name < y.name ? -1 : x.name > y.name ? 1 : 0)
    },

    getPlan (id) {
      if (typeof id !== 'string' || !NAME.test(id)) throw bad('id', 'must be a watched flow\'s name or a plan hash')
      const v = watcher?.get(id.replace(/\.flow$/, ''))
      if (v !== undefined) return { name: v.name, version: v.version, source: v.source, plan: planJson(v.planned.plan) }
      const r = recent.get(id)
      if (r !== undefined) return { name: r.name, version: null, source: r.source, plan: planJson(r.planned.plan) }
      const entry = watcher?.list().find(e => e.name === id)
      if (entry !== undefined) throw new FlowServiceError('ERR_NOT_FOUND', `flow ${id} has no valid version: ${entry.error?.message ?? 'not loaded yet'}`, 'id')
      throw new FlowServiceError('ERR_NOT_FOUND', `no plan ${id} (a watched flow's name, or the hash of a plan this node ran or planned lately)`, 'id')
    },

    listOps: () => listOps(),

    async getRun (id) {
      if (typeof id !== 'string' || !RUN_ID.test(id)) throw bad('id', 'must be a run id')
      const live = inflight.get(id)
      if (live !== undefined) {
        return { runId: id, flow: live.flow, planHash: live.planHash, status: 'running', startedAtMs: live.startedAtMs, finishedAtMs: null, steps: Object.fromEntries(Object.entries(live.steps).map(([k, s]) => [k, { status: s }])) }
      }
      const rec = await runs.get(id)
      if (rec === undefined) throw new FlowServiceError('ERR_NOT_FOUND', `no run ${id} (run records are kept for limits.maxRuns runs)`, 'id')
      return rec as unknown as Record<string, unknown>
    },

    async cancelRun (id) {
      if (typeof id !== 'string' || !RUN_ID.test(id)) throw bad('id', 'must be a run id')
      const live = inflight.get(id)
      if (live !== undefined) {
        log.info('flow run cancel requested', { runId: id })
        live.ac.abort(new Error('cancelled through the API'))
        return { runId: id, status: 'cancelling' }
      }
      const rec = await runs.get(id)
      if (rec === undefined) throw new FlowServiceError('ERR_NOT_FOUND', `no run ${id}`, 'id')
      return { runId: id, status: rec.status }
    },

    close () {
      watcher?.close()
      for (const r of inflight.values()) r.ac.abort(new Error('the node is stopping'))
    }
  }
}

function bad (field: string, why: string): FlowServiceError {
  return new FlowServiceError('ERR_INVALID_ARGUMENT', `${field} ${why}`, field)
}

/** Bounds nesting, iteratively (a deep value must not overflow the stack here). */
function checkDepth (v: unknown, max: number, field: string): void {
  const stack: Array<[unknown, number]> = [[v, 1]]
  while (stack.length > 0) {
    const [x, d] = stack.pop()!
    if (typeof x !== 'object' || x === null) continue
    if (d > max) throw bad(field, `nests deeper than ${max} levels`)
    for (const c of Object.values(x)) if (typeof c === 'object' && c !== null) stack.push([c, d + 1])
  }
}

function pick<T extends object> (o: T | undefined, keys: string[]): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([k]) => keys.includes(k))) as Partial<T>
}

function omit<T extends object> (o: T | undefined, keys: string[]): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([k]) => !keys.includes(k))) as Partial<T>
}
