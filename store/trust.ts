/**
 * The trust domain of the store (PTA, actors/trust/): one row per peer with its trust and the
 * evidence that outlives a restart (decayed counts, RTT baseline). Both backends share these
 * types and checks (trust-sqlite.ts, trust-postgres.ts); the table is migration 5 (schema.ts).
 */
import { StoreError } from './errors.js'
import { checkInt, checkString } from './validate.js'

export interface TrustRecord {
  peerId: string
  /** 1 − anomaly, in [0, 1], as last computed. */
  trust: number
  /** False while the peer is distrusted (hysteresis state). */
  trusted: boolean
  /** Decayed counts as of `countsAtMs` (fractional). */
  successes: number
  failures: number
  mismatches: number
  /** Smoothed RTT baseline, ms; null before one was measured. */
  rttBaselineMs: number | null
  /** When the decayed counts were last brought up to date (epoch ms). */
  countsAtMs: number
  updatedAtMs: number
}

/** Trust of the peers this node has judged (each node keeps its own view). */
export interface TrustStore {
  /** Inserts or replaces each record (one transaction); at most MAX_TRUST_BATCH at once. */
  upsertTrust: (records: TrustRecord[]) => Promise<void>
  /** Every record, ordered by peerId, at most MAX_TRUST_RECORDS. */
  listTrust: () => Promise<TrustRecord[]>
  /** Forgets a peer; unknown peerId is a no-op. */
  deleteTrust: (peerId: string) => Promise<void>
}

export const MAX_TRUST_BATCH = 10_000
export const MAX_TRUST_RECORDS = 100_000

function invalid (what: string, why: string): StoreError {
  return new StoreError('ERR_INVALID_ARGUMENT', `${what} ${why}`, { field: what })
}

function checkNumber (v: unknown, what: string, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) throw invalid(what, `must be a finite number in ${lo}..${hi}, got ${String(v)}`)
  return v
}

export function checkTrustRecords (records: unknown): TrustRecord[] {
  if (!Array.isArray(records)) throw invalid('records', 'must be an array')
  if (records.length > MAX_TRUST_BATCH) throw invalid('records', `must hold at most ${MAX_TRUST_BATCH} records, got ${records.length}`)
  const seen = new Set<string>()
  for (const [i, r] of (records as TrustRecord[]).entries()) {
    const at = `records[${i}]`
    if (typeof r !== 'object' || r === null) throw invalid(at, 'must be an object')
    checkString(r.peerId, `${at}.peerId`)
    if (seen.has(r.peerId)) throw invalid(`${at}.peerId`, `repeats ${r.peerId}`)
    seen.add(r.peerId)
    checkNumber(r.trust, `${at}.trust`, 0, 1)
    if (typeof r.trusted !== 'boolean') throw invalid(`${at}.trusted`, 'must be a boolean')
    checkNumber(r.successes, `${at}.successes`, 0, 1e12)
    checkNumber(r.failures, `${at}.failures`, 0, 1e12)
    checkNumber(r.mismatches, `${at}.mismatches`, 0, 1e12)
    if (r.rttBaselineMs !== null) checkNumber(r.rttBaselineMs, `${at}.rttBaselineMs`, 0, 3_600_000)
    checkInt(r.countsAtMs, `${at}.countsAtMs`)
    checkInt(r.updatedAtMs, `${at}.updatedAtMs`)
  }
  return records as TrustRecord[]
}

export const TRUST_MIGRATION = {
  version: 5,
  name: 'peer_trust',
  sqlite: `CREATE TABLE IF NOT EXISTS peer_trust (
  peer_id TEXT PRIMARY KEY,
  trust REAL NOT NULL CHECK (trust >= 0 AND trust <= 1),
  trusted INTEGER NOT NULL CHECK (trusted IN (0, 1)),
  successes REAL NOT NULL,
  failures REAL NOT NULL,
  mismatches REAL NOT NULL,
  rtt_baseline_ms REAL,
  counts_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL
);`,
  postgres: `CREATE TABLE IF NOT EXISTS peer_trust (
  peer_id TEXT PRIMARY KEY,
  trust DOUBLE PRECISION NOT NULL CHECK (trust >= 0 AND trust <= 1),
  trusted BOOLEAN NOT NULL,
  successes DOUBLE PRECISION NOT NULL,
  failures DOUBLE PRECISION NOT NULL,
  mismatches DOUBLE PRECISION NOT NULL,
  rtt_baseline_ms DOUBLE PRECISION,
  counts_at_ms BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL
);`
} as const
