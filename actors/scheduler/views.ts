/**
 * Pure views: the JobView and JobProgress of a job in memory or as stored, and the check of a
 * JobView that crossed the wire. A segment's kind-specific fields come from its kind's
 * `describe` (fib: start, end), between `index` and `status` as the contract prints them.
 */
import type { JobRecord, SegmentRecord } from '../../store/types.js'
import { isJobStatus, type JobProgress, type JobView, type SegmentView } from './api.js'
import type { KindRegistry, JobKind } from './kinds.js'
import type { JobState, SegState } from './state.js'
import { parseVerification, verificationOf } from './verification.js'

/** The user's fields of a descriptor: the kind's description, or (kind unknown here) the descriptor's own fields. */
function describe (kind: JobKind<any, any> | undefined, descriptor: unknown): Record<string, unknown> {
  if (kind !== undefined) return kind.describe(descriptor)
  if (typeof descriptor === 'object' && descriptor !== null && !Array.isArray(descriptor)) return { ...descriptor as Record<string, unknown> }
  return { descriptor }
}

export function segView (kind: JobKind<any, any> | undefined, s: { index: number, descriptor: unknown, status: SegState['status'], node: string | null, attempts: number, lost?: number, ms: number | null }): SegmentView {
  return { index: s.index, ...describe(kind, s.descriptor), status: s.status, node: s.node, attempts: s.attempts, lost: s.lost ?? 0, ms: roundMs(s.ms) }
}

/** Durations are shown one way everywhere: ms with one decimal (the store keeps the full value). */
export function roundMs (ms: number | null): number | null {
  return ms === null ? null : Math.round(ms * 10) / 10
}

/** The view of a job in memory; `withSegments: false` lists no segments (counts only). */
export function viewOf (job: JobState, withSegments = true): JobView {
  let segments: SegmentView[]
  if (!withSegments) segments = []
  else if (job.segs !== null) segments = job.segs.map(s => segView(job.kind, s))
  else {
    // A fresh queued job: the split is recomputed rather than held (it may wait long).
    segments = job.kind.split(job.params).map((descriptor: unknown, index: number) =>
      segView(job.kind, { index, descriptor, status: 'pending', node: null, attempts: 0, lost: 0, ms: null }))
  }
  return {
    id: job.id,
    kind: job.kind.name,
    status: job.status,
    error: job.error,
    result: job.result ?? null,
    params: job.params,
    coordinator: job.coordinator,
    createdAtMs: job.createdAtMs,
    finishedAtMs: job.finishedAtMs,
    segmentsDone: job.done,
    segmentsTotal: job.total,
    segments,
    verification: job.verification ?? verificationOf(job.kind, job.coordinator, job.segs ?? [])
  }
}

/** The view of a stored job (this node does not run it, or no longer holds it in memory). */
export function viewFromStore (kinds: KindRegistry, rec: JobRecord, segments: SegmentRecord[]): JobView {
  let done = 0
  for (const s of segments) if (s.status === 'done') done++
  const kind = kinds.get(rec.kind)
  return {
    id: rec.id,
    kind: rec.kind,
    status: rec.status,
    error: rec.error,
    result: rec.result ?? null,
    params: rec.params,
    coordinator: rec.coordinator,
    createdAtMs: rec.createdAtMs,
    finishedAtMs: rec.finishedAtMs,
    segmentsDone: done,
    segmentsTotal: segments.length,
    segments: segments.map(s => segView(kind, s)),
    // Not recorded (running, or ended before migration 7): from the segments, none known as checked.
    verification: parseVerification(rec.verification) ?? verificationOf({ name: rec.kind, deterministic: kind?.deterministic ?? false }, rec.coordinator, segments.map(s => ({ ...s, checked: false })))
  }
}

export function progressOf (job: JobState): JobProgress {
  return { id: job.id, status: job.status, segmentsDone: job.done, segmentsTotal: job.total }
}

export function progressOfView (v: JobView): JobProgress {
  return { id: v.id, status: v.status, segmentsDone: v.segmentsDone, segmentsTotal: v.segmentsTotal }
}

/** A JobView that came from another node (it crossed the wire): checked enough to pass on. */
export function isJobView (v: unknown, id: string): v is JobView {
  if (typeof v !== 'object' || v === null) return false
  const j = v as Record<string, unknown>
  return j.id === id && isJobStatus(j.status) && typeof j.coordinator === 'string' &&
    Number.isInteger(j.segmentsDone) && Number.isInteger(j.segmentsTotal) && Array.isArray(j.segments)
}
