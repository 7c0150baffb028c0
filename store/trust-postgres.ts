/** The TrustStore on PostgreSQL (postgres.ts spreads these methods into its Store). */
import type pg from 'pg'
import { checkString } from './validate.js'
import { checkTrustRecords, MAX_TRUST_RECORDS, type TrustRecord, type TrustStore } from './trust.js'

type Int8 = string | number
interface TrustRow {
  peer_id: string, trust: number, trusted: boolean, successes: number, failures: number, mismatches: number,
  rtt_baseline_ms: number | null, counts_at_ms: Int8, updated_at_ms: Int8
}

const toRecord = (r: TrustRow): TrustRecord => ({
  peerId: r.peer_id,
  trust: r.trust,
  trusted: r.trusted,
  successes: r.successes,
  failures: r.failures,
  mismatches: r.mismatches,
  rttBaselineMs: r.rtt_baseline_ms,
  countsAtMs: Number(r.counts_at_ms),
  updatedAtMs: Number(r.updated_at_ms)
})

// One statement for the whole batch (unnest over arrays), as the segments' writes do.
const UPSERT = `INSERT INTO peer_trust (peer_id, trust, trusted, successes, failures, mismatches, rtt_baseline_ms, counts_at_ms, updated_at_ms)
  SELECT * FROM unnest($1::text[], $2::float8[], $3::bool[], $4::float8[], $5::float8[], $6::float8[], $7::float8[], $8::int8[], $9::int8[])
  ON CONFLICT (peer_id) DO UPDATE SET trust = EXCLUDED.trust, trusted = EXCLUDED.trusted, successes = EXCLUDED.successes,
    failures = EXCLUDED.failures, mismatches = EXCLUDED.mismatches, rtt_baseline_ms = EXCLUDED.rtt_baseline_ms,
    counts_at_ms = EXCLUDED.counts_at_ms, updated_at_ms = EXCLUDED.updated_at_ms`

/** `query` runs one statement on the store's pool (closed check, errors mapped to StoreErrors). */
export function postgresTrustStore (query: <R extends pg.QueryResultRow>(op: string, text: string, values: unknown[]) => Promise<pg.QueryResult<R>>): TrustStore {
  return {
    async upsertTrust (records) {
      const rows = checkTrustRecords(records)
      if (rows.length === 0) return
      await query('upsertTrust', UPSERT, [
        rows.map(r => r.peerId), rows.map(r => r.trust), rows.map(r => r.trusted), rows.map(r => r.successes),
        rows.map(r => r.failures), rows.map(r => r.mismatches), rows.map(r => r.rttBaselineMs), rows.map(r => r.countsAtMs), rows.map(r => r.updatedAtMs)
      ])
    },
    async listTrust () {
      const res = await query<TrustRow>('listTrust', 'SELECT * FROM peer_trust ORDER BY peer_id LIMIT $1', [MAX_TRUST_RECORDS])
      return res.rows.map(toRecord)
    },
    async deleteTrust (peerId) {
      checkString(peerId, 'peerId')
      await query('deleteTrust', 'DELETE FROM peer_trust WHERE peer_id = $1', [peerId])
    }
  }
}
