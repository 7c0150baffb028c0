import '../config/polyfill.js'
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import Database from 'better-sqlite3'
import {
  MAX_LIST_LIMIT, SQLITE_FILE_NAME, STORE_SCHEMA_VERSION, StoreError, createStore
} from './index.js'
import { MIGRATIONS, MIGRATIONS_TABLE_SQL } from './schema.js'
import type { JobRecord, MemberRecord, SegmentRecord, Store, StoreErrorCode, StoreOptions } from './index.js'

const PG_URL = process.env.VOIKE_TEST_DATABASE_URL
/** Why the PostgreSQL tests are skipped (reported by the runner, counted in its summary). */
const PG_SKIP = PG_URL === undefined || PG_URL === '' ? 'VOIKE_TEST_DATABASE_URL is not set: PostgreSQL tests need a database (e.g. postgres://postgres@127.0.0.1:5432/test)' : false
/** A hang fails one test, not the suite. */
const STORE_TEST_MS = 60_000
const T0 = 1_700_000_000_000 // epoch ms beyond 2^32, so BIGINT conversion is exercised

async function rejectsWith (p: Promise<unknown>, code: StoreErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected StoreError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    if (message !== undefined) assert.match(err.message, message)
    return true
  })
}

/** Opened read-only to inspect the file the store wrote. */
const READ_ONLY = true

function member (peerId: string, over: Partial<MemberRecord> = {}): MemberRecord {
  return {
    peerId,
    addrs: [`/ip4/127.0.0.1/tcp/4001/p2p/${peerId}`],
    cores: 2,
    memoryBytes: 64 * 1024 ** 3,
    version: '0.1.0',
    startedAtMs: T0,
    status: 'alive',
    lastSeenMs: T0 + 10,
    leftAtMs: null,
    isGenesis: false,
    host: 'h1',
    ...over
  }
}

function job (id: string, over: Partial<JobRecord> = {}): JobRecord {
  return {
    id,
    kind: 'fib',
    status: 'queued',
    params: { n: 1000, segments: 3 },
    result: null,
    error: null,
    coordinator: 'peerA',
    createdAtMs: T0,
    updatedAtMs: T0,
    finishedAtMs: null,
    ...over
  }
}

function segments (jobId: string, count: number): SegmentRecord[] {
  return Array.from({ length: count }, (_, index) => ({
    jobId, index, descriptor: { start: index * 100, end: (index + 1) * 100 }, status: 'pending' as const,
    node: null, attempts: 0, lost: 0, seq: 0, ms: null, result: null
  }))
}

interface Backend {
  name: string
  /** Options naming a fresh, empty location (temp dir or schema). */
  fresh: () => Promise<StoreOptions>
  /** Versions recorded in schema_migrations at that location, read behind the store's back. */
  migrationVersions: (opts: StoreOptions) => Promise<number[]>
  /** Behind the store's back: applies the migrations up to `version` and runs `sql` (an older node's database). */
  createAtVersion: (opts: StoreOptions, version: number, sql: string) => Promise<void>
  cleanup: () => Promise<void>
  /** The reason this backend's tests are skipped, or false. */
  skip: string | false
}

function sqliteBackend (): Backend {
  const dirs: string[] = []
  return {
    name: 'sqlite',
    skip: false,
    async fresh () {
      const dir = await mkdtemp(join(tmpdir(), 'voike-store-'))
      dirs.push(dir)
      return { dataDir: join(dir, 'data') } // a missing subdirectory: the store must create it
    },
    async migrationVersions (opts) {
      const db = new Database(join(opts.dataDir as string, SQLITE_FILE_NAME), { readonly: READ_ONLY })
      try {
        return (db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as Array<{ version: number }>).map(r => r.version)
      } finally {
        db.close()
      }
    },
    async createAtVersion (opts, version, sql) {
      await mkdir(opts.dataDir as string, { recursive: true })
      const db = new Database(join(opts.dataDir as string, SQLITE_FILE_NAME))
      try {
        db.exec(MIGRATIONS_TABLE_SQL)
        for (const m of MIGRATIONS.filter(m => m.version <= version)) {
          db.exec(m.sqlite)
          db.prepare('INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)').run(m.version, m.name, T0)
        }
        db.exec(sql)
      } finally {
        db.close()
      }
    },
    async cleanup () {
      for (const d of dirs) await rm(d, { recursive: true, force: true })
    }
  }
}

