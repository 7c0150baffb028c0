/**
 * Checks shared by both backends, run before any SQL: a bad record is a caller bug and must fail
 * the same way (ERR_INVALID_ARGUMENT naming the field) whichever database is behind the store.
 * Also turns patches into "flag + value" rows so each update is one static prepared statement
 * (a `set*` flag of 0 keeps the column, so an explicit `null` can still clear it).
 */
import { StoreError } from './errors.js'
import {
  JOB_STATUSES, MEMBER_STATUSES, SEGMENT_STATUSES, MAX_ERROR_CHARS, MAX_ID_CHARS, MAX_JSON_CHARS, MAX_PRUNE_PER_CALL, MAX_SEGMENTS_PER_JOB, MAX_UPDATES_PER_BATCH
} from './types.js'
import type {
  JobPatch, JobRecord, JobStatus, MemberRecord, MemberStatus, PruneRule, SegmentPatch, SegmentRecord,
  SegmentStatus, SegmentUpdate, WriteCondition
} from './types.js'

const MAX_ADDRS = 256

function invalid (what: string, why: string): StoreError {
  return new StoreError('ERR_INVALID_ARGUMENT', `${what} ${why}`)
}

export function checkString (v: unknown, what: string, opts: { max?: number, allowEmpty?: boolean } = {}): string {
  if (typeof v !== 'string') throw invalid(what, `must be a string, got ${typeof v}`)
  if (v.length === 0 && opts.allowEmpty !== true) throw invalid(what, 'must not be empty')
  const max = opts.max ?? MAX_ID_CHARS
  if (v.length > max) throw invalid(what, `must be at most ${max} characters, got ${v.length}`)
  return v
}

/** Largest segment seq: the column is a 32-bit INTEGER in PostgreSQL. */
export const MAX_SEQ = 2 ** 31 - 1

function checkSeq (v: unknown, what: string): number {
  const n = checkInt(v, what)
  if (n > MAX_SEQ) throw invalid(what, `must be at most ${MAX_SEQ}, got ${n}`)
  return n
}

/** Non-negative safe integer: counts, indexes and epoch-ms times (BIGINT columns). */
export function checkInt (v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw invalid(what, `must be a non-negative safe integer, got ${String(v)}`)
  }
  return v
}

function checkNullableInt (v: unknown, what: string): number | null {
  return v === null ? null : checkInt(v, what)
}

function checkNullableMs (v: unknown, what: string): number | null {
  if (v === null) return null
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw invalid(what, `must be a finite number ≥ 0 or null, got ${String(v)}`)
  return v
}

export function checkEnum<T extends string> (v: unknown, allowed: readonly T[], what: string): T {
  if (!allowed.includes(v as T)) throw invalid(what, `must be one of ${allowed.join(', ')}, got ${String(v)}`)
  return v as T
}

function checkNullableString (v: unknown, what: string, max?: number): string | null {
  return v === null ? null : checkString(v, what, { max, allowEmpty: true })
}

/** JSON text of a value that must be present (params). */
export function encodeJson (v: unknown, what: string): string {
  let text: string | undefined
  try {
    text = JSON.stringify(v)
  } catch (err) {
    throw invalid(what, `is not serializable to JSON (${(err as Error).message})`)
  }
  if (text === undefined) throw invalid(what, `is not a JSON value (${typeof v})`)
  if (text.length > MAX_JSON_CHARS) throw invalid(what, `is ${text.length} characters of JSON, more than ${MAX_JSON_CHARS}`)
  return text
}

/** JSON text of an optional value (results): null/undefined → SQL NULL. */
export function encodeNullableJson (v: unknown, what: string): string | null {
  return v === null || v === undefined ? null : encodeJson(v, what)
}

