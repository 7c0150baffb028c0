/**
 * The scheduler: any node accepts a grid job, persists it, cuts it into segments, places the
 * segments on the members' worker actors (a bounded number in flight per peer), re-places what
 * is lost, combines the results, and streams progress. It implements the grid contract (api.ts).
 *
 * This file is the parent: it owns the jobs (submit, activate, pump, result acceptance through
 * the ResultPolicy, failure decisions, end, resume) and composes the parts that own the rest of
 * the state: limits.ts (the table of limits), ledger.ts (per-peer in-flight tasks, penalties),
 * persistence.ts (write-behind with fencing), takeover.ts (dead coordinators' jobs), reads.ts
 * (get, list, watch, asks to other nodes), cancel.ts, resume.ts, views.ts and state.ts (pure).
 *
 * Threading model: every change of state happens in a synchronous section on the JS thread (no
 * await between reading and writing state); awaits only wait for the store or remote peers, and
 * the state is re-read after them. Worker results arrive as messages to the `scheduler` actor;
 * the API calls come straight from gRPC / HTTP.
 *
 * Task ids are `${jobId}/${index}/${seq}`; seq grows with every dispatch of the segment and never
 * goes back: it is persisted with the segment, and a resume or takeover continues above the
 * stored value (RESUME_SEQ_MARGIN), so a worker still holding an earlier dispatch never takes a
 * new one for it. Results are deterministic, so a late success from an earlier dispatch of a
 * segment that is not done yet is accepted (and the newer dispatch cancelled); late errors and
 * results for finished segments or jobs are ignored (counted as `ignored`).
 *
 * Lost peers: a member turning `suspect` (or `peerUnreachable`, a message the mesh dropped) may
 * be a blip, so its tasks are placed elsewhere at once without counting an attempt (bounded by
 * maxLostRetries); its late answers are still accepted. Only if it then turns `dead` or leaves is
 * the attempt counted. A segment's timeout follows its kind's cost estimate (kinds.ts).
 */
import assert from 'node:assert/strict'
import { silentLogger, type Logger } from '../../config/logger.js'
import { MAX_SEGMENTS_PER_JOB, type JobPatch, type JobRecord, type JobStore, type SegmentPatch, type SegmentRecord } from '../../store/types.js'
import { ReplyError } from '../runtime/errors.js'
import type { MemberTable } from '../membership/table.js'
import type { Actor, ActorSystem, MessageContext } from '../runtime/types.js'
import { WORKER_ACTOR_NAME } from '../worker/names.js'
import { GridError, TERMINAL_STATUSES, type GridService, type JobView, type Scheduler, type SchedulerStats } from './api.js'
import { Cancels } from './cancel.js'
import { Dispatcher } from './dispatch.js'
import { checkDeps, type SchedulerDeps } from './deps.js'
import { checkParamNames, createKindRegistry, fatalReason, resolveKind, type KindRegistry } from './kinds.js'
import { newJobId } from './job-id.js'
import { InFlightLedger } from './ledger.js'
import { END_WRITE_ATTEMPTS, resolveLimits, type Limits } from './limits.js'
import { registerSchedulerMetrics, type SchedulerMetrics, type TaskOutcome } from './metrics.js'
import { WriteBehind } from './persistence.js'
import { onBusy } from './placement.js'
import { firstValidWins, placementRule, type ResultPolicy } from './policy.js'
import { CaughtPeers } from './caught.js'
import { verificationOf } from './verification.js'
import { checkId, JOB_ID_RE, Reads, sleep } from './reads.js'
import { loadJob, rebuildAll } from './resume.js'
import { newJobState, newSegState, removeFrom, segContext, segmentName, type InFlight, type JobState, type SegState } from './state.js'
import { Takeover } from './takeover.js'
import { Retention } from './retention.js'
import { weighLoads } from './weights.js'
import { viewOf } from './views.js'

export { JOB_ID_RE }
export type { SchedulerDeps } from './deps.js'
export { RESUME_SEQ_MARGIN, MAX_DEAD_TRACKED } from './limits.js'
export type { SchedulerLimits } from './limits.js'
export type { Scheduler, SchedulerStats } from './api.js'

/** The name the node spawns the scheduler actor under, on every node. */
export const SCHEDULER_ACTOR = 'scheduler'
/** The default target of segment tasks: the worker actor's name on every node. */
export const WORKER_ACTOR = WORKER_ACTOR_NAME
/** Suggested spawn options: results of many tasks may arrive at once. */
export const SCHEDULER_SPAWN_OPTIONS = { mailboxCapacity: 65_536 } as const

