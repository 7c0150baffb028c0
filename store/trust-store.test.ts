import '../config/polyfill.js'
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { createStore, StoreError, STORE_SCHEMA_VERSION, type StoreOptions, type TrustRecord } from './index.js'

const PG_URL = process.env.VOIKE_TEST_DATABASE_URL
const T0 = 1_700_000_000_000

function rec (peerId: string, over: Partial<TrustRecord> = {}): TrustRecord {
  return { peerId, trust: 0.9, trusted: true, successes: 12.5, failures: 0.25, mismatches: 0, rttBaselineMs: 0.75, countsAtMs: T0, updatedAtMs: T0 + 1, ...over }
}

interface Backend { name: string, fresh: () => Promise<StoreOptions>, cleanup: () => Promise<void> }

function sqlite (): Backend {
  const dirs: string[] = []
  return {
    name: 'sqlite',
    async fresh () { const d = await mkdtemp(join(tmpdir(), 'voike-trust-')); dirs.push(d); return { dataDir: d } },
    async cleanup () { for (const d of dirs) await rm(d, { recursive: true, force: true }) }
  }
}

function postgres (url: string): Backend {
  const schemas: string[] = []
  return {
    name: 'postgres',
    async fresh () { const schema = `t_${randomBytes(6).toString('hex')}`; schemas.push(schema); return { databaseUrl: url, schema } },
    async cleanup () {
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      try { for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`) } finally { await c.end() }
    }
  }
}

const backends: Backend[] = [sqlite()]
if (PG_URL !== undefined && PG_URL !== '') backends.push(postgres(PG_URL))

for (const b of backends) {
  describe(`TrustStore (${b.name})`, () => {
    after(async () => { await b.cleanup() })

    test('the schema includes the trust migration', () => {
      assert.ok(STORE_SCHEMA_VERSION >= 5)
    })

    test('upsert, list ordered by peer, replace, delete', async () => {
      const store = await createStore(await b.fresh())
      try {
        assert.deepEqual(await store.listTrust(), [])
        await store.upsertTrust([rec('peerB'), rec('peerA', { trust: 0.2, trusted: false, mismatches: 1.5, rttBaselineMs: null })])
        const list = await store.listTrust()
        assert.deepEqual(list.map(r => r.peerId), ['peerA', 'peerB'])
        assert.deepEqual(list[0], rec('peerA', { trust: 0.2, trusted: false, mismatches: 1.5, rttBaselineMs: null }))
        assert.deepEqual(list[1], rec('peerB'))
        await store.upsertTrust([rec('peerB', { trust: 0.5, trusted: false, failures: 7, updatedAtMs: T0 + 99 })])
        assert.deepEqual((await store.listTrust())[1], rec('peerB', { trust: 0.5, trusted: false, failures: 7, updatedAtMs: T0 + 99 }))
        await store.deleteTrust('peerA')
        await store.deleteTrust('nobody')
        assert.deepEqual((await store.listTrust()).map(r => r.peerId), ['peerB'])
        await store.upsertTrust([])
      } finally {
        await store.close()
      }
    })

    test('survives reopening the same location', async () => {
      const opts = await b.fresh()
      const s1 = await createStore(opts)
      await s1.upsertTrust([rec('peerX', { trust: 0.4, trusted: false })])
      await s1.close()
      const s2 = await createStore(opts)
      try {
        assert.deepEqual(await s2.listTrust(), [rec('peerX', { trust: 0.4, trusted: false })])
      } finally {
        await s2.close()
      }
    })

    test('bad records are refused naming the field, and nothing is written', async () => {
      const store = await createStore(await b.fresh())
      try {
        const bad: Array<[unknown, RegExp]> = [
          [[rec('p', { trust: 1.5 })], /records\[0\]\.trust/],
          [[rec('p', { trust: Number.NaN })], /records\[0\]\.trust/],
          [[rec('p'), rec('q', { trusted: 'yes' as unknown as boolean })], /records\[1\]\.trusted/],
          [[rec('p', { failures: -1 })], /records\[0\]\.failures/],
          [[rec('p', { countsAtMs: 1.5 })], /records\[0\]\.countsAtMs/],
          [[rec('p'), rec('p')], /repeats p/],
          [[rec('')], /records\[0\]\.peerId/],
          ['nope', /records must be an array/]
        ]
        for (const [records, message] of bad) {
          await assert.rejects(store.upsertTrust(records as TrustRecord[]), (err: unknown) => {
            assert.ok(err instanceof StoreError)
            assert.equal(err.code, 'ERR_INVALID_ARGUMENT')
            assert.match(err.message, message)
            return true
          })
        }
        assert.deepEqual(await store.listTrust(), [])
      } finally {
        await store.close()
      }
    })

    test('a closed store refuses', async () => {
      const store = await createStore(await b.fresh())
      await store.close()
      await assert.rejects(store.listTrust(), { code: 'ERR_STORE_CLOSED' })
      await assert.rejects(store.upsertTrust([rec('p')]), { code: 'ERR_STORE_CLOSED' })
    })
  })
}
