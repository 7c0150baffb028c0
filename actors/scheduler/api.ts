/**
 * What the APIs (gRPC, HTTP, FLOW) need from the grid: the seam between node/ APIs and the
 * scheduler. The JSON shape of JobView is the contract's `--json` job object.
 */
import { VoikeError } from '../../config/errors.js'

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled'

export interface SegmentView {
  index: number
  start: number
  end: number
  status: 'pending' | 'running' | 'done'
  /** peerId of the node that finished it (or is running it). */
  node: string | null
  attempts: number
  ms: number | null
}

export interface JobView {
  id: string
  kind: string
  status: JobStatus
  error: string | null
  result: unknown | null
  params: unknown
  coordinator: string
  createdAtMs: number
  finishedAtMs: number | null
  segmentsDone: number
  segmentsTotal: number
  segments: SegmentView[]
}

export interface JobProgress {
  id: string
  status: JobStatus
  segmentsDone: number
  segmentsTotal: number
}

export interface GridService {
  /** Validates, persists, starts. Throws GridError ERR_INVALID_ARGUMENT (with `field`) or ERR_UNKNOWN_KIND. */
  submit: (kind: unknown, params: unknown) => Promise<JobView>
  /** Any job of the cluster: this node's store first, then the other members. Null when unknown. */
  get: (id: string, options?: { signal?: AbortSignal }) => Promise<JobView | null>
  list: (options: { limit?: number, status?: JobStatus }) => Promise<JobView[]>
  /** Throws GridError ERR_NOT_FOUND. Cancelling a finished job returns it unchanged. */
  cancel: (id: string) => Promise<JobView>
  /**
   * Calls `onProgress` with the current state, then on every change, until the job ends
   * (resolves with the final job) or `signal` aborts. Throws ERR_NOT_FOUND.
   */
  watch: (id: string, onProgress: (p: JobProgress) => void, signal: AbortSignal) => Promise<JobView>
}

/** An error meant for API callers: `code` maps to a gRPC status / HTTP status. */
export type GridErrorCode = 'ERR_INVALID_ARGUMENT' | 'ERR_UNKNOWN_KIND' | 'ERR_NOT_FOUND' | 'ERR_UNAVAILABLE' | 'ERR_OVERLOADED'

export class GridError extends VoikeError {
  declare readonly code: GridErrorCode
  constructor (code: GridErrorCode, message: string, field?: string, options?: { cause?: unknown }) {
    super(code, message, { field, cause: options?.cause })
    this.name = 'GridError'
  }
}

export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set(['succeeded', 'failed', 'cancelled'])
