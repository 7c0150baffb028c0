/**
 * FLOW's persistent records: cached step results (by step key) and run records (for resume).
 * The narrow `FlowStore` interface both backends implement; node/ adapts it to the StepCache
 * and RunStore ports that flows/ declares. Values are JSON text owned by the caller: the store
 * keeps it byte for byte (never jsonb, which would reorder object keys and change row fields'
 * order). Both tables are bounded: every put evicts the least recently used step results (by
 * count and total bytes) or the oldest run records (by count) beyond the bounds it is given.
 */
import { StoreError } from './errors.js'
import { MAX_ID_CHARS, MAX_JSON_CHARS } from './types.js'
import { checkEnum, checkInt, checkString } from './validate.js'

export const FLOW_RUN_STATUSES = ['running', 'succeeded', 'failed', 'cancelled'] as const
export type FlowRunStatus = typeof FLOW_RUN_STATUSES[number]

export interface FlowStepRecord {
  /** The step key (a SHA-256 hex digest). */
  key: string
  /** The op contract that produced it (`FILTER@1.0`). */
  op: string
  /** The step's value as JSON text. */
  valueJson: string
  rowsOut: number | null
  createdAtMs: number
}

export interface FlowRunRecord {
  runId: string
  flow: string
  planHash: string
  status: FlowRunStatus
  startedAtMs: number
  finishedAtMs: number | null
  /** The whole run record (flows/ RunRecord) as JSON text. */
  recordJson: string
}

export interface FlowStepBounds {
  /** Step results kept at most; the least recently used go first. */
  maxEntries: number
  /** Sum of kept values' JSON lengths. */
  maxBytes: number
}

export interface FlowRunBounds {
  /** Run records kept at most; the least recently written go first. */
  maxRuns: number
}

export interface FlowStore {
  /** The cached step result, or null. A hit counts as a use (LRU). */
  getFlowStep: (key: string) => Promise<FlowStepRecord | null>
  /** Inserts or replaces the result, then evicts beyond `bounds`. Returns how many were evicted. */
  putFlowStep: (rec: FlowStepRecord, bounds: FlowStepBounds) => Promise<number>
  getFlowRun: (runId: string) => Promise<FlowRunRecord | null>
  /** Inserts or replaces the record, then evicts beyond `bounds`. Returns how many were evicted. */
  putFlowRun: (rec: FlowRunRecord, bounds: FlowRunBounds) => Promise<number>
}

/** Largest bounds a caller may give (the tables are a cache, not an archive). */
export const MAX_FLOW_STEP_ENTRIES = 1_000_000
export const MAX_FLOW_RUNS = 1_000_000

function json (v: unknown, what: string): string {
  const s = checkString(v, what, { max: MAX_JSON_CHARS })
  return s
}

export function checkFlowStep (r: FlowStepRecord, b: FlowStepBounds): void {
  if (typeof r !== 'object' || r === null) throw new StoreError('ERR_INVALID_ARGUMENT', 'flow step must be an object')
  checkString(r.key, 'flowStep.key', { max: MAX_ID_CHARS })
  checkString(r.op, 'flowStep.op', { max: MAX_ID_CHARS })
  json(r.valueJson, 'flowStep.valueJson')
  if (r.rowsOut !== null) checkInt(r.rowsOut, 'flowStep.rowsOut')
  checkInt(r.createdAtMs, 'flowStep.createdAtMs')
  checkBound(b?.maxEntries, 'bounds.maxEntries', MAX_FLOW_STEP_ENTRIES)
  checkBound(b?.maxBytes, 'bounds.maxBytes', Number.MAX_SAFE_INTEGER)
}

export function checkFlowRun (r: FlowRunRecord, b: FlowRunBounds): void {
  if (typeof r !== 'object' || r === null) throw new StoreError('ERR_INVALID_ARGUMENT', 'flow run must be an object')
  checkString(r.runId, 'flowRun.runId', { max: MAX_ID_CHARS })
  checkString(r.flow, 'flowRun.flow', { max: MAX_ID_CHARS, allowEmpty: true })
  checkString(r.planHash, 'flowRun.planHash', { max: MAX_ID_CHARS })
  checkEnum(r.status, FLOW_RUN_STATUSES, 'flowRun.status')
  checkInt(r.startedAtMs, 'flowRun.startedAtMs')
  if (r.finishedAtMs !== null) checkInt(r.finishedAtMs, 'flowRun.finishedAtMs')
  json(r.recordJson, 'flowRun.recordJson')
  checkBound(b?.maxRuns, 'bounds.maxRuns', MAX_FLOW_RUNS)
}

