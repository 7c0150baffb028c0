/**
 * The one logical schema, as ordered migrations written for each dialect. Migrations are applied
 * at start inside one transaction and recorded in `schema_migrations`; every statement is also
 * idempotent (IF NOT EXISTS) so a half-recorded history cannot wedge a node.
 *
 * Column notes: times are epoch ms (BIGINT); JSON is TEXT in SQLite and jsonb in PostgreSQL;
 * booleans are 0/1 in SQLite. `start`/`end` are reserved words, hence `start_pos`/`end_pos`.
 * Statuses carry CHECK constraints so a bad write fails loudly in either database.
 */
import { StoreError } from './errors.js'
import { JOB_STATUSES, MEMBER_STATUSES, SEGMENT_STATUSES } from './types.js'
import { TRUST_MIGRATION } from './trust.js'
import { FLOW_RUN_STATUSES } from './flows.js'

export interface Migration {
  version: number
  name: string
  sqlite: string
  postgres: string
}

/** `'a', 'b'` for an SQL IN list (the values are fixed identifiers: no quoting needed inside). */
export function sqlList (values: readonly string[]): string {
  return values.map(v => `'${v}'`).join(', ')
}

// From the one definition of each enum (types.ts). Adding a status needs a migration that
// replaces the CHECK: the tables were created with the list of their time.
const memberStatusCheck = `CHECK (status IN (${sqlList(MEMBER_STATUSES)}))`
const jobStatusCheck = `CHECK (status IN (${sqlList(JOB_STATUSES)}))`
const segmentStatusCheck = `CHECK (status IN (${sqlList(SEGMENT_STATUSES)}))`

const indexes = `
CREATE INDEX IF NOT EXISTS jobs_coordinator_status ON jobs (coordinator, status, created_at_ms);
CREATE INDEX IF NOT EXISTS jobs_created_at ON jobs (created_at_ms, id);
CREATE INDEX IF NOT EXISTS jobs_status_created_at ON jobs (status, created_at_ms, id);
`

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'members, jobs, segments',
    sqlite: `
CREATE TABLE IF NOT EXISTS members (
  peer_id TEXT PRIMARY KEY,
  addrs TEXT NOT NULL,
  cores INTEGER NOT NULL,
  memory_bytes INTEGER NOT NULL,
  version TEXT NOT NULL,
  started_at_ms INTEGER NOT NULL,
  status TEXT NOT NULL ${memberStatusCheck},
  last_seen_ms INTEGER NOT NULL,
  left_at_ms INTEGER,
  is_genesis INTEGER NOT NULL CHECK (is_genesis IN (0, 1))
);
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  status TEXT NOT NULL ${jobStatusCheck},
  params TEXT NOT NULL,
  result TEXT,
  error TEXT,
  coordinator TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  finished_at_ms INTEGER
);
CREATE TABLE IF NOT EXISTS segments (
  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  start_pos INTEGER NOT NULL,
  end_pos INTEGER NOT NULL,
  status TEXT NOT NULL ${segmentStatusCheck},
  node TEXT,
  attempts INTEGER NOT NULL,
  ms REAL,
  result TEXT,
  PRIMARY KEY (job_id, idx)
);
${indexes}`,
    postgres: `
CREATE TABLE IF NOT EXISTS members (
  peer_id TEXT PRIMARY KEY,
  addrs JSONB NOT NULL,
  cores INTEGER NOT NULL,
  memory_bytes BIGINT NOT NULL,
  version TEXT NOT NULL,
  started_at_ms BIGINT NOT NULL,
  status TEXT NOT NULL ${memberStatusCheck},
  last_seen_ms BIGINT NOT NULL,
  left_at_ms BIGINT,
  is_genesis BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  status TEXT NOT NULL ${jobStatusCheck},
  params JSONB NOT NULL,
  result JSONB,
  error TEXT,
  coordinator TEXT NOT NULL,
  created_at_ms BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL,
  finished_at_ms BIGINT
);
CREATE TABLE IF NOT EXISTS segments (
  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  start_pos BIGINT NOT NULL,
  end_pos BIGINT NOT NULL,
  status TEXT NOT NULL ${segmentStatusCheck},
  node TEXT,
  attempts INTEGER NOT NULL,
  ms DOUBLE PRECISION,
  result JSONB,
  PRIMARY KEY (job_id, idx)
);
${indexes}`
  },
  {
    version: 2,
    name: 'members.host',
    sqlite: "ALTER TABLE members ADD COLUMN host TEXT NOT NULL DEFAULT '';",
    postgres: "ALTER TABLE members ADD COLUMN IF NOT EXISTS host TEXT NOT NULL DEFAULT '';"
  },
  {
    // The dispatch counter of a segment, so task ids never repeat across a resume or takeover.
    version: 3,
    name: 'segments.seq',
    sqlite: 'ALTER TABLE segments ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;',
    postgres: 'ALTER TABLE segments ADD COLUMN IF NOT EXISTS seq INTEGER NOT NULL DEFAULT 0;'
  },
  {
    // What a segment covers belongs to its job kind: an opaque JSON descriptor. Rows of earlier
    // versions held fib-style spans in start_pos/end_pos, which become { start, end }; those two
    // columns stay (NOT NULL) but new rows write 0 there and nothing reads them.
    version: 4,
    name: 'segments.descriptor',
    sqlite: `ALTER TABLE segments ADD COLUMN descriptor TEXT;
UPDATE segments SET descriptor = json_object('start', start_pos, 'end', end_pos) WHERE descriptor IS NULL;`,
    postgres: `ALTER TABLE segments ADD COLUMN IF NOT EXISTS descriptor JSONB;
UPDATE segments SET descriptor = jsonb_build_object('start', start_pos, 'end', end_pos) WHERE descriptor IS NULL;`
  },
  // Per-peer trust (PTA, store/trust.ts).
  TRUST_MIGRATION,
  {
    // FLOW: cached step results by step key, and run records for resume (store/flows.ts).
    // Values are TEXT in both dialects: jsonb would reorder object keys (row fields).
    version: 6,
    name: 'flow_steps, flow_runs',
    sqlite: flowTables('INTEGER'),
    postgres: flowTables('BIGINT')
  },
  {
    // How far a job's result was checked (spot checks, actors/scheduler/verification.ts).
    version: 7,
    name: 'jobs.verification',
    sqlite: 'ALTER TABLE jobs ADD COLUMN verification TEXT;',
    postgres: 'ALTER TABLE jobs ADD COLUMN IF NOT EXISTS verification JSONB;'
  },
  {
    // Dispatches of a segment lost with their node and placed again without counting an attempt.
    version: 8,
    name: 'segments.lost',
    sqlite: 'ALTER TABLE segments ADD COLUMN lost INTEGER NOT NULL DEFAULT 0;',
    postgres: 'ALTER TABLE segments ADD COLUMN IF NOT EXISTS lost INTEGER NOT NULL DEFAULT 0;'
  },
  {
    // The retention sweep finds ended jobs by when they ended (unfinished ones have NULL).
    version: 9,
    name: 'jobs_finished_at index',
    sqlite: 'CREATE INDEX IF NOT EXISTS jobs_finished_at ON jobs (finished_at_ms, id);',
    postgres: 'CREATE INDEX IF NOT EXISTS jobs_finished_at ON jobs (finished_at_ms, id);'
  }
]

