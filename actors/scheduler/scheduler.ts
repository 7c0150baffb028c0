/**
 * The scheduler: any node accepts a grid job, persists it, cuts it into segments, places the
 * segments on the members' `worker` actors (a bounded number in flight per peer), re-places what
 * is lost, combines the results, and streams progress. It implements the APIs' GridService.
 *
 * Threading model: every change of state happens in a synchronous section on the JS thread (no
 * await between reading and writing state); awaits only wait for the store or remote peers, and
 * the state is re-read after them. Worker results arrive as messages to the `scheduler` actor;
 * the API calls come straight from gRPC / HTTP.
 *
 * Persistence: the job and all its segments are written before submit answers. Segment changes
 * (running with node and attempts, done with node, ms and value) are coalesced per segment and
 * written every `storeFlushMs`, one batch at a time, in order. A job's end is written (after the
 * segments) before it is shown as ended. A coordinator that restarts with the same peer id
 * resumes its unfinished jobs from the store (`resume`): done segments keep their values, the
 * rest run again.
 *
 * Task ids are `${jobId}/${index}/${seq}`; seq grows with every dispatch of the segment and never
 * goes back: it is persisted with the segment, and a resume or takeover continues above the
 * stored value (by RESUME_SEQ_MARGIN, covering dispatches whose write a crash lost), so a worker
 * still holding an earlier dispatch never takes a new one for it. Results are deterministic, so
 * a late success from an earlier dispatch of a segment that is not done yet is accepted (and the
 * newer dispatch cancelled); late errors and results for finished segments or jobs are ignored
 * (counted as `ignored`).
 *
 * Lost peers: a member turning `suspect` (or `peerUnreachable`, a message the mesh dropped) may
 * be a blip, so its tasks are placed elsewhere at once without counting an attempt (bounded by
 * maxLostRetries); its late answers are still accepted. Only if it then turns `dead` or leaves is
 * the attempt counted. A segment's timeout follows its kind's cost estimate (kinds.ts).
 *
 * Takeover: jobs live on in the store after their coordinator is gone. When a member has left, or
 * has been dead for takeoverAfterMs, or was forgotten while dead, the alive member with the lowest
 * peerId (every node computes the same one) claims its unfinished jobs in the store atomically
 * (`claimJobs`) and runs them as resume() does. This needs a store shared by the nodes
 * (PostgreSQL); with the embedded store each node holds only its own jobs, so there is nothing to
 * claim (the query finds none) and those jobs wait for their coordinator to come back. Claimed
 * jobs that fail to load (a store error) are not lost: they are ours in the store, and a later
 * tick sweeps for them (this node's unfinished jobs not in memory).
 *
 * Fencing: a coordinator taken for gone may be alive (a partition). Every write of a job's state
 * is conditional on this node still coordinating it in the store; a write that finds another
 * coordinator deposes the job here: its tasks are cancelled on the workers, it is forgotten
 * (voike_jobs_fenced_total, a warning), and its watchers and get() follow it through the store to
 * the new coordinator. So the old coordinator cannot overwrite what the new one decided.
 */
import { randomBytes } from 'node:crypto'
import { WORKER_ACTOR_NAME } from '../worker/names.js'
import { availableParallelism } from 'node:os'
import type { Registry } from 'prom-client'
import { silentLogger, type Logger } from '../../config/logger.js'
import { GridError, TERMINAL_STATUSES, type GridService, type JobProgress, type JobStatus, type JobView, type SegmentView } from './api.js'
import { MAX_SEGMENTS_PER_JOB, MAX_UPDATES_PER_BATCH, type JobPatch, type JobRecord, type SegmentPatch, type SegmentRecord, type SegmentUpdate, type Store } from '../../store/types.js'
import { ReplyError } from '../runtime/errors.js'
import type { MemberTable } from '../membership/table.js'
import type { Actor, ActorSystem, MessageContext } from '../runtime/types.js'
import { SchedulerError, SchedulerErrorCode, invalidOption } from './errors.js'
import { createKindRegistry, resolveKind, segmentTimeoutMs, type JobKind, type KindRegistry, type SegmentSpan } from './kinds.js'
import { registerSchedulerMetrics, type SchedulerMetrics, type TaskOutcome } from './metrics.js'
import { baseCredits, decayBusy, effectiveCredits, freeCredits, onBusy, placeTasks, type BusyState, type PeerLoad } from './placement.js'

/** The name the node spawns the scheduler actor under, on every node. */
export const SCHEDULER_ACTOR = 'scheduler'
/** The worker actor's name on every node. */
export const WORKER_ACTOR = WORKER_ACTOR_NAME
/** Suggested spawn options: results of many tasks may arrive at once. */
export const SCHEDULER_SPAWN_OPTIONS = { mailboxCapacity: 65_536 } as const

/** Job ids: what the HTTP route and the store accept. */
export const JOB_ID_RE = /^[A-Za-z0-9_-]{1,64}$/

export interface SchedulerLimits {
  /** Dispatches of one segment that may fail (error, timeout, lost node) before the job fails. Default 5, 1..100. */
  maxAttempts?: number
  /**
   * A dispatched segment not answered within this is re-placed (and the worker is told the same
   * timeout); a kind's cost estimate may raise it for a long segment (kinds.ts). Default 600000
   * (10 min), 100..86400000.
   */
  segmentTimeoutMs?: number
  /** Most a cost estimate raises a segment's timeout to. Default 21600000 (6 h), 100..86400000. */
  maxSegmentTimeoutMs?: number
  /** Tasks in flight per core of a member. Default 2, 1..1024. */
  creditsPerCore?: number
  /** Upper bound of tasks in flight on one member. Default 64, 1..65536. */
  maxCreditsPerPeer?: number
  /** Jobs whose segments are placed at the same time; later ones wait, queued. Default 64, 1..10000. */
  maxActiveJobs?: number
  /** Jobs waiting for an active slot; beyond, submit fails with ERR_OVERLOADED. Default 1024, 0..1000000. */
  maxQueuedJobs?: number
  /** Segment changes are written to the store in batches this often. Default 20, 0..10000. */
  storeFlushMs?: number
  /** Bound of an ask to another node's scheduler (get, cancel). Default 3000, 1..600000. */
  remoteAskTimeoutMs?: number
  /** Period of the housekeeping tick (timeouts, busy penalties, holds). Default 100, 10..60000. */
  tickMs?: number
  /** A peer that answered ERR_WORKER_BUSY has its credits halved for this long. Default 1000, 0..600000. */
  busyPenaltyMs?: number
  /** ... and gets no new task at all for this long. Default 50, 0..60000. */
  busyHoldMs?: number
  /** A peer whose send failed (unreachable, queue full) gets no task for this long. Default 1000, 0..600000. */
  unreachableHoldMs?: number
  /** ERR_WORKER_BUSY answers of one segment not counted as attempts; later ones count. Default 1000, 0..1000000. */
  maxBusyRetries?: number
  /**
   * Re-placements of one segment off a suspect or unreachable peer not counted as attempts (yet:
   * the attempt counts if that peer then turns dead or leaves); later ones count at once.
   * Default 100, 0..1000000.
   */
  maxLostRetries?: number
  /**
   * The jobs of a member dead this long (or at once when it left) are taken over by the lowest
   * alive member, through a shared store. Default 60000, 0..86400000.
   */
  takeoverAfterMs?: number
  /**
   * get() of a job running on another alive coordinator asks it for the live state for at most
   * this long, then answers the stored copy. Default 1000, 1..600000.
   */
  freshReadTimeoutMs?: number
  /** Concurrent watch() calls per job. Default 1024, 1..100000. */
  maxWatchersPerJob?: number
  /** Ended jobs kept in memory (older ones are read from the store). Default 256, 0..100000. */
  maxRetainedJobs?: number
  /** watch() of a job coordinated elsewhere polls this often. Default 250, 10..60000. */
  watchPollMs?: number
  /** ... and gives up (ERR_UNAVAILABLE) after this long without finding the job. Default 60000, 100..3600000. */
  watchUnavailableMs?: number
}

export interface SchedulerDeps {
  /** The node's actor system; `system.peerId` is this coordinator's id. */
  system: ActorSystem
  /** Jobs and segments live here; several nodes may share it (PostgreSQL). */
  store: Store
  /** The member view: who is alive, with how many cores. This node counts even when absent. */
  table: MemberTable
  /** Where the voike_jobs_* / voike_tasks_* families are registered (removed by close()). */
  registry: Registry
  /** Default silentLogger. */
  logger?: Logger
  /** Job kinds; default DEFAULT_JOB_KINDS (fib). */
  kinds?: ReadonlyArray<JobKind<any>>
  limits?: SchedulerLimits
}

export interface SchedulerStats {
  /** Jobs in memory (starting, queued, active, ending, retained). */
  jobs: number
  active: number
  queued: number
  /** Tasks dispatched and not answered, all peers. */
  inFlight: number
  inFlightByPeer: Record<string, number>
  /** Segment updates waiting to be written. */
  pendingSegmentUpdates: number
  /** Members seen dead and tracked as takeover candidates (at most MAX_DEAD_TRACKED). */
  deadTracked: number
}

