/**
 * gRPC `voike.v1.Flow` (proto/voike/v1/flow.proto) over the FLOW service (node/flow-service.ts).
 * Unary calls answer JSON documents (the HTTP API's bodies); Execute streams `started`, the step
 * events and `result`. Parse/plan/input errors are INVALID_ARGUMENT whose details list every
 * error as `line:col: message`; unknown plans and runs NOT_FOUND; too many runs
 * RESOURCE_EXHAUSTED. Added to the node's gRPC server by node/grpc.ts (`services`).
 */
import { UNAUTHENTICATED_MESSAGE } from './auth.js'
import { fileURLToPath } from 'node:url'
import { loadPackageDefinition, status as Status, type GrpcObject, type Metadata, type Server, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData, type ServiceClientConstructor } from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'
import type { Logger } from '../config/logger.js'
import { FlowError, FlowErrors } from '../flows/index.js'
import { FlowServiceError, type ExecuteRequest, type FlowService } from './flow-service.js'

export const FLOW_PROTO_PATH = fileURLToPath(new URL('../../proto/voike/v1/flow.proto', import.meta.url))

let cached: ServiceClientConstructor | undefined
export function loadFlowProto (): ServiceClientConstructor {
  if (cached !== undefined) return cached
  const def = loadSync(FLOW_PROTO_PATH, { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true })
  cached = ((loadPackageDefinition(def).voike as GrpcObject).v1 as GrpcObject).Flow as ServiceClientConstructor
  return cached
}

interface GrpcError { code: number, details: string }

export function toGrpcError (err: unknown): GrpcError {
  if (err instanceof FlowErrors || err instanceof FlowError) return { code: Status.INVALID_ARGUMENT, details: err.message }
  if (err instanceof FlowServiceError) {
    const code = err.code === 'ERR_NOT_FOUND' ? Status.NOT_FOUND : err.code === 'ERR_OVERLOADED' ? Status.RESOURCE_EXHAUSTED : Status.INVALID_ARGUMENT
    return { code, details: err.message }
  }
  return { code: Status.INTERNAL, details: (err as Error)?.message ?? 'internal error' }
}

interface RunRequestProto { source: string, name: string, inputsJson: string, files: Record<string, Uint8Array>, noCache: boolean, resume: string }

function toRequest (r: RunRequestProto): ExecuteRequest {
  let inputs: unknown
  if (r.inputsJson !== '') {
    try { inputs = JSON.parse(r.inputsJson) } catch (e) {
      throw new FlowServiceError('ERR_INVALID_ARGUMENT', `inputs_json is not JSON: ${(e as Error).message}`, 'inputs_json')
    }
  }
  return { source: r.source, name: r.name, inputs, files: r.files, noCache: r.noCache, resume: r.resume }
}

/** Adds the Flow service to `server`; `authorized` is the node's API key check (node/auth.ts). */
export function addFlowService (server: Server, o: { service: FlowService, authorized: (md: Metadata) => boolean, logger: Logger }): void {
  const s = o.service
  const unauthenticated: GrpcError = { code: Status.UNAUTHENTICATED, details: UNAUTHENTICATED_MESSAGE }
  const json = <Req>(fn: (req: Req) => unknown) => (call: ServerUnaryCall<Req, unknown>, cb: sendUnaryData<unknown>): void => {
    if (!o.authorized(call.metadata)) { cb(unauthenticated); return }
    Promise.resolve().then(() => fn(call.request)).then(v => { cb(null, { json: JSON.stringify(v) }) }, (err: unknown) => {
      const e = toGrpcError(err)
      if (e.code === Status.INTERNAL) o.logger.error('grpc flow call failed', { err })
      cb(e)
    })
  }
  server.addService(loadFlowProto().service, {
    Parse: json((r: { source: string, name: string }) => s.parse(r)),
    Plan: json((r: { source: string, name: string }) => s.plan(r)),
    Explain: json(async (r: RunRequestProto) => await s.explain(toRequest(r))),
    ListPlans: json(() => s.listPlans()),
    GetPlan: json((r: { id: string }) => s.getPlan(r.id)),
    ListOps: json(() => s.listOps()),
    GetRun: json(async (r: { id: string }) => await s.getRun(r.id)),
    CancelRun: json(async (r: { id: string }) => await s.cancelRun(r.id)),
    Execute: (call: ServerWritableStream<RunRequestProto, unknown>) => {
      // emit('error') sends the status even after messages were written (destroy does not, then).
      const fail = (e: GrpcError): void => { call.emit('error', Object.assign(new Error(e.details), e)) }
      if (!o.authorized(call.metadata)) { fail(unauthenticated); return }
      const ac = new AbortController()
      call.on('cancelled', () => { ac.abort(new Error('the client cancelled the call')) })
      Promise.resolve().then(async () => await s.execute(toRequest(call.request), {
        signal: ac.signal,
        onStart: (st) => { call.write({ started: { runId: st.runId, flow: st.flow, planHash: st.planHash, steps: st.steps } }) },
        onEvent: (e) => { call.write({ step: { type: e.type, step: e.step, status: e.status ?? '', ms: e.ms ?? 0, rowsOut: e.rowsOut ?? -1, error: e.error ?? '' } }) }
      })).then((a) => {
        call.write({ result: { runId: a.runId, status: a.status, outputsJson: JSON.stringify(a.outputs), metricsJson: JSON.stringify(a.metrics), errorJson: a.error === undefined ? '' : JSON.stringify(a.error) } })
        call.end()
      }, (err: unknown) => {
        const e = toGrpcError(err)
        if (e.code === Status.INTERNAL) o.logger.error('grpc flow execute failed', { err })
        if (!ac.signal.aborted) fail(e)
      })
    }
  })
}