export function checkMember (m: MemberRecord): void {
  if (m === null || typeof m !== 'object') throw invalid('member', 'must be an object')
  checkString(m.peerId, 'member.peerId')
  if (!Array.isArray(m.addrs) || m.addrs.length > MAX_ADDRS) throw invalid('member.addrs', `must be an array of at most ${MAX_ADDRS} strings`)
  for (const a of m.addrs) checkString(a, 'member.addrs[]')
  checkInt(m.cores, 'member.cores')
  checkInt(m.memoryBytes, 'member.memoryBytes')
  checkString(m.version, 'member.version', { allowEmpty: true })
  checkInt(m.startedAtMs, 'member.startedAtMs')
  checkEnum(m.status, MEMBER_STATUSES, 'member.status')
  checkInt(m.lastSeenMs, 'member.lastSeenMs')
  checkNullableInt(m.leftAtMs, 'member.leftAtMs')
  if (typeof m.isGenesis !== 'boolean') throw invalid('member.isGenesis', 'must be a boolean')
  checkString(m.host, 'member.host', { allowEmpty: true })
}

export function checkMemberStatus (peerId: string, status: MemberStatus, atMs: number, left: boolean): void {
  checkString(peerId, 'peerId')
  checkEnum(status, MEMBER_STATUSES, 'status')
  checkInt(atMs, 'atMs')
  if (typeof left !== 'boolean') throw invalid('left', 'must be a boolean')
  // A graceful leave is final until the member rejoins (upsert or `alive`).
  if (left && status !== 'dead') throw invalid('left', `is only allowed with status dead, got ${status}`)
}

export function checkClaim (fromCoordinator: string, toCoordinator: string): void {
  checkString(fromCoordinator, 'fromCoordinator')
  checkString(toCoordinator, 'toCoordinator')
  if (fromCoordinator === toCoordinator) throw invalid('toCoordinator', `must differ from fromCoordinator (${fromCoordinator})`)
}

/** The fencing coordinator of a write, or null when the write is unconditional. */
export function writeCoordinator (opts: WriteCondition | undefined): string | null {
  if (opts === undefined) return null
  if (opts === null || typeof opts !== 'object') throw invalid('opts', 'must be an object')
  return opts.coordinator === undefined ? null : checkString(opts.coordinator, 'opts.coordinator')
}

/** Distinct job ids of a batch, ascending (the order their rows are locked in). */
export function batchJobIds (rows: ReadonlyArray<{ jobId: string }>): string[] {
  return [...new Set(rows.map(r => r.jobId))].sort()
}

/** Validates a job row and returns its JSON columns. */
export function checkJob (j: JobRecord): { params: string, result: string | null } {
  if (j === null || typeof j !== 'object') throw invalid('job', 'must be an object')
  checkString(j.id, 'job.id')
  checkString(j.kind, 'job.kind')
  checkEnum(j.status, JOB_STATUSES, 'job.status')
  checkNullableString(j.error, 'job.error', MAX_ERROR_CHARS)
  checkString(j.coordinator, 'job.coordinator')
  checkInt(j.createdAtMs, 'job.createdAtMs')
  checkInt(j.updatedAtMs, 'job.updatedAtMs')
  checkNullableInt(j.finishedAtMs, 'job.finishedAtMs')
  return { params: encodeJson(j.params, 'job.params'), result: encodeNullableJson(j.result, 'job.result') }
}

/** Validates a segment of `jobId` and returns its JSON columns. */
export function checkSegment (s: SegmentRecord, jobId: string): { descriptor: string, result: string | null } {
  if (s === null || typeof s !== 'object') throw invalid('segment', 'must be an object')
  if (s.jobId !== jobId) throw invalid(`segment ${String(s.index)}.jobId`, `must be the job's id ${jobId}, got ${String(s.jobId)}`)
  checkInt(s.index, 'segment.index')
  checkEnum(s.status, SEGMENT_STATUSES, `segment ${s.index}.status`)
  checkNullableString(s.node, `segment ${s.index}.node`)
  checkInt(s.attempts, `segment ${s.index}.attempts`)
  if (s.lost !== undefined) checkInt(s.lost, `segment ${s.index}.lost`)
  checkSeq(s.seq, `segment ${s.index}.seq`)
  checkNullableMs(s.ms, `segment ${s.index}.ms`)
  return {
    descriptor: encodeJson(s.descriptor, `segment ${s.index}.descriptor`),
    result: encodeNullableJson(s.result, `segment ${s.index}.result`)
  }
}

export function checkSegments (job: JobRecord, segments: SegmentRecord[]): Array<{ descriptor: string, result: string | null }> {
  if (!Array.isArray(segments)) throw invalid('segments', 'must be an array')
  if (segments.length > MAX_SEGMENTS_PER_JOB) throw invalid('segments', `must be at most ${MAX_SEGMENTS_PER_JOB}, got ${segments.length}`)
  return segments.map(s => checkSegment(s, job.id))
}

