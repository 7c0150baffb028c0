import '../config/polyfill.js'
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { createStore, StoreError, type FlowRunRecord, type FlowStepRecord, type StoreOptions } from './index.js'

const PG_URL = process.env.VOIKE_TEST_DATABASE_URL

function step (key: string, valueJson: string, over: Partial<FlowStepRecord> = {}): FlowStepRecord {
  return { key, op: 'FILTER@1.0', valueJson, rowsOut: 2, createdAtMs: 1_700_000_000_000, ...over }
}

function runRec (runId: string, over: Partial<FlowRunRecord> = {}): FlowRunRecord {
  return { runId, flow: 'f', planHash: 'h'.repeat(64), status: 'failed', startedAtMs: 1_700_000_000_000, finishedAtMs: 1_700_000_000_500, recordJson: JSON.stringify({ runId, steps: { a: { status: 'succeeded' } } }), ...over }
}

const backends: Array<{ name: string, fresh: () => Promise<StoreOptions>, cleanup: () => Promise<void> }> = []
{
  const dirs: string[] = []
  backends.push({
    name: 'sqlite',
    fresh: async () => { const d = await mkdtemp(join(tmpdir(), 'voike-flowstore-')); dirs.push(d); return { dataDir: d } },
    cleanup: async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }) }
  })
}
if (PG_URL !== undefined && PG_URL !== '') {
  const schemas: string[] = []
  backends.push({
    name: 'postgres',
    fresh: async () => { const schema = `t_${randomBytes(6).toString('hex')}`; schemas.push(schema); return { databaseUrl: PG_URL, schema } },
    cleanup: async () => {
      const c = new pg.Client({ connectionString: PG_URL })
      await c.connect()
      try { for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`) } finally { await c.end() }
    }
  })
}

for (const backend of backends) {
  describe(`flow store (${backend.name})`, () => {
    after(async () => { await backend.cleanup() })

    test('step results round-trip byte for byte and survive a reopen', async () => {
      const opts = await backend.fresh()
      // Key order and number text must come back exactly (row fields keep their order).
      const value = '[{"zeta":1,"alpha":"x","mid":{"b":2,"a":1}},{"zeta":2.5,"alpha":null,"mid":[]}]'
      let s = await createStore(opts)
      assert.equal(await s.getFlowStep('k1'), null)
      assert.equal(await s.putFlowStep(step('k1', value), { maxEntries: 10, maxBytes: 1 << 20 }), 0)
      await s.close()
      s = await createStore(opts)
      try {
        assert.deepEqual(await s.getFlowStep('k1'), step('k1', value))
        // Replacing keeps one row.
        await s.putFlowStep(step('k1', '"v2"', { rowsOut: null }), { maxEntries: 10, maxBytes: 1 << 20 })
        assert.deepEqual(await s.getFlowStep('k1'), step('k1', '"v2"', { rowsOut: null }))
      } finally { await s.close() }
    })

    test('step results are bounded by count and bytes, least recently used first', async (t) => {
      const s = await createStore(await backend.fresh())
      t.after(async () => { await s.close() })
      const b = { maxEntries: 3, maxBytes: 1000 }
      for (const k of ['a', 'b', 'c']) assert.equal(await s.putFlowStep(step(k, `"${k}"`), b), 0)
      assert.notEqual(await s.getFlowStep('a'), null) // a is now the most recently used
      assert.equal(await s.putFlowStep(step('d', '"d"'), b), 1)
      assert.equal(await s.getFlowStep('b'), null, 'b was the least recently used')
      for (const k of ['a', 'c', 'd']) assert.notEqual(await s.getFlowStep(k), null, k)
      // 400 + 400 + the 3-byte ones fit under 1000 only without the oldest entries.
      await s.putFlowStep(step('big1', JSON.stringify('x'.repeat(398))), b)
      await s.putFlowStep(step('big2', JSON.stringify('y'.repeat(398))), b)
      const kept = []
      for (const k of ['a', 'c', 'd', 'big1', 'big2']) if (await s.getFlowStep(k) !== null) kept.push(k)
      assert.deepEqual(kept, ['d', 'big1', 'big2'])
      // An entry bigger than maxBytes is not kept at all.
      await s.putFlowStep(step('huge', JSON.stringify('z'.repeat(2000))), b)
      assert.equal(await s.getFlowStep('huge'), null)
    })

    test('run records round-trip and are bounded by count', async (t) => {
      const s = await createStore(await backend.fresh())
      t.after(async () => { await s.close() })
      const b = { maxRuns: 2 }
      await s.putFlowRun(runRec('r1', { status: 'running', finishedAtMs: null }), b)
      await s.putFlowRun(runRec('r1'), b)
      assert.deepEqual(await s.getFlowRun('r1'), runRec('r1'))
      await s.putFlowRun(runRec('r2'), b)
      assert.equal(await s.putFlowRun(runRec('r3', { status: 'succeeded' }), b), 1)
      assert.equal(await s.getFlowRun('r1'), null)
      assert.equal((await s.getFlowRun('r3'))?.status, 'succeeded')
      assert.equal(await s.getFlowRun('nope'), null)
    })

    test('bad records and bounds are refused naming the field', async (t) => {
      const s = await createStore(await backend.fresh())
      t.after(async () => { await s.close() })
      const bad = async (p: Promise<unknown>, re: RegExp): Promise<void> => {
        await assert.rejects(p, (e: unknown) => e instanceof StoreError && e.code === 'ERR_INVALID_ARGUMENT' && re.test(e.message))
      }
      await bad(s.putFlowStep(step('', '1'), { maxEntries: 1, maxBytes: 1 }), /flowStep\.key/)
      await bad(s.putFlowStep(step('k', '1', { rowsOut: -1 }), { maxEntries: 1, maxBytes: 1 }), /flowStep\.rowsOut/)
      await bad(s.putFlowStep(step('k', '1'), { maxEntries: 0, maxBytes: 1 }), /bounds\.maxEntries/)
      await bad(s.putFlowRun(runRec('r', { status: 'odd' as 'failed' }), { maxRuns: 1 }), /flowRun\.status/)
      await bad(s.putFlowRun(runRec('r'), { maxRuns: 1.5 }), /bounds\.maxRuns/)
    })
  })
}