export interface Scheduler {
  /** The actor to spawn as SCHEDULER_ACTOR (stateless: a supervisor restart keeps the jobs). */
  factory: () => Actor
  grid: GridService
  /** Reloads this coordinator's unfinished jobs from the store and continues them. Call once, after spawn. */
  resume: () => Promise<void>
  /**
   * Stops placing and ticking, writes pending changes, ends watches with ERR_UNAVAILABLE and
   * unregisters the metrics. Unfinished jobs stay in the store for a later resume; tasks out on
   * workers are left to finish. The node stops the actor itself. Idempotent.
   */
  close: () => Promise<void>
  stats: () => SchedulerStats
  /**
   * The mesh could not deliver a message to `peerId` (its `onSendFailed`): that peer's tasks in
   * flight are placed elsewhere at once, not counted as attempts unless the peer then turns dead
   * or leaves, and it gets no new task for limits.unreachableHoldMs. Its late answers are still
   * accepted. This node's own id and unknown peers are ignored.
   */
  peerUnreachable: (peerId: string) => void
}

type Limits = Required<SchedulerLimits>

interface InFlight {
  readonly taskId: string
  readonly peer: string
  /** The worker's timeout for it (the segment's). */
  readonly timeoutMs: number
  readonly deadlineMs: number
  readonly job: JobState
  readonly seg: SegState
}

interface SegState {
  readonly index: number
  readonly start: number
  readonly end: number
  status: 'pending' | 'running' | 'done'
  /** Who finished it, or runs it now. */
  node: string | null
  /** Dispatches counted against maxAttempts (busy answers are refunded). */
  attempts: number
  /** Dispatch counter for task ids; never goes back (persisted, see the top of the file). */
  seq: number
  /** Its timeout (kinds.ts segmentTimeoutMs); 0 until first needed. */
  timeoutMs: number
  /** Re-placements off suspect or unreachable peers not counted as attempts. */
  lostRetries: number
  ms: number | null
  /** The checked value, once done. */
  value: unknown
  busyAnswers: number
  /** The peer where it last failed: the next dispatch goes elsewhere if possible. */
  avoid: string | null
  lastError: string | null
  current: InFlight | null
}

interface Watcher {
  readonly onProgress: (p: JobProgress) => void
  readonly resolve: (v: JobView) => void
  readonly reject: (e: Error) => void
  readonly detach: () => void
  /** The watch's signal (kept to continue the watch by polling if the job moves away). */
  readonly signal: AbortSignal | undefined
}

interface JobState {
  readonly id: string
  readonly kind: JobKind<any>
  readonly params: unknown
  readonly coordinator: string
  readonly createdAtMs: number
  readonly total: number
  status: JobStatus
  error: string | null
  result: unknown
  finishedAtMs: number | null
  /** Built when the job becomes active (a fresh queued job holds none: the split is recomputed). */
  segs: SegState[] | null
  done: number
  /** Pending segments, FIFO; entries that are no longer pending are skipped. */
  queue: SegState[]
  qHead: number
  /** Set while its end is being written: nothing is placed and results are ignored. */
  ending: Promise<JobView> | null
  /** Resolves once submit's createJob is over (written or not); at once for resumed jobs. */
  readonly persisted: Promise<void>
  readonly markPersisted: () => void
  isPersisted: boolean
  /** A fenced write found another coordinator in the store: the job was dropped from this node. */
  deposed: boolean
  readonly watchers: Set<Watcher>
}

interface PeerState {
  readonly tasks: Map<string, InFlight>
  /**
   * Tasks taken off this peer while it was suspect or unreachable, not counted as attempts: by
   * task id. Counted if the peer turns dead or leaves; forgotten when it answers or is alive again.
   */
  readonly displaced: Map<string, { readonly job: JobState, readonly seg: SegState }>
  readonly busy: BusyState
}

const DEFAULT_LIMITS: Limits = {
  maxAttempts: 5,
  segmentTimeoutMs: 600_000,
  maxSegmentTimeoutMs: 21_600_000,
  creditsPerCore: 2,
  maxCreditsPerPeer: 64,
  maxActiveJobs: 64,
  maxQueuedJobs: 1024,
  storeFlushMs: 20,
  remoteAskTimeoutMs: 3000,
  tickMs: 100,
  busyPenaltyMs: 1000,
  busyHoldMs: 50,
  unreachableHoldMs: 1000,
  maxBusyRetries: 1000,
  maxLostRetries: 100,
  takeoverAfterMs: 60_000,
  freshReadTimeoutMs: 1000,
  maxWatchersPerJob: 1024,
  maxRetainedJobs: 256,
  watchPollMs: 250,
  watchUnavailableMs: 60_000
}

const LIMIT_RANGES: Record<keyof Limits, [number, number]> = {
  maxAttempts: [1, 100],
  segmentTimeoutMs: [100, 86_400_000],
  maxSegmentTimeoutMs: [100, 86_400_000],
  creditsPerCore: [1, 1024],
  maxCreditsPerPeer: [1, 65_536],
  maxActiveJobs: [1, 10_000],
  maxQueuedJobs: [0, 1_000_000],
  storeFlushMs: [0, 10_000],
  remoteAskTimeoutMs: [1, 600_000],
  tickMs: [10, 60_000],
  busyPenaltyMs: [0, 600_000],
  busyHoldMs: [0, 60_000],
  unreachableHoldMs: [0, 600_000],
  maxBusyRetries: [0, 1_000_000],
  maxLostRetries: [0, 1_000_000],
  takeoverAfterMs: [0, 86_400_000],
  freshReadTimeoutMs: [1, 600_000],
  maxWatchersPerJob: [1, 100_000],
  maxRetainedJobs: [0, 100_000],
  watchPollMs: [10, 60_000],
  watchUnavailableMs: [100, 3_600_000]
}

/** Failed store writes of one batch retried before it is dropped (logged). */
const MAX_FLUSH_RETRIES = 10
/** Writes of a job's end tried before giving up (then the job ends in memory only, logged). */
const END_WRITE_ATTEMPTS = 4
/** Store reads in parallel while listing jobs. */
const LIST_CONCURRENCY = 8
/**
 * A resumed or taken-over segment continues its seq this far above the stored value: segment
 * writes are coalesced (storeFlushMs), so a crash may lose the record of the last dispatches.
 */
export const RESUME_SEQ_MARGIN = 1024
/**
 * Dead members tracked as takeover candidates. Members forgotten by the membership are dropped
 * after 2 × takeoverAfterMs (on nodes that would not claim), and this bounds the rest (churn).
 */
export const MAX_DEAD_TRACKED = 1024
/** Error codes that fail the job at once: running the same task again gives the same error. */
const FATAL_TASK_CODES: ReadonlySet<string> = new Set(['ERR_INVALID_ARGUMENT'])

