import '../config/polyfill.js'
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { createStore, StoreError, type JobRecord, type Store } from './index.js'

const PG_URL = process.env.VOIKE_TEST_DATABASE_URL
const T0 = 1_700_000_000_000

function job (id: string, over: Partial<JobRecord> = {}): JobRecord {
  return { id, kind: 'fib', status: 'succeeded', params: { n: 10 }, result: null, error: null, coordinator: 'peerA', createdAtMs: T0, updatedAtMs: T0, finishedAtMs: T0, ...over }
}

const verification = (uncheckedBy: Record<string, number[]>): Record<string, unknown> =>
  ({ status: 'unverified', reason: 'r', checkedSegments: 1, uncheckedBy, suspectSegments: [], caughtPeers: [] })

async function withStore (backend: 'sqlite' | 'postgres', fn: (store: Store) => Promise<void>): Promise<void> {
  if (backend === 'sqlite') {
    const dir = await mkdtemp(join(tmpdir(), 'voike-verif-'))
    const store = await createStore({ dataDir: dir })
    try { await fn(store) } finally { await store.close(); await rm(dir, { recursive: true, force: true }) }
    return
  }
  const schema = `t_verif_${randomBytes(5).toString('hex')}`
  const store = await createStore({ databaseUrl: PG_URL as string, schema, poolMax: 2 })
  try {
    await fn(store)
  } finally {
    await store.close()
    const admin = new pg.Client({ connectionString: PG_URL })
    await admin.connect()
    try { await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`) } finally { await admin.end() }
  }
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`job verification in the store (${backend})`, { skip: backend === 'postgres' && PG_URL === undefined ? 'VOIKE_TEST_DATABASE_URL not set' : false }, () => {
    test('jobs.verification: absent until written, patched, fenced, and listed by vouching peer', async () => {
      await withStore(backend, async (store) => {
        await store.createJob(job('j1'), [])
        await store.createJob(job('j2', { createdAtMs: T0 + 1 }), [])
        await store.createJob(job('j3', { coordinator: 'peerB' }), [])
        await store.createJob(job('j4', { createdAtMs: T0 + 2 }), [])
        assert.deepEqual((await store.getJob('j1'))?.job, job('j1'), 'no verification recorded: the record is as it was')
        assert.equal(await store.updateJob('j1', { verification: verification({ peerX: [0, 2] }) }, { coordinator: 'peerA' }), true)
        await store.updateJob('j2', { verification: verification({ peerX: [1], peerY: [3] }) })
        await store.updateJob('j3', { verification: verification({ peerX: [1] }) })
        await store.updateJob('j4', { verification: verification({ peerY: [0] }) })
        assert.deepEqual((await store.getJob('j1'))?.job.verification, verification({ peerX: [0, 2] }))
        assert.equal(await store.updateJob('j3', { verification: null }, { coordinator: 'peerA' }), false, 'fenced')
        assert.ok(typeof store.listJobsVouchedBy === 'function')
        assert.deepEqual((await store.listJobsVouchedBy('peerA', 'peerX', 10)).map(j => j.id), ['j1', 'j2'])
        assert.deepEqual((await store.listJobsVouchedBy('peerA', 'peerX', 1)).map(j => j.id), ['j1'])
        assert.deepEqual((await store.listJobsVouchedBy('peerA', 'peerY', 10)).map(j => j.id), ['j2', 'j4'])
        assert.deepEqual((await store.listJobsVouchedBy('peerB', 'peerX', 10)).map(j => j.id), ['j3'])
        assert.deepEqual(await store.listJobsVouchedBy('peerA', 'peerZ', 10), [])
        for (const [peer, limit, field] of [["x'); DROP TABLE jobs; --", 10, 'peer'], ['peerX', 0, 'limit'], ['peerX', 5000, 'limit']] as const) {
          await assert.rejects(store.listJobsVouchedBy('peerA', peer, limit), (err: unknown) => err instanceof StoreError && err.code === 'ERR_INVALID_ARGUMENT' && err.message.includes(field))
        }
      })
    })
  })
}
