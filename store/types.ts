import type { Logger } from '../config/logger.js'
import type { TrustStore } from './trust.js'
import type { FlowStore } from './flows.js'

/**
 * The status enums, defined once: the store's checks, its SQL CHECK constraints, the scheduler,
 * the APIs and the CLI all take them from here.
 */
export const MEMBER_STATUSES = ['alive', 'suspect', 'dead'] as const
export type MemberStatus = typeof MEMBER_STATUSES[number]

export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const
export type JobStatus = typeof JOB_STATUSES[number]
/** A job in one of these has ended: it never changes again. */
export const TERMINAL_JOB_STATUSES: ReadonlySet<JobStatus> = new Set<JobStatus>(['succeeded', 'failed', 'cancelled'])
/** The statuses of a job that still has to run (resume and takeover look for these). */
export const UNFINISHED_JOB_STATUSES = ['queued', 'running'] as const satisfies readonly JobStatus[]

export const SEGMENT_STATUSES = ['pending', 'running', 'done'] as const
export type SegmentStatus = typeof SEGMENT_STATUSES[number]

export function isJobStatus (v: unknown): v is JobStatus {
  return (JOB_STATUSES as readonly unknown[]).includes(v)
}

export interface MemberRecord {
  peerId: string
  addrs: string[]
  cores: number
  memoryBytes: number
  version: string
  startedAtMs: number
  status: MemberStatus
  lastSeenMs: number
  leftAtMs: number | null
  isGenesis: boolean
  /**
   * The node's human name (`--name`, e.g. `node-4002`), shown with its short peer id. Absent for
   * members that did not send one; not persisted (a reloaded member gets it back when it says hello).
   */
  name?: string
  /**
   * Identifies the machine the member runs on ('' when unknown): members on one machine share its
   * cores, and the scheduler must not oversubscribe them.
   */
  host: string
}

export interface JobRecord {
  id: string
  kind: string
  status: JobStatus
  /** Any JSON value (not `undefined`). */
  params: unknown
  /** Any JSON value; JSON `null` and "no result" are the same thing. */
  result: unknown | null
  error: string | null
  /** peerId of the node that coordinates (and, after a restart, resumes) the job. */
  coordinator: string
  createdAtMs: number
  updatedAtMs: number
  finishedAtMs: number | null
  /**
   * How far the result was checked (the scheduler's verification.ts object, any JSON); null or
   * absent = not recorded (migration 7).
   */
  verification?: unknown | null
}

export interface SegmentRecord {
  jobId: string
  index: number
  /**
   * What the segment covers, as its job kind describes it (fib: `{ start, end }`); any JSON value,
   * opaque to the store: only the job kind reads it.
   */
  descriptor: unknown
  status: SegmentStatus
  node: string | null
  attempts: number
  /**
   * Dispatches lost with their node (suspect, unreachable, dead) and placed again without
   * counting an attempt: `attempts + lost` is every dispatch of the segment (busy refusals
   * aside). Absent when creating = 0; always present when read.
   */
  lost?: number
  /**
   * Dispatch counter of the segment (task ids end in it). It never goes back: a coordinator
   * resuming or taking over the job continues above it, so a worker still holding an earlier
   * dispatch never mistakes the new one for it. 0 = never dispatched.
   */
  seq: number
  /** Compute time of the finished segment, fractional milliseconds. */
  ms: number | null
  /** Any JSON value; JSON `null` and "no result" are the same thing. */
  result: unknown | null
}

export type JobPatch = Partial<Pick<JobRecord, 'status' | 'result' | 'error' | 'updatedAtMs' | 'finishedAtMs' | 'verification'>>
/** `seq` only ever rises: a patch with a lower seq than the stored one leaves it unchanged. */
export type SegmentPatch = Partial<Pick<SegmentRecord, 'status' | 'node' | 'attempts' | 'lost' | 'seq' | 'ms' | 'result'>>
export interface SegmentUpdate { jobId: string, index: number, patch: SegmentPatch }