export function createScheduler (deps: SchedulerDeps): Scheduler {
  const core = new SchedulerCore(deps)
  const grid: GridService = {
    submit: async (kind, params) => await core.submit(kind, params),
    get: async (id, options) => await core.get(id, options?.signal),
    list: async (options) => await core.list(options),
    cancel: async (id) => await core.cancel(id),
    watch: async (id, onProgress, signal) => await core.watch(id, onProgress, signal)
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
  private readonly store: Store
  private readonly table: MemberTable
  private readonly log: Logger
  private readonly kinds: KindRegistry
  private readonly limits: Limits
  private readonly selfId: string
  private readonly metrics: SchedulerMetrics
  private readonly unsubscribe: () => void
  private readonly ticker: NodeJS.Timeout

  private readonly jobs = new Map<string, JobState>()
  /** Jobs whose segments are being placed, in round-robin order. */
  private readonly active: JobState[] = []
  private readonly queued: JobState[] = []
  /** Ended jobs in memory, oldest first. */
  private readonly retained = new Set<string>()
  private readonly peers = new Map<string, PeerState>()
  /** Submits between admission and their createJob: they hold a place. */
  private admitting = 0
  private reservedActive = 0
  private jobRr = 0
  private peerRr = 0
  private pumpScheduled = false
  private closed = false
  private closing: Promise<void> | undefined
  private resuming: Promise<void> | undefined
  private readonly endings = new Set<Promise<JobView>>()
  /** Members seen dead (not self), and since when (by this node's clock): takeover candidates. */
  private readonly deadSince = new Map<string, number>()
  /** Members whose jobs this node has claimed since they were last alive. */
  private readonly claimedFrom = new Set<string>()
  private takeover: Promise<void> | undefined
  /** After a failed claim, the next try waits until then. */
  private takeoverRetryAtMs = 0
  /** Some job this node coordinates in the store failed to load (claim, resume): sweep for it. */
  private orphansPending = false

  private segUpdates = new Map<string, SegmentUpdate>()
  private jobPatches = new Map<string, JobPatch>()
  private flushTimer: NodeJS.Timeout | undefined
  private flushChain: Promise<boolean> = Promise.resolve(true)
  private failedFlushes = 0

  constructor (deps: SchedulerDeps) {
    checkDeps(deps)
    this.system = deps.system
    this.store = deps.store
    this.table = deps.table
    this.log = (deps.logger ?? silentLogger).child({ component: 'scheduler' })
    this.kinds = createKindRegistry(deps.kinds)
    this.limits = resolveLimits(deps.limits)
    this.selfId = deps.system.peerId
    this.metrics = registerSchedulerMetrics(deps.registry, () => this.inFlightEntries())
    const now = Date.now()
    for (const m of this.table.all()) if (m.status === 'dead' && m.peerId !== this.selfId) this.trackDead(m.peerId, now)
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
            const r = this.getHere(checkId(m.id, ReplyError))
            return r instanceof Promise ? r.catch(toReplyError) : r
          }
          case 'cancel':
            this.assertOpenForPeer()
            return this.cancelForPeer(checkId(m.id, ReplyError)).catch(toReplyError)
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
    const params = kind.validate(rawParams) as unknown
    const spans = kind.split(params)
    if (!Array.isArray(spans) || spans.length < 1 || spans.length > MAX_SEGMENTS_PER_JOB) {
      throw new Error(`job kind ${kind.name}: split gave ${String((spans as unknown[])?.length)} segments (1..${MAX_SEGMENTS_PER_JOB} allowed)`)
    }
    const { maxActiveJobs, maxQueuedJobs } = this.limits
    if (this.active.length + this.queued.length + this.admitting >= maxActiveJobs + maxQueuedJobs) {
      throw new GridError('ERR_OVERLOADED', `this node already holds ${maxActiveJobs + maxQueuedJobs} unfinished jobs; try later or another node`)
    }
    // Straight to running only when a slot is free and nobody queued is ahead.
    const runNow = this.queued.length === 0 && this.active.length + this.reservedActive < maxActiveJobs
    const now = Date.now()
    const record: JobRecord = {
      id: newJobId(),
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
    const job = this.newJobState(record, kind, params, spans.length)
    this.jobs.set(job.id, job)
    this.admitting++
    if (runNow) this.reservedActive++
    try {
      await this.store.createJob(record, spans.map((s, index) => newSegmentRecord(record.id, index, s)))
    } catch (err) {
      this.jobs.delete(job.id)
      this.log.error('cannot persist a new job', { job: job.id, err })
      throw new GridError('ERR_UNAVAILABLE', `the job could not be stored: ${(err as Error)?.message ?? String(err)}`)
    } finally {
      this.admitting--
      if (runNow) this.reservedActive--
      // A cancel waiting for the write continues after the synchronous start below.
      job.markPersisted()
    }
    job.isPersisted = true
    this.metrics.jobs.inc({ kind: kind.name, status: 'submitted' })
    this.log.info('job submitted', { job: job.id, kind: kind.name, segments: spans.length })
    // Closed meanwhile: the job stays in the store, for resume.
    if (this.closed) return this.viewOf(job)
    if (runNow) this.activate(job, spans)
    else this.enqueue(job)
    return this.viewOf(job)
  }

  private newJobState (record: JobRecord, kind: JobKind<any>, params: unknown, total: number): JobState {
    let resolvePersisted!: () => void
    const persisted = new Promise<void>((resolve) => { resolvePersisted = resolve })
    const job: JobState = {
      id: record.id,
      kind,
      params,
      coordinator: record.coordinator,
      createdAtMs: record.createdAtMs,
      total,
      status: record.status,
      error: record.error,
      result: record.result,
      finishedAtMs: record.finishedAtMs,
      segs: null,
      done: 0,
      queue: [],
      qHead: 0,
      ending: null,
      persisted,
      markPersisted: resolvePersisted,
      isPersisted: false,
      deposed: false,
      watchers: new Set()
    }
    return job
  }

  private enqueue (job: JobState): void {
    if (job.status !== 'queued') {
      job.status = 'queued'
      this.queueJobPatch(job.id, { status: 'queued' })
    }
    this.queued.push(job)
    this.promoteQueued()
  }

  /** Makes the job place its segments; `spans` when its segment states are not built yet. */
  private activate (job: JobState, spans?: SegmentSpan[]): void {
    if (job.segs === null) {
      const s = spans ?? job.kind.split(job.params)
      if (s.length !== job.total) throw new Error(`job ${job.id}: split changed (${s.length} segments, ${job.total} stored)`)
      job.segs = s.map((span, index) => newSegState(index, span))
      for (const seg of job.segs) job.queue.push(seg)
    }
    if (job.status !== 'running') {
      job.status = 'running'
      this.queueJobPatch(job.id, { status: 'running' })
    }
    this.active.push(job)
    this.emitProgress(job)
    if (job.done === job.total) { this.finish(job); return }
    this.schedulePump()
  }

  /** Moves queued jobs to active while slots are free. */
  private promoteQueued (): void {
    while (!this.closed && this.queued.length > 0 && this.active.length + this.reservedActive < this.limits.maxActiveJobs) {
      const job = this.queued.shift() as JobState
      try {
        this.activate(job)
      } catch (err) {
        void this.endJob(job, 'failed', null, `cannot start: ${(err as Error).message}`)
      }
    }
  }

  // ---- placement -----------------------------------------------------------------------

  private schedulePump (): void {
    if (this.pumpScheduled || this.closed) return
    this.pumpScheduled = true
    queueMicrotask(() => {
      this.pumpScheduled = false
      this.pump()
    })
  }

  /** Hands pending segments to peers with free credits, one `run` message per peer. */
  private pump (): void {
    if (this.closed || this.active.length === 0) return
    const now = Date.now()
    const loads = this.peerLoads(now)
    const free = freeCredits(loads)
    if (free === 0) return
    const picks = this.pickPending(free)
    if (picks.length === 0) return
    const placement = placeTasks(loads, picks.map(p => p.seg.avoid), this.peerRr)
    this.peerRr = placement.nextRr
    const byPeer = new Map<string, InFlight[]>()
    for (let i = 0; i < picks.length; i++) {
      const { job, seg } = picks[i]
      if (i >= placement.chosen.length) { job.queue.push(seg); continue }
      const peer = loads[placement.chosen[i]].peerId
      const f = this.assign(job, seg, peer, now)
      let list = byPeer.get(peer)
      if (list === undefined) { list = []; byPeer.set(peer, list) }
      list.push(f)
    }
    for (const [peer, list] of byPeer) this.dispatch(peer, list)
  }

  /** Alive members (and this node) not on hold, with their credits, load and shared machine. */
  private peerLoads (now: number): PeerLoad[] {
    const members: Array<{ peerId: string, cores: number, host: string }> = []
    let sawSelf = false
    for (const m of this.table.all()) {
      if (m.peerId === this.selfId) sawSelf = true
      else if (m.status !== 'alive') continue
      members.push({ peerId: m.peerId, cores: m.cores, host: m.host ?? '' })
    }
    if (!sawSelf) members.push({ peerId: this.selfId, cores: availableParallelism(), host: '' })
    // Machines with several members: their cores are shared (see placement.ts).
    const hostCores = new Map<string, { members: number, cores: number }>()
    for (const m of members) {
      if (m.host === '') continue
      const h = hostCores.get(m.host) ?? { members: 0, cores: 1 }
      h.members++
      h.cores = Math.max(h.cores, m.cores)
      hostCores.set(m.host, h)
    }
    const loads: PeerLoad[] = []
    for (const m of members) {
      const shared = hostCores.get(m.host)
      this.addLoad(loads, m.peerId, m.cores, now, shared !== undefined && shared.members > 1 ? { host: m.host, hostCap: shared.cores } : undefined)
    }
    return loads
  }

  private addLoad (loads: PeerLoad[], peerId: string, cores: number, now: number, shared?: { host: string, hostCap: number }): void {
    const st = this.peers.get(peerId)
    if (st !== undefined && now < st.busy.holdUntilMs) {
      // On hold: nothing new for it, but what it runs still uses its machine's shared cores.
      if (shared !== undefined && st.tasks.size > 0) loads.push({ peerId, credits: st.tasks.size, inFlight: st.tasks.size, ...shared })
      return
    }
    const base = baseCredits(cores, this.limits)
    loads.push({ peerId, credits: effectiveCredits(base, st?.busy.penaltyLevel ?? 0), inFlight: st?.tasks.size ?? 0, ...shared })
  }

  /** Up to `max` pending segments, taking one from each active job in turn (fairness). */
  private pickPending (max: number): Array<{ job: JobState, seg: SegState }> {
    const picks: Array<{ job: JobState, seg: SegState }> = []
    const n = this.active.length
    const start = this.jobRr % n
    this.jobRr = (start + 1) % n
    let progress = true
    while (picks.length < max && progress) {
      progress = false
      for (let k = 0; k < n && picks.length < max; k++) {
        const job = this.active[(start + k) % n]
        const seg = nextPending(job)
        if (seg !== undefined) { picks.push({ job, seg }); progress = true }
      }
    }
    return picks
  }

  private assign (job: JobState, seg: SegState, peer: string, now: number): InFlight {
    seg.seq++
    seg.attempts++
    seg.status = 'running'
    seg.node = peer
    if (seg.timeoutMs === 0) seg.timeoutMs = segmentTimeoutMs(job.kind, job.params, seg, this.limits.segmentTimeoutMs, this.limits.maxSegmentTimeoutMs)
    // The worker times the task out itself; our deadline adds room for the answer to travel.
    const timeoutMs = seg.timeoutMs
    const f: InFlight = { taskId: `${job.id}/${seg.index}/${seg.seq}`, peer, timeoutMs, deadlineMs: now + timeoutMs + this.limits.remoteAskTimeoutMs, job, seg }
    seg.current = f
    this.peerState(peer).tasks.set(f.taskId, f)
    this.queueSegUpdate(job.id, seg.index, { status: 'running', node: peer, attempts: seg.attempts, seq: seg.seq })
    return f
  }

  private dispatch (peer: string, list: InFlight[]): void {
    const tasks = list.map(f => {
      const { kind, payload } = f.job.kind.task(f.job.params, f.seg, f.seg.index, f.seg.index === f.job.total - 1)
      return { id: f.taskId, kind, payload, timeoutMs: f.timeoutMs }
    })
    try {
      this.system.tell(this.system.ref(peer, WORKER_ACTOR), { type: 'run', tasks }, SCHEDULER_ACTOR)
    } catch (err) {
      // Not sent at all: not an attempt. The peer gets nothing for a while.
      this.log.warn('cannot send tasks to a peer', { peer, tasks: list.length, err })
      this.peerState(peer).busy.holdUntilMs = Date.now() + this.limits.unreachableHoldMs
      for (const f of list) {
        this.detach(f)
        f.seg.attempts--
        this.countTask(f.job, 'lost')
        this.requeue(f.job, f.seg)
      }
    }
  }

  private peerState (peer: string): PeerState {
    let st = this.peers.get(peer)
    if (st === undefined) {
      st = { tasks: new Map(), displaced: new Map(), busy: { penaltyLevel: 0, penaltyUntilMs: 0, holdUntilMs: 0 } }
      this.peers.set(peer, st)
    }
    return st
  }

  /** Forgets an in-flight task (its credit is free again). */
  private detach (f: InFlight): void {
    this.peers.get(f.peer)?.tasks.delete(f.taskId)
    if (f.seg.current === f) f.seg.current = null
  }

  private requeue (job: JobState, seg: SegState): void {
    seg.status = 'pending'
    seg.node = null
    job.queue.push(seg)
    this.queueSegUpdate(job.id, seg.index, { status: 'pending', node: null, attempts: seg.attempts })
    this.schedulePump()
  }

  private tellCancel (peer: string, ids: string[]): void {
    if (ids.length === 0) return
    try {
      this.system.tell(this.system.ref(peer, WORKER_ACTOR), { type: 'cancel', ids }, SCHEDULER_ACTOR)
    } catch (err) {
      this.log.debug('cannot tell cancel to a peer', { peer, err })
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
    this.schedulePump()
  }

  private onResult (sender: string | undefined, raw: unknown): void {
    const r = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>
    // A displaced task answered: its peer did not lose it, so it will not count as an attempt.
    if (sender !== undefined && typeof r.id === 'string') this.peers.get(sender)?.displaced.delete(r.id)
    const found = this.findSegment(r.id)
    if (found === undefined) { this.countIgnored(r.id); return }
    const { job, seg } = found
    const f = seg.current !== null && seg.current.taskId === r.id ? seg.current : null
    if (f !== null) this.detach(f)
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
      value = job.kind.checkValue(job.params, seg, seg.index, seg.index === job.total - 1, r.value)
    } catch (err) {
      if (f === null) { this.countTask(job, 'ignored'); return }
      this.onTaskFailure(job, seg, peer, 'ERR_BAD_RESULT', (err as Error).message, 'error')
      return
    }
    // A late answer of an earlier dispatch won: the newer dispatch is no longer needed.
    if (f === null && seg.current !== null) {
      const other = seg.current
      this.detach(other)
      this.tellCancel(other.peer, [other.taskId])
    }
    const ms = typeof r.ms === 'number' && Number.isFinite(r.ms) && r.ms >= 0 ? r.ms : null
    this.markDone(job, seg, peer, ms, value)
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
    this.metrics.tasks.inc({ kind: this.jobs.get(jobId)?.kind.name ?? 'unknown', status: 'ignored' })
  }

  private countTask (job: JobState, status: TaskOutcome): void {
    this.metrics.tasks.inc({ kind: job.kind.name, status })
  }

  private markDone (job: JobState, seg: SegState, node: string, ms: number | null, value: unknown): void {
    seg.status = 'done'
    seg.node = node
    seg.ms = ms
    seg.value = value
    seg.avoid = null
    job.done++
    this.countTask(job, 'ok')
    this.queueSegUpdate(job.id, seg.index, { status: 'done', node, ms, result: value as SegmentPatch['result'] })
    this.emitProgress(job)
    if (job.done === job.total) this.finish(job)
  }

  private onBusyAnswer (job: JobState, seg: SegState, peer: string): void {
    this.countTask(job, 'busy')
    onBusy(this.peerState(peer).busy, Date.now(), this.limits.busyPenaltyMs, this.limits.busyHoldMs)
    seg.busyAnswers++
    // A busy node did no work: not an attempt, up to a bound (a node busy forever must not
    // keep a job alive forever).
    if (seg.busyAnswers <= this.limits.maxBusyRetries) {
      seg.attempts--
      this.requeue(job, seg)
      return
    }
    this.onTaskFailure(job, seg, peer, 'ERR_WORKER_BUSY', `refused ${seg.busyAnswers} times by busy workers`, 'busy', false)
  }

  /** A counted attempt failed: place it again elsewhere, or fail the job. */
  private onTaskFailure (job: JobState, seg: SegState, peer: string, code: string, message: string, outcome: TaskOutcome, count = true): void {
    if (count) this.countTask(job, outcome)
    seg.lastError = `${code}: ${message}`
    seg.avoid = peer
    this.log.debug('segment attempt failed', { job: job.id, segment: seg.index, peer, code, attempts: seg.attempts })
    if (FATAL_TASK_CODES.has(code) || seg.attempts >= this.limits.maxAttempts) {
      const why = FATAL_TASK_CODES.has(code) ? 'failed' : `failed after ${seg.attempts} attempts`
      void this.endJob(job, 'failed', null, `segment ${seg.index} [${seg.start}, ${seg.end}) ${why}; last error ${seg.lastError}`)
      return
    }
    this.requeue(job, seg)
  }

  // ---- failures: members, timeouts -----------------------------------------------------

  private onMemberChange (peerId: string, status: string): void {
    if (this.closed || peerId === this.selfId) {
      if (!this.closed && status === 'alive') this.schedulePump()
      return
    }
    if (status === 'dead') {
      if (!this.deadSince.has(peerId)) this.trackDead(peerId, Date.now())
    } else {
      this.deadSince.delete(peerId)
      this.claimedFrom.delete(peerId)
    }
    const st = this.peers.get(peerId)
    if (status === 'alive') {
      // The blip is over: what was moved off it is not held against anyone.
      st?.displaced.clear()
      this.schedulePump()
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
      this.detach(f)
      if (f.job.ending !== null) continue
      this.onTaskFailure(f.job, f.seg, peerId, 'ERR_PEER_LOST', `node ${peerId} is ${status}`, 'lost')
    }
    for (const { job, seg } of st.displaced.values()) this.chargeLost(job, seg, peerId, status)
    st.displaced.clear()
    this.schedulePump()
  }

  /** The mesh dropped a message to `peerId`: its tasks go elsewhere now (see Scheduler.peerUnreachable). */
  peerUnreachable (peerId: string): void {
    if (this.closed || typeof peerId !== 'string' || peerId === this.selfId) return
    if (!this.peers.has(peerId) && this.table.get(peerId) === undefined) return
    // Held even with nothing in flight: the next messages would likely be dropped too. (The
    // entry is forgotten by tick() once the hold is over.)
    const st = this.peerState(peerId)
    st.busy.holdUntilMs = Math.max(st.busy.holdUntilMs, Date.now() + this.limits.unreachableHoldMs)
    this.displace(peerId, `a message to node ${peerId} was dropped`)
  }

  /**
   * Places the peer's in-flight tasks elsewhere without counting an attempt (it may come back:
   * its late answers are still accepted), up to maxLostRetries per segment; remembers them so
   * the attempt counts if the peer turns out dead.
   */
  private displace (peerId: string, why: string): void {
    const st = this.peers.get(peerId)
    if (st === undefined || st.tasks.size === 0) return
    this.log.info('re-placing the segments of a peer that may be lost', { peer: peerId, why, tasks: st.tasks.size })
    for (const f of [...st.tasks.values()]) {
      this.detach(f)
      const { job, seg } = f
      if (job.ending !== null) continue
      if (seg.lostRetries >= this.limits.maxLostRetries) {
        this.onTaskFailure(job, seg, peerId, 'ERR_PEER_LOST', why, 'lost')
        continue
      }
      seg.lostRetries++
      seg.attempts--
      seg.avoid = peerId
      st.displaced.set(f.taskId, { job, seg })
      this.countTask(job, 'lost')
      this.requeue(job, seg)
    }
    this.schedulePump()
  }

  /**
   * The peer a task was moved off is gone after all: the attempt counts now (while the job runs),
   * even if the segment has been done elsewhere meanwhile. A segment running elsewhere lets its
   * own outcome decide; a waiting one fails the job when no attempt is left.
   */
  private chargeLost (job: JobState, seg: SegState, peerId: string, status: string): void {
    if (this.jobs.get(job.id) !== job || job.ending !== null || job.status !== 'running') return
    seg.attempts++
    this.queueSegUpdate(job.id, seg.index, { attempts: seg.attempts })
    if (seg.status === 'done') return
    seg.lastError = `ERR_PEER_LOST: node ${peerId} is ${status}`
    if (seg.current === null && seg.attempts >= this.limits.maxAttempts) {
      void this.endJob(job, 'failed', null, `segment ${seg.index} [${seg.start}, ${seg.end}) failed after ${seg.attempts} attempts; last error ${seg.lastError}`)
    }
  }

  private tick (): void {
    if (this.closed) return
    const now = Date.now()
    const expired: InFlight[] = []
    for (const [peerId, st] of this.peers) {
      decayBusy(st.busy, now)
      for (const f of st.tasks.values()) if (f.deadlineMs <= now) expired.push(f)
      for (const [id, d] of st.displaced) if (d.job.ending !== null || this.jobs.get(d.job.id) !== d.job) st.displaced.delete(id)
      if (st.tasks.size === 0 && st.displaced.size === 0 && st.busy.penaltyLevel === 0 && now >= st.busy.holdUntilMs) this.peers.delete(peerId)
    }
    for (const f of expired) {
      if (f.seg.current !== f) continue
      this.detach(f)
      this.tellCancel(f.peer, [f.taskId])
      if (f.job.ending !== null) continue
      this.onTaskFailure(f.job, f.seg, f.peer, 'ERR_TASK_TIMEOUT', `no answer within ${f.timeoutMs} ms`, 'timeout')
    }
    this.maybeTakeOver(now)
    this.schedulePump()
  }

  // ---- takeover ------------------------------------------------------------------------

  /** Starts tracking a dead member; at the bound, forgotten members go first, then the oldest. */
  private trackDead (peerId: string, now: number): void {
    if (this.deadSince.size >= MAX_DEAD_TRACKED) {
      let victim: string | undefined
      for (const id of this.deadSince.keys()) {
        if (this.table.get(id) === undefined) { victim = id; break }
      }
      victim ??= this.deadSince.keys().next().value as string
      this.deadSince.delete(victim)
      this.claimedFrom.delete(victim)
      this.log.warn('too many dead members tracked: forgetting one', { peer: victim, limit: MAX_DEAD_TRACKED })
    }
    this.deadSince.set(peerId, now)
  }

  /** Members gone for good whose jobs this node should claim now (see the top of the file). */
  private takeoverCandidates (now: number): string[] {
    if (this.deadSince.size === 0) return []
    // Only the lowest alive member claims, so nodes do not race for every job (the store would
    // still give each job to one of them).
    let claimer = true
    for (const m of this.table.alive()) if (m.peerId < this.selfId) { claimer = false; break }
    const out: string[] = []
    for (const [peerId, since] of this.deadSince) {
      const m = this.table.get(peerId)
      if (m !== undefined && m.status !== 'dead') { this.deadSince.delete(peerId); continue }
      if (this.claimedFrom.has(peerId)) {
        // Claimed and then forgotten by the membership: nothing more to track.
        if (m === undefined) { this.deadSince.delete(peerId); this.claimedFrom.delete(peerId) }
        continue
      }
      // Forgotten long ago on a node that does not claim: the claimer has had its chance (the
      // entry would otherwise stay forever).
      if (m === undefined && !claimer && now - since >= 2 * this.limits.takeoverAfterMs) { this.deadSince.delete(peerId); continue }
      // Forgotten while dead (evicted): gone for good.
      if (m === undefined || m.leftAtMs !== null || now - since >= this.limits.takeoverAfterMs) out.push(peerId)
    }
    return claimer ? out : []
  }

  private maybeTakeOver (now: number): void {
    if (this.takeover !== undefined || now < this.takeoverRetryAtMs) return
    const from = this.takeoverCandidates(now)
    if (from.length === 0 && !this.orphansPending) return
    const p = (async () => {
      if (this.orphansPending) await this.sweepOrphans()
      if (from.length > 0) await this.claimFrom(from)
    })().catch((err: unknown) => {
      this.takeoverRetryAtMs = Date.now() + Math.max(1000, this.limits.takeoverAfterMs / 10)
      this.log.warn('taking over the jobs of a gone coordinator failed; will retry', { from, err })
    }).finally(() => { this.takeover = undefined })
    this.takeover = p
  }

  private async claimFrom (from: string[]): Promise<void> {
    await this.resuming?.catch(() => {})
    for (const peerId of from) {
      if (this.closed) return
      const records = await this.store.claimJobs(peerId, this.selfId)
      if (records.length > 0) {
        this.log.info('taking over the jobs of a gone coordinator', { from: peerId, jobs: records.length })
        // Claimed jobs are ours in the store: if this node closes meanwhile, its resume runs them;
        // those that fail to load now are picked up by the orphan sweep of a later tick.
        const { failed } = await this.rebuildAll(records)
        if (failed > 0) throw new Error(`${failed} of the ${records.length} jobs claimed from ${peerId} could not be loaded`)
      }
      // Only once its jobs run here: a failed claim is tried again (and finds what is left).
      this.claimedFrom.add(peerId)
    }
  }

  /**
   * Jobs this node coordinates in the store but not in memory: left by a claim or resume whose
   * loading failed. Runs them; throws (retried later) while some still fail.
   */
  private async sweepOrphans (): Promise<void> {
    await this.resuming?.catch(() => {})
    this.orphansPending = false
    const records = (await this.store.listUnfinishedJobs(this.selfId).catch((err: unknown) => {
      this.orphansPending = true
      throw err
    })).filter(r => !this.jobs.has(r.id))
    if (records.length === 0) return
    const { rebuilt, failed } = await this.rebuildAll(records)
    this.log.info('orphaned jobs of this node loaded', { rebuilt, failed, found: records.length })
    if (failed > 0) throw new Error(`${failed} of this node's ${records.length} orphaned jobs could not be loaded`)
  }

  private inFlightEntries (): Array<[string, number]> {
    const out: Array<[string, number]> = []
    for (const [peer, st] of this.peers) out.push([peer, st.tasks.size])
    return out
  }

  // ---- the end of a job ----------------------------------------------------------------

  private finish (job: JobState): void {
    let result: unknown
    try {
      result = job.kind.combine(job.params, (job.segs as SegState[]).map(s => s.value))
    } catch (err) {
      void this.endJob(job, 'failed', null, `cannot combine the segments: ${(err as Error).message}`)
      return
    }
    void this.endJob(job, 'succeeded', result, null)
  }

  /**
   * Ends a job: stops its outstanding tasks at once, writes its end (after its segments), then
   * shows it ended and wakes its watchers. Returns the final view; a second call gets the first's.
   */
  private endJob (job: JobState, status: 'succeeded' | 'failed' | 'cancelled', result: unknown, error: string | null): Promise<JobView> {
    if (job.ending !== null) return job.ending
    if (TERMINAL_STATUSES.has(job.status)) return Promise.resolve(this.viewOf(job))
    const p = this.writeEnd(job, status, result, error)
    job.ending = p
    this.endings.add(p)
    void p.finally(() => { this.endings.delete(p) })
    this.stopOutstanding(job)
    removeFrom(this.active, job)
    removeFrom(this.queued, job)
    this.promoteQueued()
    return p
  }

  private async writeEnd (job: JobState, status: 'succeeded' | 'failed' | 'cancelled', result: unknown, error: string | null): Promise<JobView> {
    const finishedAtMs = Date.now()
    const patch: JobPatch = { status, result: result as JobPatch['result'], error, finishedAtMs, updatedAtMs: finishedAtMs }
    this.queueJobPatch(job.id, patch)
    let written = false
    for (let attempt = 1; attempt <= END_WRITE_ATTEMPTS && !written; attempt++) {
      written = await this.flushNow()
      if (!written && attempt < END_WRITE_ATTEMPTS) await sleep(100 * 4 ** (attempt - 1))
    }
    // Deposed by the write (depose() moved its watchers): the new coordinator decides its end.
    if (job.deposed) return this.viewOf(job)
    if (!written) this.log.error('the end of a job could not be written; a restart would run it again', { job: job.id, status })
    job.status = status
    job.result = result
    job.error = error
    job.finishedAtMs = finishedAtMs
    this.metrics.jobs.inc({ kind: job.kind.name, status })
    this.metrics.duration.observe({ kind: job.kind.name }, Math.max(0, finishedAtMs - job.createdAtMs) / 1000)
    this.log.info('job ended', { job: job.id, status, error: error ?? undefined, ms: finishedAtMs - job.createdAtMs })
    const view = this.viewOf(job)
    this.endWatchers(job, view)
    this.retain(job)
    return view
  }

  /** Tells workers to drop the job's outstanding tasks and frees their credits. */
  private stopOutstanding (job: JobState): void {
    if (job.segs === null) return
    const byPeer = new Map<string, string[]>()
    for (const seg of job.segs) {
      const f = seg.current
      if (f === null) continue
      this.detach(f)
      let ids = byPeer.get(f.peer)
      if (ids === undefined) { ids = []; byPeer.set(f.peer, ids) }
      ids.push(f.taskId)
    }
    for (const [peer, ids] of byPeer) this.tellCancel(peer, ids)
  }

  /** Keeps ended jobs in memory up to a bound; older ones are served from the store. */
  private retain (job: JobState): void {
    this.retained.add(job.id)
    while (this.retained.size > this.limits.maxRetainedJobs) {
      const oldest = this.retained.values().next().value as string
      this.retained.delete(oldest)
      this.jobs.delete(oldest)
    }
  }

  // ---- progress and watch --------------------------------------------------------------

  private emitProgress (job: JobState): void {
    if (job.watchers.size === 0) return
    const p = progressOf(job)
    for (const w of job.watchers) this.callProgress(w.onProgress, p)
  }

  private callProgress (fn: (p: JobProgress) => void, p: JobProgress): void {
    try { fn(p) } catch (err) { this.log.warn('a watch progress callback threw', { job: p.id, err }) }
  }

  private endWatchers (job: JobState, view: JobView): void {
    const p = progressOf(job)
    for (const w of [...job.watchers]) {
      this.callProgress(w.onProgress, p)
      w.detach()
      w.resolve(view)
    }
  }

  async watch (id: unknown, onProgress: (p: JobProgress) => void, signal: AbortSignal): Promise<JobView> {
    this.assertOpen()
    const jobId = checkId(id)
    if (typeof onProgress !== 'function') throw new GridError('ERR_INVALID_ARGUMENT', 'onProgress: must be a function', 'onProgress')
    if (signal?.aborted === true) throw aborted()
    const local = this.jobs.get(jobId)
    if (local !== undefined) return await this.watchLocal(local, onProgress, signal)
    const view = await this.get(jobId, signal)
    if (view === null) throw new GridError('ERR_NOT_FOUND', `no job ${jobId}`)
    if (TERMINAL_STATUSES.has(view.status)) {
      this.callProgress(onProgress, progressOfView(view))
      return view
    }
    const appeared = this.jobs.get(jobId)
    if (appeared !== undefined) return await this.watchLocal(appeared, onProgress, signal)
    return await this.watchByPolling(jobId, view, onProgress, signal)
  }

  private watchLocal (job: JobState, onProgress: (p: JobProgress) => void, signal: AbortSignal): Promise<JobView> {
    if (TERMINAL_STATUSES.has(job.status)) {
      this.callProgress(onProgress, progressOf(job))
      return Promise.resolve(this.viewOf(job))
    }
    if (job.watchers.size >= this.limits.maxWatchersPerJob) {
      return Promise.reject(new GridError('ERR_OVERLOADED', `job ${job.id} already has ${this.limits.maxWatchersPerJob} watchers`))
    }
    return new Promise<JobView>((resolve, reject) => {
      const onAbort = (): void => { w.detach(); reject(aborted()) }
      const w: Watcher = {
        onProgress,
        resolve,
        reject,
        signal,
        detach: () => {
          job.watchers.delete(w)
          signal?.removeEventListener('abort', onAbort)
        }
      }
      job.watchers.add(w)
      signal?.addEventListener('abort', onAbort, { once: true })
      this.callProgress(onProgress, progressOf(job))
    })
  }

  /** A job coordinated elsewhere: its state comes from get() every watchPollMs. */
  private async watchByPolling (id: string, first: JobView, onProgress: (p: JobProgress) => void, signal?: AbortSignal): Promise<JobView> {
    let last = progressOfView(first)
    this.callProgress(onProgress, last)
    let lastSeenMs = Date.now()
    for (;;) {
      await sleep(this.limits.watchPollMs, signal)
      this.assertOpen()
      let view: JobView | null = null
      try { view = await this.get(id, signal) } catch (err) {
        if (signal?.aborted === true) throw aborted()
        this.log.debug('watch: get failed', { job: id, err })
      }
      if (view === null) {
        if (Date.now() - lastSeenMs > this.limits.watchUnavailableMs) {
          throw new GridError('ERR_UNAVAILABLE', `job ${id}: its coordinator has not answered for ${this.limits.watchUnavailableMs} ms`)
        }
        continue
      }
      lastSeenMs = Date.now()
      const p = progressOfView(view)
      // Monotonic: a stale read (another member's store) never moves progress back.
      if (p.status !== last.status || p.segmentsDone > last.segmentsDone) {
        if (p.segmentsDone < last.segmentsDone) p.segmentsDone = last.segmentsDone
        last = p
        this.callProgress(onProgress, p)
      }
      if (TERMINAL_STATUSES.has(view.status)) return view
    }
  }

  // ---- get, list, cancel ---------------------------------------------------------------

  async get (id: unknown, signal?: AbortSignal): Promise<JobView | null> {
    this.assertOpen()
    const jobId = checkId(id)
    const here = await this.getHere(jobId)
    if (here === null) return await this.askOthers(jobId, signal)
    // A store copy of a job running elsewhere lags its coordinator (writes are batched, and a
    // shared store holds every node's jobs): ask the coordinator first, briefly.
    if (here.status !== 'running' || here.coordinator === this.selfId || this.jobs.has(jobId)) return here
    if (this.table.get(here.coordinator)?.status !== 'alive') return here
    return await this.askCoordinator(here.coordinator, jobId, signal) ?? here
  }

  /**
   * This node's memory, then its store. Synchronous (no parking of the actor) when in memory.
   * Never asks another node (it also answers other nodes' asks: no ping-pong).
   */
  private getHere (id: string): JobView | null | Promise<JobView | null> {
    const job = this.jobs.get(id)
    if (job !== undefined) return this.viewOf(job)
    return this.store.getJob(id).then(
      (stored) => stored === null ? null : viewFromStore(stored.job, stored.segments),
      (err: unknown) => { throw new GridError('ERR_UNAVAILABLE', `the store failed: ${(err as Error)?.message ?? String(err)}`) }
    )
  }

  /** The coordinator's view of a job, or null when it does not answer in freshReadTimeoutMs. */
  private async askCoordinator (peerId: string, id: string, signal?: AbortSignal): Promise<JobView | null> {
    try {
      const v = await this.system.ask<unknown>(this.system.ref(peerId, SCHEDULER_ACTOR), { type: 'get', id }, { timeoutMs: this.limits.freshReadTimeoutMs, signal, from: SCHEDULER_ACTOR })
      return isJobView(v, id) ? v : null
    } catch (err) {
      if (signal?.aborted === true) throw aborted()
      this.log.debug('coordinator did not answer a get; using the stored copy', { peer: peerId, job: id, err })
      return null
    }
  }

  /** Asks every other alive member's scheduler; the first that knows the job answers. */
  private async askOthers (id: string, signal?: AbortSignal): Promise<JobView | null> {
    const others = this.table.alive().filter(m => m.peerId !== this.selfId)
    if (others.length === 0) return null
    const ac = new AbortController()
    const onAbort = (): void => { ac.abort() }
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      return await new Promise<JobView | null>((resolve) => {
        let left = others.length
        for (const m of others) {
          this.system.ask<unknown>(this.system.ref(m.peerId, SCHEDULER_ACTOR), { type: 'get', id }, { timeoutMs: this.limits.remoteAskTimeoutMs, signal: ac.signal, from: SCHEDULER_ACTOR }).then(
            (v) => { if (isJobView(v, id)) resolve(v) },
            (err: unknown) => { this.log.debug('remote get failed', { peer: m.peerId, job: id, err }) }
          ).finally(() => { if (--left === 0) resolve(null) })
        }
      })
    } finally {
      signal?.removeEventListener('abort', onAbort)
      ac.abort()
    }
  }

  async list (options: { limit?: number, status?: JobStatus } = {}): Promise<JobView[]> {
    this.assertOpen()
    const { limit, status } = options ?? {}
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 1000)) {
      throw new GridError('ERR_INVALID_ARGUMENT', 'limit: must be an integer 1..1000', 'limit')
    }
    if (status !== undefined && !['queued', 'running', 'succeeded', 'failed', 'cancelled'].includes(status)) {
      throw new GridError('ERR_INVALID_ARGUMENT', 'status: must be queued, running, succeeded, failed or cancelled', 'status')
    }
    let records: JobRecord[]
    try { records = await this.store.listJobs({ limit, status }) } catch (err) {
      throw new GridError('ERR_UNAVAILABLE', `the store failed: ${(err as Error)?.message ?? String(err)}`)
    }
    const out = new Array<JobView>(records.length)
    let next = 0
    const worker = async (): Promise<void> => {
      for (let i = next++; i < records.length; i = next++) out[i] = await this.summaryOf(records[i])
    }
    await Promise.all(Array.from({ length: Math.min(LIST_CONCURRENCY, records.length) }, worker))
    return out
  }

  /** A job without its segment list (counts only): lists stay small. */
  private async summaryOf (record: JobRecord): Promise<JobView> {
    const job = this.jobs.get(record.id)
    if (job !== undefined) return this.viewOf(job, false)
    const stored = await this.store.getJob(record.id).catch(() => null)
    const view = viewFromStore(record, stored?.segments ?? [])
    view.segments = []
    return view
  }

  async cancel (id: unknown): Promise<JobView> {
    this.assertOpen()
    const jobId = checkId(id)
    const here = await this.cancelHere(jobId)
    if (here !== null && !('forwardTo' in here)) return here
    let coordinator = here?.forwardTo
    if (coordinator === undefined) {
      const view = await this.askOthers(jobId)
      if (view === null) throw new GridError('ERR_NOT_FOUND', `no job ${jobId}`)
      if (TERMINAL_STATUSES.has(view.status)) return view
      coordinator = view.coordinator
    }
    if (coordinator === this.selfId) throw new GridError('ERR_NOT_FOUND', `no job ${jobId}`)
    try {
      const v = await this.system.ask<unknown>(this.system.ref(coordinator, SCHEDULER_ACTOR), { type: 'cancel', id: jobId }, { timeoutMs: this.limits.remoteAskTimeoutMs, from: SCHEDULER_ACTOR })
      if (!isJobView(v, jobId)) throw new Error('malformed answer')
      return v
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ERR_NOT_FOUND') throw new GridError('ERR_NOT_FOUND', `no job ${jobId}`)
      throw new GridError('ERR_UNAVAILABLE', `job ${jobId}: its coordinator ${coordinator} did not cancel it: ${(err as Error)?.message ?? String(err)}`)
    }
  }

  /** For another node's cancel: only what this node coordinates or stores. */
  private async cancelForPeer (id: string): Promise<JobView> {
    const here = await this.cancelHere(id)
    if (here === null || 'forwardTo' in here) throw new ReplyError('ERR_NOT_FOUND', `no job ${id} coordinated by ${this.selfId}`)
    return here
  }

  /**
   * Cancels a job this node coordinates (in memory, or only in its store: not resumed). Returns
   * the view; `{ forwardTo }` when the store names another coordinator; null when unknown here.
   */
  private async cancelHere (id: string): Promise<JobView | { forwardTo: string } | null> {
    if (this.resuming !== undefined) await this.resuming.catch(() => {})
    const job = this.jobs.get(id)
    if (job !== undefined) return await this.cancelLocal(job)
    let stored: Awaited<ReturnType<Store['getJob']>>
    try { stored = await this.store.getJob(id) } catch (err) {
      throw new GridError('ERR_UNAVAILABLE', `the store failed: ${(err as Error)?.message ?? String(err)}`)
    }
    if (stored === null) return null
    const rec = stored.job
    if (TERMINAL_STATUSES.has(rec.status)) return viewFromStore(rec, stored.segments)
    if (rec.coordinator !== this.selfId) return { forwardTo: rec.coordinator }
    // Ours but not in memory (it appeared meanwhile, or was never resumed): end it in the store.
    const again = this.jobs.get(id)
    if (again !== undefined) return await this.cancelLocal(again)
    const finishedAtMs = Date.now()
    let written: boolean
    try {
      written = await this.store.updateJob(id, { status: 'cancelled', finishedAtMs, updatedAtMs: finishedAtMs }, { coordinator: this.selfId })
    } catch (err) {
      throw new GridError('ERR_UNAVAILABLE', `the store failed: ${(err as Error)?.message ?? String(err)}`)
    }
    // Claimed by another node meanwhile: it decides.
    if (!written) return await this.cancelInStore(id)
    this.metrics.jobs.inc({ kind: rec.kind, status: 'cancelled' })
    return viewFromStore({ ...rec, status: 'cancelled', finishedAtMs, updatedAtMs: finishedAtMs }, stored.segments)
  }

  /**
   * A cancel of a job this node no longer coordinates (deposed): the stored job if it ended, else
   * where to forward the cancel. Never writes, so it cannot loop.
   */
  private async cancelInStore (id: string): Promise<JobView | { forwardTo: string } | null> {
    let stored: Awaited<ReturnType<Store['getJob']>>
    try { stored = await this.store.getJob(id) } catch (err) {
      throw new GridError('ERR_UNAVAILABLE', `the store failed: ${(err as Error)?.message ?? String(err)}`)
    }
    if (stored === null) return null
    if (TERMINAL_STATUSES.has(stored.job.status)) return viewFromStore(stored.job, stored.segments)
    return { forwardTo: stored.job.coordinator }
  }

  private async cancelLocal (job: JobState): Promise<JobView | { forwardTo: string } | null> {
    if (!job.isPersisted) {
      await job.persisted
      // Its createJob failed: the job never existed.
      if (this.jobs.get(job.id) !== job) throw new GridError('ERR_NOT_FOUND', `no job ${job.id}`)
    }
    if (TERMINAL_STATUSES.has(job.status)) return this.viewOf(job)
    if (job.ending === null) this.log.info('job cancelled', { job: job.id })
    const view = job.ending !== null ? await job.ending : await this.endJob(job, 'cancelled', null, null)
    // Another node had claimed it: the cancel goes to that node (or the job ended there).
    if (job.deposed) return await this.cancelInStore(job.id)
    return view
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

  /**
   * Loads and continues jobs this node coordinates in the store (resume, takeover). A record
   * that cannot be loaded (the store failed) does not stop the others: it is counted as failed
   * and left to the orphan sweep (sweepOrphans) of a later tick.
   */
  private async rebuildAll (records: JobRecord[]): Promise<{ rebuilt: number, failed: number }> {
    let rebuilt = 0
    let failed = 0
    for (const rec of records) {
      if (this.closed) break
      if (this.jobs.has(rec.id)) continue
      try {
        if (await this.rebuildOne(rec.id)) rebuilt++
      } catch (err) {
        failed++
        this.log.warn('cannot load a job to run it; will retry', { job: rec.id, err })
      }
    }
    if (failed > 0) this.orphansPending = true
    return { rebuilt, failed }
  }

  /** Loads one job from the store and continues it; false when there is nothing to run here. */
  private async rebuildOne (id: string): Promise<boolean> {
    const stored = await this.store.getJob(id)
    if (stored === null || this.jobs.has(id) || TERMINAL_STATUSES.has(stored.job.status)) return false
    if (stored.job.coordinator !== this.selfId) return false
    try {
      this.rebuild(stored.job, stored.segments)
      return true
    } catch (err) {
      const message = `cannot resume: ${(err as Error).message}`
      this.log.error('job not resumable', { job: id, err })
      const now = Date.now()
      await this.store.updateJob(id, { status: 'failed', error: message, finishedAtMs: now, updatedAtMs: now }, { coordinator: this.selfId })
      return false
    }
  }

  /** Rebuilds a job from the store: done segments keep their values, the others run again. */
  private rebuild (rec: JobRecord, segments: SegmentRecord[]): void {
    const kind = this.kinds.get(rec.kind)
    if (kind === undefined) throw new Error(`unknown job kind ${rec.kind}`)
    const params = kind.validate(rec.params) as unknown
    if (segments.length === 0 || segments.length > MAX_SEGMENTS_PER_JOB) throw new Error(`${segments.length} segments stored`)
    const job = this.newJobState(rec, kind, params, segments.length)
    job.isPersisted = true
    job.markPersisted()
    const segs = segments.map((r, i) => {
      if (r.index !== i) throw new Error(`segment ${i} missing`)
      return this.resumedSeg(job, r)
    })
    job.segs = segs
    for (const seg of segs) {
      if (seg.status === 'done') job.done++
      else job.queue.push(seg)
    }
    this.jobs.set(job.id, job)
    if (this.queued.length === 0 && this.active.length + this.reservedActive < this.limits.maxActiveJobs) this.activate(job)
    else this.enqueue(job)
  }

  private resumedSeg (job: JobState, r: SegmentRecord): SegState {
    const seg = newSegState(r.index, r)
    seg.attempts = r.attempts
    // Above every dispatch the earlier coordinator may have made (see RESUME_SEQ_MARGIN).
    seg.seq = r.seq + RESUME_SEQ_MARGIN
    if (r.status === 'done' && r.result !== null) {
      try {
        seg.value = job.kind.checkValue(job.params, seg, r.index, r.index === job.total - 1, r.result)
        seg.status = 'done'
        seg.node = r.node
        seg.ms = r.ms
        return seg
      } catch (err) {
        this.log.warn('stored segment value unusable: running it again', { job: job.id, segment: r.index, err })
      }
    }
    if (r.status !== 'pending') this.queueSegUpdate(job.id, r.index, { status: 'pending', node: null })
    return seg
  }

  // ---- persistence ---------------------------------------------------------------------

  private queueSegUpdate (jobId: string, index: number, patch: SegmentPatch): void {
    const key = `${jobId}/${index}`
    const u = this.segUpdates.get(key)
    if (u !== undefined) Object.assign(u.patch, patch)
    else this.segUpdates.set(key, { jobId, index, patch: { ...patch } })
    this.scheduleFlush(this.limits.storeFlushMs)
  }

  private queueJobPatch (id: string, patch: JobPatch): void {
    const p = this.jobPatches.get(id)
    const updatedAtMs = Date.now()
    if (p !== undefined) Object.assign(p, { updatedAtMs }, patch)
    else this.jobPatches.set(id, { updatedAtMs, ...patch })
    this.scheduleFlush(this.limits.storeFlushMs)
  }

  private scheduleFlush (delayMs: number): void {
    if (this.flushTimer !== undefined) return
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined
      void this.flushNow()
    }, delayMs)
  }

  /** Writes everything queued so far (after any write in progress); true when it was all written. */
  private flushNow (): Promise<boolean> {
    if (this.flushTimer !== undefined) { clearTimeout(this.flushTimer); this.flushTimer = undefined }
    const p = this.flushChain.then(async () => await this.writeQueued())
    this.flushChain = p
    return p
  }

  private async writeQueued (): Promise<boolean> {
    if (this.segUpdates.size === 0 && this.jobPatches.size === 0) return true
    const jobs = this.jobPatches
    const segs = this.segUpdates
    this.jobPatches = new Map()
    this.segUpdates = new Map()
    // Every write is fenced: it applies only while this node still coordinates the job, so a node
    // that was taken for gone (and whose jobs were claimed) cannot overwrite the new coordinator.
    const fence = { coordinator: this.selfId }
    const fenced = new Set<string>()
    try {
      // Segments first: a job shown ended has all its segments written.
      const list = [...segs.values()]
      for (let i = 0; i < list.length; i += MAX_UPDATES_PER_BATCH) {
        const batch = list.length <= MAX_UPDATES_PER_BATCH ? list : list.slice(i, i + MAX_UPDATES_PER_BATCH)
        for (const id of await this.store.updateSegments(batch, fence)) fenced.add(id)
      }
      for (const [id, patch] of jobs) {
        if (!fenced.has(id) && !await this.store.updateJob(id, patch, fence)) fenced.add(id)
      }
      this.failedFlushes = 0
      return true
    } catch (err) {
      this.failedFlushes++
      if (this.failedFlushes > MAX_FLUSH_RETRIES) {
        this.log.error('store writes dropped after repeated failures', { segments: segs.size, jobs: jobs.size, err })
        this.failedFlushes = 0
        return false
      }
      this.log.warn('store write failed; retrying', { attempt: this.failedFlushes, err })
      // Put them back under whatever was queued meanwhile (newer fields win), and retry later.
      this.segUpdates = mergeUnder(segs, this.segUpdates, (a, b) => { Object.assign(a.patch, b.patch); return a })
      this.jobPatches = mergeUnder(jobs, this.jobPatches, (a, b) => Object.assign(a, b))
      if (!this.closed) this.scheduleFlush(Math.min(10_000, 200 * this.failedFlushes))
      return false
    } finally {
      // After the catch has put failed writes back: the deposed jobs' writes are dropped too.
      if (fenced.size > 0) {
        for (const [key, u] of this.segUpdates) if (fenced.has(u.jobId)) this.segUpdates.delete(key)
        for (const id of fenced) this.depose(id)
      }
    }
  }

  /**
   * Another node coordinates the job now (it claimed it, taking this node for gone): stop its
   * tasks and forget it (its pending segment writes are dropped by the caller). Watchers continue by polling, which finds the new
   * coordinator through the store; get() falls through to the store likewise.
   */
  private depose (id: string): void {
    const job = this.jobs.get(id)
    this.metrics.fenced.inc({ kind: job?.kind.name ?? 'unknown' })
    this.log.warn('another node coordinates this job now: dropped here', { job: id, inMemory: job !== undefined })
    this.jobPatches.delete(id)
    if (job === undefined || job.deposed) return
    job.deposed = true
    this.stopOutstanding(job)
    removeFrom(this.active, job)
    removeFrom(this.queued, job)
    this.retained.delete(id)
    this.jobs.delete(id)
    for (const w of [...job.watchers]) {
      w.detach()
      this.watchByPolling(id, this.viewOf(job), w.onProgress, w.signal).then(w.resolve, w.reject)
    }
    this.promoteQueued()
  }

  // ---- views ---------------------------------------------------------------------------

  private viewOf (job: JobState, withSegments = true): JobView {
    let segments: SegmentView[]
    if (!withSegments) segments = []
    else if (job.segs !== null) segments = job.segs.map(segView)
    else {
      // A fresh queued job: the split is recomputed rather than held (it may wait long).
      segments = job.kind.split(job.params).map((s, index) => ({ index, start: s.start, end: s.end, status: 'pending', node: null, attempts: 0, ms: null }))
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
      segments
    }
  }

  stats (): SchedulerStats {
    const inFlightByPeer: Record<string, number> = {}
    let inFlight = 0
    for (const [peer, st] of this.peers) {
      if (st.tasks.size === 0) continue
      inFlightByPeer[peer] = st.tasks.size
      inFlight += st.tasks.size
    }
    return { jobs: this.jobs.size, active: this.active.length, queued: this.queued.length, inFlight, inFlightByPeer, pendingSegmentUpdates: this.segUpdates.size, deadTracked: this.deadSince.size }
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
    await Promise.allSettled([...this.endings])
    await this.resuming?.catch(() => {})
    await this.takeover
    await this.flushNow()
    if (this.flushTimer !== undefined) { clearTimeout(this.flushTimer); this.flushTimer = undefined }
    const closedErr = new GridError('ERR_UNAVAILABLE', 'the scheduler closed')
    for (const job of this.jobs.values()) {
      for (const w of [...job.watchers]) { w.detach(); w.reject(closedErr) }
    }
    this.metrics.unregister()
  }
}