function flowTables (int8: string): string {
  return `
CREATE TABLE IF NOT EXISTS flow_steps (
  key TEXT PRIMARY KEY,
  op TEXT NOT NULL,
  value TEXT NOT NULL,
  rows_out ${int8},
  size_bytes ${int8} NOT NULL,
  created_at_ms ${int8} NOT NULL,
  used_at_ms ${int8} NOT NULL
);
CREATE INDEX IF NOT EXISTS flow_steps_used ON flow_steps (used_at_ms, key);
CREATE TABLE IF NOT EXISTS flow_runs (
  run_id TEXT PRIMARY KEY,
  flow TEXT NOT NULL,
  plan_hash TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN (${sqlList(FLOW_RUN_STATUSES)})),
  started_at_ms ${int8} NOT NULL,
  finished_at_ms ${int8},
  record TEXT NOT NULL,
  size_bytes ${int8} NOT NULL,
  updated_at_ms ${int8} NOT NULL
);
CREATE INDEX IF NOT EXISTS flow_runs_updated ON flow_runs (updated_at_ms, run_id);
`
}

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version

// Versions must strictly increase: the runner applies "every version above the highest applied".
for (let i = 1; i < MIGRATIONS.length; i++) {
  if (MIGRATIONS[i].version <= MIGRATIONS[i - 1].version) throw new Error('store migrations out of order')
}

export const MIGRATIONS_TABLE_SQL = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at_ms BIGINT NOT NULL
)`

/**
 * Lowercase so it never needs quoting (search_path, CREATE SCHEMA); `pg_` is reserved by
 * PostgreSQL for system schemas.
 */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/

export function checkSchemaName (schema: unknown): string {
  if (typeof schema !== 'string' || !SCHEMA_NAME.test(schema) || schema.startsWith('pg_')) {
    throw new StoreError('ERR_INVALID_OPTION',
      `schema must match ${SCHEMA_NAME.source} and not start with pg_, got ${JSON.stringify(schema)}`)
  }
  return schema
}
