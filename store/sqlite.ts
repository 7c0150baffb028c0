/**
 * Embedded store: better-sqlite3 on `<dataDir>/voike.db`, WAL journal with synchronous=NORMAL
 * (a crash may lose the last commits but never corrupts; the scheduler re-runs lost segments).
 * better-sqlite3 is synchronous; statements are small and prepared once, and the methods are
 * `async` only to share the Store interface (throws become rejections).
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { Logger } from '../config/logger.js'
import { StoreError, causeMessage } from './errors.js'
import { MIGRATIONS, MIGRATIONS_TABLE_SQL, LATEST_VERSION, sqlList } from './schema.js'
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, MAX_UNFINISHED_JOBS, TERMINAL_JOB_STATUSES, UNFINISHED_JOB_STATUSES } from './types.js'
import type { JobRecord, MemberRecord, SegmentRecord, Store, MemberStatus } from './types.js'
import {
  checkClaim, checkJob, checkMember, checkMemberStatus, checkPrune, checkSegments, checkString, jobPatchRow, listJobsArgs,
  oldestFirst, segmentPatchRows, writeCoordinator, batchJobIds, vouchedByArgs
} from './validate.js'
import { sqliteTrustStore } from './trust-sqlite.js'
import { sqliteFlowStore } from './flow-sqlite.js'

export const SQLITE_FILE_NAME = 'voike.db'

export interface SqliteStoreOptions {
  /** Directory of `voike.db` (created if missing), or `':memory:'`. */
  dataDir: string
  /** SQLite busy_timeout: how long a write waits for another process's lock. */
  busyTimeoutMs: number
  logger: Logger
}

interface MemberRow {
  peer_id: string, addrs: string, cores: number, memory_bytes: number, version: string,
  started_at_ms: number, status: MemberStatus, last_seen_ms: number, left_at_ms: number | null,
  is_genesis: number
  host: string
}
interface JobRow {
  id: string, kind: string, status: JobRecord['status'], params: string, result: string | null,
  error: string | null, coordinator: string, created_at_ms: number, updated_at_ms: number,
  finished_at_ms: number | null
  verification?: string | null
}
interface SegmentRow {
  job_id: string, idx: number, descriptor: string, status: SegmentRecord['status'],
  node: string | null, attempts: number, lost: number, seq: number, ms: number | null, result: string | null
}

const toMember = (r: MemberRow): MemberRecord => ({
  peerId: r.peer_id,
  addrs: JSON.parse(r.addrs) as string[],
  cores: r.cores,
  memoryBytes: r.memory_bytes,
  version: r.version,
  startedAtMs: r.started_at_ms,
  status: r.status,
  lastSeenMs: r.last_seen_ms,
  leftAtMs: r.left_at_ms,
  isGenesis: r.is_genesis === 1,
  host: r.host
})

const toJob = (r: JobRow): JobRecord => ({
  id: r.id,
  kind: r.kind,
  status: r.status,
  params: JSON.parse(r.params),
  result: r.result === null ? null : JSON.parse(r.result),
  error: r.error,
  coordinator: r.coordinator,
  createdAtMs: r.created_at_ms,
  updatedAtMs: r.updated_at_ms,
  finishedAtMs: r.finished_at_ms,
  // Only when recorded (migration 7): records of jobs without one stay as they were.
  ...(r.verification !== undefined && r.verification !== null ? { verification: JSON.parse(r.verification) } : {})
})

const toSegment = (r: SegmentRow): SegmentRecord => ({
  jobId: r.job_id,
  index: r.idx,
  descriptor: JSON.parse(r.descriptor),
  status: r.status,
  node: r.node,
  attempts: r.attempts,
  lost: r.lost,
  seq: r.seq,
  ms: r.ms,
  result: r.result === null ? null : JSON.parse(r.result)
})