// ---- helpers -----------------------------------------------------------------------------

function newJobId (): string {
  return randomBytes(16).toString('base64url')
}

function newSegmentRecord (jobId: string, index: number, s: SegmentSpan): SegmentRecord {
  return { jobId, index, start: s.start, end: s.end, status: 'pending', node: null, attempts: 0, seq: 0, ms: null, result: null }
}

function newSegState (index: number, span: SegmentSpan): SegState {
  return { index, start: span.start, end: span.end, status: 'pending', node: null, attempts: 0, seq: 0, timeoutMs: 0, lostRetries: 0, ms: null, value: null, busyAnswers: 0, avoid: null, lastError: null, current: null }
}

function nextPending (job: JobState): SegState | undefined {
  const q = job.queue
  while (job.qHead < q.length) {
    const seg = q[job.qHead++]
    if (seg.status === 'pending' && seg.current === null) {
      if (job.qHead > 1024 && job.qHead * 2 > q.length) { q.splice(0, job.qHead); job.qHead = 0 }
      return seg
    }
  }
  q.length = 0
  job.qHead = 0
  return undefined
}

function segView (s: SegState): SegmentView {
  return { index: s.index, start: s.start, end: s.end, status: s.status, node: s.node, attempts: s.attempts, ms: s.ms }
}

