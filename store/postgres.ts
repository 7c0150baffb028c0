/**
 * PostgreSQL store through a small `pg` Pool. Several nodes may share one database, so:
 * - all tables live in `options.schema`, selected by `search_path` on every pooled connection
 *   (startup parameter), so tests and clusters can share a database without seeing each other;
 * - migrations run in one transaction under `pg_advisory_xact_lock`, keyed by the schema, so
 *   concurrent starters apply each migration once and the others wait, then see it applied.
 * Statements are named (prepared once per connection). Batches use `unnest` over arrays so a
 * batch of N segments is one statement, not N round trips.
 */
import pg from 'pg'
import type { Logger } from '../config/logger.js'
import { StoreError, causeMessage } from './errors.js'
import { MIGRATIONS, MIGRATIONS_TABLE_SQL, LATEST_VERSION, sqlList } from './schema.js'
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, MAX_UNFINISHED_JOBS, TERMINAL_JOB_STATUSES, UNFINISHED_JOB_STATUSES } from './types.js'
import type { JobRecord, MemberRecord, MemberStatus, SegmentRecord, Store } from './types.js'
import {
  checkClaim, checkJob, checkMember, checkMemberStatus, checkPrune, checkSegments, checkString, jobPatchRow, listJobsArgs,
  oldestFirst, segmentPatchRows, writeCoordinator, batchJobIds, vouchedByArgs
} from './validate.js'
import { postgresTrustStore } from './trust-postgres.js'
import { postgresFlowStore } from './flow-postgres.js'

export interface PostgresStoreOptions {
  databaseUrl: string
  /** Already validated by checkSchemaName (safe to splice unquoted). */
  schema: string
  poolMax: number
  /** statement_timeout and connect timeout. */
  queryTimeoutMs: number
  logger: Logger
}

/** First key of the two-key advisory lock: 'voik' in ASCII, the second is hashtext(schema). */
const MIGRATION_LOCK_CLASS = 0x766f696b

// BIGINT (int8) columns arrive as strings from pg; epoch ms and byte counts fit a double.
type Int8 = string | number

interface MemberRow {
  peer_id: string, addrs: string[], cores: number, memory_bytes: Int8, version: string,
  started_at_ms: Int8, status: MemberStatus, last_seen_ms: Int8, left_at_ms: Int8 | null,
  is_genesis: boolean, host: string
}
interface JobRow {
  id: string, kind: string, status: JobRecord['status'], params: unknown, result: unknown,
  error: string | null, coordinator: string, created_at_ms: Int8, updated_at_ms: Int8,
  finished_at_ms: Int8 | null
  verification?: unknown
}
interface SegmentRow {
  job_id: string, idx: number, descriptor: unknown, status: SegmentRecord['status'],
  node: string | null, attempts: number, lost: number, seq: number, ms: number | null, result: unknown
}

const nullableNumber = (v: Int8 | null): number | null => v === null ? null : Number(v)

const toMember = (r: MemberRow): MemberRecord => ({
  peerId: r.peer_id,
  addrs: r.addrs,
  cores: r.cores,
  memoryBytes: Number(r.memory_bytes),
  version: r.version,
  startedAtMs: Number(r.started_at_ms),
  status: r.status,
  lastSeenMs: Number(r.last_seen_ms),
  leftAtMs: nullableNumber(r.left_at_ms),
  isGenesis: r.is_genesis,
  host: r.host
})

const toJob = (r: JobRow): JobRecord => ({
  id: r.id,
  kind: r.kind,
  status: r.status,
  params: r.params,
  result: r.result ?? null,
  error: r.error,
  coordinator: r.coordinator,
  createdAtMs: Number(r.created_at_ms),
  updatedAtMs: Number(r.updated_at_ms),
  finishedAtMs: nullableNumber(r.finished_at_ms),
  // Only when recorded (migration 7): records of jobs without one stay as they were.
  ...(r.verification !== undefined && r.verification !== null ? { verification: r.verification } : {})
})