/** Maps a driver error to a StoreError naming the operation. */
function fail (op: string, err: unknown): StoreError {
  if (err instanceof StoreError) return err
  const code = (err as { code?: string }).code
  if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') {
    return new StoreError('ERR_STORE_CONFLICT', `${op}: ${causeMessage(err)}`, { cause: err })
  }
  return new StoreError('ERR_STORE_QUERY', `${op} failed: ${causeMessage(err)}`, { cause: err })
}

function openDatabase (options: SqliteStoreOptions): Database.Database {
  const memory = options.dataDir === ':memory:'
  const file = memory ? ':memory:' : join(options.dataDir, SQLITE_FILE_NAME)
  let db: Database.Database | undefined
  try {
    if (!memory) mkdirSync(options.dataDir, { recursive: true })
    db = new Database(file, { timeout: options.busyTimeoutMs })
    // Set before anything else, so the WAL switch itself waits on a concurrent opener.
    db.pragma(`busy_timeout = ${options.busyTimeoutMs}`)
    if (!memory) db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    db.pragma('foreign_keys = ON')
    return db
  } catch (err) {
    db?.close()
    throw new StoreError('ERR_STORE_OPEN', `cannot open SQLite store ${file}: ${causeMessage(err)}`, { cause: err })
  }
}

/** Applies missing migrations in one IMMEDIATE transaction (serializes concurrent openers). */
function migrate (db: Database.Database, logger: Logger): void {
  try {
    db.transaction(() => {
      db.exec(MIGRATIONS_TABLE_SQL)
      const current = (db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations').get() as { v: number }).v
      if (current > LATEST_VERSION) {
        // A newer node migrated this database; its changes are meant to be additive, so run on.
        logger.warn('store schema is newer than this node knows', { version: current, known: LATEST_VERSION })
      }
      const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)')
      for (const m of MIGRATIONS) {
        if (m.version <= current) continue
        db.exec(m.sqlite)
        record.run(m.version, m.name, Date.now())
        logger.info('store migration applied', { version: m.version, name: m.name })
      }
    }).immediate()
  } catch (err) {
    throw new StoreError('ERR_STORE_MIGRATE', `SQLite migration failed: ${causeMessage(err)}`, { cause: err })
  }
}

const SEGMENT_COLS = 'job_id, idx, descriptor, status, node, attempts, lost, seq, ms, result'
const UNFINISHED = `status IN (${sqlList(UNFINISHED_JOB_STATUSES)})`
/** Ended jobs (`t` is a table alias with its dot, or ''): unfinished ones have no finished_at_ms. */
const ended = (t = ''): string => `${t}status IN (${sqlList([...TERMINAL_JOB_STATUSES])}) AND ${t}finished_at_ms IS NOT NULL`