export function createScheduler (deps: SchedulerDeps): Scheduler {
  const core = new SchedulerCore(deps)
  const grid: GridService = {
    submit: async (kind, params) => await core.submit(kind, params),
    get: async (id, options) => await core.reads.get(id, options?.signal),
    list: async (options) => (await core.reads.listCluster(options)).jobs,
    listCluster: async (options) => await core.reads.listCluster(options),
    cancel: async (id) => await core.cancel(id),
    watch: async (id, onProgress, signal) => await core.reads.watch(id, onProgress, signal)
  }
  return {
    factory: () => core.actor(),
    grid,
    resume: async () => { await core.resume() },
    close: async () => { await core.close() },
    stats: () => core.stats(),
    peerUnreachable: (peerId) => { core.peerUnreachable(peerId) }
  }
}

class SchedulerCore {
  private readonly system: ActorSystem
  private readonly store: JobStore
  private readonly table: MemberTable
  private readonly log: Logger
  private readonly kinds: KindRegistry
  private readonly policy: ResultPolicy
  private readonly targetActor: string
  private readonly limits: Limits
  private readonly selfId: string
  private readonly metrics: SchedulerMetrics
  private readonly unsubscribe: () => void
  private readonly ticker: NodeJS.Timeout
  private readonly ledger: InFlightLedger
  private readonly writes: WriteBehind
  private readonly takeover: Takeover
  private readonly cancels: Cancels
  private readonly dispatcher: Dispatcher
  private readonly retention: Retention | undefined
  private readonly onTaskOutcome: ((peerId: string, outcome: TaskOutcome) => void) | undefined
  private readonly caught: CaughtPeers
  private readonly unsubscribeCaught: () => void
  readonly reads: Reads

  private readonly jobs = new Map<string, JobState>()
  /** Jobs whose segments are being placed, in round-robin order. */
  private readonly active: JobState[] = []
  private readonly queued: JobState[] = []
  /** Ended jobs in memory, oldest first. */
  private readonly retained = new Set<string>()
  /** Submits between admission and their createJob: they hold a place. */
  private admitting = 0
  private reservedActive = 0
  private closed = false
  private closing: Promise<void> | undefined
  private resuming: Promise<void> | undefined
  private readonly endings = new Set<Promise<JobView>>()

  constructor (deps: SchedulerDeps) {
    checkDeps(deps)
    this.system = deps.system
    this.store = deps.store
    this.table = deps.table
    this.log = (deps.logger ?? silentLogger).child({ component: 'scheduler' })
    this.kinds = createKindRegistry(deps.kinds)
    this.policy = deps.resultPolicy ?? firstValidWins
    this.targetActor = deps.targetActor ?? WORKER_ACTOR
    this.limits = resolveLimits(deps.limits)
    this.selfId = deps.system.peerId
    const { system, store, table, log, kinds, limits, selfId, jobs } = this
    this.ledger = new InFlightLedger(selfId, limits)
    this.metrics = registerSchedulerMetrics({
      registry: deps.registry,
      kinds: deps.kinds,
      inFlightByPeer: () => this.ledger.entries(),
      jobs: () => ({ running: this.active.map(j => j.kind.name), queued: this.queued.map(j => j.kind.name) })
    })
    const isClosed = (): boolean => this.closed
    this.writes = new WriteBehind({ store, selfId, flushMs: limits.storeFlushMs, log, isClosed, onFenced: (id) => { this.depose(id) } })
    this.takeover = new Takeover({
      store, table, selfId, log, isClosed, takeoverAfterMs: limits.takeoverAfterMs,
      resuming: () => this.resuming,
      load: async (records) => await this.rebuildAll(records),
      isLoaded: (id) => jobs.has(id)
    })
    this.dispatcher = new Dispatcher({
      system, table, limits, log, ledger: this.ledger, writes: this.writes, active: this.active, selfActor: SCHEDULER_ACTOR,
      targetActor: this.targetActor, isClosed, countTask: (job, outcome) => { this.countTask(job, outcome) },
      weigh: deps.excluded === undefined && deps.peerWeight === undefined ? undefined : (loads) => weighLoads(loads, selfId, deps.excluded ?? (() => false), deps.peerWeight ?? (() => 1))
    })
    this.onTaskOutcome = deps.onTaskOutcome
    this.reads = new Reads({ system, store, table, kinds, limits, log, selfId, jobs, selfActor: SCHEDULER_ACTOR, assertOpen: () => { this.assertOpen() } })
    this.cancels = new Cancels({
      system, store, kinds, limits, log, selfId, jobs, metrics: this.metrics, reads: this.reads, selfActor: SCHEDULER_ACTOR,
      endJob: async (job, status, result, error) => await this.endJob(job, status, result, error)
    })
    this.caught = new CaughtPeers({ store, selfId, log, jobs, writes: this.writes, dispatcher: this.dispatcher, reads: this.reads, isClosed })
    this.unsubscribeCaught = this.policy.onCaught?.((peer) => { this.caught.onCaught(peer) }) ?? (() => {})
    this.retention = deps.retention === undefined ? undefined : new Retention({ retention: deps.retention, store, registry: deps.registry, log, jobs, retained: this.retained })
    this.unsubscribe = this.table.onChange((m) => { this.onMemberChange(m.peerId, m.status) })
    this.ticker = setInterval(() => { this.tick() }, this.limits.tickMs)
    this.ticker.unref()
  }