const toSegment = (r: SegmentRow): SegmentRecord => ({
  jobId: r.job_id,
  index: r.idx,
  descriptor: r.descriptor,
  status: r.status,
  node: r.node,
  attempts: r.attempts,
  lost: r.lost,
  seq: r.seq,
  ms: r.ms,
  result: r.result ?? null
})

function fail (op: string, err: unknown): StoreError {
  if (err instanceof StoreError) return err
  if ((err as { code?: string }).code === '23505') {
    return new StoreError('ERR_STORE_CONFLICT', `${op}: ${causeMessage(err)}`, { cause: err })
  }
  return new StoreError('ERR_STORE_QUERY', `${op} failed: ${causeMessage(err)}`, { cause: err })
}

/**
 * pg lets a URL's query parameters override the config object, so an `options=` in the URL would
 * silently drop our search_path: take it out and merge it instead.
 */
function splitUrlOptions (url: string): { url: string, options: string } {
  const q = url.indexOf('?')
  if (q < 0) return { url, options: '' }
  const params = new URLSearchParams(url.slice(q + 1))
  const options = params.get('options')
  if (options === null) return { url, options: '' }
  params.delete('options')
  const rest = params.toString()
  return { url: url.slice(0, q) + (rest === '' ? '' : `?${rest}`), options }
}

const UNFINISHED = `status IN (${sqlList(UNFINISHED_JOB_STATUSES)})`
/** Ended jobs (`t` is a table alias with its dot, or ''): unfinished ones have no finished_at_ms. */
const ended = (t = ''): string => `${t}status IN (${sqlList([...TERMINAL_JOB_STATUSES])}) AND ${t}finished_at_ms IS NOT NULL`
const INSERT_COLS = 'id, kind, status, params, result, error, coordinator, created_at_ms, updated_at_ms, finished_at_ms'
const JOB_COLS = `${INSERT_COLS}, verification`

