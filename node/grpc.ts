/**
 * gRPC API, package voike.v1: Mesh (ListNodes) and Grid (SubmitJob, GetJob, WatchJob,
 * CancelJob, ListJobs). Errors map to status codes: bad arguments INVALID_ARGUMENT naming the
 * field, unknown jobs NOT_FOUND, a missing or wrong key UNAUTHENTICATED.
 */
import { Server, ServerCredentials, setLogger, status as Status, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData, type Metadata } from '@grpc/grpc-js'
import type { Logger } from '../config/logger.js'
import type { MemberTable, MemberRecord } from '../actors/membership/table.js'
import { GridError, isJobStatus, TERMINAL_STATUSES, type GridService, type JobStatus, type JobView } from '../actors/scheduler/api.js'
import { authorized, UNAUTHENTICATED_MESSAGE } from './auth.js'
import { loadVoikeProto } from './proto.js'
import { checkJsonText } from './input-bounds.js'
import { withFieldDetails } from './grpc-errors.js'
import { addHealth } from './grpc-health.js'
import { addReflection, voikeServiceNames } from './grpc-reflection.js'

export interface GrpcOptions {
  host: string
  port: number
  table: MemberTable
  grid: GridService
  apiKey: string | undefined
  logger: Logger
  /** Largest request message. Default 1 MiB. */
  maxMessageBytes?: number
  /** More services (FLOW: node/grpc-flow.ts, PerfWatch and trust: node/grpc-hypermesh.ts), given the server and the API key check. */
  services?: ReadonlyArray<(server: Server, authorized: (md: Metadata) => boolean) => void>
}

export interface GrpcServer {
  address: string
  /** The health service's answer (grpc-health.ts): SERVING once the node is ready, NOT_SERVING while it stops. */
  setServing: (serving: boolean) => void
  close: () => Promise<void>
}

interface GrpcError { code: number, details: string, metadata?: Metadata }

export function memberToProto (m: MemberRecord): Record<string, unknown> {
  return { peerId: m.peerId, addrs: m.addrs, status: m.status, cores: m.cores, memoryBytes: m.memoryBytes, version: m.version, startedAtMs: m.startedAtMs, lastSeenMs: m.lastSeenMs, leftAtMs: m.leftAtMs ?? 0, isGenesis: m.isGenesis, name: m.name ?? '' }
}

export function jobToProto (j: JobView): Record<string, unknown> {
  return {
    id: j.id,
    kind: j.kind,
    status: j.status,
    error: j.error ?? '',
    resultJson: j.result === null ? '' : JSON.stringify(j.result),
    paramsJson: JSON.stringify(j.params),
    coordinator: j.coordinator,
    createdAtMs: j.createdAtMs,
    finishedAtMs: j.finishedAtMs ?? 0,
    segments: j.segments.map(segmentToProto),
    segmentsDone: j.segmentsDone,
    segmentsTotal: j.segmentsTotal,
    verificationJson: j.verification === undefined ? '' : JSON.stringify(j.verification)
  }
}

const SEGMENT_KEYS = new Set(['index', 'status', 'node', 'attempts', 'lost', 'ms'])

/** A segment: the fixed fields, `start`/`end` when numeric (older clients), the kind's fields as JSON. */
function segmentToProto (s: JobView['segments'][number]): Record<string, unknown> {
  const fields: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(s)) if (!SEGMENT_KEYS.has(k)) fields[k] = v
  return {
    index: s.index,
    start: typeof s.start === 'number' ? s.start : 0,
    end: typeof s.end === 'number' ? s.end : 0,
    status: s.status,
    node: s.node ?? '',
    attempts: s.attempts,
    lost: s.lost,
    ms: s.ms ?? 0,
    fieldsJson: JSON.stringify(fields)
  }
}

/** A job's parameters as JSON text, at most (the HTTP API's body limit is 1 MiB). */
const MAX_PARAMS_JSON_CHARS = 1024 * 1024

function toGrpcError (err: unknown): GrpcError {
  if (err instanceof GridError) {
    const code = err.code === 'ERR_NOT_FOUND'
      ? Status.NOT_FOUND
      : err.code === 'ERR_UNAVAILABLE' ? Status.UNAVAILABLE : err.code === 'ERR_OVERLOADED' || err.code === 'ERR_TOO_LARGE' ? Status.RESOURCE_EXHAUSTED : Status.INVALID_ARGUMENT
    // The field at fault also travels as a google.rpc.BadRequest detail (grpc-errors.ts).
    return withFieldDetails({ code, details: err.message }, err.field)
  }
  return { code: Status.INTERNAL, details: (err as Error)?.message ?? 'internal error' }
}