  // ---- the actor -----------------------------------------------------------------------

  actor (): Actor {
    return {
      receive: (msg: unknown, ctx: MessageContext): unknown => {
        const m = (typeof msg === 'object' && msg !== null ? msg : {}) as Record<string, unknown>
        switch (m.type) {
          case 'results':
            if (!this.closed) this.onResults(ctx.sender?.peerId, m.results)
            return undefined
          case 'get': {
            this.assertOpenForPeer()
            const r = this.reads.getHere(checkPeerId(m.id))
            return r instanceof Promise ? r.catch(toReplyError) : r
          }
          case 'list':
            this.assertOpenForPeer()
            return this.reads.listForPeer(m).catch(toReplyError)
          case 'cancel':
            this.assertOpenForPeer()
            return this.cancelForPeer(checkPeerId(m.id)).catch(toReplyError)
          default:
            // A ReplyError answers a bad ask; for a tell the runtime just drops it.
            throw new ReplyError('ERR_UNKNOWN_MESSAGE', `scheduler: unknown message type ${JSON.stringify(String(m.type).slice(0, 64))}`)
        }
      }
    }
  }

  private assertOpenForPeer (): void {
    if (this.closed) throw new ReplyError('ERR_UNAVAILABLE', 'the scheduler is closed')
  }

  // ---- submit --------------------------------------------------------------------------

  async submit (kindName: unknown, rawParams: unknown): Promise<JobView> {
    this.assertOpen()
    const kind = resolveKind(this.kinds, kindName)
    checkParamNames(kind, rawParams)
    const params = kind.validate(rawParams) as unknown
    const descriptors: unknown[] = kind.split(params)
    // A kind's bug, not the user's: a plain Error (the API answers it as internal).
    assert.ok(Array.isArray(descriptors) && descriptors.length >= 1 && descriptors.length <= MAX_SEGMENTS_PER_JOB,
      `job kind ${kind.name}: split gave ${String((descriptors as unknown[])?.length)} segments (1..${MAX_SEGMENTS_PER_JOB} allowed)`)
    const { maxActiveJobs, maxQueuedJobs } = this.limits
    if (this.active.length + this.queued.length + this.admitting >= maxActiveJobs + maxQueuedJobs) {
      throw new GridError('ERR_OVERLOADED', `this node already holds ${maxActiveJobs + maxQueuedJobs} unfinished jobs; try later or another node`)
    }
    // Straight to running only when a slot is free and nobody queued is ahead.
    const runNow = this.queued.length === 0 && this.active.length + this.reservedActive < maxActiveJobs
    const now = Date.now()
    const record: JobRecord = {
      id: newJobId(this.selfId),
      kind: kind.name,
      status: runNow ? 'running' : 'queued',
      params,
      result: null,
      error: null,
      coordinator: this.selfId,
      createdAtMs: now,
      updatedAtMs: now,
      finishedAtMs: null
    }
    const job = newJobState(record, kind, params, descriptors.length)
    this.jobs.set(job.id, job)
    this.admitting++
    if (runNow) this.reservedActive++
    try {
      await this.store.createJob(record, descriptors.map((descriptor, index) => newSegmentRecord(record.id, index, descriptor)))
    } catch (err) {
      this.jobs.delete(job.id)
      this.log.error('cannot persist a new job', { job: job.id, err })
      throw new GridError('ERR_UNAVAILABLE', `the job could not be stored: ${(err as Error)?.message ?? String(err)}`, undefined, { cause: err })
    } finally {
      this.admitting--
      if (runNow) this.reservedActive--
      // A cancel waiting for the write continues after the synchronous start below.
      job.markPersisted()
    }
    job.isPersisted = true
    this.metrics.submitted(kind.name)
    this.log.info('job submitted', { job: job.id, kind: kind.name, segments: descriptors.length })
    // Closed meanwhile: the job stays in the store, for resume.
    if (this.closed) return viewOf(job)
    if (runNow) this.activate(job, descriptors)
    else this.enqueue(job)
    return viewOf(job)
  }

