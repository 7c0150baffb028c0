/**
 * Write-behind persistence of the jobs this node coordinates. Segment changes (running with node
 * and attempts, done with node, ms and value) and job patches are coalesced per segment and per
 * job and written every `flushMs`, one batch at a time, in order; segments before jobs, so a job
 * shown ended has all its segments written.
 *
 * Fencing: a coordinator taken for gone may be alive (a partition). Every write is conditional on
 * this node still coordinating the job in the store; the ids of jobs a write finds coordinated by
 * another node are handed to `onFenced` (the parent deposes them), and their queued writes are
 * dropped, so the old coordinator cannot overwrite what the new one decided.
 */
import type { Logger } from '../../config/logger.js'
import { MAX_UPDATES_PER_BATCH, type JobPatch, type JobStore, type SegmentPatch, type SegmentUpdate } from '../../store/types.js'
import { MAX_FLUSH_RETRIES } from './limits.js'

export interface WriteBehindOptions {
  store: JobStore
  /** This node: the coordinator every write is fenced on. */
  selfId: string
  /** Delay between a change and its write (limits.storeFlushMs). */
  flushMs: number
  log: Logger
  /** Jobs a write found coordinated by another node (called once per job, after the write). */
  onFenced: (jobId: string) => void
  /** True once the scheduler is closing: failed writes are then not retried on a timer. */
  isClosed: () => boolean
}

export class WriteBehind {
  private segUpdates = new Map<string, SegmentUpdate>()
  private jobPatches = new Map<string, JobPatch>()
  private timer: NodeJS.Timeout | undefined
  private chain: Promise<boolean> = Promise.resolve(true)
  private failedFlushes = 0

  constructor (private readonly o: WriteBehindOptions) {}

  /** Segment changes waiting to be written. */
  pendingSegments (): number {
    return this.segUpdates.size
  }

  queueSegment (jobId: string, index: number, patch: SegmentPatch): void {
    const key = `${jobId}/${index}`
    const u = this.segUpdates.get(key)
    if (u !== undefined) Object.assign(u.patch, patch)
    else this.segUpdates.set(key, { jobId, index, patch: { ...patch } })
    this.schedule(this.o.flushMs)
  }

  queueJob (id: string, patch: JobPatch): void {
    const p = this.jobPatches.get(id)
    const updatedAtMs = Date.now()
    if (p !== undefined) Object.assign(p, { updatedAtMs }, patch)
    else this.jobPatches.set(id, { updatedAtMs, ...patch })
    this.schedule(this.o.flushMs)
  }

  /** Writes everything queued so far (after any write in progress); true when it was all written. */
  flushNow (): Promise<boolean> {
    this.cancelTimer()
    const p = this.chain.then(async () => await this.writeQueued())
    this.chain = p
    return p
  }

  /** Stops the timer (close: the caller flushes first). */
  cancelTimer (): void {
    if (this.timer !== undefined) { clearTimeout(this.timer); this.timer = undefined }
  }

  private schedule (delayMs: number): void {
    if (this.timer !== undefined) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.flushNow()
    }, delayMs)
  }

  private async writeQueued (): Promise<boolean> {
    if (this.segUpdates.size === 0 && this.jobPatches.size === 0) return true
    const jobs = this.jobPatches
    const segs = this.segUpdates
    this.jobPatches = new Map()
    this.segUpdates = new Map()
    const fence = { coordinator: this.o.selfId }
    const fenced = new Set<string>()
    try {
      // Segments first: a job shown ended has all its segments written.
      const list = [...segs.values()]
      for (let i = 0; i < list.length; i += MAX_UPDATES_PER_BATCH) {
        const batch = list.length <= MAX_UPDATES_PER_BATCH ? list : list.slice(i, i + MAX_UPDATES_PER_BATCH)
        for (const id of await this.o.store.updateSegments(batch, fence)) fenced.add(id)
      }
      for (const [id, patch] of jobs) {
        if (!fenced.has(id) && !await this.o.store.updateJob(id, patch, fence)) fenced.add(id)
      }
      this.failedFlushes = 0
      return true
    } catch (err) {
      this.failedFlushes++
      if (this.failedFlushes > MAX_FLUSH_RETRIES) {
        this.o.log.error('store writes dropped after repeated failures', { segments: segs.size, jobs: jobs.size, err })
        this.failedFlushes = 0
        return false
      }
      this.o.log.warn('store write failed; retrying', { attempt: this.failedFlushes, err })
      // Put them back under whatever was queued meanwhile (newer fields win), and retry later.
      this.segUpdates = mergeUnder(segs, this.segUpdates, (a, b) => { Object.assign(a.patch, b.patch); return a })
      this.jobPatches = mergeUnder(jobs, this.jobPatches, (a, b) => Object.assign(a, b))
      if (!this.o.isClosed()) this.schedule(Math.min(10_000, 200 * this.failedFlushes))
      return false
    } finally {
      // After the catch has put failed writes back: the deposed jobs' writes are dropped too.
      if (fenced.size > 0) {
        for (const [key, u] of this.segUpdates) if (fenced.has(u.jobId)) this.segUpdates.delete(key)
        for (const id of fenced) {
          this.jobPatches.delete(id)
          this.o.onFenced(id)
        }
      }
    }
  }
}

/** `older` entries first, then `newer` merged over them. */
export function mergeUnder<V> (older: Map<string, V>, newer: Map<string, V>, merge: (a: V, b: V) => V): Map<string, V> {
  const out = new Map(older)
  for (const [k, v] of newer) {
    const o = out.get(k)
    out.set(k, o === undefined ? v : merge(o, v))
  }
  return out
}
