/**
 * A small gRPC client of voike.v1, used by the CLI, the demo, tests and benches.
 */
import { credentials, Metadata, type Client, type ServiceError } from '@grpc/grpc-js'
import { loadVoikeProto } from './proto.js'
import type { JobView, JobStatus, MissingMember, SegmentView } from '../actors/scheduler/api.js'
import type { MemberRecord } from '../actors/membership/table.js'

interface ProtoJob {
  id: string, kind: string, status: JobStatus, error: string, resultJson: string, paramsJson: string, coordinator: string
  createdAtMs: number, finishedAtMs: number, segmentsDone: number, segmentsTotal: number, verificationJson?: string
  segments: ProtoSegment[]
}

interface ProtoSegment { index: number, start: number, end: number, status: SegmentView['status'], node: string, attempts: number, lost: number, ms: number, fieldsJson: string }

/** The segment as HTTP shows it: index, the kind's fields, status, node, attempts, lost, ms. */
function segmentFromProto (s: ProtoSegment): SegmentView {
  let fields: Record<string, unknown> = { start: s.start, end: s.end }
  if (s.fieldsJson !== '' && s.fieldsJson !== undefined) {
    const parsed = JSON.parse(s.fieldsJson) as unknown
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) fields = parsed as Record<string, unknown>
  }
  return { index: s.index, ...fields, status: s.status, node: s.node === '' ? null : s.node, attempts: s.attempts, lost: s.lost ?? 0, ms: s.status === 'done' ? s.ms : null }
}

export function jobFromProto (j: ProtoJob): JobView {
  return {
    id: j.id,
    kind: j.kind,
    status: j.status,
    error: j.error === '' ? null : j.error,
    result: j.resultJson === '' ? null : JSON.parse(j.resultJson),
    params: j.paramsJson === '' ? null : JSON.parse(j.paramsJson),
    coordinator: j.coordinator,
    createdAtMs: j.createdAtMs,
    finishedAtMs: j.finishedAtMs === 0 ? null : j.finishedAtMs,
    segmentsDone: j.segmentsDone,
    segmentsTotal: j.segmentsTotal,
    segments: j.segments.map(segmentFromProto),
    ...(j.verificationJson !== undefined && j.verificationJson !== '' ? { verification: JSON.parse(j.verificationJson) } : {})
  }
}

/** ListJobs' answer: the jobs, and whether (and whose) some are missing. */
export interface JobPage {
  jobs: JobView[]
  partial: boolean
  missing: MissingMember[]
}

export interface VoikeClient {
  /** host:port this client talks to. */
  readonly address: string
  listNodes: () => Promise<MemberRecord[]>
  submitJob: (kind: string, params: unknown) => Promise<JobView>
  getJob: (id: string) => Promise<JobView>
  cancelJob: (id: string) => Promise<JobView>
  listJobs: (options?: { limit?: number, status?: string }) => Promise<JobView[]>
  listJobsPage: (options?: { limit?: number, status?: string }) => Promise<JobPage>
  /** SubmitJob with params_json exactly as given (for JSON the caller already has as text). */
  submitJobJson: (kind: string, paramsJson: string) => Promise<JobView>
  /** Streams progress; resolves with the final job. */
  watchJob: (id: string, onProgress?: (p: { id: string, segmentsDone: number, segmentsTotal: number, status: string }) => void, signal?: AbortSignal) => Promise<JobView>
  close: () => void
}

export interface ClientOptions {
  /** host:port of a node's gRPC API. */
  address: string
  apiKey?: string
  /** Per-call deadline (watch excluded). Default 30 000 ms. */
  timeoutMs?: number
}

export function createClient (o: ClientOptions): VoikeClient {
  const { Mesh, Grid } = loadVoikeProto()
  const creds = credentials.createInsecure()
  const channelOptions = { 'grpc.max_receive_message_length': 64 * 1024 * 1024 }
  const mesh = new Mesh(o.address, creds, channelOptions) as Client & Record<string, Function>
  const grid = new Grid(o.address, creds, channelOptions) as Client & Record<string, Function>
  const timeoutMs = o.timeoutMs ?? 30_000
  const md = (): Metadata => {
    const m = new Metadata()
    if (o.apiKey !== undefined) m.set('x-voike-api-key', o.apiKey)
    return m
  }
  const call = async <T>(svc: Record<string, Function>, method: string, req: unknown): Promise<T> => await new Promise((resolve, reject) => {
    svc[method](req, md(), { deadline: Date.now() + timeoutMs }, (err: ServiceError | null, res: T) => { if (err !== null) reject(err); else resolve(res) })
  })
  const listJobsPage = async (opts: { limit?: number, status?: string } = {}): Promise<JobPage> => {
    const res = await call<{ jobs: ProtoJob[], partial: boolean, missing: Array<{ peerId: string, name: string, reason: MissingMember['reason'] }> }>(grid, 'ListJobs', { limit: opts.limit ?? 0, status: opts.status ?? '' })
    return { jobs: res.jobs.map(jobFromProto), partial: res.partial, missing: res.missing.map(m => m.name === '' ? { peerId: m.peerId, reason: m.reason } : m) }
  }
  return {
    address: o.address,
    listNodes: async () => (await call<{ nodes: Array<MemberRecord & { leftAtMs: number, name: string }> }>(mesh, 'ListNodes', {})).nodes.map(({ name, ...n }) => ({ ...n, leftAtMs: n.leftAtMs === 0 ? null : n.leftAtMs, ...(name === '' ? {} : { name }) })),
    submitJob: async (kind, params) => jobFromProto(await call<ProtoJob>(grid, 'SubmitJob', { kind, paramsJson: JSON.stringify(params) })),
    submitJobJson: async (kind, paramsJson) => jobFromProto(await call<ProtoJob>(grid, 'SubmitJob', { kind, paramsJson })),
    getJob: async (id) => jobFromProto(await call<ProtoJob>(grid, 'GetJob', { id })),
    cancelJob: async (id) => jobFromProto(await call<ProtoJob>(grid, 'CancelJob', { id })),
    listJobs: async (opts = {}) => (await listJobsPage(opts)).jobs,
    listJobsPage,
    watchJob: async (id, onProgress, signal) => await new Promise((resolve, reject) => {
      const stream = grid.WatchJob({ id }, md())
      let final: JobView | undefined
      const onAbort = (): void => { stream.cancel() }
      signal?.addEventListener('abort', onAbort, { once: true })
      stream.on('data', (p: { id: string, status: string, segmentsDone: number, segmentsTotal: number, job: ProtoJob | null }) => {
        onProgress?.(p)
        if (p.job !== null && p.job !== undefined) final = jobFromProto(p.job)
      })
      stream.on('error', (err: Error) => { signal?.removeEventListener('abort', onAbort); reject(err) })
      stream.on('end', () => {
        signal?.removeEventListener('abort', onAbort)
        if (final !== undefined) resolve(final)
        else reject(new Error('watch ended without a final job'))
      })
    }),
    close: () => { mesh.close(); grid.close() }
  }
}