const SQL = {
  upsertMember: `INSERT INTO members (peer_id, addrs, cores, memory_bytes, version, started_at_ms, status, last_seen_ms, left_at_ms, is_genesis, host)
    VALUES ($1, $2::jsonb, $3, $4, $5, $6, $7, $8, $9, $10, $11)
    ON CONFLICT (peer_id) DO UPDATE SET addrs = EXCLUDED.addrs, cores = EXCLUDED.cores, memory_bytes = EXCLUDED.memory_bytes,
      version = EXCLUDED.version, started_at_ms = EXCLUDED.started_at_ms, status = EXCLUDED.status,
      last_seen_ms = EXCLUDED.last_seen_ms, left_at_ms = EXCLUDED.left_at_ms, is_genesis = EXCLUDED.is_genesis, host = EXCLUDED.host`,
  listMembers: 'SELECT * FROM members ORDER BY peer_id',
  setMemberStatus: `UPDATE members SET status = $2::text,
    last_seen_ms = CASE WHEN $2::text = 'alive' THEN GREATEST(last_seen_ms, $3::bigint) ELSE last_seen_ms END,
    left_at_ms = CASE WHEN $2::text = 'alive' THEN NULL WHEN $4::boolean THEN $3::bigint ELSE left_at_ms END
    WHERE peer_id = $1`,
  deleteMember: 'DELETE FROM members WHERE peer_id = $1',
  insertJob: `INSERT INTO jobs (${INSERT_COLS}) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8, $9, $10)`,
  // start_pos/end_pos: legacy columns (schema v4), kept NOT NULL, unused.
  insertSegments: `INSERT INTO segments (job_id, idx, start_pos, end_pos, descriptor, status, node, attempts, lost, seq, ms, result)
    SELECT $1::text, u.idx, 0, 0, u.descriptor::jsonb, u.status, u.node, u.attempts, u.lost, u.seq, u.ms, u.result::jsonb
    FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::int[], $7::int[], $8::float8[], $9::text[], $10::int[])
      AS u(idx, descriptor, status, node, attempts, seq, ms, result, lost)`,
  getJob: `SELECT ${JOB_COLS} FROM jobs WHERE id = $1`,
  getSegments: 'SELECT job_id, idx, descriptor, status, node, attempts, lost, seq, ms, result FROM segments WHERE job_id = $1 ORDER BY idx',
  listJobs: `SELECT ${JOB_COLS} FROM jobs ORDER BY created_at_ms DESC, id DESC LIMIT $1`,
  listJobsByStatus: `SELECT ${JOB_COLS} FROM jobs WHERE status = $1 ORDER BY created_at_ms DESC, id DESC LIMIT $2`,
  listUnfinished: `SELECT ${JOB_COLS} FROM jobs WHERE coordinator = $1 AND ${UNFINISHED}
    ORDER BY created_at_ms, id LIMIT $2`,
  // Under READ COMMITTED a concurrent claimer blocks on the row lock, then re-evaluates the outer
  // WHERE on the new row version: a job another node claimed first no longer matches.
  claimJobs: `UPDATE jobs SET coordinator = $2, updated_at_ms = $3
    WHERE coordinator = $1 AND ${UNFINISHED} AND id IN (
      SELECT id FROM jobs WHERE coordinator = $1 AND ${UNFINISHED} ORDER BY created_at_ms, id LIMIT $4)
    RETURNING ${JOB_COLS}`,
  updateJob: `UPDATE jobs SET
    status = CASE WHEN $2::boolean THEN $3::text ELSE status END,
    result = CASE WHEN $4::boolean THEN $5::jsonb ELSE result END,
    error = CASE WHEN $6::boolean THEN $7::text ELSE error END,
    updated_at_ms = CASE WHEN $8::boolean THEN $9::bigint ELSE updated_at_ms END,
    finished_at_ms = CASE WHEN $10::boolean THEN $11::bigint ELSE finished_at_ms END,
    verification = CASE WHEN $13::boolean THEN $14::jsonb ELSE verification END
    WHERE id = $1 AND ($12::text IS NULL OR coordinator = $12::text)`,
  // Ended jobs whose recorded verification lists segments accepted on `peer`'s word alone.
  listVouchedBy: `SELECT ${JOB_COLS} FROM jobs WHERE coordinator = $1 AND jsonb_typeof(verification->'uncheckedBy'->$2::text) = 'array'
    ORDER BY created_at_ms, id LIMIT $3`,
  jobExists: 'SELECT 1 FROM jobs WHERE id = $1',
  // Segments go with their job (ON DELETE CASCADE). Nodes sharing the database may prune at
  // once: a row another statement deleted first is simply not returned here.
  pruneByAge: `DELETE FROM jobs WHERE id IN (
    SELECT id FROM jobs WHERE ${ended()} AND finished_at_ms < $1 ORDER BY finished_at_ms, id LIMIT $2) RETURNING id`,
  // `edge` is the newest ended job beyond the kept ones; it and older ones go, oldest first.
  pruneByCount: `WITH edge AS (
      SELECT finished_at_ms AS f, id FROM jobs WHERE ${ended()} ORDER BY finished_at_ms DESC, id DESC LIMIT 1 OFFSET $2)
    DELETE FROM jobs WHERE id IN (
      SELECT j.id FROM jobs j, edge WHERE ${ended('j.')}
        AND (j.finished_at_ms, j.id) <= (edge.f, edge.id) ORDER BY j.finished_at_ms, j.id LIMIT $1) RETURNING id`,
  // FOR SHARE conflicts with claimJobs' row update: a claim waits until the batch commits, and a
  // batch started after a claim sees the new coordinator. Ordered to lock in one order.
  lockJobCoordinators: 'SELECT id, coordinator FROM jobs WHERE id = ANY($1::text[]) ORDER BY id FOR SHARE',
  updateSegments: `UPDATE segments AS s SET
    status = CASE WHEN u.set_status THEN u.status ELSE s.status END,
    node = CASE WHEN u.set_node THEN u.node ELSE s.node END,
    attempts = CASE WHEN u.set_attempts THEN u.attempts ELSE s.attempts END,
    seq = CASE WHEN u.set_seq THEN GREATEST(s.seq, u.seq) ELSE s.seq END,
    lost = CASE WHEN u.set_lost THEN u.lost ELSE s.lost END,
    ms = CASE WHEN u.set_ms THEN u.ms ELSE s.ms END,
    result = CASE WHEN u.set_result THEN u.result::jsonb ELSE s.result END
    FROM unnest($1::text[], $2::int[], $3::boolean[], $4::text[], $5::boolean[], $6::text[],
      $7::boolean[], $8::int[], $9::boolean[], $10::float8[], $11::boolean[], $12::text[],
      $13::boolean[], $14::int[], $15::boolean[], $16::int[])
      AS u(job_id, idx, set_status, status, set_node, node, set_attempts, attempts, set_ms, ms, set_result, result,
        set_seq, seq, set_lost, lost)
    WHERE s.job_id = u.job_id AND s.idx = u.idx`
} as const