function checkBound (v: unknown, what: string, max: number): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > max) {
    throw new StoreError('ERR_INVALID_ARGUMENT', `${what} must be an integer in 1..${max}, got ${String(v)}`)
  }
}

/**
 * A strictly increasing use clock per process: LRU order must not depend on two uses landing in
 * the same millisecond. (Processes sharing PostgreSQL interleave by wall time: close enough.)
 */
let lastUseMs = 0
export function useClock (): number {
  lastUseMs = Math.max(Date.now(), lastUseMs + 1)
  return lastUseMs
}

/** The eviction statements, the same in both dialects but for the placeholder style. */
export function flowSql (dialect: 'sqlite' | 'postgres'): Record<'getStep' | 'touchStep' | 'putStep' | 'evictStepsByCount' | 'evictStepsByBytes' | 'getRun' | 'putRun' | 'evictRuns', string> {
  // Placeholders appear in numeric order in every statement: SQLite binds plain `?` by position.
  const p = (i: number): string => dialect === 'sqlite' ? '?' : `$${i}`
  // "All rows after the first N": SQLite has no LIMIT ALL, PostgreSQL no LIMIT -1.
  const all = dialect === 'sqlite' ? 'LIMIT -1' : 'LIMIT ALL'
  return {
    getStep: `SELECT key, op, value, rows_out, created_at_ms FROM flow_steps WHERE key = ${p(1)}`,
    touchStep: `UPDATE flow_steps SET used_at_ms = ${p(1)} WHERE key = ${p(2)}`,
    putStep: `INSERT INTO flow_steps (key, op, value, rows_out, size_bytes, created_at_ms, used_at_ms)
      VALUES (${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, ${p(7)})
      ON CONFLICT (key) DO UPDATE SET op = excluded.op, value = excluded.value, rows_out = excluded.rows_out,
        size_bytes = excluded.size_bytes, created_at_ms = excluded.created_at_ms, used_at_ms = excluded.used_at_ms`,
    // Newest first; everything past the first maxEntries goes.
    evictStepsByCount: `DELETE FROM flow_steps WHERE key IN (
      SELECT key FROM flow_steps ORDER BY used_at_ms DESC, key DESC ${all} OFFSET ${p(1)})`,
    // Newest first with a running total of sizes; every row where the total passes maxBytes goes.
    evictStepsByBytes: `DELETE FROM flow_steps WHERE key IN (
      SELECT key FROM (SELECT key, SUM(size_bytes) OVER (ORDER BY used_at_ms DESC, key DESC) AS total FROM flow_steps) AS t
      WHERE t.total > ${p(1)})`,
    getRun: `SELECT run_id, flow, plan_hash, status, started_at_ms, finished_at_ms, record FROM flow_runs WHERE run_id = ${p(1)}`,
    putRun: `INSERT INTO flow_runs (run_id, flow, plan_hash, status, started_at_ms, finished_at_ms, record, size_bytes, updated_at_ms)
      VALUES (${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, ${p(7)}, ${p(8)}, ${p(9)})
      ON CONFLICT (run_id) DO UPDATE SET flow = excluded.flow, plan_hash = excluded.plan_hash, status = excluded.status,
        started_at_ms = excluded.started_at_ms, finished_at_ms = excluded.finished_at_ms, record = excluded.record,
        size_bytes = excluded.size_bytes, updated_at_ms = excluded.updated_at_ms`,
    evictRuns: `DELETE FROM flow_runs WHERE run_id IN (
      SELECT run_id FROM flow_runs ORDER BY updated_at_ms DESC, run_id DESC ${all} OFFSET ${p(1)})`
  }
}

export interface FlowStepRow { key: string, op: string, value: string, rows_out: number | string | null, created_at_ms: number | string }
export interface FlowRunRow { run_id: string, flow: string, plan_hash: string, status: FlowRunStatus, started_at_ms: number | string, finished_at_ms: number | string | null, record: string }

export const toFlowStep = (r: FlowStepRow): FlowStepRecord => ({
  key: r.key, op: r.op, valueJson: r.value, rowsOut: r.rows_out === null ? null : Number(r.rows_out), createdAtMs: Number(r.created_at_ms)
})

export const toFlowRun = (r: FlowRunRow): FlowRunRecord => ({
  runId: r.run_id, flow: r.flow, planHash: r.plan_hash, status: r.status, startedAtMs: Number(r.started_at_ms),
  finishedAtMs: r.finished_at_ms === null ? null : Number(r.finished_at_ms), recordJson: r.record
})