function prepareStatements (db: Database.Database) {
  const insertCols = 'id, kind, status, params, result, error, coordinator, created_at_ms, updated_at_ms, finished_at_ms'
  const jobCols = `${insertCols}, verification`
  const newestFirst = 'ORDER BY created_at_ms DESC, id DESC LIMIT ?'
  return {
    upsertMember: db.prepare(`INSERT INTO members (peer_id, addrs, cores, memory_bytes, version, started_at_ms, status, last_seen_ms, left_at_ms, is_genesis, host)
      VALUES (@peerId, @addrs, @cores, @memoryBytes, @version, @startedAtMs, @status, @lastSeenMs, @leftAtMs, @isGenesis, @host)
      ON CONFLICT (peer_id) DO UPDATE SET addrs = excluded.addrs, cores = excluded.cores, memory_bytes = excluded.memory_bytes,
        version = excluded.version, started_at_ms = excluded.started_at_ms, status = excluded.status,
        last_seen_ms = excluded.last_seen_ms, left_at_ms = excluded.left_at_ms, is_genesis = excluded.is_genesis, host = excluded.host`),
    listMembers: db.prepare<[], MemberRow>('SELECT * FROM members ORDER BY peer_id'),
    setMemberStatus: db.prepare(`UPDATE members SET status = @status,
      last_seen_ms = CASE WHEN @status = 'alive' THEN MAX(last_seen_ms, @atMs) ELSE last_seen_ms END,
      left_at_ms = CASE WHEN @status = 'alive' THEN NULL WHEN @left THEN @atMs ELSE left_at_ms END
      WHERE peer_id = @peerId`),
    insertJob: db.prepare(`INSERT INTO jobs (${insertCols})
      VALUES (@id, @kind, @status, @params, @result, @error, @coordinator, @createdAtMs, @updatedAtMs, @finishedAtMs)`),
    deleteMember: db.prepare<[string]>('DELETE FROM members WHERE peer_id = ?'),
    // start_pos/end_pos: legacy columns (schema v4), kept NOT NULL, unused.
    insertSegment: db.prepare(`INSERT INTO segments (job_id, idx, start_pos, end_pos, descriptor, status, node, attempts, lost, seq, ms, result)
      VALUES (@jobId, @index, 0, 0, @descriptor, @status, @node, @attempts, @lost, @seq, @ms, @result)`),
    getJob: db.prepare<[string], JobRow>(`SELECT ${jobCols} FROM jobs WHERE id = ?`),
    getSegments: db.prepare<[string], SegmentRow>(`SELECT ${SEGMENT_COLS} FROM segments WHERE job_id = ? ORDER BY idx`),
    listJobs: db.prepare<[number], JobRow>(`SELECT ${jobCols} FROM jobs ${newestFirst}`),
    listJobsByStatus: db.prepare<[string, number], JobRow>(`SELECT ${jobCols} FROM jobs WHERE status = ? ${newestFirst}`),
    listUnfinished: db.prepare<[string, number], JobRow>(`SELECT ${jobCols} FROM jobs
      WHERE coordinator = ? AND ${UNFINISHED} ORDER BY created_at_ms, id LIMIT ?`),
    // The outer conditions repeat the inner ones so the statement alone decides what is claimed.
    claimJobs: db.prepare<{ from: string, to: string, now: number, limit: number }, JobRow>(`UPDATE jobs SET coordinator = @to, updated_at_ms = @now
      WHERE coordinator = @from AND ${UNFINISHED} AND id IN (
        SELECT id FROM jobs WHERE coordinator = @from AND ${UNFINISHED} ORDER BY created_at_ms, id LIMIT @limit)
      RETURNING ${jobCols}`),
    updateJob: db.prepare(`UPDATE jobs SET
      status = CASE WHEN @setStatus THEN @status ELSE status END,
      result = CASE WHEN @setResult THEN @result ELSE result END,
      error = CASE WHEN @setError THEN @error ELSE error END,
      updated_at_ms = CASE WHEN @setUpdatedAt THEN @updatedAtMs ELSE updated_at_ms END,
      finished_at_ms = CASE WHEN @setFinishedAt THEN @finishedAtMs ELSE finished_at_ms END,
      verification = CASE WHEN @setVerification THEN @verification ELSE verification END
      WHERE id = @id AND (@coordinator IS NULL OR coordinator = @coordinator)`),
    // Ended jobs whose recorded verification lists segments accepted on `peer`'s word alone.
    listVouchedBy: db.prepare<[string, string, number], JobRow>(`SELECT ${jobCols} FROM jobs
      WHERE coordinator = ? AND verification IS NOT NULL AND json_type(verification, '$.uncheckedBy."' || ? || '"') = 'array'
      ORDER BY created_at_ms, id LIMIT ?`),
    jobCoordinator: db.prepare<[string], { coordinator: string }>('SELECT coordinator FROM jobs WHERE id = ?'),
    // Segments go with their job (ON DELETE CASCADE; foreign_keys is on).
    pruneByAge: db.prepare<[number, number], { id: string }>(`DELETE FROM jobs WHERE id IN (
      SELECT id FROM jobs WHERE ${ended()} AND finished_at_ms < ? ORDER BY finished_at_ms, id LIMIT ?) RETURNING id`),
    // `edge` is the newest ended job beyond the kept ones; it and older ones go, oldest first.
    pruneByCount: db.prepare<[number, number], { id: string }>(`WITH edge AS (
        SELECT finished_at_ms AS f, id FROM jobs WHERE ${ended()} ORDER BY finished_at_ms DESC, id DESC LIMIT 1 OFFSET ?)
      DELETE FROM jobs WHERE id IN (
        SELECT j.id FROM jobs j, edge WHERE ${ended('j.')}
          AND (j.finished_at_ms, j.id) <= (edge.f, edge.id) ORDER BY j.finished_at_ms, j.id LIMIT ?) RETURNING id`),
    updateSegment: db.prepare(`UPDATE segments SET
      status = CASE WHEN @setStatus THEN @status ELSE status END,
      node = CASE WHEN @setNode THEN @node ELSE node END,
      attempts = CASE WHEN @setAttempts THEN @attempts ELSE attempts END,
      lost = CASE WHEN @setLost THEN @lost ELSE lost END,
      seq = CASE WHEN @setSeq THEN MAX(seq, @seq) ELSE seq END,
      ms = CASE WHEN @setMs THEN @ms ELSE ms END,
      result = CASE WHEN @setResult THEN @result ELSE result END
      WHERE job_id = @jobId AND idx = @index`)
  }
}

