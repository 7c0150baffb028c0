/** FlowStore on PostgreSQL (store/flows.ts has the records and the bounds). */
import type pg from 'pg'
import { checkFlowRun, checkFlowStep, flowSql, toFlowRun, toFlowStep, useClock, type FlowRunRow, type FlowStepRow, type FlowStore } from './flows.js'
import { checkString } from './validate.js'

type Query = <R extends pg.QueryResultRow>(op: string, name: string, text: string, values: unknown[], client?: pg.PoolClient) => Promise<pg.QueryResult<R>>
type Transaction = <T>(op: string, fn: (client: pg.PoolClient) => Promise<T>) => Promise<T>

/** `query` runs a named statement (on `client` inside `transaction`), mapping driver errors (postgres.ts). */
export function postgresFlowStore (query: Query, transaction: Transaction): FlowStore {
  const sql = flowSql('postgres')
  const q = async <R extends pg.QueryResultRow>(op: string, name: keyof typeof sql, values: unknown[], client?: pg.PoolClient): Promise<pg.QueryResult<R>> =>
    await query<R>(op, `voike_flow_${name}`, sql[name], values, client)
  // Concurrent evictions would lock overlapping rows in different orders (deadlock): one writer
  // per table at a time; the transactions are short.
  const lock = async (c: pg.PoolClient, table: string): Promise<void> => {
    await query('putFlow', 'voike_flow_lock', 'SELECT pg_advisory_xact_lock(hashtext($1))', [`voike.${table}`], c)
  }
  return {
    async getFlowStep (key) {
      checkString(key, 'key')
      const { rows } = await q<FlowStepRow>('getFlowStep', 'getStep', [key])
      if (rows.length === 0) return null
      await q('getFlowStep', 'touchStep', [useClock(), key])
      return toFlowStep(rows[0])
    },
    async putFlowStep (r, b) {
      checkFlowStep(r, b)
      const now = useClock()
      return await transaction('putFlowStep', async (c) => {
        await lock(c, 'flow_steps')
        await q('putFlowStep', 'putStep', [r.key, r.op, r.valueJson, r.rowsOut, r.valueJson.length, r.createdAtMs, now], c)
        const byCount = await q('putFlowStep', 'evictStepsByCount', [b.maxEntries], c)
        const byBytes = await q('putFlowStep', 'evictStepsByBytes', [b.maxBytes], c)
        return (byCount.rowCount ?? 0) + (byBytes.rowCount ?? 0)
      })
    },
    async getFlowRun (runId) {
      checkString(runId, 'runId')
      const { rows } = await q<FlowRunRow>('getFlowRun', 'getRun', [runId])
      return rows.length === 0 ? null : toFlowRun(rows[0])
    },
    async putFlowRun (r, b) {
      checkFlowRun(r, b)
      return await transaction('putFlowRun', async (c) => {
        await lock(c, 'flow_runs')
        await q('putFlowRun', 'putRun', [r.runId, r.flow, r.planHash, r.status, r.startedAtMs, r.finishedAtMs, r.recordJson, r.recordJson.length, useClock()], c)
        return (await q('putFlowRun', 'evictRuns', [b.maxRuns], c)).rowCount ?? 0
      })
    }
  }
}
