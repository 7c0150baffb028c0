/**
 * pruneJobs: ended jobs (and their segments) go, by age or beyond the newest N, a bounded number
 * per call; unfinished jobs never. On SQLite always, on PostgreSQL when VOIKE_TEST_DATABASE_URL is set.
 */
import '../config/polyfill.js'
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { createStore, MAX_PRUNE_PER_CALL, StoreError, type JobRecord, type JobStatus, type SegmentRecord, type Store, type StoreOptions } from './index.js'

const PG_URL = process.env.VOIKE_TEST_DATABASE_URL
const T0 = 1_700_000_000_000

function job (id: string, status: JobStatus, finishedAtMs: number | null): JobRecord {
  return { id, kind: 'fib', status, params: { n: 10 }, result: null, error: null, coordinator: 'peerA', createdAtMs: T0, updatedAtMs: T0, finishedAtMs }
}

function segs (jobId: string): SegmentRecord[] {
  return [0, 1].map(index => ({ jobId, index, descriptor: { start: index, end: index + 1 }, status: 'done' as const, node: 'p', attempts: 1, seq: 1, ms: 1, result: null }))
}

interface Variant { name: string, fresh: () => Promise<StoreOptions>, cleanup: () => Promise<void> }

const variants: Variant[] = []
{
  const dirs: string[] = []
  variants.push({
    name: 'sqlite',
    fresh: async () => { const d = await mkdtemp(join(tmpdir(), 'voike-retention-')); dirs.push(d); return { dataDir: d } },
    cleanup: async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }) }
  })
}
if (PG_URL !== undefined && PG_URL !== '') {
  const schemas: string[] = []
  variants.push({
    name: 'postgres',
    fresh: async () => { const s = `t_${randomBytes(6).toString('hex')}`; schemas.push(s); return { databaseUrl: PG_URL, schema: s } },
    cleanup: async () => {
      const c = new pg.Client({ connectionString: PG_URL })
      await c.connect()
      try { for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`) } finally { await c.end() }
    }
  })
}

for (const v of variants) {
  describe(`pruneJobs (${v.name})`, () => {
    after(async () => { await v.cleanup() })

    async function withJobs (t: { after: (fn: () => Promise<void>) => void }): Promise<Store> {
      const store = await createStore(await v.fresh())
      t.after(async () => { await store.close() })
      // e1..e5 ended at T0+1..T0+5 (mixed final statuses); r running and q queued never end.
      const statuses: JobStatus[] = ['succeeded', 'failed', 'cancelled', 'succeeded', 'succeeded']
      for (const [i, s] of statuses.entries()) await store.createJob(job(`e${i + 1}`, s, T0 + i + 1), segs(`e${i + 1}`))
      await store.createJob(job('r', 'running', null), segs('r'))
      await store.createJob(job('q', 'queued', null), segs('q'))
      return store
    }

    const ids = async (store: Store): Promise<string[]> => (await store.listJobs({ limit: 100 })).map(j => j.id).sort()

    test('by age: ended before the cutoff, oldest first, at most `limit` per call; segments go too', async (t) => {
      const store = await withJobs(t)
      assert.deepEqual((await store.pruneJobs({ endedBeforeMs: T0 + 4 }, 2)).sort(), ['e1', 'e2'])
      assert.deepEqual((await store.pruneJobs({ endedBeforeMs: T0 + 4 }, 2)), ['e3'])
      assert.deepEqual(await store.pruneJobs({ endedBeforeMs: T0 + 4 }, 2), [])
      assert.deepEqual(await ids(store), ['e4', 'e5', 'q', 'r'])
      assert.equal(await store.getJob('e1'), null)
      assert.equal((await store.getJob('e4'))?.segments.length, 2)
      // Everything ended: unfinished jobs stay, whatever the cutoff.
      assert.deepEqual((await store.pruneJobs({ endedBeforeMs: Number.MAX_SAFE_INTEGER }, 100)).sort(), ['e4', 'e5'])
      assert.deepEqual(await ids(store), ['q', 'r'])
      assert.equal((await store.getJob('r'))?.segments.length, 2)
    })

    test('by count: beyond the newest N ended jobs, oldest first, bounded', async (t) => {
      const store = await withJobs(t)
      assert.deepEqual((await store.pruneJobs({ keepNewest: 2 }, 1)), ['e1'])
      assert.deepEqual((await store.pruneJobs({ keepNewest: 2 }, 100)).sort(), ['e2', 'e3'])
      assert.deepEqual(await store.pruneJobs({ keepNewest: 2 }, 100), [])
      assert.deepEqual(await ids(store), ['e4', 'e5', 'q', 'r'])
      assert.deepEqual((await store.pruneJobs({ keepNewest: 0 }, 100)).sort(), ['e4', 'e5'])
      assert.deepEqual(await ids(store), ['q', 'r'])
    })

    test('bad rules and limits are refused naming the field', async (t) => {
      const store = await withJobs(t)
      const refused = async (p: Promise<unknown>, re: RegExp): Promise<void> => {
        await assert.rejects(p, (e: unknown) => e instanceof StoreError && e.code === 'ERR_INVALID_ARGUMENT' && re.test(e.message))
      }
      await refused(store.pruneJobs({ endedBeforeMs: -1 }, 1), /rule\.endedBeforeMs/)
      await refused(store.pruneJobs({ keepNewest: 1.5 }, 1), /rule\.keepNewest/)
      await refused(store.pruneJobs({} as never, 1), /rule must have endedBeforeMs or keepNewest/)
      await refused(store.pruneJobs({ endedBeforeMs: 1, keepNewest: 1 } as never, 1), /rule must have endedBeforeMs or keepNewest/)
      await refused(store.pruneJobs({ keepNewest: 1 }, 0), new RegExp(`limit must be an integer in 1\\.\\.${MAX_PRUNE_PER_CALL}`))
      await refused(store.pruneJobs({ keepNewest: 1 }, MAX_PRUNE_PER_CALL + 1), /limit/)
      assert.equal((await ids(store)).length, 7)
    })
  })
}
