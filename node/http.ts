/**
 * The node's small HTTP/JSON surface: /health, /metrics, /mesh/nodes and the /grid/jobs mirror
 * of gRPC. node:http, no framework: a handful of routes does not need one.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { authorized, UNAUTHENTICATED_MESSAGE } from './auth.js'
import { checkJsonText } from './input-bounds.js'
import type { Registry } from 'prom-client'
import { VoikeError } from '../config/errors.js'
import type { Logger } from '../config/logger.js'
import type { MemberTable } from '../actors/membership/table.js'
import { GridError, isJobStatus, JOB_STATUSES, type GridService, type JobStatus } from '../actors/scheduler/api.js'

export interface HttpOptions {
  host: string
  port: number
  peerId: string
  registry: Registry
  table: MemberTable
  grid: GridService
  apiKey: string | undefined
  logger: Logger
  /** Largest request body. Default 1 MiB. */
  maxBodyBytes?: number
  /** More fields of /health (the chaos settings when on). */
  health?: () => Record<string, unknown>
  /** More GET routes behind the API key (node/http-hypermesh.ts): the answer, or undefined when not theirs. */
  extraGet?: (path: string, url: URL) => { status: number, body: unknown } | undefined
  /** More routes (FLOW: node/http-flow.ts), after the API key check; each answers true when it took the request. */
  routes?: ReadonlyArray<(req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>>
}

export interface HttpServer { address: string, close: () => Promise<void> }


class HttpError extends VoikeError {
  constructor (readonly status: number, message: string, code: string, field?: string) {
    super(code, message, { field })
    this.name = 'HttpError'
  }
}

function send (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

async function readJson (req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > maxBytes) throw new HttpError(413, `request body exceeds ${maxBytes} bytes`, 'ERR_BODY_TOO_LARGE')
    chunks.push(chunk as Buffer)
  }
  if (size === 0) throw new HttpError(400, 'request body is empty; expected JSON {"kind":..., ...params}', 'ERR_INVALID_ARGUMENT', 'body')
  const text = Buffer.concat(chunks).toString('utf8')
  // Depth and value count first: nothing after the parse may recurse into a hostile value.
  checkJsonText(text, { field: 'body' })
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new HttpError(400, `request body is not JSON: ${(err as Error).message}`, 'ERR_INVALID_ARGUMENT', 'body')
  }
}

/**
 * POST /grid/jobs takes `{"kind":"fib","params":{...}}` or, for the CLI's convenience, the
 * params inline: `{"kind":"fib","n":100,"segments":4}`.
 */
export function splitSubmitBody (body: unknown): { kind: unknown, params: unknown } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(400, 'body must be a JSON object', 'ERR_INVALID_ARGUMENT', 'body')
  }
  const { kind, params, ...rest } = body as Record<string, unknown>
  if (params === undefined) return { kind, params: rest }
  // Both forms at once: which one did the caller mean? Neither key is dropped silently.
  for (const key in rest) throw new HttpError(400, `${key.slice(0, 64)}: give the parameters inline or in "params", not both`, 'ERR_INVALID_ARGUMENT', key.slice(0, 64))
  return { kind, params }
}

export async function startHttp (o: HttpOptions): Promise<HttpServer> {
  const maxBodyBytes = o.maxBodyBytes ?? 1024 * 1024

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://x')
    const path = url.pathname
    if (req.method === 'GET' && path === '/health') return send(res, 200, { status: 'ok', peerId: o.peerId, ...o.health?.() })
    if (req.method === 'GET' && path === '/metrics') {
      const text = await o.registry.metrics()
      res.writeHead(200, { 'content-type': o.registry.contentType })
      res.end(text)
      return
    }
    if (!authorized(o.apiKey, name => req.headers[name])) throw new HttpError(401, UNAUTHENTICATED_MESSAGE, 'ERR_UNAUTHENTICATED')
    if (req.method === 'GET' && path === '/mesh/nodes') return send(res, 200, o.table.all())
    const extra = req.method === 'GET' ? o.extraGet?.(path, url) : undefined
    if (extra !== undefined) return send(res, extra.status, extra.body)
    for (const r of o.routes ?? []) if (await r(req, res, url)) return
    if (path === '/grid/jobs' && req.method === 'POST') {
      const { kind, params } = splitSubmitBody(await readJson(req, maxBodyBytes))
      return send(res, 201, await o.grid.submit(kind, params))
    }
    if (path === '/grid/jobs' && req.method === 'GET') {
      const limitText = url.searchParams.get('limit')
      const status = url.searchParams.get('status') ?? undefined
      const limit = limitText === null ? undefined : Number(limitText)
      if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 1000)) throw new HttpError(400, 'limit must be an integer 1-1000', 'ERR_INVALID_ARGUMENT', 'limit')
      if (status !== undefined && !isJobStatus(status)) throw new HttpError(400, `status must be one of ${JOB_STATUSES.join(', ')}`, 'ERR_INVALID_ARGUMENT', 'status')
      const { jobs, missing } = await o.grid.listCluster({ limit, status: status as JobStatus | undefined })
      // The body stays the array it always was; a partial list is marked in headers.
      if (missing.length > 0) {
        res.setHeader('x-voike-partial', 'true')
        res.setHeader('x-voike-missing', missing.map(m => `${m.peerId}=${m.reason}`).join(', '))
      }
      return send(res, 200, jobs)
    }
    const m = /^\/grid\/jobs\/([A-Za-z0-9_-]{1,64})(\/cancel)?$/.exec(path)
    if (m !== null && req.method === 'GET' && m[2] === undefined) {
      const job = await o.grid.get(m[1])
      if (job === null) throw new HttpError(404, `no job ${m[1]}`, 'ERR_NOT_FOUND')
      return send(res, 200, job)
    }
    if (m !== null && ((req.method === 'POST' && m[2] === '/cancel') || (req.method === 'DELETE' && m[2] === undefined))) {
      return send(res, 200, await o.grid.cancel(m[1]))
    }
    throw new HttpError(404, `no route ${req.method ?? ''} ${path}`, 'ERR_NOT_FOUND')
  }

  const server: Server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      const e = toHttpError(err)
      if (e.status >= 500) o.logger.error('http request failed', { path: req.url, err })
      if (!res.headersSent) send(res, e.status, { error: { code: e.code, message: e.message, field: e.field } })
      else res.destroy()
    })
  })
  server.headersTimeout = 10_000
  server.requestTimeout = 60_000
  server.maxHeadersCount = 100
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(o.port, o.host, () => { server.off('error', reject); resolve() })
  })
  const addr = server.address()
  const port = typeof addr === 'object' && addr !== null ? addr.port : o.port
  return {
    address: `${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

function toHttpError (err: unknown): HttpError {
  if (err instanceof HttpError) return err
  if (err instanceof GridError) {
    const status = err.code === 'ERR_NOT_FOUND' ? 404 : err.code === 'ERR_UNAVAILABLE' || err.code === 'ERR_OVERLOADED' ? 503 : 400
    return new HttpError(status, err.message, err.code, err.field)
  }
  return new HttpError(500, (err as Error)?.message ?? 'internal error', 'ERR_INTERNAL')
}