type SqlName = keyof typeof SQL

/** Connects, proves the server answers, and migrates; the pool is ended on any failure. */
export async function openPostgresStore (options: PostgresStoreOptions): Promise<Store> {
  const { schema, logger } = options
  const { url, options: urlOptions } = splitUrlOptions(options.databaseUrl)
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolMax,
    options: `${urlOptions} -c search_path=${schema}`.trim(),
    statement_timeout: options.queryTimeoutMs,
    connectionTimeoutMillis: options.queryTimeoutMs,
    idleTimeoutMillis: 30_000,
    application_name: 'voike'
  })
  // An idle client losing its connection emits here; unhandled it would crash the process.
  pool.on('error', (err) => { logger.warn('store pool connection error', { err }) })
  try {
    await migrate(pool, schema, logger)
  } catch (err) {
    await pool.end().catch(() => {})
    throw err
  }
  return postgresStore(pool, logger)
}

async function migrate (pool: pg.Pool, schema: string, logger: Logger): Promise<void> {
  let client: pg.PoolClient
  try {
    client = await pool.connect()
  } catch (err) {
    throw new StoreError('ERR_STORE_OPEN', `cannot connect to PostgreSQL: ${causeMessage(err)}`, { cause: err })
  }
  let broken: Error | undefined
  try {
    await client.query('BEGIN')
    await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [MIGRATION_LOCK_CLASS, schema])
    // Only create when missing: CREATE SCHEMA needs the database CREATE privilege even when the
    // schema exists, and `public` usually exists already.
    const found = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])
    if (found.rowCount === 0) await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`)
    await client.query(`SET LOCAL search_path TO ${schema}`)
    await client.query(MIGRATIONS_TABLE_SQL)
    const current = Number((await client.query<{ v: number }>('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations')).rows[0].v)
    if (current > LATEST_VERSION) {
      logger.warn('store schema is newer than this node knows', { schema, version: current, known: LATEST_VERSION })
    }
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue
      await client.query(m.postgres)
      await client.query('INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()])
      logger.info('store migration applied', { schema, version: m.version, name: m.name })
    }
    await client.query('COMMIT')
  } catch (err) {
    await client.query('ROLLBACK').catch((e: Error) => { broken = e })
    throw new StoreError('ERR_STORE_MIGRATE', `PostgreSQL migration of schema ${schema} failed: ${causeMessage(err)}`, { cause: err })
  } finally {
    client.release(broken)
  }
}

function postgresStore (pool: pg.Pool, logger: Logger): Store {
  let closed = false

  function ensureOpen (op: string): void {
    if (closed) throw new StoreError('ERR_STORE_CLOSED', `${op}: store is closed`)
  }

  /** One named (prepared) statement, on `client` when inside a transaction, else on the pool. */
  async function query<R extends pg.QueryResultRow> (op: string, name: SqlName, values: unknown[], client?: pg.PoolClient): Promise<pg.QueryResult<R>> {
    ensureOpen(op)
    try {
      return await (client ?? pool).query<R>({ name: `voike_${name}`, text: SQL[name], values })
    } catch (err) {
      throw fail(op, err)
    }
  }

  async function transaction<T> (op: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    ensureOpen(op)
    let client: pg.PoolClient
    try {
      client = await pool.connect()
    } catch (err) {
      throw fail(op, err)
    }
    let broken: Error | undefined
    try {
      await client.query('BEGIN')
      const out = await fn(client)
      await client.query('COMMIT')
      return out
    } catch (err) {
      // A failed ROLLBACK means the connection is unusable: destroy it rather than pool it.
      await client.query('ROLLBACK').catch((e: Error) => { broken = e })
      throw fail(op, err)
    } finally {
      client.release(broken)
    }
  }

  /** One UPDATE of the (merged, distinct) segment rows, inside the caller's transaction. */
  async function writeSegmentRows (client: pg.PoolClient, rows: ReturnType<typeof segmentPatchRows>): Promise<void> {
    const values = [
      rows.map(r => r.jobId), rows.map(r => r.index),
      rows.map(r => r.setStatus === 1), rows.map(r => r.status),
      rows.map(r => r.setNode === 1), rows.map(r => r.node),
      rows.map(r => r.setAttempts === 1), rows.map(r => r.attempts),
      rows.map(r => r.setMs === 1), rows.map(r => r.ms),
      rows.map(r => r.setResult === 1), rows.map(r => r.result),
      rows.map(r => r.setSeq === 1), rows.map(r => r.seq),
      rows.map(r => r.setLost === 1), rows.map(r => r.lost)
    ]
    const res = await query('updateSegments', 'updateSegments', values, client)
    // Rows are distinct (merged), so a shortfall means some segment does not exist.
    if (res.rowCount !== rows.length) {
      throw new StoreError('ERR_STORE_NOT_FOUND', `updateSegments: ${rows.length - (res.rowCount ?? 0)} of ${rows.length} segments do not exist`)
    }
  }

  /** Statements of other modules (flows), named by them, through the same error mapping. */
  async function namedQuery<R extends pg.QueryResultRow> (op: string, name: string, text: string, values: unknown[], client?: pg.PoolClient): Promise<pg.QueryResult<R>> {
    ensureOpen(op)
    try {
      return await (client ?? pool).query<R>({ name, text, values })
    } catch (err) {
      throw fail(op, err)
    }
  }

  return {
    kind: 'postgres',
    ...postgresTrustStore(async (op, text, values) => {
      ensureOpen(op)
      try { return await pool.query({ text, values }) } catch (err) { throw fail(op, err) }
    }),
    shared: true,
    ...postgresFlowStore(namedQuery, transaction),

    async upsertMember (m) {
      checkMember(m)
      await query('upsertMember', 'upsertMember', [m.peerId, JSON.stringify(m.addrs), m.cores, m.memoryBytes, m.version,
        m.startedAtMs, m.status, m.lastSeenMs, m.leftAtMs, m.isGenesis, m.host])
    },

    async listMembers () {
      return (await query<MemberRow>('listMembers', 'listMembers', [])).rows.map(toMember)
    },

    async setMemberStatus (peerId, status, atMs, left = false) {
      checkMemberStatus(peerId, status, atMs, left)
      const res = await query('setMemberStatus', 'setMemberStatus', [peerId, status, atMs, left])
      if (res.rowCount === 0) throw new StoreError('ERR_STORE_NOT_FOUND', `setMemberStatus: no member ${peerId}`)
    },

    async deleteMember (peerId) {
      checkString(peerId, 'peerId')
      await query('deleteMember', 'deleteMember', [peerId])
    },

    async createJob (job, segments) {
      const json = checkJob(job)
      const cols = checkSegments(job, segments)
      const op = `createJob ${job.id}`
      await transaction(op, async (client) => {
        await query(op, 'insertJob', [job.id, job.kind, job.status, json.params, json.result, job.error,
          job.coordinator, job.createdAtMs, job.updatedAtMs, job.finishedAtMs], client)
        if (segments.length === 0) return
        await query(op, 'insertSegments', [job.id, segments.map(s => s.index), cols.map(c => c.descriptor),
          segments.map(s => s.status), segments.map(s => s.node), segments.map(s => s.attempts),
          segments.map(s => s.seq), segments.map(s => s.ms), cols.map(c => c.result), segments.map(s => s.lost ?? 0)], client)
      })
    },

    async getJob (id) {
      checkString(id, 'id')
      const jobs = await query<JobRow>('getJob', 'getJob', [id])
      if (jobs.rows.length === 0) return null
      // Read after the job row: segments are written before the job finishes, so they are at
      // least as new as the job status we return.
      const segments = await query<SegmentRow>('getJob', 'getSegments', [id])
      return { job: toJob(jobs.rows[0]), segments: segments.rows.map(toSegment) }
    },

    async listJobs (opts) {
      const { limit, status } = listJobsArgs(opts, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)
      const res = status === null
        ? await query<JobRow>('listJobs', 'listJobs', [limit])
        : await query<JobRow>('listJobs', 'listJobsByStatus', [status, limit])
      return res.rows.map(toJob)
    },

    async updateJob (id, patch, opts) {
      checkString(id, 'id')
      const r = jobPatchRow(patch)
      const coordinator = writeCoordinator(opts)
      // Under READ COMMITTED an update waiting on a concurrent claim re-checks the coordinator on
      // the claimed row version, so the condition holds at the moment of the write.
      const res = await query('updateJob', 'updateJob', [id, r.setStatus === 1, r.status, r.setResult === 1, r.result,
        r.setError === 1, r.error, r.setUpdatedAt === 1, r.updatedAtMs, r.setFinishedAt === 1, r.finishedAtMs, coordinator, r.setVerification === 1, r.verification])
      if ((res.rowCount ?? 0) > 0) return true
      if (coordinator !== null && (await query('updateJob', 'jobExists', [id])).rows.length > 0) return false
      throw new StoreError('ERR_STORE_NOT_FOUND', `updateJob: no job ${id}`)
    },

    async updateSegments (updates, opts) {
      const all = segmentPatchRows(updates)
      const coordinator = writeCoordinator(opts)
      if (all.length === 0) return []
      return await transaction('updateSegments', async (client) => {
        const fenced = new Set<string>()
        if (coordinator !== null) {
          const owners = await query<{ id: string, coordinator: string }>('updateSegments', 'lockJobCoordinators', [batchJobIds(all)], client)
          // A missing job is not fenced: its segments are missing, reported below.
          for (const o of owners.rows) if (o.coordinator !== coordinator) fenced.add(o.id)
        }
        const rows = fenced.size === 0 ? all : all.filter(r => !fenced.has(r.jobId))
        if (rows.length > 0) await writeSegmentRows(client, rows)
        return [...fenced].sort()
      })
    },

    async listJobsVouchedBy (coordinator, peer, limit) {
      const args = vouchedByArgs(coordinator, peer, limit)
      const { rows } = await query<JobRow>('listJobsVouchedBy', 'listVouchedBy', [args.coordinator, args.peer, args.limit])
      return rows.map(toJob)
    },

    async listUnfinishedJobs (coordinator) {
      checkString(coordinator, 'coordinator')
      const { rows } = await query<JobRow>('listUnfinishedJobs', 'listUnfinished', [coordinator, MAX_UNFINISHED_JOBS + 1])
      if (rows.length > MAX_UNFINISHED_JOBS) {
        logger.warn('more unfinished jobs than can be resumed at once', { coordinator, limit: MAX_UNFINISHED_JOBS })
        rows.length = MAX_UNFINISHED_JOBS
      }
      return rows.map(toJob)
    },

    async claimJobs (fromCoordinator, toCoordinator) {
      checkClaim(fromCoordinator, toCoordinator)
      // One statement: atomic on its own (its row locks make concurrent claims take turns).
      const { rows } = await query<JobRow>('claimJobs', 'claimJobs', [fromCoordinator, toCoordinator, Date.now(), MAX_UNFINISHED_JOBS])
      return rows.map(toJob).sort(oldestFirst)
    },

    async pruneJobs (rule, limit) {
      const r = checkPrune(rule, limit)
      const res = r.by === 'age'
        ? await query<{ id: string }>('pruneJobs', 'pruneByAge', [r.endedBeforeMs, limit])
        : await query<{ id: string }>('pruneJobs', 'pruneByCount', [limit, r.keepNewest])
      return res.rows.map(x => x.id)
    },

    async close () {
      if (closed) return
      closed = true
      await pool.end()
    }
  }
}