function postgresBackend (url: string): Backend {
  const schemas: string[] = []
  const admin = new pg.Client({ connectionString: url })
  let connected: Promise<void> | undefined
  const ready = async (): Promise<void> => { connected ??= admin.connect().then(() => {}); await connected }
  return {
    name: 'postgres',
    skip: PG_SKIP,
    async fresh () {
      const schema = `t_${randomBytes(6).toString('hex')}`
      schemas.push(schema)
      return { databaseUrl: url, schema }
    },
    async migrationVersions (opts) {
      await ready()
      const res = await admin.query<{ version: number }>(`SELECT version FROM ${opts.schema as string}.schema_migrations ORDER BY version`)
      return res.rows.map(r => r.version)
    },
    async createAtVersion (opts, version, sql) {
      await ready()
      const schema = opts.schema as string
      await admin.query('BEGIN')
      try {
        await admin.query(`CREATE SCHEMA ${schema}`)
        await admin.query(`SET LOCAL search_path TO ${schema}`)
        await admin.query(MIGRATIONS_TABLE_SQL)
        for (const m of MIGRATIONS.filter(m => m.version <= version)) {
          await admin.query(m.postgres)
          await admin.query('INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)', [m.version, m.name, T0])
        }
        await admin.query(sql)
        await admin.query('COMMIT')
      } catch (err) {
        await admin.query('ROLLBACK')
        throw err
      }
    },
    async cleanup () {
      await ready()
      for (const s of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`)
      await admin.end()
    }
  }
}

const allVersions = Array.from({ length: STORE_SCHEMA_VERSION }, (_, i) => i + 1)

function suite (backend: Backend): void {
  const testOpts = { timeout: STORE_TEST_MS, skip: backend.skip }
  describe(`store (${backend.name})`, () => {
    after(async () => { if (backend.skip === false) await backend.cleanup() })

    /** Opens a store on `opts` (fresh by default) and closes it when the test ends. */
    async function open (t: { after: (fn: () => Promise<void>) => void }, opts?: StoreOptions): Promise<{ store: Store, opts: StoreOptions }> {
      const o = opts ?? await backend.fresh()
      const store = await createStore(o)
      t.after(async () => { await store.close() })
      return { store, opts: o }
    }

    test('migrations are idempotent: concurrent and repeated opens apply each once', testOpts, async (t) => {
      const opts = await backend.fresh()
      const [a, b] = await Promise.all([createStore(opts), createStore(opts)])
      t.after(async () => { await a.close(); await b.close() })
      assert.equal(a.kind, backend.name)
      assert.deepEqual(await backend.migrationVersions(opts), allVersions)
      // Two stores on one location see each other's writes (nodes sharing a database).
      await a.createJob(job('j1'), segments('j1', 2))
      assert.equal((await b.getJob('j1'))?.segments.length, 2)
      const c = await createStore(opts)
      await c.close()
      assert.deepEqual(await backend.migrationVersions(opts), allVersions)
    })

    test('members: upsert, list, status changes', testOpts, async (t) => {
      const { store } = await open(t)
      assert.deepEqual(await store.listMembers(), [])
      const b = member('peerB', { isGenesis: true, host: 'other-host', addrs: ['/ip4/10.0.0.2/tcp/1', '/ip6/::1/tcp/2'] })
      await store.upsertMember(b)
      await store.upsertMember(member('peerA'))
      assert.deepEqual(await store.listMembers(), [member('peerA'), b])

      const b2 = member('peerB', { cores: 8, version: '0.2.0', addrs: [], startedAtMs: T0 + 5000 })
      await store.upsertMember(b2) // replaces every field
      assert.deepEqual((await store.listMembers())[1], b2)

      await store.setMemberStatus('peerA', 'suspect', T0 + 100)
      let a = (await store.listMembers())[0]
      assert.equal(a.status, 'suspect')
      assert.equal(a.lastSeenMs, T0 + 10, 'a suspicion is not a sighting')

      await store.setMemberStatus('peerA', 'dead', T0 + 200, true)
      a = (await store.listMembers())[0]
      assert.deepEqual([a.status, a.leftAtMs], ['dead', T0 + 200])

      await store.setMemberStatus('peerA', 'alive', T0 + 300)
      a = (await store.listMembers())[0]
      assert.deepEqual([a.status, a.leftAtMs, a.lastSeenMs], ['alive', null, T0 + 300])
      await store.setMemberStatus('peerA', 'alive', T0 + 250) // late observation
      assert.equal((await store.listMembers())[0].lastSeenMs, T0 + 300, 'lastSeenMs never goes back')

      await rejectsWith(store.setMemberStatus('nobody', 'dead', T0), 'ERR_STORE_NOT_FOUND', /nobody/)
      await rejectsWith(store.setMemberStatus('peerA', 'alive', T0, true), 'ERR_INVALID_ARGUMENT', /left/)
      await rejectsWith(store.upsertMember(member('peerC', { cores: -1 })), 'ERR_INVALID_ARGUMENT', /member\.cores/)
      await rejectsWith(store.upsertMember(member('peerC', { status: 'zombie' as 'dead' })), 'ERR_INVALID_ARGUMENT', /member\.status/)
      assert.equal((await store.listMembers()).length, 2)
    })

    test('a reopened store reloads members and jobs', testOpts, async (t) => {
      const opts = await backend.fresh()
      const first = await createStore(opts)
      await first.upsertMember(member('peerA', { isGenesis: true }))
      await first.createJob(job('j1', { status: 'running' }), segments('j1', 3))
      await first.updateSegments([{ jobId: 'j1', index: 1, patch: { status: 'done', node: 'peerA', attempts: 1, ms: 12.5, result: { sum: '42' } } }])
      const before = await first.getJob('j1')
      await first.close()

      const { store } = await open(t, opts)
      assert.deepEqual(await store.listMembers(), [member('peerA', { isGenesis: true })])
      assert.deepEqual(await store.getJob('j1'), before)
      assert.equal(before?.segments[1].ms, 12.5)
      assert.deepEqual((await store.listUnfinishedJobs('peerA')).map(j => j.id), ['j1'])
    })

    test('createJob persists a job with its segments atomically', testOpts, async (t) => {
      const { store } = await open(t)
      const j = job('j1', { params: { n: 10, segments: 4 } })
      const segs = segments('j1', 4)
      await store.createJob(j, segs)
      assert.deepEqual(await store.getJob('j1'), { job: j, segments: segs })

      // A repeated segment index fails in the database after the job row was written: nothing stays.
      const dup = segments('j2', 3)
      dup[2] = { ...dup[2], index: 1 }
      await rejectsWith(store.createJob(job('j2'), dup), 'ERR_STORE_CONFLICT', /j2/)
      assert.equal(await store.getJob('j2'), null)

      // A reused job id fails and leaves the original untouched.
      await rejectsWith(store.createJob(job('j1', { kind: 'other' }), segments('j1', 9)), 'ERR_STORE_CONFLICT')
      assert.deepEqual(await store.getJob('j1'), { job: j, segments: segs })

      await rejectsWith(store.createJob(job('j3'), segments('j1', 1)), 'ERR_INVALID_ARGUMENT', /jobId/)
      const bad = segments('j3', 1)
      // The descriptor is the kind's business, but it must be JSON.
      bad[0] = { ...bad[0], descriptor: undefined }
      await rejectsWith(store.createJob(job('j3'), bad), 'ERR_INVALID_ARGUMENT', /descriptor/)
      await rejectsWith(store.createJob(job('j3', { params: undefined }), []), 'ERR_INVALID_ARGUMENT', /params/)
      assert.equal(await store.getJob('j3'), null)

      await store.createJob(job('j4'), [])
      assert.deepEqual((await store.getJob('j4'))?.segments, [])
      assert.equal(await store.getJob('missing'), null)
    })

    test('updateJob applies only the given fields; unknown id is an error', testOpts, async (t) => {
      const { store } = await open(t)
      await store.createJob(job('j1', { error: 'old' }), [])
      await store.updateJob('j1', { status: 'running', updatedAtMs: T0 + 1 })
      let got = (await store.getJob('j1'))?.job
      assert.deepEqual(got, job('j1', { error: 'old', status: 'running', updatedAtMs: T0 + 1 }))

      await store.updateJob('j1', { status: 'succeeded', result: { digits: 209 }, error: null, updatedAtMs: T0 + 2, finishedAtMs: T0 + 2 })
      got = (await store.getJob('j1'))?.job
      assert.deepEqual(got, job('j1', { status: 'succeeded', result: { digits: 209 }, error: null, updatedAtMs: T0 + 2, finishedAtMs: T0 + 2 }))

      await store.updateJob('j1', { result: null, finishedAtMs: null })
      got = (await store.getJob('j1'))?.job
      assert.deepEqual([got?.result, got?.finishedAtMs, got?.status], [null, null, 'succeeded'])

      await rejectsWith(store.updateJob('nope', { status: 'failed' }), 'ERR_STORE_NOT_FOUND', /nope/)
      await rejectsWith(store.updateJob('j1', { status: 'done' as 'failed' }), 'ERR_INVALID_ARGUMENT', /patch\.status/)
      await rejectsWith(store.updateJob('j1', { kind: 'x' } as never), 'ERR_INVALID_ARGUMENT', /patch\.kind/)
    })

    test('updateSegments applies a batch in one transaction', testOpts, async (t) => {
      const { store } = await open(t)
      await store.createJob(job('j1'), segments('j1', 3))
      await store.createJob(job('j2'), segments('j2', 2))
      await store.updateSegments([
        { jobId: 'j1', index: 0, patch: { status: 'running', node: 'peerB', attempts: 1 } },
        { jobId: 'j2', index: 1, patch: { status: 'done', node: 'peerC', attempts: 1, ms: 3.25, result: ['a', 1] } },
        { jobId: 'j1', index: 0, patch: { status: 'done', ms: 7, result: { f: '13' } } }, // merged, later wins
        { jobId: 'j1', index: 2, patch: {} }
      ])
      const j1 = await store.getJob('j1')
      assert.deepEqual(j1?.segments[0], { ...segments('j1', 1)[0], status: 'done', node: 'peerB', attempts: 1, ms: 7, result: { f: '13' } })
      assert.deepEqual(j1?.segments.slice(1), segments('j1', 3).slice(1))
      const j2 = await store.getJob('j2')
      assert.deepEqual(j2?.segments[1], { ...segments('j2', 2)[1], status: 'done', node: 'peerC', attempts: 1, ms: 3.25, result: ['a', 1] })

      // A retry clears the node and result explicitly.
      await store.updateSegments([{ jobId: 'j2', index: 1, patch: { status: 'pending', node: null, ms: null, result: null, attempts: 2 } }])
      assert.deepEqual((await store.getJob('j2'))?.segments[1], { ...segments('j2', 2)[1], attempts: 2 })

      // One unknown segment rolls back the whole batch.
      await rejectsWith(store.updateSegments([
        { jobId: 'j1', index: 1, patch: { status: 'running' } },
        { jobId: 'j1', index: 99, patch: { status: 'running' } }
      ]), 'ERR_STORE_NOT_FOUND')
      assert.equal((await store.getJob('j1'))?.segments[1].status, 'pending')

      await rejectsWith(store.updateSegments([{ jobId: 'j1', index: 1, patch: { attempts: 1.5 } }]), 'ERR_INVALID_ARGUMENT', /attempts/)
      await store.updateSegments([]) // no-op
    })

    test('fenced writes: with a coordinator condition, a job claimed by another node is not written', testOpts, async (t) => {
      const { store, opts } = await open(t)
      await store.createJob(job('f1', { status: 'running', coordinator: 'peerA' }), segments('f1', 2))
      await store.createJob(job('f2', { status: 'running', coordinator: 'peerA' }), segments('f2', 2))
      // While peerA coordinates: conditional writes apply and report nothing fenced.
      assert.equal(await store.updateJob('f1', { updatedAtMs: T0 + 1 }, { coordinator: 'peerA' }), true)
      assert.deepEqual(await store.updateSegments([{ jobId: 'f1', index: 0, patch: { status: 'running', node: 'peerA', seq: 1 } }], { coordinator: 'peerA' }), [])
      assert.equal((await store.getJob('f1'))?.segments[0].status, 'running')

      // peerB claims both (through another connection, as another node would); f3 is peerA's new job.
      const other = await createStore(opts)
      t.after(async () => { await other.close() })
      await other.claimJobs('peerA', 'peerB')
      assert.deepEqual((await other.listUnfinishedJobs('peerB')).map(j => j.id).sort(), ['f1', 'f2'])
      await store.createJob(job('f3', { status: 'running', coordinator: 'peerA' }), segments('f3', 1))
      assert.equal(await other.updateJob('f1', { status: 'cancelled', finishedAtMs: T0 + 5, updatedAtMs: T0 + 5 }, { coordinator: 'peerB' }), true)

      // peerA's late writes: the end of f1 and its segments are refused; f3's (still peerA's) apply.
      assert.equal(await store.updateJob('f1', { status: 'succeeded', result: { x: 1 }, finishedAtMs: T0 + 9 }, { coordinator: 'peerA' }), false)
      const fenced = await store.updateSegments([
        { jobId: 'f1', index: 1, patch: { status: 'done', node: 'peerA', result: 'late' } },
        { jobId: 'f3', index: 0, patch: { status: 'done', node: 'peerA', result: 'mine' } },
        { jobId: 'f2', index: 0, patch: { status: 'done' } }
      ], { coordinator: 'peerA' })
      assert.deepEqual(fenced, ['f1', 'f2'])
      const f1 = await store.getJob('f1')
      assert.equal(f1?.job.status, 'cancelled', 'the new coordinator\'s end stays')
      assert.equal(f1?.job.result, null)
      assert.equal(f1?.job.coordinator, 'peerB')
      assert.equal(f1?.segments[1].status, 'pending')
      assert.equal((await store.getJob('f2'))?.segments[0].status, 'pending')
      assert.deepEqual((await store.getJob('f3'))?.segments[0].result, 'mine')

      // Unknown jobs are still errors; without a condition nothing is fenced.
      await rejectsWith(store.updateJob('nope', { status: 'failed' }, { coordinator: 'peerA' }), 'ERR_STORE_NOT_FOUND', /nope/)
      await rejectsWith(store.updateSegments([{ jobId: 'nope', index: 0, patch: { seq: 1 } }], { coordinator: 'peerA' }), 'ERR_STORE_NOT_FOUND')
      await rejectsWith(store.updateSegments([
        { jobId: 'f3', index: 0, patch: { seq: 5 } },
        { jobId: 'f3', index: 7, patch: { seq: 5 } }
      ], { coordinator: 'peerA' }), 'ERR_STORE_NOT_FOUND')
      assert.equal((await store.getJob('f3'))?.segments[0].seq, 0, 'rolled back')
      assert.deepEqual(await store.updateSegments([{ jobId: 'f1', index: 1, patch: { seq: 2 } }]), [])
      assert.equal((await store.getJob('f1'))?.segments[1].seq, 2)
      assert.equal(await store.updateJob('f1', { updatedAtMs: T0 + 10 }), true)
      await rejectsWith(store.updateJob('f1', {}, { coordinator: '' }), 'ERR_INVALID_ARGUMENT', /coordinator/)
      await rejectsWith(store.updateSegments([], { coordinator: 7 as unknown as string }), 'ERR_INVALID_ARGUMENT', /coordinator/)
    })

    test('listUnfinishedJobs filters by coordinator and status, oldest first', testOpts, async (t) => {
      const { store } = await open(t)
      const statuses = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const
      for (const [i, status] of statuses.entries()) {
        await store.createJob(job(`a${i}`, { status, coordinator: 'peerA', createdAtMs: T0 + 10 - i }), [])
        await store.createJob(job(`b${i}`, { status, coordinator: 'peerB', createdAtMs: T0 + i }), [])
      }
      assert.deepEqual((await store.listUnfinishedJobs('peerA')).map(j => j.id), ['a1', 'a0'])
      assert.deepEqual((await store.listUnfinishedJobs('peerB')).map(j => j.id), ['b0', 'b1'])
      assert.deepEqual(await store.listUnfinishedJobs('peerZ'), [])
      await store.updateJob('a1', { status: 'failed' })
      assert.deepEqual((await store.listUnfinishedJobs('peerA')).map(j => j.id), ['a0'])
    })

    test('deleteMember forgets a member; an unknown peerId is a no-op', testOpts, async (t) => {
      const { store } = await open(t)
      await store.upsertMember(member('peerA'))
      await store.upsertMember(member('peerB', { status: 'dead', leftAtMs: T0 + 5 }))
      await store.deleteMember('peerB')
      assert.deepEqual(await store.listMembers(), [member('peerA')])
      await store.deleteMember('peerB') // gone already
      await store.deleteMember('nobody')
      assert.deepEqual(await store.listMembers(), [member('peerA')])
      await rejectsWith(store.setMemberStatus('peerB', 'alive', T0), 'ERR_STORE_NOT_FOUND')
      await store.upsertMember(member('peerB')) // it may join again
      assert.equal((await store.listMembers()).length, 2)
      await rejectsWith(store.deleteMember(''), 'ERR_INVALID_ARGUMENT', /peerId/)
      await rejectsWith(store.deleteMember(42 as unknown as string), 'ERR_INVALID_ARGUMENT', /peerId/)
    })

    test('segments keep their dispatch seq, which never goes back', testOpts, async (t) => {
      const opts = await backend.fresh()
      const first = await createStore(opts)
      const segs = segments('j1', 3)
      segs[1] = { ...segs[1], seq: 5 }
      await first.createJob(job('j1'), segs)
      assert.deepEqual((await first.getJob('j1'))?.segments.map(s => s.seq), [0, 5, 0])
      await first.updateSegments([{ jobId: 'j1', index: 0, patch: { seq: 3, status: 'running', attempts: 1 } }])
      await first.updateSegments([{ jobId: 'j1', index: 0, patch: { seq: 7 } }, { jobId: 'j1', index: 1, patch: { seq: 2, status: 'running' } }])
      // A stale write (lower seq) changes the other fields but not the seq.
      await first.updateSegments([{ jobId: 'j1', index: 0, patch: { seq: 6, attempts: 2 } }])
      // Several updates of one segment in a batch: the highest seq wins.
      await first.updateSegments([{ jobId: 'j1', index: 2, patch: { seq: 9 } }, { jobId: 'j1', index: 2, patch: { seq: 8 } }])
      const got = (await first.getJob('j1'))?.segments
      assert.deepEqual(got?.map(s => [s.seq, s.attempts, s.status]), [[7, 2, 'running'], [5, 0, 'running'], [9, 0, 'pending']])
      await first.close()
      const { store } = await open(t, opts)
      assert.deepEqual((await store.getJob('j1'))?.segments.map(s => s.seq), [7, 5, 9], 'seq survives a reopen')
      await rejectsWith(store.updateSegments([{ jobId: 'j1', index: 0, patch: { seq: -1 } }]), 'ERR_INVALID_ARGUMENT', /seq/)
      await rejectsWith(store.updateSegments([{ jobId: 'j1', index: 0, patch: { seq: 1.5 } }]), 'ERR_INVALID_ARGUMENT', /seq/)
      await rejectsWith(store.updateSegments([{ jobId: 'j1', index: 0, patch: { seq: 2 ** 31 } }]), 'ERR_INVALID_ARGUMENT', /seq/)
      const bad = segments('j2', 1)
      bad[0] = { ...bad[0], seq: undefined as unknown as number }
      await rejectsWith(store.createJob(job('j2'), bad), 'ERR_INVALID_ARGUMENT', /seq/)
    })

    test('a database of schema version 2 is migrated: its segments get seq 0 and their spans become descriptors', testOpts, async (t) => {
      const opts = await backend.fresh()
      await backend.createAtVersion(opts, 2, `
        INSERT INTO jobs (id, kind, status, params, coordinator, created_at_ms, updated_at_ms) VALUES ('old', 'fib', 'running', '{"n":10,"segments":1}', 'peerA', ${T0}, ${T0});
        INSERT INTO segments (job_id, idx, start_pos, end_pos, status, node, attempts) VALUES ('old', 0, 0, 10, 'running', 'peerB', 3);`)
      const { store } = await open(t, opts)
      assert.deepEqual(await backend.migrationVersions(opts), allVersions)
      const got = await store.getJob('old')
      assert.deepEqual(got?.segments, [{ jobId: 'old', index: 0, descriptor: { start: 0, end: 10 }, status: 'running', node: 'peerB', attempts: 3, lost: 0, seq: 0, ms: null, result: null }])
      await store.updateSegments([{ jobId: 'old', index: 0, patch: { seq: 4 } }])
      assert.equal((await store.getJob('old'))?.segments[0].seq, 4)
    })

    test('claimJobs hands the unfinished jobs of a coordinator to another, oldest first, once', testOpts, async (t) => {
      const { store, opts } = await open(t)
      const statuses = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const
      for (const [i, status] of statuses.entries()) {
        await store.createJob(job(`a${i}`, { status, coordinator: 'peerA', createdAtMs: T0 + 10 - i }), segments(`a${i}`, 2))
        await store.createJob(job(`b${i}`, { status, coordinator: 'peerB', createdAtMs: T0 + i }), [])
      }
      const before = Date.now()
      const claimed = await store.claimJobs('peerA', 'peerC')
      assert.deepEqual(claimed.map(j => [j.id, j.status, j.coordinator]), [['a1', 'running', 'peerC'], ['a0', 'queued', 'peerC']])
      for (const j of claimed) {
        assert.ok(j.updatedAtMs >= before, 'updatedAtMs is the claim time')
        assert.deepEqual(j, { ...job(j.id, { status: j.status, coordinator: 'peerC', createdAtMs: j.createdAtMs, updatedAtMs: j.updatedAtMs }) })
        assert.deepEqual((await store.getJob(j.id))?.job, j)
        assert.equal((await store.getJob(j.id))?.segments.length, 2, 'segments stay')
      }
      assert.deepEqual(await store.listUnfinishedJobs('peerA'), [])
      assert.deepEqual((await store.listUnfinishedJobs('peerC')).map(j => j.id), ['a1', 'a0'])
      for (const i of [2, 3, 4]) assert.equal((await store.getJob(`a${i}`))?.job.coordinator, 'peerA', 'ended jobs are not claimed')
      assert.deepEqual((await store.listUnfinishedJobs('peerB')).map(j => j.id), ['b0', 'b1'], 'other coordinators are untouched')
      assert.deepEqual(await store.claimJobs('peerA', 'peerD'), [], 'nothing left to claim')
      assert.deepEqual(await store.claimJobs('nobody', 'peerD'), [])
      await rejectsWith(store.claimJobs('peerB', 'peerB'), 'ERR_INVALID_ARGUMENT', /toCoordinator/)
      await rejectsWith(store.claimJobs('', 'peerB'), 'ERR_INVALID_ARGUMENT', /fromCoordinator/)

      // Two nodes sharing the database claim at once: every job goes to exactly one of them.
      const other = await createStore(opts)
      t.after(async () => { await other.close() })
      const many = Array.from({ length: 300 }, (_, i) => job(`m${String(i).padStart(3, '0')}`, { coordinator: 'peerE', status: i % 2 === 0 ? 'running' : 'queued', createdAtMs: T0 + i }))
      for (const j of many) await store.createJob(j, segments(j.id, 1))
      const [x, y] = await Promise.all([store.claimJobs('peerE', 'peerX'), other.claimJobs('peerE', 'peerY')])
      const ids = [...x, ...y].map(j => j.id).sort()
      assert.deepEqual(ids, many.map(j => j.id), 'each job claimed exactly once')
      assert.ok(x.every(j => j.coordinator === 'peerX') && y.every(j => j.coordinator === 'peerY'))
      const stored = await Promise.all(many.map(async j => (await store.getJob(j.id))?.job.coordinator))
      assert.equal(stored.filter(c => c === 'peerX').length, x.length)
      assert.equal(stored.filter(c => c === 'peerY').length, y.length)
    })

    test('listJobs: newest first, limit, status filter, cap', testOpts, async (t) => {
      const { store } = await open(t)
      await store.createJob(job('old', { createdAtMs: T0 }), [])
      await store.createJob(job('new', { createdAtMs: T0 + 2, status: 'running' }), [])
      await store.createJob(job('mid-a', { createdAtMs: T0 + 1 }), [])
      await store.createJob(job('mid-b', { createdAtMs: T0 + 1, status: 'running' }), [])
      assert.deepEqual((await store.listJobs()).map(j => j.id), ['new', 'mid-b', 'mid-a', 'old'])
      assert.deepEqual((await store.listJobs({ limit: 2 })).map(j => j.id), ['new', 'mid-b'])
      assert.deepEqual((await store.listJobs({ status: 'running' })).map(j => j.id), ['new', 'mid-b'])
      assert.deepEqual((await store.listJobs({ status: 'queued', limit: 1 })).map(j => j.id), ['mid-a'])
      assert.deepEqual(await store.listJobs({ status: 'cancelled' }), [])
      await rejectsWith(store.listJobs({ limit: 0 }), 'ERR_INVALID_ARGUMENT', /limit/)
      await rejectsWith(store.listJobs({ status: 'weird' as 'queued' }), 'ERR_INVALID_ARGUMENT', /status/)

      const extra = Array.from({ length: MAX_LIST_LIMIT }, (_, i) => job(`x${String(i).padStart(4, '0')}`, { createdAtMs: T0 - 1 - i }))
      await Promise.all(extra.map(async j => { await store.createJob(j, []) }))
      const all = await store.listJobs({ limit: MAX_LIST_LIMIT * 10 })
      assert.equal(all.length, MAX_LIST_LIMIT)
      assert.deepEqual(all.slice(0, 5).map(j => j.id), ['new', 'mid-b', 'mid-a', 'old', 'x0000'])
      assert.equal(all[all.length - 1].id, `x${String(MAX_LIST_LIMIT - 5).padStart(4, '0')}`)
    })

    test('JSON values round-trip', testOpts, async (t) => {
      const { store } = await open(t)
      // Characters that need escaping in JSON and in PostgreSQL array literals (the batch path).
      const tricky = 'quote " backslash \\ brace {a,b} comma, newline\n tab\t NULL-ish null emoji 🧮 ünïcødé'
      const big = 'x'.repeat(2 * 1024 * 1024) + tricky
      let nested: unknown = { leaf: [1, 2.5, -3, 1e300, true, false, null, tricky] }
      for (let i = 0; i < 40; i++) nested = { [`level ${i}`]: nested, list: [i, { i }] }
      const values: unknown[] = [nested, big, tricky, 42, 0.1, true, [], {}, [null, [null]], { '': '', 'k"\\': 'v' }]
      for (const [i, v] of values.entries()) {
        const id = `j${i}`
        const segs = segments(id, 2)
        segs[0] = { ...segs[0], result: v }
        await store.createJob(job(id, { params: v, result: v }), segs)
        await store.updateSegments([{ jobId: id, index: 1, patch: { result: v } }])
        const got = await store.getJob(id)
        assert.deepEqual(got?.job.params, v, `params ${i}`)
        assert.deepEqual(got?.job.result, v, `result ${i}`)
        assert.deepEqual(got?.segments.map(s => s.result), [v, v], `segment results ${i}`)
      }
      await store.createJob(job('jnull', { params: null }), [])
      assert.equal((await store.getJob('jnull'))?.job.params, null)
      await rejectsWith(store.createJob(job('jbig', { params: { n: 1n } }), []), 'ERR_INVALID_ARGUMENT', /params/)
    })

    test('a closed store rejects every call with ERR_STORE_CLOSED', testOpts, async () => {
      const store = await createStore(await backend.fresh())
      await store.close()
      await store.close() // idempotent
      await rejectsWith(store.listMembers(), 'ERR_STORE_CLOSED')
      await rejectsWith(store.getJob('j'), 'ERR_STORE_CLOSED')
      await rejectsWith(store.createJob(job('j'), segments('j', 1)), 'ERR_STORE_CLOSED')
      await rejectsWith(store.updateSegments([{ jobId: 'j', index: 0, patch: { attempts: 1 } }]), 'ERR_STORE_CLOSED')
      await rejectsWith(store.deleteMember('p'), 'ERR_STORE_CLOSED')
      await rejectsWith(store.claimJobs('p', 'q'), 'ERR_STORE_CLOSED')
    })
  })
}

suite(sqliteBackend())
suite(postgresBackend(PG_URL ?? ''))
{
  const backend = postgresBackend(PG_URL ?? '')
  const testOpts = { timeout: STORE_TEST_MS, skip: PG_SKIP }
  describe('store (postgres only)', () => {
    after(async () => { if (backend.skip === false) await backend.cleanup() })

    test('stores in different schemas of one database are isolated', testOpts, async (t) => {
      const a = await createStore(await backend.fresh())
      const b = await createStore(await backend.fresh())
      t.after(async () => { await a.close(); await b.close() })
      await a.createJob(job('j1'), [])
      await a.upsertMember(member('peerA'))
      assert.equal(await b.getJob('j1'), null)
      assert.deepEqual(await b.listMembers(), [])
    })

    test('options= in the URL is merged with the schema search_path', testOpts, async (t) => {
      const opts = await backend.fresh()
      const url = PG_URL as string
      const sep = url.includes('?') ? '&' : '?'
      const store = await createStore({ ...opts, databaseUrl: `${url}${sep}options=${encodeURIComponent('-c lock_timeout=5000')}` })
      t.after(async () => { await store.close() })
      await store.createJob(job('j1'), [])
      assert.deepEqual(await backend.migrationVersions(opts), allVersions)
      const check = await createStore(opts)
      t.after(async () => { await check.close() })
      assert.equal((await check.getJob('j1'))?.job.id, 'j1')
    })
  })
}

describe('createStore options', () => {
  test('bad schema names are rejected with ERR_INVALID_OPTION before connecting', { timeout: STORE_TEST_MS }, async () => {
    for (const schema of ['Bad', 'has-dash', '1abc', 'a"; DROP SCHEMA public; --', '', 'pg_catalog', 'x'.repeat(64)]) {
      await rejectsWith(createStore({ databaseUrl: 'postgres://postgres@127.0.0.1:1/none', schema }), 'ERR_INVALID_OPTION', /schema/)
    }
  })

  test('other invalid options are named', { timeout: STORE_TEST_MS }, async () => {
    await rejectsWith(createStore({}), 'ERR_INVALID_OPTION', /dataDir/)
    await rejectsWith(createStore({ databaseUrl: 'mysql://x' }), 'ERR_INVALID_OPTION', /databaseUrl/)
    await rejectsWith(createStore({ dataDir: ':memory:', poolMax: 0 }), 'ERR_INVALID_OPTION', /poolMax/)
    await rejectsWith(createStore({ dataDir: ':memory:', queryTimeoutMs: 1.5 }), 'ERR_INVALID_OPTION', /queryTimeoutMs/)
  })

  test('an unreachable PostgreSQL fails with ERR_STORE_OPEN', { timeout: STORE_TEST_MS }, async () => {
    await rejectsWith(createStore({ databaseUrl: 'postgres://postgres@127.0.0.1:1/none', queryTimeoutMs: 2000 }), 'ERR_STORE_OPEN')
  })

  test('an unusable data dir fails with ERR_STORE_OPEN', { timeout: STORE_TEST_MS }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'voike-store-'))
    t.after(async () => { await rm(dir, { recursive: true, force: true }) })
    const file = join(dir, 'not-a-dir')
    await writeFile(file, 'x')
    await rejectsWith(createStore({ dataDir: file }), 'ERR_STORE_OPEN', /not-a-dir/)
  })

  test(':memory: opens a private embedded store', { timeout: STORE_TEST_MS }, async () => {
    const store = await createStore({ dataDir: ':memory:' })
    try {
      await store.createJob(job('j1'), segments('j1', 1))
      assert.equal((await store.getJob('j1'))?.segments.length, 1)
    } finally {
      await store.close()
    }
  })
})