  private enqueue (job: JobState): void {
    if (job.status !== 'queued') {
      job.status = 'queued'
      this.writes.queueJob(job.id, { status: 'queued' })
    }
    this.queued.push(job)
    this.promoteQueued()
  }

  /** Makes the job place its segments; `descriptors` when its segment states are not built yet. */
  private activate (job: JobState, descriptors?: unknown[]): void {
    if (job.segs === null) {
      const d: unknown[] = descriptors ?? job.kind.split(job.params)
      if (d.length !== job.total) throw new Error(`job ${job.id}: split changed (${d.length} segments, ${job.total} stored)`)
      job.segs = d.map((descriptor, index) => newSegState(index, descriptor))
      for (const seg of job.segs) job.queue.push(seg)
    }
    if (job.status !== 'running') {
      job.status = 'running'
      this.writes.queueJob(job.id, { status: 'running' })
    }
    this.active.push(job)
    this.reads.emitProgress(job)
    if (job.done === job.total) { this.finish(job); return }
    this.dispatcher.schedulePump()
  }

  /** Moves queued jobs to active while slots are free. */
  private promoteQueued (): void {
    while (!this.closed && this.queued.length > 0 && this.active.length + this.reservedActive < this.limits.maxActiveJobs) {
      const job = this.queued.shift()
      assert.ok(job !== undefined)
      try {
        this.activate(job)
      } catch (err) {
        void this.endJob(job, 'failed', null, `cannot start: ${(err as Error).message}`)
      }
    }
  }

  // ---- results -------------------------------------------------------------------------

  private onResults (sender: string | undefined, results: unknown): void {
    if (!Array.isArray(results)) {
      this.log.warn('bad results message ignored', { sender })
      return
    }
    for (const r of results) {
      try {
        this.onResult(sender, r)
      } catch (err) {
        // A bug here must not lose the rest of the batch (nor crash the actor).
        this.log.error('handling a task result failed', { sender, err })
      }
    }
    this.dispatcher.schedulePump()
  }

  private onResult (sender: string | undefined, raw: unknown): void {
    const r = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>
    // A displaced task answered: its peer did not lose it, so it will not count as an attempt.
    if (sender !== undefined && typeof r.id === 'string') this.ledger.get(sender)?.displaced.delete(r.id)
    const found = this.findSegment(r.id)
    if (found === undefined) { this.countIgnored(r.id); return }
    const { job, seg } = found
    const f = seg.current !== null && seg.current.taskId === r.id ? seg.current : null
    if (f !== null) this.ledger.detach(f)
    if (seg.status === 'done') { this.countTask(job, 'ignored'); return }
    const peer = f?.peer ?? sender ?? seg.node ?? 'unknown'
    if (r.ok === true) {
      this.onSuccess(job, seg, f, peer, r)
      return
    }
    // Errors of an earlier dispatch say nothing about the current one.
    if (f === null) { this.countTask(job, 'ignored'); return }
    const e = (typeof r.error === 'object' && r.error !== null ? r.error : {}) as Record<string, unknown>
    const code = typeof e.code === 'string' ? e.code : 'ERR_TASK_FAILED'
    const message = typeof e.message === 'string' ? e.message.slice(0, 1024) : 'no message'
    if (code === 'ERR_WORKER_BUSY') this.onBusyAnswer(job, seg, peer)
    else this.onTaskFailure(job, seg, peer, code, message, code === 'ERR_TASK_TIMEOUT' ? 'timeout' : 'error')
  }

