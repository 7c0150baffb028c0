/** FlowStore on the embedded SQLite database (store/flows.ts has the records and the bounds). */
import type Database from 'better-sqlite3'
import { checkFlowRun, checkFlowStep, flowSql, toFlowRun, toFlowStep, useClock, type FlowRunRow, type FlowStepRow, type FlowStore } from './flows.js'
import { checkString } from './validate.js'

/** `run` maps driver errors and refuses a closed store (sqlite.ts). */
export function sqliteFlowStore (db: Database.Database, run: <T>(op: string, fn: () => T) => T): FlowStore {
  const sql = flowSql('sqlite')
  const s = Object.fromEntries(Object.entries(sql).map(([k, v]) => [k, db.prepare(v)])) as Record<keyof typeof sql, Database.Statement>
  const putStep = db.transaction((args: unknown[], maxEntries: number, maxBytes: number): number =>
    (s.putStep.run(...args), s.evictStepsByCount.run(maxEntries).changes + s.evictStepsByBytes.run(maxBytes).changes))
  const putRun = db.transaction((args: unknown[], maxRuns: number): number => (s.putRun.run(...args), s.evictRuns.run(maxRuns).changes))
  return {
    async getFlowStep (key) {
      checkString(key, 'key')
      return run('getFlowStep', () => {
        const row = s.getStep.get(key) as FlowStepRow | undefined
        if (row === undefined) return null
        s.touchStep.run(useClock(), key)
        return toFlowStep(row)
      })
    },
    async putFlowStep (r, b) {
      checkFlowStep(r, b)
      const now = useClock()
      return run('putFlowStep', () => putStep.immediate([r.key, r.op, r.valueJson, r.rowsOut, r.valueJson.length, r.createdAtMs, now], b.maxEntries, b.maxBytes))
    },
    async getFlowRun (runId) {
      checkString(runId, 'runId')
      return run('getFlowRun', () => {
        const row = s.getRun.get(runId) as FlowRunRow | undefined
        return row === undefined ? null : toFlowRun(row)
      })
    },
    async putFlowRun (r, b) {
      checkFlowRun(r, b)
      return run('putFlowRun', () => putRun.immediate([r.runId, r.flow, r.planHash, r.status, r.startedAtMs, r.finishedAtMs, r.recordJson, r.recordJson.length, useClock()], b.maxRuns))
    }
  }
}