function viewFromStore (rec: JobRecord, segments: SegmentRecord[]): JobView {
  let done = 0
  for (const s of segments) if (s.status === 'done') done++
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
    segments: segments.map(s => ({ index: s.index, start: s.start, end: s.end, status: s.status, node: s.node, attempts: s.attempts, ms: s.ms }))
  }
}

function progressOf (job: JobState): JobProgress {
  return { id: job.id, status: job.status, segmentsDone: job.done, segmentsTotal: job.total }
}

function progressOfView (v: JobView): JobProgress {
  return { id: v.id, status: v.status, segmentsDone: v.segmentsDone, segmentsTotal: v.segmentsTotal }
}

/** A JobView that came from another node (it crossed the wire): checked enough to pass on. */
function isJobView (v: unknown, id: string): v is JobView {
  if (typeof v !== 'object' || v === null) return false
  const j = v as Record<string, unknown>
  return j.id === id && typeof j.status === 'string' && TERMINAL_OR_LIVE.has(j.status) && typeof j.coordinator === 'string' &&
    Number.isInteger(j.segmentsDone) && Number.isInteger(j.segmentsTotal) && Array.isArray(j.segments)
}

const TERMINAL_OR_LIVE: ReadonlySet<string> = new Set(['queued', 'running', 'succeeded', 'failed', 'cancelled'])