  private onSuccess (job: JobState, seg: SegState, f: InFlight | null, peer: string, r: Record<string, unknown>): void {
    let value: unknown
    try {
      value = job.kind.checkValue(segContext(job, seg), r.value)
    } catch (err) {
      if (f === null) { this.countTask(job, 'ignored'); return }
      this.onTaskFailure(job, seg, peer, 'ERR_BAD_RESULT', (err as Error).message, 'error')
      return
    }
    const decision = this.policy.decide({ kind: job.kind, jobId: job.id, index: seg.index, answer: { peer, value }, earlier: seg.answers })
    if (decision.action === 'reject') {
      this.countTask(job, 'error')
      void this.endJob(job, 'failed', null, `${segmentName(job, seg)} rejected by the result policy ${this.policy.name}: ${decision.reason}`)
      return
    }
    if (decision.action === 'rerun') {
      // Kept for the policy's next decision; another run of the segment goes elsewhere.
      this.countTask(job, 'ok')
      this.tellOutcome(peer, 'ok')
      seg.answers.push({ peer, value })
      seg.avoid = peer
      seg.placeOn = placementRule(decision, this.policy)
      if (f !== null) this.dispatcher.requeue(job, seg)
      return
    }
    // A late answer of an earlier dispatch won: the newer dispatch is no longer needed.
    if (f === null && seg.current !== null) {
      const other = seg.current
      this.ledger.detach(other)
      this.dispatcher.tellCancel(other.peer, other.target, [other.taskId])
    }
    const ms = typeof r.ms === 'number' && Number.isFinite(r.ms) && r.ms >= 0 ? r.ms : null
    seg.checked = decision.checked === true
    seg.placeOn = null
    seg.answers = []
    this.markDone(job, seg, decision.peer ?? peer, ms, decision.value)
  }

  /** The job and segment a task id names, when that job is still placing segments. */
  private findSegment (id: unknown): { job: JobState, seg: SegState } | undefined {
    if (typeof id !== 'string') return undefined
    const a = id.indexOf('/')
    const b = id.indexOf('/', a + 1)
    if (a <= 0 || b <= a + 1) return undefined
    const job = this.jobs.get(id.slice(0, a))
    if (job === undefined || job.segs === null || job.ending !== null || job.status !== 'running') return undefined
    const index = Number(id.slice(a + 1, b))
    const seg = Number.isInteger(index) ? job.segs[index] : undefined
    return seg === undefined ? undefined : { job, seg }
  }

  /** A result for a job no longer placing segments (ended, cancelled, unknown). */
  private countIgnored (taskId: unknown): void {
    const jobId = typeof taskId === 'string' ? taskId.slice(0, Math.max(0, taskId.indexOf('/'))) : ''
    this.metrics.task(this.jobs.get(jobId)?.kind, 'ignored')
  }

  private countTask (job: JobState, status: TaskOutcome): void {
    this.metrics.task(job.kind, status)
  }

  /** The deps' outcome hook (trust); its failure must not disturb the scheduler. */
  private tellOutcome (peer: string, outcome: TaskOutcome): void {
    if (this.onTaskOutcome === undefined || peer === this.selfId) return
    try { this.onTaskOutcome(peer, outcome) } catch (err) { this.log.warn('onTaskOutcome threw', { err }) }
  }

  private markDone (job: JobState, seg: SegState, node: string, ms: number | null, value: unknown): void {
    seg.status = 'done'
    seg.node = node
    seg.ms = ms
    seg.value = value
    seg.avoid = null
    job.done++
    this.countTask(job, 'ok')
    this.tellOutcome(node, 'ok')
    this.writes.queueSegment(job.id, seg.index, { status: 'done', node, ms, result: value as SegmentPatch['result'] })
    this.reads.emitProgress(job)
    if (job.done === job.total) this.finish(job)
  }

  private onBusyAnswer (job: JobState, seg: SegState, peer: string): void {
    this.countTask(job, 'busy')
    onBusy(this.ledger.state(peer).busy, Date.now(), this.limits.busyPenaltyMs, this.limits.busyHoldMs)
    seg.busyAnswers++
    // A busy node did no work: not an attempt, up to a bound (a node busy forever must not
    // keep a job alive forever).
    if (seg.busyAnswers <= this.limits.maxBusyRetries) {
      seg.attempts--
      this.dispatcher.requeue(job, seg)
      return
    }
    this.onTaskFailure(job, seg, peer, 'ERR_WORKER_BUSY', `refused ${seg.busyAnswers} times by busy workers`, 'busy', false)
  }

  /** A counted attempt failed: place it again elsewhere, or fail the job. */
  private onTaskFailure (job: JobState, seg: SegState, peer: string, code: string, message: string, outcome: TaskOutcome, count = true): void {
    if (count) { this.countTask(job, outcome); this.tellOutcome(peer, outcome) }
    seg.lastError = `${code}: ${message}`
    seg.avoid = peer
    this.log.debug('segment attempt failed', { job: job.id, segment: seg.index, peer, code, attempts: seg.attempts })
    const fatal = fatalReason(job.kind, code)
    if (fatal !== undefined || seg.attempts >= this.limits.maxAttempts) {
      const why = fatal ?? `failed after ${seg.attempts} attempts`
      void this.endJob(job, 'failed', null, `${segmentName(job, seg)} ${why}; last error ${seg.lastError}`)
      return
    }
    this.dispatcher.requeue(job, seg)
  }