/** A job patch as statement parameters: each `set*` is 1 when the field is present. */
export interface JobPatchRow {
  setStatus: number, status: JobStatus | null
  setResult: number, result: string | null
  setError: number, error: string | null
  setUpdatedAt: number, updatedAtMs: number | null
  setFinishedAt: number, finishedAtMs: number | null
  setVerification: number, verification: string | null
}

/** `undefined` means "absent" (so spreading optional fields is harmless). */
const has = (patch: object, key: string): boolean => (patch as Record<string, unknown>)[key] !== undefined

export function jobPatchRow (patch: JobPatch): JobPatchRow {
  if (patch === null || typeof patch !== 'object') throw invalid('patch', 'must be an object')
  const allowed = new Set(['status', 'result', 'error', 'updatedAtMs', 'finishedAtMs', 'verification'])
  for (const k of Object.keys(patch)) if (!allowed.has(k)) throw invalid(`patch.${k}`, 'is not an updatable job field')
  return {
    setStatus: has(patch, 'status') ? 1 : 0,
    status: has(patch, 'status') ? checkEnum(patch.status, JOB_STATUSES, 'patch.status') : null,
    setResult: has(patch, 'result') ? 1 : 0,
    result: has(patch, 'result') ? encodeNullableJson(patch.result, 'patch.result') : null,
    setError: has(patch, 'error') ? 1 : 0,
    error: has(patch, 'error') ? checkNullableString(patch.error, 'patch.error', MAX_ERROR_CHARS) : null,
    setUpdatedAt: has(patch, 'updatedAtMs') ? 1 : 0,
    updatedAtMs: has(patch, 'updatedAtMs') ? checkInt(patch.updatedAtMs, 'patch.updatedAtMs') : null,
    setFinishedAt: has(patch, 'finishedAtMs') ? 1 : 0,
    finishedAtMs: has(patch, 'finishedAtMs') ? checkNullableInt(patch.finishedAtMs, 'patch.finishedAtMs') : null,
    setVerification: has(patch, 'verification') ? 1 : 0,
    verification: has(patch, 'verification') ? encodeNullableJson(patch.verification, 'patch.verification') : null
  }
}

/** A merged segment update as statement parameters. */
export interface SegmentPatchRow {
  jobId: string, index: number
  setStatus: number, status: SegmentStatus | null
  setNode: number, node: string | null
  setAttempts: number, attempts: number | null
  setLost: number, lost: number | null
  setSeq: number, seq: number | null
  setMs: number, ms: number | null
  setResult: number, result: string | null
}

const SEGMENT_PATCH_KEYS = new Set(['status', 'node', 'attempts', 'lost', 'seq', 'ms', 'result'])

function applySegmentPatch (row: SegmentPatchRow, patch: SegmentPatch, what: string): void {
  if (patch === null || typeof patch !== 'object') throw invalid(what, 'must be an object')
  for (const k of Object.keys(patch)) if (!SEGMENT_PATCH_KEYS.has(k)) throw invalid(`${what}.${k}`, 'is not an updatable segment field')
  if (has(patch, 'status')) { row.setStatus = 1; row.status = checkEnum(patch.status, SEGMENT_STATUSES, `${what}.status`) }
  if (has(patch, 'node')) { row.setNode = 1; row.node = checkNullableString(patch.node, `${what}.node`) }
  if (has(patch, 'attempts')) { row.setAttempts = 1; row.attempts = checkInt(patch.attempts, `${what}.attempts`) }
  if (has(patch, 'lost')) { row.setLost = 1; row.lost = checkInt(patch.lost, `${what}.lost`) }
  // Merged in order like the other fields, but it only rises (as in the database).
  if (has(patch, 'seq')) { const seq = checkSeq(patch.seq, `${what}.seq`); row.setSeq = 1; row.seq = Math.max(row.seq ?? 0, seq) }
  if (has(patch, 'ms')) { row.setMs = 1; row.ms = checkNullableMs(patch.ms, `${what}.ms`) }
  if (has(patch, 'result')) { row.setResult = 1; row.result = encodeNullableJson(patch.result, `${what}.result`) }
}