export function openSqliteStore (options: SqliteStoreOptions): Store {
  const { logger } = options
  const db = openDatabase(options)
  let stmts: ReturnType<typeof prepareStatements>
  try {
    migrate(db, logger)
    stmts = prepareStatements(db)
  } catch (err) {
    db.close()
    throw fail('open', err)
  }
  let closed = false

  /** Runs `fn` on the open database, mapping driver errors to StoreErrors. */
  function run<T> (op: string, fn: () => T): T {
    if (closed) throw new StoreError('ERR_STORE_CLOSED', `${op}: store is closed`)
    try {
      return fn()
    } catch (err) {
      throw fail(op, err)
    }
  }

  const createJobTx = db.transaction((job: JobRecord, json: { params: string, result: string | null }, segments: SegmentRecord[], cols: Array<{ descriptor: string, result: string | null }>) => {
    stmts.insertJob.run({ ...job, params: json.params, result: json.result })
    for (let i = 0; i < segments.length; i++) stmts.insertSegment.run({ ...segments[i], lost: segments[i].lost ?? 0, descriptor: cols[i].descriptor, result: cols[i].result })
  })

  /** Writes the rows, skipping the jobs `coordinator` no longer coordinates (returned). */
  const updateSegmentsTx = db.transaction((rows: ReturnType<typeof segmentPatchRows>, coordinator: string | null) => {
    const fenced = new Set<string>()
    if (coordinator !== null) {
      for (const id of batchJobIds(rows)) {
        const owner = stmts.jobCoordinator.get(id)
        // A missing job is not fenced: its segments are missing, reported below.
        if (owner !== undefined && owner.coordinator !== coordinator) fenced.add(id)
      }
    }
    for (const row of rows) {
      if (fenced.has(row.jobId)) continue
      if (stmts.updateSegment.run(row).changes === 0) {
        throw new StoreError('ERR_STORE_NOT_FOUND', `updateSegments: no segment ${row.index} of job ${row.jobId}`)
      }
    }
    return [...fenced].sort()
  })

  const claimJobsTx = db.transaction((args: { from: string, to: string, now: number, limit: number }) => stmts.claimJobs.all(args))

  return {
    kind: 'sqlite',
    ...sqliteTrustStore(db, run),
    shared: false,
    ...sqliteFlowStore(db, run),

    async upsertMember (m) {
      checkMember(m)
      run('upsertMember', () => stmts.upsertMember.run({ ...m, addrs: JSON.stringify(m.addrs), isGenesis: m.isGenesis ? 1 : 0 }))
    },

    async listMembers () {
      return run('listMembers', () => stmts.listMembers.all().map(toMember))
    },

    async setMemberStatus (peerId, status, atMs, left = false) {
      checkMemberStatus(peerId, status, atMs, left)
      const changes = run('setMemberStatus', () => stmts.setMemberStatus.run({ peerId, status, atMs, left: left ? 1 : 0 }).changes)
      if (changes === 0) throw new StoreError('ERR_STORE_NOT_FOUND', `setMemberStatus: no member ${peerId}`)
    },

    async deleteMember (peerId) {
      checkString(peerId, 'peerId')
      run('deleteMember', () => stmts.deleteMember.run(peerId))
    },

    async createJob (job, segments) {
      const json = checkJob(job)
      const results = checkSegments(job, segments)
      run(`createJob ${job.id}`, () => { createJobTx(job, json, segments, results) })
    },

    async getJob (id) {
      checkString(id, 'id')
      return run('getJob', () => {
        const row = stmts.getJob.get(id)
        if (row === undefined) return null
        return { job: toJob(row), segments: stmts.getSegments.all(id).map(toSegment) }
      })
    },

    async listJobs (opts) {
      const { limit, status } = listJobsArgs(opts, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)
      return run('listJobs', () => (status === null ? stmts.listJobs.all(limit) : stmts.listJobsByStatus.all(status, limit)).map(toJob))
    },

    async updateJob (id, patch, opts) {
      checkString(id, 'id')
      const row = jobPatchRow(patch)
      const coordinator = writeCoordinator(opts)
      const changes = run('updateJob', () => stmts.updateJob.run({ ...row, id, coordinator }).changes)
      if (changes > 0) return true
      if (coordinator !== null && run('updateJob', () => stmts.jobCoordinator.get(id)) !== undefined) return false
      throw new StoreError('ERR_STORE_NOT_FOUND', `updateJob: no job ${id}`)
    },

    async updateSegments (updates, opts) {
      const rows = segmentPatchRows(updates)
      const coordinator = writeCoordinator(opts)
      if (rows.length === 0) return []
      // IMMEDIATE: the coordinator check holds the write lock, so no claim slips in before the writes.
      return run('updateSegments', () => updateSegmentsTx.immediate(rows, coordinator))
    },

    async listUnfinishedJobs (coordinator) {
      checkString(coordinator, 'coordinator')
      const rows = run('listUnfinishedJobs', () => stmts.listUnfinished.all(coordinator, MAX_UNFINISHED_JOBS + 1))
      if (rows.length > MAX_UNFINISHED_JOBS) {
        logger.warn('more unfinished jobs than can be resumed at once', { coordinator, limit: MAX_UNFINISHED_JOBS })
        rows.length = MAX_UNFINISHED_JOBS
      }
      return rows.map(toJob)
    },

    async listJobsVouchedBy (coordinator, peer, limit) {
      const args = vouchedByArgs(coordinator, peer, limit)
      return run('listJobsVouchedBy', () => stmts.listVouchedBy.all(args.coordinator, args.peer, args.limit).map(toJob))
    },

    async claimJobs (fromCoordinator, toCoordinator) {
      checkClaim(fromCoordinator, toCoordinator)
      // One statement is atomic in SQLite; the transaction makes the intent explicit.
      const rows = run('claimJobs', () => claimJobsTx({ from: fromCoordinator, to: toCoordinator, now: Date.now(), limit: MAX_UNFINISHED_JOBS }))
      return rows.map(toJob).sort(oldestFirst)
    },

    async pruneJobs (rule, limit) {
      const r = checkPrune(rule, limit)
      const rows = run('pruneJobs', () => r.by === 'age' ? stmts.pruneByAge.all(r.endedBeforeMs, limit) : stmts.pruneByCount.all(r.keepNewest, limit))
      return rows.map(x => x.id)
    },

    async close () {
      if (closed) return
      closed = true
      db.close()
    }
  }
}