function checkId (id: unknown, ErrorClass: typeof GridError | typeof ReplyError = GridError): string {
  if (typeof id === 'string' && JOB_ID_RE.test(id)) return id
  const message = 'id: must be 1..64 characters [A-Za-z0-9_-]'
  if (ErrorClass === ReplyError) throw new ReplyError('ERR_INVALID_ARGUMENT', message)
  throw new GridError('ERR_INVALID_ARGUMENT', message, 'id')
}

/** Errors answering another node's ask must be ReplyErrors: anything else crashes the actor. */
function toReplyError (err: unknown): never {
  if (err instanceof ReplyError) throw err
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'ERR_UNAVAILABLE'
  throw new ReplyError(code.slice(0, 64), (err as Error)?.message ?? String(err))
}

function removeFrom<T> (list: T[], item: T): void {
  const i = list.indexOf(item)
  if (i >= 0) list.splice(i, 1)
}

/** `older` entries first, then `newer` merged over them. */
function mergeUnder<V> (older: Map<string, V>, newer: Map<string, V>, merge: (a: V, b: V) => V): Map<string, V> {
  const out = new Map(older)
  for (const [k, v] of newer) {
    const o = out.get(k)
    out.set(k, o === undefined ? v : merge(o, v))
  }
  return out
}