/**
 * Validates a batch and merges updates of the same segment in order, so both backends (and a
 * set-based UPDATE, which would apply only one of several matching source rows) agree.
 */
export function segmentPatchRows (updates: SegmentUpdate[]): SegmentPatchRow[] {
  if (!Array.isArray(updates)) throw invalid('updates', 'must be an array')
  if (updates.length > MAX_UPDATES_PER_BATCH) throw invalid('updates', `must be at most ${MAX_UPDATES_PER_BATCH}, got ${updates.length}`)
  const rows = new Map<string, SegmentPatchRow>()
  for (let i = 0; i < updates.length; i++) {
    const u = updates[i]
    const what = `updates[${i}]`
    if (u === null || typeof u !== 'object') throw invalid(what, 'must be an object')
    checkString(u.jobId, `${what}.jobId`)
    checkInt(u.index, `${what}.index`)
    // JSON.stringify of [id, index] cannot collide for distinct pairs, unlike a separator.
    const key = JSON.stringify([u.jobId, u.index])
    let row = rows.get(key)
    if (row === undefined) {
      row = {
        jobId: u.jobId, index: u.index, setStatus: 0, status: null, setNode: 0, node: null,
        setAttempts: 0, attempts: null, setLost: 0, lost: null, setSeq: 0, seq: null, setMs: 0, ms: null, setResult: 0, result: null
      }
      rows.set(key, row)
    }
    applySegmentPatch(row, u.patch, `${what}.patch`)
  }
  return [...rows.values()]
}

/** A pruneJobs rule and limit, checked: which of the two statements, with its parameter. */
export function checkPrune (rule: PruneRule, limit: number): { by: 'age', endedBeforeMs: number } | { by: 'count', keepNewest: number } {
  if (rule === null || typeof rule !== 'object') throw invalid('rule', 'must be an object')
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PRUNE_PER_CALL) throw invalid('limit', `must be an integer in 1..${MAX_PRUNE_PER_CALL}, got ${String(limit)}`)
  const age = rule.endedBeforeMs !== undefined
  const count = rule.keepNewest !== undefined
  if (age === count) throw invalid('rule', 'must have endedBeforeMs or keepNewest (one of them)')
  return age ? { by: 'age', endedBeforeMs: checkInt(rule.endedBeforeMs, 'rule.endedBeforeMs') } : { by: 'count', keepNewest: checkInt(rule.keepNewest, 'rule.keepNewest') }
}

/** Sort order of unfinished jobs: createdAtMs, then id, ascending. */
export function oldestFirst (a: JobRecord, b: JobRecord): number {
  return a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
}

/** The effective listJobs limit and status filter. */
export function listJobsArgs (opts: { limit?: number, status?: JobStatus } | undefined, defaultLimit: number, maxLimit: number): { limit: number, status: JobStatus | null } {
  if (opts !== undefined && (opts === null || typeof opts !== 'object')) throw invalid('opts', 'must be an object')
  const limit = opts?.limit ?? defaultLimit
  if (!Number.isSafeInteger(limit) || limit < 1) throw invalid('opts.limit', `must be a positive integer, got ${String(limit)}`)
  const status = opts?.status === undefined ? null : checkEnum(opts.status, JOB_STATUSES, 'opts.status')
  return { limit: Math.min(limit, maxLimit), status }
}

/** Most jobs one listJobsVouchedBy returns. */
export const MAX_VOUCHED_JOBS = 1000

/** listJobsVouchedBy's arguments, checked (a peer id is text of 1..128 characters [A-Za-z0-9]). */
export function vouchedByArgs (coordinator: string, peer: string, limit: number): { coordinator: string, peer: string, limit: number } {
  checkString(coordinator, 'coordinator')
  // The peer id goes into a JSON path (SQLite): only base58/base32 characters are accepted.
  if (typeof peer !== 'string' || !/^[A-Za-z0-9_-]{1,128}$/.test(peer)) throw invalid('peer', 'must be a peer id (1..128 characters [A-Za-z0-9_-])')
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_VOUCHED_JOBS) throw invalid('limit', `must be an integer in 1..${MAX_VOUCHED_JOBS}, got ${String(limit)}`)
  return { coordinator, peer, limit }
}
