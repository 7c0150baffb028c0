/**
 * Placement and dispatch: hands pending segments of the active jobs to peers with free credits
 * (placement.ts decides where), one `run` message per peer and target actor, and tells workers to
 * drop tasks no longer wanted. It owns the round-robin positions and the pump's scheduling; the
 * parent owns the jobs and decides what a failure means.
 */
import type { Logger } from '../../config/logger.js'
import type { MemberTable } from '../membership/table.js'
import type { ActorSystem } from '../runtime/types.js'
import { segmentTimeoutMs } from './kinds.js'
import type { InFlightLedger } from './ledger.js'
import type { Limits } from './limits.js'
import type { TaskOutcome } from './metrics.js'
import type { WriteBehind } from './persistence.js'
import { freeCredits, placeTasks, type PeerLoad } from './placement.js'
import { pickPending, segContext, type InFlight, type JobState, type SegState } from './state.js'

export interface DispatcherOptions {
  system: ActorSystem
  table: MemberTable
  limits: Limits
  log: Logger
  ledger: InFlightLedger
  writes: WriteBehind
  /** The parent's active jobs, in round-robin order (read only here). */
  active: readonly JobState[]
  /** The scheduler actor's name: workers answer there. */
  selfActor: string
  /** Where tasks go when the kind names no target. */
  targetActor: string
  isClosed: () => boolean
  countTask: (job: JobState, outcome: TaskOutcome) => void
  /** The loads placement sees, after exclusions and weights (weights.ts); default as they are. */
  weigh?: (loads: PeerLoad[]) => PeerLoad[]
}

export class Dispatcher {
  private jobRr = 0
  private peerRr = 0
  private pumpScheduled = false

  constructor (private readonly o: DispatcherOptions) {}

  schedulePump (): void {
    if (this.pumpScheduled || this.o.isClosed()) return
    this.pumpScheduled = true
    queueMicrotask(() => {
      this.pumpScheduled = false
      this.pump()
    })
  }

  /** Hands pending segments to peers with free credits, one `run` message per peer. */
  pump (): void {
    if (this.o.isClosed() || this.o.active.length === 0) return
    const now = Date.now()
    const raw = this.o.ledger.loads(this.o.table, now)
    const loads = this.o.weigh === undefined ? raw : this.o.weigh(raw)
    const free = freeCredits(loads)
    if (free === 0) return
    const { picks, nextRr } = pickPending(this.o.active, this.jobRr, free)
    this.jobRr = nextRr
    if (picks.length === 0) return
    const placement = placeTasks(loads, picks.map(p => p.seg.avoid), this.peerRr, picks.map(p => p.seg.placeOn))
    this.peerRr = placement.nextRr
    const byPeer = new Map<string, InFlight[]>()
    // Batched per peer and target actor (kinds may name different targets).
    for (let i = 0; i < picks.length; i++) {
      const { job, seg } = picks[i]
      // No room, or no peer its result policy allows (a re-run waits for one): later.
      if (i >= placement.chosen.length || placement.chosen[i] < 0) { job.queue.push(seg); continue }
      const peer = loads[placement.chosen[i]].peerId
      const f = this.assign(job, seg, peer, now)
      const key = `${f.target}\n${peer}`
      let list = byPeer.get(key)
      if (list === undefined) { list = []; byPeer.set(key, list) }
      list.push(f)
    }
    for (const list of byPeer.values()) this.dispatch(list[0].peer, list[0].target, list)
  }

  private assign (job: JobState, seg: SegState, peer: string, now: number): InFlight {
    seg.seq++
    seg.attempts++
    seg.status = 'running'
    seg.node = peer
    if (seg.timeoutMs === 0) seg.timeoutMs = segmentTimeoutMs(job.kind, segContext(job, seg), this.o.limits.segmentTimeoutMs, this.o.limits.maxSegmentTimeoutMs)
    // The worker times the task out itself; our deadline adds room for the answer to travel.
    const timeoutMs = seg.timeoutMs
    const target = job.kind.target ?? this.o.targetActor
    const f: InFlight = { taskId: `${job.id}/${seg.index}/${seg.seq}`, peer, target, timeoutMs, deadlineMs: now + timeoutMs + this.o.limits.remoteAskTimeoutMs, job, seg }
    seg.current = f
    this.o.ledger.add(f)
    this.o.writes.queueSegment(job.id, seg.index, { status: 'running', node: peer, attempts: seg.attempts, seq: seg.seq })
    return f
  }

  private dispatch (peer: string, target: string, list: InFlight[]): void {
    const tasks = list.map(f => {
      const { kind, payload } = f.job.kind.task(segContext(f.job, f.seg))
      return { id: f.taskId, kind, payload, timeoutMs: f.timeoutMs }
    })
    try {
      this.o.system.tell(this.o.system.ref(peer, target), { type: 'run', tasks }, this.o.selfActor)
    } catch (err) {
      // Not sent at all: not an attempt. The peer gets nothing for a while.
      this.o.log.warn('cannot send tasks to a peer', { peer, tasks: list.length, err })
      this.o.ledger.state(peer).busy.holdUntilMs = Date.now() + this.o.limits.unreachableHoldMs
      for (const f of list) {
        this.o.ledger.detach(f)
        f.seg.attempts--
        this.o.countTask(f.job, 'lost')
        this.requeue(f.job, f.seg)
      }
    }
  }

  requeue (job: JobState, seg: SegState): void {
    seg.status = 'pending'
    seg.node = null
    job.queue.push(seg)
    this.o.writes.queueSegment(job.id, seg.index, { status: 'pending', node: null, attempts: seg.attempts })
    this.schedulePump()
  }

  tellCancel (peer: string, target: string, ids: string[]): void {
    if (ids.length === 0) return
    try {
      this.o.system.tell(this.o.system.ref(peer, target), { type: 'cancel', ids }, this.o.selfActor)
    } catch (err) {
      this.o.log.debug('cannot tell cancel to a peer', { peer, err })
    }
  }

  /** Tells workers to drop the job's outstanding tasks and frees their credits. */
  stopOutstanding (job: JobState): void {
    if (job.segs === null) return
    const byPeer = new Map<string, { peer: string, target: string, ids: string[] }>()
    for (const seg of job.segs) {
      const f = seg.current
      if (f === null) continue
      this.o.ledger.detach(f)
      const key = `${f.target}\n${f.peer}`
      let batch = byPeer.get(key)
      if (batch === undefined) { batch = { peer: f.peer, target: f.target, ids: [] }; byPeer.set(key, batch) }
      batch.ids.push(f.taskId)
    }
    for (const { peer, target, ids } of byPeer.values()) this.tellCancel(peer, target, ids)
  }
}
