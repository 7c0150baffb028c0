/**
 * Rebuilding a job from the store (resume after a restart, takeover of a gone coordinator): done
 * segments keep their (re-checked) values, the others run again. Pure: it builds the job's state
 * and says which segments must be written back as pending; the parent runs it.
 */
import type { Logger } from '../../config/logger.js'
import { MAX_SEGMENTS_PER_JOB, TERMINAL_JOB_STATUSES, type JobRecord, type JobStore, type SegmentRecord } from '../../store/types.js'
import type { KindRegistry } from './kinds.js'
import { RESUME_SEQ_MARGIN } from './limits.js'
import { newJobState, newSegState, segContext, type JobState, type SegState } from './state.js'

/**
 * The job of `rec` with its segments. Throws (the job cannot be resumed) on an unknown kind,
 * parameters or descriptors its kind rejects, or a gap in the segments.
 */
export function loadJob (kinds: KindRegistry, rec: JobRecord, segments: SegmentRecord[], log: Logger): { job: JobState, resets: number[] } {
  const kind = kinds.get(rec.kind)
  if (kind === undefined) throw new Error(`unknown job kind ${rec.kind}`)
  const params = kind.validate(rec.params) as unknown
  if (segments.length === 0 || segments.length > MAX_SEGMENTS_PER_JOB) throw new Error(`${segments.length} segments stored`)
  const job = newJobState(rec, kind, params, segments.length)
  job.isPersisted = true
  job.markPersisted()
  const resets: number[] = []
  const segs = segments.map((r, i) => {
    if (r.index !== i) throw new Error(`segment ${i} missing`)
    const seg = resumedSeg(job, r, log)
    if (seg.status !== 'done' && r.status !== 'pending') resets.push(r.index)
    return seg
  })
  job.segs = segs
  for (const seg of segs) {
    if (seg.status === 'done') job.done++
    else job.queue.push(seg)
  }
  return { job, resets }
}

function resumedSeg (job: JobState, r: SegmentRecord, log: Logger): SegState {
  let descriptor: unknown
  try {
    descriptor = job.kind.checkDescriptor(r.descriptor)
  } catch (err) {
    throw new Error(`segment ${r.index}: ${(err as Error).message}`)
  }
  const seg = newSegState(r.index, descriptor)
  seg.attempts = r.attempts
  seg.lost = r.lost ?? 0
  // Above every dispatch the earlier coordinator may have made (see RESUME_SEQ_MARGIN).
  seg.seq = r.seq + RESUME_SEQ_MARGIN
  if (r.status === 'done' && r.result !== null) {
    try {
      seg.value = job.kind.checkValue(segContext(job, seg), r.result)
      seg.status = 'done'
      seg.node = r.node
      seg.ms = r.ms
      return seg
    } catch (err) {
      log.warn('stored segment value unusable: running it again', { job: job.id, segment: r.index, err })
    }
  }
  return seg
}

export interface RebuildOptions {
  store: JobStore
  selfId: string
  log: Logger
  isClosed: () => boolean
  /** Whether the job is in memory already. */
  isLoaded: (id: string) => boolean
  /** Runs a job loaded from the store (the parent's rebuild: loadJob, then activate or queue). */
  adopt: (rec: JobRecord, segments: SegmentRecord[]) => void
}

/**
 * Loads and continues jobs this node coordinates in the store. A record that cannot be loaded
 * (the store failed) does not stop the others: it is counted as failed (the caller leaves it to
 * the orphan sweep of a later tick). A job that cannot be resumed at all is ended as failed.
 */
export async function rebuildAll (records: JobRecord[], o: RebuildOptions): Promise<{ rebuilt: number, failed: number }> {
  let rebuilt = 0
  let failed = 0
  for (const rec of records) {
    if (o.isClosed()) break
    if (o.isLoaded(rec.id)) continue
    try {
      if (await rebuildOne(rec.id, o)) rebuilt++
    } catch (err) {
      failed++
      o.log.warn('cannot load a job to run it; will retry', { job: rec.id, err })
    }
  }
  return { rebuilt, failed }
}

/** Loads one job from the store and continues it; false when there is nothing to run here. */
async function rebuildOne (id: string, o: RebuildOptions): Promise<boolean> {
  const stored = await o.store.getJob(id)
  if (stored === null || o.isLoaded(id) || TERMINAL_JOB_STATUSES.has(stored.job.status)) return false
  if (stored.job.coordinator !== o.selfId) return false
  try {
    o.adopt(stored.job, stored.segments)
    return true
  } catch (err) {
    const message = `cannot resume: ${(err as Error).message}`
    o.log.error('job not resumable', { job: id, err })
    const now = Date.now()
    await o.store.updateJob(id, { status: 'failed', error: message, finishedAtMs: now, updatedAtMs: now }, { coordinator: o.selfId })
    return false
  }
}