/**
 * Which ended jobs pruneJobs removes: those that ended before `endedBeforeMs`, or those beyond
 * the newest `keepNewest` ended jobs (by the time they ended). Exactly one of the two.
 */
export type PruneRule = { endedBeforeMs: number, keepNewest?: undefined } | { keepNewest: number, endedBeforeMs?: undefined }

/** Fencing of a coordinator's writes: they apply only to jobs `coordinator` still coordinates. */
export interface WriteCondition {
  coordinator?: string
}

export interface ListJobsOptions {
  /** Default `DEFAULT_LIST_LIMIT`; values above `MAX_LIST_LIMIT` are capped to it. */
  limit?: number
  status?: JobStatus
}

/** The members of the cluster (Genesis persists its registry). */
export interface MemberStore {
  /** Inserts or fully replaces the member with this peerId. */
  upsertMember: (m: MemberRecord) => Promise<void>
  /** All members, ordered by peerId. */
  listMembers: () => Promise<MemberRecord[]>
  /**
   * Records a status observation made at `atMs`:
   * - `alive`: `lastSeenMs = max(lastSeenMs, atMs)` and `leftAtMs = null` (it is back);
   * - `suspect` / `dead`: only the status changes, unless `left` (a graceful leave, only allowed
   *   with `dead`), which also sets `leftAtMs = atMs`.
   * Unknown peerId → ERR_STORE_NOT_FOUND.
   */
  setMemberStatus: (peerId: string, status: MemberStatus, atMs: number, left?: boolean) => Promise<void>
  /** Forgets the member (a long-dead one, evicted). An unknown peerId is a no-op. */
  deleteMember: (peerId: string) => Promise<void>
}

/**
 * Jobs and their segments (the scheduler). Later domains get their own narrow interface beside
 * these (TrustStore, BlobIndex, ProjectStore) and Store grows by extending them.
 */
export interface JobStore {
  /**
   * True when several nodes share this store (PostgreSQL): it then holds every node's jobs, and
   * a cluster-wide list need not ask the other members. Absent or false: this node's jobs only.
   */
  readonly shared?: boolean
  /**
   * Persists the job and all its segments atomically (one transaction). Every segment's jobId
   * must be job.id. A reused job id or a repeated segment index → ERR_STORE_CONFLICT, nothing kept.
   */
  createJob: (job: JobRecord, segments: SegmentRecord[]) => Promise<void>
  /** The job with its segments ordered by index, or null. */
  getJob: (id: string) => Promise<{ job: JobRecord, segments: SegmentRecord[] } | null>
  /** Newest first (createdAtMs, then id, descending). */
  listJobs: (opts?: ListJobsOptions) => Promise<JobRecord[]>
  /**
   * Applies the fields present in `patch` (an explicit `null` clears). Unknown id →
   * ERR_STORE_NOT_FOUND. With `opts.coordinator` (fencing) the row is written only while the job
   * is still coordinated by that peer, checked in the same statement: returns false (nothing
   * written) when another node has claimed it. True when written.
   */
  updateJob: (id: string, patch: JobPatch, opts?: WriteCondition) => Promise<boolean>
  /**
   * Several segment updates in one transaction (the scheduler batches them). Updates of the same
   * segment are merged in order (later fields win). If any segment does not exist the whole
   * batch is rolled back and ERR_STORE_NOT_FOUND is thrown. With `opts.coordinator` (fencing),
   * the updates of jobs coordinated by another peer are skipped (the rest are written) and those
   * job ids are returned, ascending; the check and the writes are one transaction that a
   * concurrent claimJobs waits for. Without it, always [].
   */
  updateSegments: (updates: SegmentUpdate[], opts?: WriteCondition) => Promise<string[]>
  /**
   * Jobs with status queued or running whose coordinator is this peer (for resume after
   * restart), oldest first, at most `MAX_UNFINISHED_JOBS` (a warning is logged when cut).
   */
  listUnfinishedJobs: (coordinator: string) => Promise<JobRecord[]>
  /**
   * Jobs coordinated by `coordinator` whose recorded verification lists segments accepted on
   * `peer`'s word alone (`verification.uncheckedBy[peer]`), oldest first, at most `limit`
   * (1..1000). For spot checks: the jobs to mark when that peer is caught. Optional: a store
   * without it cannot mark jobs that are no longer in memory.
   */
  listJobsVouchedBy?: (coordinator: string, peer: string, limit: number) => Promise<JobRecord[]>
  /**
   * Takeover of a coordinator that is gone for good: atomically makes `toCoordinator` the
   * coordinator of `fromCoordinator`'s queued and running jobs (updatedAtMs = now) and returns
   * them as changed, oldest first, at most `MAX_UNFINISHED_JOBS` per call. Each job is claimed
   * by exactly one caller even when several nodes sharing the database claim at once; a job
   * that ended or was claimed meanwhile is not returned. The two ids must differ.
   */
  claimJobs: (fromCoordinator: string, toCoordinator: string) => Promise<JobRecord[]>
  /**
   * Deletes ended jobs (succeeded, failed, cancelled; with finishedAtMs set) matching `rule`, and
   * their segments, oldest ended first, at most `limit` (1..MAX_PRUNE_PER_CALL) per call: the
   * retention sweep's bounded step. Unfinished jobs are never deleted. Returns the deleted ids.
   * Whatever coordinator: with a shared database the rule holds for the whole cluster's jobs.
   */
  pruneJobs: (rule: PruneRule, limit: number) => Promise<string[]>
}

