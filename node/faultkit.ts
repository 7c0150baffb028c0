/**
 * Helpers of the fault tests (node/faults.test.ts and the others that need work provably in
 * flight): the hold directory of the TEST-ONLY `hold` job kind (actors/kinds/hold/), metrics
 * scraped from a node's own /metrics, and the segments as a node's store recorded them. Not a
 * test file (see actors/testing/rig.ts on names).
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import { HOLD_DIR_ENV } from '../actors/kinds/hold/task.js'
import { SQLITE_FILE_NAME } from '../store/sqlite.js'
import { TEST_KINDS_ENV } from './kinds-for-tests.js'
import { getJson, type NodeProc } from './testkit.js'

export interface HoldMarker { name: string, index: number, pid: number }

/** The directory of hold markers and release files shared by a test and its node processes. */
export class HoldDir {
  private constructor (readonly dir: string) {}

  static async create (): Promise<HoldDir> {
    return new HoldDir(await mkdtemp(join(tmpdir(), 'voike-hold-')))
  }

  /** The environment that enables the `hold` kind on a node process. */
  env (): Record<string, string> {
    return { [TEST_KINDS_ENV]: 'hold', [HOLD_DIR_ENV]: this.dir }
  }

  /** A fresh token: names one job's files. */
  token (): string {
    return `t-${randomBytes(6).toString('hex')}`
  }

  /** Every `started` marker of the job: which worker process started holding which segment. */
  async markers (token: string): Promise<HoldMarker[]> {
    const prefix = `${token}.started.`
    return (await readdir(this.dir)).filter(n => n.startsWith(prefix)).map((name) => {
      const [index, pid] = name.slice(prefix.length).split('.')
      return { name, index: Number(index), pid: Number(pid) }
    })
  }

  /** Lets every task of the job (held now or started later) answer. */
  async release (token: string): Promise<void> {
    await writeFile(join(this.dir, `${token}.release`), '')
  }

  async remove (): Promise<void> {
    await rm(this.dir, { recursive: true, force: true })
  }
}

/** A node's /metrics text. */
export async function scrape (node: NodeProc): Promise<string> {
  const res = await getJson<string>(node.ready.http, '/metrics')
  if (res.status !== 200) throw new Error(`${node.name} /metrics answered ${res.status}`)
  return res.body
}

/** The sum of the series of `name` carrying all of `labels` (0 when there is none). */
export function metricValue (text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line)
    if (m === null || m[1] !== name) continue
    const got = m[2] ?? ''
    if (Object.entries(labels).every(([k, v]) => got.includes(`${k}="${v}"`))) sum += Number(m[3])
  }
  return sum
}

/** A segment as a store recorded it. */
export interface StoredSegment { index: number, status: string, attempts: number }

/**
 * The job's segments as written to `node`'s store: its SQLite file (opened read-only beside the
 * running node) or, when `env` names one, the PostgreSQL schema.
 */
export async function storedSegments (node: NodeProc, env: Record<string, string>, jobId: string): Promise<StoredSegment[]> {
  if (env.DATABASE_URL !== undefined) {
    const client = new pg.Client({ connectionString: env.DATABASE_URL })
    await client.connect()
    try {
      const r = await client.query(`SELECT idx, status, attempts FROM "${env.VOIKE_DB_SCHEMA}".segments WHERE job_id = $1 ORDER BY idx`, [jobId])
      return r.rows.map(row => ({ index: Number(row.idx), status: String(row.status), attempts: Number(row.attempts) }))
    } finally { await client.end() }
  }
  const db = new Database(join(node.dataDir, SQLITE_FILE_NAME), { readonly: true, fileMustExist: true })
  try {
    const rows = db.prepare('SELECT idx, status, attempts FROM segments WHERE job_id = ? ORDER BY idx').all(jobId) as Array<{ idx: number, status: string, attempts: number }>
    return rows.map(row => ({ index: row.idx, status: row.status, attempts: row.attempts }))
  } finally { db.close() }
}

/** A job's coordinator and status as the shared PostgreSQL store holds them (null: no such job). */
export async function storedJobPg (env: Record<string, string>, jobId: string): Promise<{ coordinator: string, status: string } | null> {
  const client = new pg.Client({ connectionString: env.DATABASE_URL })
  await client.connect()
  try {
    const r = await client.query(`SELECT coordinator, status FROM "${env.VOIKE_DB_SCHEMA}".jobs WHERE id = $1`, [jobId])
    return r.rows.length === 0 ? null : { coordinator: String(r.rows[0].coordinator), status: String(r.rows[0].status) }
  } finally { await client.end() }
}
