/**
 * What a coordinator does when its result policy catches a peer returning a wrong result
 * (spot-check.ts `onCaught`):
 * - every done segment of its running jobs that the peer alone vouched for (accepted from it
 *   without a check) is run again (on another peer: the caught one is excluded);
 * - its ended jobs that used such segments are marked `suspect` (verification.ts), in memory and
 *   in the store: the jobs still in memory at once (write-behind, fenced like every write), the
 *   older ones through `JobStore.listJobsVouchedBy` (at most MAX_MARKED_PER_CATCH per catch).
 * Jobs coordinated by other nodes are theirs: each coordinator judges the peers it uses.
 */
import type { Logger } from '../../config/logger.js'
import type { JobStore } from '../../store/types.js'
import type { Dispatcher } from './dispatch.js'
import type { WriteBehind } from './persistence.js'
import type { Reads } from './reads.js'
import type { JobState, SegState } from './state.js'
import { markCaught, parseVerification } from './verification.js'

/** Stored ended jobs marked per catch, at most (the oldest first). */
export const MAX_MARKED_PER_CATCH = 1000

export interface CaughtOptions {
  store: JobStore
  selfId: string
  log: Logger
  jobs: ReadonlyMap<string, JobState>
  writes: WriteBehind
  dispatcher: Dispatcher
  reads: Reads
  isClosed: () => boolean
}

export class CaughtPeers {
  /** Store marking runs one catch at a time (two catches must not overwrite each other's marks). */
  private chain: Promise<void> = Promise.resolve()

  constructor (private readonly o: CaughtOptions) {}

  /** Waits for the store marking in progress (close, tests). */
  async idle (): Promise<void> {
    await this.chain
  }

  onCaught (peer: string): void {
    if (this.o.isClosed() || peer === this.o.selfId) return
    let rerun = 0
    let marked = 0
    for (const job of this.o.jobs.values()) {
      if (job.deposed) continue
      if (job.status === 'running' && job.ending === null && job.segs !== null) {
        for (const seg of job.segs) {
          if (seg.status === 'done' && !seg.checked && seg.node === peer) { this.reopen(job, seg, peer); rerun++ }
        }
        continue
      }
      // Ending or ended here: its verification was set at the end.
      if (job.verification === null) continue
      const v = markCaught(job.verification, peer)
      if (v === undefined) continue
      job.verification = v
      this.o.writes.queueJob(job.id, { verification: v })
      marked++
    }
    if (rerun > 0 || marked > 0) this.o.log.warn('a caught peer\'s unchecked results: running them again, marking finished jobs', { peer, segments: rerun, jobs: marked })
    if (rerun > 0) this.o.dispatcher.schedulePump()
    this.chain = this.chain.then(async () => { await this.markStored(peer) })
  }

  /** The segment runs again, never on the caught peer; its old value is dropped. */
  private reopen (job: JobState, seg: SegState, peer: string): void {
    seg.value = null
    seg.checked = false
    seg.answers = []
    seg.ms = null
    seg.placeOn = (p) => p !== peer
    job.done--
    this.o.dispatcher.requeue(job, seg)
    this.o.writes.queueSegment(job.id, seg.index, { result: null, ms: null })
    this.o.reads.emitProgress(job)
  }

  /** Ended jobs in the store (not in memory) that used the peer's unchecked results. */
  private async markStored (peer: string): Promise<void> {
    const { store, selfId, log, jobs } = this.o
    if (typeof store.listJobsVouchedBy !== 'function') {
      log.warn('this store cannot list jobs by vouching peer: ended jobs no longer in memory are not marked', { peer })
      return
    }
    try {
      const records = await store.listJobsVouchedBy(selfId, peer, MAX_MARKED_PER_CATCH)
      let marked = 0
      for (const rec of records) {
        // In memory: marked above (and written behind).
        if (jobs.has(rec.id)) continue
        const v = parseVerification(rec.verification)
        const next = v === undefined ? undefined : markCaught(v, peer)
        if (next === undefined) continue
        if (await store.updateJob(rec.id, { verification: next }, { coordinator: selfId })) marked++
      }
      if (marked > 0) log.warn('ended jobs marked suspect: they used a caught peer\'s unchecked results', { peer, jobs: marked })
      if (records.length >= MAX_MARKED_PER_CATCH) log.warn('more jobs used the caught peer\'s results than are marked at once', { peer, limit: MAX_MARKED_PER_CATCH })
    } catch (err) {
      log.error('cannot mark the ended jobs of a caught peer', { peer, err })
    }
  }
}