/** The whole store: every domain's interface, and its lifecycle. Consumers take the narrow one. */
export interface Store extends MemberStore, JobStore, TrustStore, FlowStore {
  readonly kind: 'sqlite' | 'postgres'
  /** Releases the database. Idempotent; any later call fails with ERR_STORE_CLOSED. */
  close: () => Promise<void>
}

export interface StoreOptions {
  /**
   * Directory of the embedded store; the database is `<dataDir>/voike.db` (directory created if
   * missing). `':memory:'` opens a private in-memory database (tests). Ignored with `databaseUrl`.
   */
  dataDir?: string
  /** `postgres://` or `postgresql://` URL: when set, the store is PostgreSQL. */
  databaseUrl?: string
  /**
   * PostgreSQL schema holding the tables (default `public`), created if missing, so tests and
   * several clusters can share one database. Lowercase identifier: `[a-z_][a-z0-9_]{0,62}`, not
   * starting with `pg_`. Validated even for SQLite, where it is otherwise ignored.
   */
  schema?: string
  /** PostgreSQL pool size (default 4, 1..64). */
  poolMax?: number
  /**
   * Upper bound of one statement: PostgreSQL `statement_timeout` and connect timeout, SQLite
   * `busy_timeout` (waiting for another process's write lock). Default 30000, 100..600000.
   */
  queryTimeoutMs?: number
  /** Default silentLogger. */
  logger?: Logger
}

/** listJobs limit when none is given. */
export const DEFAULT_LIST_LIMIT = 100
/** listJobs never returns more rows than this. */
export const MAX_LIST_LIMIT = 1000
/** pruneJobs deletes at most this many jobs per call. */
export const MAX_PRUNE_PER_CALL = 10_000
/** listUnfinishedJobs never returns more rows than this. */
export const MAX_UNFINISHED_JOBS = 10_000
/** Segments per job (the fib job allows 4096). */
export const MAX_SEGMENTS_PER_JOB = 65_536
/** Segment updates per updateSegments call. */
export const MAX_UPDATES_PER_BATCH = 65_536
/** Serialized size of one JSON value (params, result), in UTF-16 code units. */
export const MAX_JSON_CHARS = 64 * 1024 * 1024
/** Length of ids, peer ids, kinds, versions, addresses. */
export const MAX_ID_CHARS = 1024
/** Length of a job's error text. */
export const MAX_ERROR_CHARS = 64 * 1024
