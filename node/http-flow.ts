/**
 * HTTP/JSON routes of FLOW (node/flow-service.ts does the work):
 *
 *   POST /flow/parse    {source | name}                          → {ok, flow, inputs, steps, warnings}
 *   POST /flow/plan     {source | name}                          → plan JSON (nodes, edges, hash, ...)
 *   POST /flow/explain  {source | name, inputs, files, noCache, resume} → [{step, action, why, ...}]
 *   POST /flow/execute  {source | name, inputs, files, noCache, resume} → when done: 200
 *       {runId, status: "succeeded", outputs, metrics}; a failed or cancelled run: 422 with the
 *       same fields and `error`. With `accept: application/x-ndjson` the answer streams one JSON
 *       object a line: {type:"started", runId, ...}, {type:"step-start"|"step-end", ...}, then
 *       {type:"result", ...}. A client that goes away before the answer cancels the run.
 *   GET  /flow/plans, /flow/plans/:id (a watched flow's name or a plan hash), /flow/ops,
 *        /flow/runs/:id;  POST /flow/runs/:id/cancel
 *
 * Parse and plan errors are 400 with `error.errors`: each with code, message (`line:col: ...`),
 * line, col, text, hint. The API key check happens before these routes (node/http.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from '../config/logger.js'
import { FlowError, FlowErrors } from '../flows/index.js'
import { FlowServiceError, type FlowService } from './flow-service.js'

export interface FlowRoutesOptions {
  service: FlowService
  logger: Logger
  /** Largest request body (source, inputs and base64 files). Default 32 MiB. */
  maxBodyBytes?: number
}

/** The handler node/http.ts calls for every authorized request: false when the path is not FLOW's. */
export type HttpRoutes = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>

export function flowRoutes (o: FlowRoutesOptions): HttpRoutes {
  const maxBodyBytes = o.maxBodyBytes ?? 32 << 20
  const s = o.service
  return async (req, res, url) => {
    const path = url.pathname
    if (!path.startsWith('/flow/')) return false
    try {
      await route(req, res, path)
    } catch (err) {
      const { status, body } = errorBody(err)
      if (status >= 500) o.logger.error('flow request failed', { path, err })
      if (!res.headersSent) send(res, status, body)
      else res.end(JSON.stringify({ type: 'error', ...body }) + '\n')
    }
    return true
  }

  async function route (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const post = req.method === 'POST'
    const get = req.method === 'GET'
    if (post && path === '/flow/parse') return send(res, 200, s.parse(await readJson(req, maxBodyBytes)))
    if (post && path === '/flow/plan') return send(res, 200, s.plan(await readJson(req, maxBodyBytes)))
    if (post && path === '/flow/explain') return send(res, 200, await s.explain(await readJson(req, maxBodyBytes)))
    if (post && path === '/flow/execute') return await executeRoute(req, res)
    if (get && path === '/flow/plans') return send(res, 200, s.listPlans())
    if (get && path === '/flow/ops') return send(res, 200, s.listOps())
    const plan = /^\/flow\/plans\/([^/]{1,200})$/.exec(path)
    if (get && plan !== null) return send(res, 200, s.getPlan(decodeURIComponent(plan[1])))
    const run = /^\/flow\/runs\/([^/]{1,100})(\/cancel)?$/.exec(path)
    if (get && run !== null && run[2] === undefined) return send(res, 200, await s.getRun(decodeURIComponent(run[1])))
    if (post && run !== null && run[2] === '/cancel') return send(res, 200, await s.cancelRun(decodeURIComponent(run[1])))
    throw new FlowServiceError('ERR_NOT_FOUND', `no route ${req.method ?? ''} ${path}`)
  }

  async function executeRoute (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req, maxBodyBytes) as Record<string, unknown>
    const stream = (req.headers.accept ?? '').includes('application/x-ndjson')
    const ac = new AbortController()
    // The answer is the only way to learn the outcome: nobody waits for it any more.
    res.on('close', () => { if (!res.writableFinished) ac.abort(new Error('the client went away')) })
    const line = (v: unknown): void => { res.write(JSON.stringify(v) + '\n') }
    const answer = await s.execute(body, {
      signal: ac.signal,
      onStart: stream ? (st) => { res.writeHead(200, { 'content-type': 'application/x-ndjson' }); line({ type: 'started', ...st }) } : undefined,
      onEvent: stream ? (e) => { line(e) } : undefined
    })
    if (stream) { res.end(JSON.stringify({ type: 'result', ...answer }) + '\n'); return }
    send(res, answer.status === 'succeeded' ? 200 : 422, answer)
  }
}

function send (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

async function readJson (req: IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > maxBytes) throw Object.assign(new FlowServiceError('ERR_INVALID_ARGUMENT', `request body exceeds ${maxBytes} bytes`, 'body'), { status: 413 })
    chunks.push(chunk as Buffer)
  }
  let v: unknown
  try { v = JSON.parse(Buffer.concat(chunks).toString('utf8')) } catch (err) {
    throw new FlowServiceError('ERR_INVALID_ARGUMENT', `request body is not JSON: ${(err as Error).message}`, 'body')
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new FlowServiceError('ERR_INVALID_ARGUMENT', 'body must be a JSON object, e.g. {"source": "FLOW ..."}', 'body')
  return v as Record<string, unknown>
}

export function errorBody (err: unknown): { status: number, body: { error: Record<string, unknown> } } {
  if (err instanceof FlowErrors) return { status: 400, body: { error: { code: err.code, message: err.message, errors: err.errors.map(e => e.toJSON()) } } }
  if (err instanceof FlowError) return { status: 400, body: { error: err.toJSON() } }
  if (err instanceof FlowServiceError) {
    const status = (err as { status?: number }).status ?? (err.code === 'ERR_NOT_FOUND' ? 404 : err.code === 'ERR_OVERLOADED' ? 503 : 400)
    return { status, body: { error: { code: err.code, message: err.message, field: err.field ?? null } } }
  }
  return { status: 500, body: { error: { code: 'ERR_INTERNAL', message: (err as Error)?.message ?? 'internal error' } } }
}