  // ---- failures: members, timeouts -----------------------------------------------------

  private onMemberChange (peerId: string, status: string): void {
    if (this.closed || peerId === this.selfId) {
      if (!this.closed && status === 'alive') this.dispatcher.schedulePump()
      return
    }
    this.takeover.onMemberChange(peerId, status)
    const st = this.ledger.get(peerId)
    if (status === 'alive') {
      // The blip is over: what was moved off it is not held against anyone.
      st?.displaced.clear()
      this.dispatcher.schedulePump()
      return
    }
    if (st === undefined) return
    if (status === 'suspect') {
      this.displace(peerId, `node ${peerId} is suspect`)
      return
    }
    // Dead or left: its tasks are lost, and so were those moved off it while it was suspect.
    if (st.tasks.size > 0) this.log.info('member gone: re-placing its segments', { peer: peerId, status, tasks: st.tasks.size })
    for (const f of [...st.tasks.values()]) {
      this.ledger.detach(f)
      if (f.job.ending !== null) continue
      this.onTaskFailure(f.job, f.seg, peerId, 'ERR_PEER_LOST', `node ${peerId} is ${status}`, 'lost')
    }
    for (const { job, seg } of st.displaced.values()) this.chargeLost(job, seg, peerId, status)
    st.displaced.clear()
    this.dispatcher.schedulePump()
  }

  /** The mesh dropped a message to `peerId`: its tasks go elsewhere now (see Scheduler.peerUnreachable). */
  peerUnreachable (peerId: string): void {
    if (this.closed || typeof peerId !== 'string' || peerId === this.selfId) return
    if (!this.ledger.has(peerId) && this.table.get(peerId) === undefined) return
    // Held even with nothing in flight: the next messages would likely be dropped too. (The
    // entry is forgotten by tick() once the hold is over.)
    const st = this.ledger.state(peerId)
    st.busy.holdUntilMs = Math.max(st.busy.holdUntilMs, Date.now() + this.limits.unreachableHoldMs)
    this.displace(peerId, `a message to node ${peerId} was dropped`)
  }

  /**
   * Places the peer's in-flight tasks elsewhere without counting an attempt (it may come back:
   * its late answers are still accepted), up to maxLostRetries per segment; remembers them so
   * the attempt counts if the peer turns out dead.
   */
  private displace (peerId: string, why: string): void {
    const st = this.ledger.get(peerId)
    if (st === undefined || st.tasks.size === 0) return
    this.log.info('re-placing the segments of a peer that may be lost', { peer: peerId, why, tasks: st.tasks.size })
    for (const f of [...st.tasks.values()]) {
      this.ledger.detach(f)
      const { job, seg } = f
      if (job.ending !== null) continue
      if (seg.lostRetries >= this.limits.maxLostRetries) {
        this.onTaskFailure(job, seg, peerId, 'ERR_PEER_LOST', why, 'lost')
        continue
      }
      seg.lostRetries++
      seg.attempts--
      seg.lost++
      this.writes.queueSegment(job.id, seg.index, { lost: seg.lost })
      seg.avoid = peerId
      st.displaced.set(f.taskId, { job, seg })
      this.countTask(job, 'lost')
      this.dispatcher.requeue(job, seg)
    }
    this.dispatcher.schedulePump()
  }

  /**
   * The peer a task was moved off is gone after all: the attempt counts now (while the job runs),
   * even if the segment has been done elsewhere meanwhile. A segment running elsewhere lets its
   * own outcome decide; a waiting one fails the job when no attempt is left.
   */
  private chargeLost (job: JobState, seg: SegState, peerId: string, status: string): void {
    if (this.jobs.get(job.id) !== job || job.ending !== null || job.status !== 'running') return
    seg.attempts++
    // The dispatch moved off it was shown as lost; it is a counted attempt now.
    seg.lost = Math.max(0, seg.lost - 1)
    this.writes.queueSegment(job.id, seg.index, { attempts: seg.attempts, lost: seg.lost })
    if (seg.status === 'done') return
    seg.lastError = `ERR_PEER_LOST: node ${peerId} is ${status}`
    if (seg.current === null && seg.attempts >= this.limits.maxAttempts) {
      void this.endJob(job, 'failed', null, `${segmentName(job, seg)} failed after ${seg.attempts} attempts; last error ${seg.lastError}`)
    }
  }