function aborted (): SchedulerError {
  return new SchedulerError(SchedulerErrorCode.ABORTED, 'the watch was aborted')
}

async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) throw aborted()
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => { clearTimeout(t); reject(aborted()) }
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

function checkDeps (deps: SchedulerDeps): void {
  if (typeof deps !== 'object' || deps === null) throw invalidOption('deps', 'must be an object')
  const { system, store, table, registry } = deps
  if (typeof system?.tell !== 'function' || typeof system.ask !== 'function' || typeof system.ref !== 'function') throw invalidOption('system', 'must be an ActorSystem')
  if (typeof store?.createJob !== 'function' || typeof store.updateSegments !== 'function' || typeof store.listUnfinishedJobs !== 'function') throw invalidOption('store', 'must be a Store')
  if (typeof table?.alive !== 'function' || typeof table.onChange !== 'function') throw invalidOption('table', 'must be a MemberTable')
  if (table.selfId !== system.peerId) throw invalidOption('table', `selfId (${table.selfId}) must be the system's peerId (${system.peerId})`)
  if (typeof (registry as { registerMetric?: unknown })?.registerMetric !== 'function') throw invalidOption('registry', 'must be a prom-client Registry')
  if (deps.kinds !== undefined && !Array.isArray(deps.kinds)) throw invalidOption('kinds', 'must be an array of job kinds')
}

function resolveLimits (given: SchedulerLimits | undefined): Limits {
  if (given !== undefined && (typeof given !== 'object' || given === null)) throw invalidOption('limits', 'must be an object')
  const out = { ...DEFAULT_LIMITS }
  for (const key of Object.keys(given ?? {}) as Array<keyof Limits>) {
    const range = LIMIT_RANGES[key]
    if (range === undefined) throw invalidOption(`limits.${String(key)}`, 'is not a known limit')
    const v = (given as Limits)[key]
    if (v === undefined) continue
    if (typeof v !== 'number' || !Number.isInteger(v) || v < range[0] || v > range[1]) {
      throw invalidOption(`limits.${key}`, `must be an integer in ${range[0]}..${range[1]}, got ${String(v)}`)
    }
    out[key] = v
  }
  return out
}
