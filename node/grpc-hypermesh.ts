/**
 * gRPC mirror of the PerfWatch and trust routes: services voike.v1.Hypermesh (Status, Routes,
 * Events) and voike.v1.Trust (Status, Events) from proto/voike/v1/hypermesh.proto, added to the
 * node's gRPC server by node/grpc.ts. The same API-key check as every call (auth.ts).
 */
import { fileURLToPath } from 'node:url'
import { loadPackageDefinition, status as Status, type GrpcObject, type Metadata, type Server, type ServerUnaryCall, type sendUnaryData, type ServiceClientConstructor } from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'
import type { MemberPerf } from '../actors/perfwatch/perfwatch.js'
import { UNAUTHENTICATED_MESSAGE } from './auth.js'
import type { HypermeshApi } from './http-hypermesh.js'

export const HYPERMESH_PROTO_PATH = fileURLToPath(new URL('../../proto/voike/v1/hypermesh.proto', import.meta.url))

let cached: { Hypermesh: ServiceClientConstructor, Trust: ServiceClientConstructor } | undefined

export function loadHypermeshProto (): { Hypermesh: ServiceClientConstructor, Trust: ServiceClientConstructor } {
  if (cached !== undefined) return cached
  const def = loadSync(HYPERMESH_PROTO_PATH, { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true })
  const pkg = (loadPackageDefinition(def).voike as GrpcObject).v1 as GrpcObject
  cached = { Hypermesh: pkg.Hypermesh as ServiceClientConstructor, Trust: pkg.Trust as ServiceClientConstructor }
  return cached
}

function memberToProto (m: MemberPerf): Record<string, unknown> {
  return {
    peerId: m.peerId,
    status: m.status,
    hasSummary: m.summary !== null,
    summary: m.summary ?? undefined,
    summaryAgeMs: m.summaryAgeMs ?? 0,
    load: m.load ?? -1,
    rttMs: m.rttMs ?? -1,
    lastRttMs: m.lastRttMs ?? -1,
    rttSamples: m.rttSamples,
    advisories: m.advisories
  }
}

const MAX_LIMIT = 100_000

export function addHypermeshServices (server: Server, api: HypermeshApi, authorized: (md: Metadata) => boolean): void {
  const { Hypermesh, Trust } = loadHypermeshProto()
  const unary = <Req>(fn: (req: Req) => unknown) => (call: ServerUnaryCall<Req, unknown>, cb: sendUnaryData<unknown>): void => {
    if (!authorized(call.metadata)) { cb({ code: Status.UNAUTHENTICATED, details: UNAUTHENTICATED_MESSAGE }); return }
    try { cb(null, fn(call.request)) } catch (err) { cb({ code: Status.INTERNAL, details: (err as Error)?.message ?? 'internal error' }) }
  }
  const limit = (req: { limit: number }): number | undefined => req.limit > 0 ? Math.min(req.limit, MAX_LIMIT) : undefined
  server.addService(Hypermesh.service, {
    Status: unary(() => {
      const s = api.perfwatch.status()
      return { peerId: s.peerId, intervalMs: s.intervalMs, self: memberToProto(s.self), peers: s.peers.map(memberToProto) }
    }),
    Routes: unary(() => ({ routes: api.perfwatch.routes() })),
    Events: unary((req: { limit: number }) => ({ events: api.perfwatch.events(limit(req)).map(e => ({ ...e, value: e.value ?? 0, bound: e.bound ?? 0 })) }))
  })
  server.addService(Trust.service, {
    Status: unary(() => api.trust.status()),
    Events: unary((req: { limit: number }) => ({ events: api.trust.events(limit(req)) }))
  })
}