  private tick (): void {
    if (this.closed) return
    const now = Date.now()
    const expired = this.ledger.sweep(now, (job) => job.ending !== null || this.jobs.get(job.id) !== job)
    for (const f of expired) {
      if (f.seg.current !== f) continue
      this.ledger.detach(f)
      this.dispatcher.tellCancel(f.peer, f.target, [f.taskId])
      if (f.job.ending !== null) continue
      this.onTaskFailure(f.job, f.seg, f.peer, 'ERR_TASK_TIMEOUT', `no answer within ${f.timeoutMs} ms`, 'timeout')
    }
    this.takeover.maybeTakeOver(now)
    this.dispatcher.schedulePump()
  }

  // ---- the end of a job ----------------------------------------------------------------

  private finish (job: JobState): void {
    const segs = job.segs
    assert.ok(segs !== null, 'a job finishing has its segments')
    let result: unknown
    try {
      result = job.kind.combine({ params: job.params, segments: job.total }, segs.map(s => s.value))
    } catch (err) {
      void this.endJob(job, 'failed', null, `cannot combine the segments: ${(err as Error).message}`)
      return
    }
    // How far the result was checked is part of the job's end (verification.ts).
    job.verification = verificationOf(job.kind, job.coordinator, segs)
    void this.endJob(job, 'succeeded', result, null)
  }

  /**
   * Ends a job: stops its outstanding tasks at once, writes its end (after its segments), then
   * shows it ended and wakes its watchers. Returns the final view; a second call gets the first's.
   */
  private endJob (job: JobState, status: 'succeeded' | 'failed' | 'cancelled', result: unknown, error: string | null): Promise<JobView> {
    if (job.ending !== null) return job.ending
    if (TERMINAL_STATUSES.has(job.status)) return Promise.resolve(viewOf(job))
    const p = this.writeEnd(job, status, result, error)
    job.ending = p
    this.endings.add(p)
    void p.finally(() => { this.endings.delete(p) })
    this.dispatcher.stopOutstanding(job)
    removeFrom(this.active, job)
    removeFrom(this.queued, job)
    this.promoteQueued()
    return p
  }

  private async writeEnd (job: JobState, status: 'succeeded' | 'failed' | 'cancelled', result: unknown, error: string | null): Promise<JobView> {
    const finishedAtMs = Date.now()
    const patch: JobPatch = { status, result: result as JobPatch['result'], error, finishedAtMs, updatedAtMs: finishedAtMs, ...(job.verification !== null ? { verification: job.verification } : {}) }
    this.writes.queueJob(job.id, patch)
    let written = false
    for (let attempt = 1; attempt <= END_WRITE_ATTEMPTS && !written; attempt++) {
      written = await this.writes.flushNow()
      if (!written && attempt < END_WRITE_ATTEMPTS) await sleep(100 * 4 ** (attempt - 1))
    }
    // Deposed by the write (depose() moved its watchers): the new coordinator decides its end.
    if (job.deposed) return viewOf(job)
    if (!written) this.log.error('the end of a job could not be written; a restart would run it again', { job: job.id, status })
    job.status = status
    job.result = result
    job.error = error
    job.finishedAtMs = finishedAtMs
    this.metrics.finished(job.kind.name, status, finishedAtMs - job.createdAtMs)
    this.log.info('job ended', { job: job.id, status, error: error ?? undefined, ms: finishedAtMs - job.createdAtMs })
    const view = viewOf(job)
    this.reads.endWatchers(job, view)
    this.retain(job)
    return view
  }

  /** Keeps ended jobs in memory up to a bound; older ones are served from the store. */
  private retain (job: JobState): void {
    this.retained.add(job.id)
    while (this.retained.size > this.limits.maxRetainedJobs) {
      const oldest = this.retained.values().next().value
      assert.ok(oldest !== undefined)
      this.retained.delete(oldest)
      this.jobs.delete(oldest)
    }
    this.retention?.jobEnded()
  }

  async cancel (id: unknown): Promise<JobView> {
    this.assertOpen()
    if (this.resuming !== undefined) await this.resuming.catch(() => {})
    return await this.cancels.cancel(checkId(id))
  }

  /** For another node's cancel: only what this node coordinates or stores. */
  private async cancelForPeer (id: string): Promise<JobView> {
    if (this.resuming !== undefined) await this.resuming.catch(() => {})
    return await this.cancels.cancelForPeer(id)
  }

