/** The TrustStore on the embedded SQLite store (sqlite.ts spreads these methods into its Store). */
import type Database from 'better-sqlite3'
import { checkString } from './validate.js'
import { checkTrustRecords, MAX_TRUST_RECORDS, type TrustRecord, type TrustStore } from './trust.js'

interface TrustRow {
  peer_id: string, trust: number, trusted: number, successes: number, failures: number, mismatches: number,
  rtt_baseline_ms: number | null, counts_at_ms: number, updated_at_ms: number
}

const toRecord = (r: TrustRow): TrustRecord => ({
  peerId: r.peer_id,
  trust: r.trust,
  trusted: r.trusted === 1,
  successes: r.successes,
  failures: r.failures,
  mismatches: r.mismatches,
  rttBaselineMs: r.rtt_baseline_ms,
  countsAtMs: r.counts_at_ms,
  updatedAtMs: r.updated_at_ms
})

/** `run` is the store's guard (closed check, driver errors mapped to StoreErrors). */
export function sqliteTrustStore (db: Database.Database, run: <T>(op: string, fn: () => T) => T): TrustStore {
  let stmts: { upsert: Database.Statement, list: Database.Statement<[number], TrustRow>, del: Database.Statement<[string]> } | undefined
  // Prepared on first use: the table exists once the store has migrated.
  const s = (): NonNullable<typeof stmts> => {
    stmts ??= {
      upsert: db.prepare(`INSERT INTO peer_trust (peer_id, trust, trusted, successes, failures, mismatches, rtt_baseline_ms, counts_at_ms, updated_at_ms)
        VALUES (@peerId, @trust, @trusted, @successes, @failures, @mismatches, @rttBaselineMs, @countsAtMs, @updatedAtMs)
        ON CONFLICT (peer_id) DO UPDATE SET trust = excluded.trust, trusted = excluded.trusted, successes = excluded.successes,
          failures = excluded.failures, mismatches = excluded.mismatches, rtt_baseline_ms = excluded.rtt_baseline_ms,
          counts_at_ms = excluded.counts_at_ms, updated_at_ms = excluded.updated_at_ms`),
      list: db.prepare<[number], TrustRow>('SELECT * FROM peer_trust ORDER BY peer_id LIMIT ?'),
      del: db.prepare<[string]>('DELETE FROM peer_trust WHERE peer_id = ?')
    }
    return stmts
  }
  return {
    async upsertTrust (records) {
      const rows = checkTrustRecords(records)
      if (rows.length === 0) return
      run('upsertTrust', () => {
        const st = s()
        db.transaction(() => { for (const r of rows) st.upsert.run({ ...r, trusted: r.trusted ? 1 : 0 }) })()
      })
    },
    async listTrust () {
      return run('listTrust', () => s().list.all(MAX_TRUST_RECORDS).map(toRecord))
    },
    async deleteTrust (peerId) {
      checkString(peerId, 'peerId')
      run('deleteTrust', () => s().del.run(peerId))
    }
  }
}
