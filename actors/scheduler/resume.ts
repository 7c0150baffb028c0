/**
 * Rebuilding a job from the store (resume after a restart, takeover of a gone coordinator): done
 * segments keep their (re-checked) values, the others run again. Pure: it builds the job's state
 * and says which segments must be written back as pending; the parent runs it.
 */
import type { Logger } from '../../config/logger.js'
import { MAX_SEGMENTS_PER_JOB, type JobRecord, type SegmentRecord } from '../../store/types.js'
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