  // ---- resume --------------------------------------------------------------------------

  resume (): Promise<void> {
    this.assertOpen()
    this.resuming ??= this.doResume()
    return this.resuming
  }

  private async doResume (): Promise<void> {
    const records = await this.store.listUnfinishedJobs(this.selfId)
    const { rebuilt, failed } = await this.rebuildAll(records)
    if (records.length > 0) this.log.info('jobs resumed', { resumed: rebuilt, failed, found: records.length })
  }

  /** Loads and continues jobs this node coordinates in the store (resume, takeover; resume.ts). */
  private async rebuildAll (records: JobRecord[]): Promise<{ rebuilt: number, failed: number }> {
    const out = await rebuildAll(records, {
      store: this.store, selfId: this.selfId, log: this.log, isClosed: () => this.closed,
      isLoaded: (id) => this.jobs.has(id), adopt: (rec, segments) => { this.rebuild(rec, segments) }
    })
    if (out.failed > 0) this.takeover.markOrphans()
    return out
  }

  /** Rebuilds a job from the store: done segments keep their values, the others run again. */
  private rebuild (rec: JobRecord, segments: SegmentRecord[]): void {
    const { job, resets } = loadJob(this.kinds, rec, segments, this.log)
    for (const index of resets) this.writes.queueSegment(job.id, index, { status: 'pending', node: null })
    this.jobs.set(job.id, job)
    if (this.queued.length === 0 && this.active.length + this.reservedActive < this.limits.maxActiveJobs) this.activate(job)
    else this.enqueue(job)
  }

  private depose (id: string): void {
    const job = this.jobs.get(id)
    this.metrics.fenced(job?.kind.name ?? 'unknown')
    this.log.warn('another node coordinates this job now: dropped here', { job: id, inMemory: job !== undefined })
    if (job === undefined || job.deposed) return
    job.deposed = true
    this.dispatcher.stopOutstanding(job)
    removeFrom(this.active, job)
    removeFrom(this.queued, job)
    this.retained.delete(id)
    this.jobs.delete(id)
    for (const w of [...job.watchers]) {
      w.detach()
      this.reads.watchByPolling(id, viewOf(job), w.onProgress, w.signal).then(w.resolve, w.reject)
    }
    this.promoteQueued()
  }

  stats (): SchedulerStats {
    const { inFlight, inFlightByPeer } = this.ledger.counts()
    return { jobs: this.jobs.size, active: this.active.length, queued: this.queued.length, inFlight, inFlightByPeer, pendingSegmentUpdates: this.writes.pendingSegments(), deadTracked: this.takeover.deadTracked() }
  }

  // ---- lifecycle -----------------------------------------------------------------------

  private assertOpen (): void {
    if (this.closed) throw new GridError('ERR_UNAVAILABLE', 'the scheduler is closed')
  }

  close (): Promise<void> {
    this.closing ??= this.doClose()
    return this.closing
  }

  private async doClose (): Promise<void> {
    this.closed = true
    clearInterval(this.ticker)
    this.unsubscribe()
    this.unsubscribeCaught()
    await this.caught.idle()
    await Promise.allSettled([...this.endings])
    await this.resuming?.catch(() => {})
    await this.takeover.wait()
    await this.retention?.close()
    await this.writes.flushNow()
    this.writes.cancelTimer()
    const closedErr = new GridError('ERR_UNAVAILABLE', 'the scheduler closed')
    for (const job of this.jobs.values()) {
      for (const w of [...job.watchers]) { w.detach(); w.reject(closedErr) }
    }
    this.metrics.unregister()
  }
}

// ---- helpers -----------------------------------------------------------------------------

function newSegmentRecord (jobId: string, index: number, descriptor: unknown): SegmentRecord {
  return { jobId, index, descriptor, status: 'pending', node: null, attempts: 0, seq: 0, ms: null, result: null }
}

/** A job id in another node's ask: a bad one answers ERR_INVALID_ARGUMENT (a ReplyError). */
function checkPeerId (id: unknown): string {
  if (typeof id === 'string' && JOB_ID_RE.test(id)) return id
  throw new ReplyError('ERR_INVALID_ARGUMENT', 'id: must be 1..64 characters [A-Za-z0-9_-]')
}

/** Errors answering another node's ask must be ReplyErrors: anything else crashes the actor. */
function toReplyError (err: unknown): never {
  if (err instanceof ReplyError) throw err
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'ERR_UNAVAILABLE'
  throw new ReplyError(code.slice(0, 64), (err as Error)?.message ?? String(err), { cause: err })
}