export async function startGrpc (o: GrpcOptions): Promise<GrpcServer> {
  // grpc-js writes its own lines to stderr ("E No address added out of total 1 resolved"): they
  // go to the node's logger instead, at debug; the failures themselves reach the caller as errors.
  setLogger({ error: (...a: unknown[]) => { o.logger.debug('grpc-js', { text: a.map(String).join(' ') }) } })
  const { Mesh, Grid } = loadVoikeProto()
  const maxMessageBytes = o.maxMessageBytes ?? 1024 * 1024
  const server = new Server({ 'grpc.max_receive_message_length': maxMessageBytes, 'grpc.max_send_message_length': 64 * 1024 * 1024 })

  const isAuthorized = (md: Metadata): boolean => authorized(o.apiKey, name => md.get(name).map(String))
  const unauthenticated: GrpcError = { code: Status.UNAUTHENTICATED, details: UNAUTHENTICATED_MESSAGE }

  /** Wraps a unary handler: auth, then errors mapped to status codes. */
  const unary = <Req>(fn: (req: Req) => Promise<unknown>) => (call: ServerUnaryCall<Req, unknown>, cb: sendUnaryData<unknown>): void => {
    if (!isAuthorized(call.metadata)) { cb(unauthenticated); return }
    fn(call.request).then(res => { cb(null, res) }, (err: unknown) => {
      const e = toGrpcError(err)
      if (e.code === Status.INTERNAL) o.logger.error('grpc call failed', { err })
      cb(e)
    })
  }

  const parseParams = (text: string): unknown => {
    if (text === '') return {}
    // The server takes messages up to maxMessageBytes (FLOW sends files); a job's parameters stay
    // within the HTTP API's body limit, checked before anything parses them.
    if (text.length > MAX_PARAMS_JSON_CHARS) throw new GridError('ERR_TOO_LARGE', `params_json: larger than ${MAX_PARAMS_JSON_CHARS} characters`, 'params_json')
    checkJsonText(text, { field: 'params_json' })
    try { return JSON.parse(text) } catch (err) {
      throw new GridError('ERR_INVALID_ARGUMENT', `params_json is not JSON: ${(err as Error).message}`, 'params_json')
    }
  }

  server.addService(Mesh.service, {
    ListNodes: unary(async () => ({ nodes: o.table.all().map(memberToProto) }))
  })
  server.addService(Grid.service, {
    SubmitJob: unary(async (req: { kind: string, paramsJson: string }) => jobToProto(await o.grid.submit(req.kind, parseParams(req.paramsJson)))),
    GetJob: unary(async (req: { id: string }) => {
      const job = await o.grid.get(req.id)
      if (job === null) throw new GridError('ERR_NOT_FOUND', `no job ${req.id}`)
      return jobToProto(job)
    }),
    CancelJob: unary(async (req: { id: string }) => jobToProto(await o.grid.cancel(req.id))),
    ListJobs: unary(async (req: { limit: number, status: string }) => {
      if (req.status !== '' && !isJobStatus(req.status)) {
        throw new GridError('ERR_INVALID_ARGUMENT', 'status must be queued, running, succeeded, failed or cancelled', 'status')
      }
      const { jobs, missing } = await o.grid.listCluster({ limit: req.limit === 0 ? undefined : Math.min(req.limit, 1000), status: req.status === '' ? undefined : req.status as JobStatus })
      return { jobs: jobs.map(jobToProto), partial: missing.length > 0, missing: missing.map(m => ({ peerId: m.peerId, name: m.name ?? '', reason: m.reason })) }
    }),
    WatchJob: (call: ServerWritableStream<{ id: string }, unknown>) => {
      // emit('error') sends the status; destroy() would drop the call without one (the client hangs).
      if (!isAuthorized(call.metadata)) { call.emit('error', Object.assign(new Error(unauthenticated.details), unauthenticated)); return }
      const ac = new AbortController()
      call.on('cancelled', () => { ac.abort() })
      o.grid.watch(call.request.id, (p) => {
        if (!TERMINAL_STATUSES.has(p.status)) call.write({ ...p })
      }, ac.signal).then((job) => {
        call.write({ id: job.id, status: job.status, segmentsDone: job.segmentsDone, segmentsTotal: job.segmentsTotal, job: jobToProto(job) })
        call.end()
      }, (err: unknown) => {
        if (ac.signal.aborted) return
        const e = toGrpcError(err)
        call.emit('error', Object.assign(new Error(e.details), e))
      })
    }
  })

  for (const add of o.services ?? []) add(server, isAuthorized)
  // Standard services for probes and tools: health (NOT_SERVING until setServing) and reflection.
  const health = addHealth(server, { services: ['', ...voikeServiceNames()] })
  const reflection = addReflection(server)

  const address = await new Promise<string>((resolve, reject) => {
    const host = o.host.includes(':') ? `[${o.host}]` : o.host
    server.bindAsync(`${host}:${o.port}`, ServerCredentials.createInsecure(), (err, port) => {
      if (err !== null) reject(err)
      else resolve(`${host}:${port}`)
    })
  })
  return {
    address,
    setServing: health.setServing,
    close: async () => {
      health.close()
      reflection.close()
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => { server.forceShutdown(); resolve() }, 2000)
        server.tryShutdown(() => { clearTimeout(t); resolve() })
      })
    }
  }
}
