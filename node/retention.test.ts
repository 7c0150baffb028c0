/**
 * Finished jobs are pruned (--job-retention AGE,COUNT): beyond the newest COUNT at once, older
 * than AGE by the periodic sweep, from the store and from memory, counted in
 * voike_jobs_pruned_total{reason}; unfinished jobs never. On both stores.
 */
import './polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Cluster, dropSchema, getJson, runCli, storeVariants, waitFor } from './testkit.js'
import type { JobView } from '../actors/scheduler/api.js'

async function pruned (http: string, reason: 'age' | 'count'): Promise<number> {
  const text = (await getJson<string>(http, '/metrics')).body
  const m = new RegExp(`^voike_jobs_pruned_total\\{reason="${reason}"\\} (\\d+)`, 'm').exec(text)
  assert.ok(m !== null, `voike_jobs_pruned_total{reason="${reason}"} is exported`)
  return Number(m[1])
}

for (const variant of storeVariants()) {
  test(`job retention prunes ended jobs by count and by age (${variant.name})`, { timeout: 180_000 }, async (t) => {
    const env = variant.env()
    const c = new Cluster({ env })
    t.after(async () => { await c.stopAll(); await dropSchema(env) })
    const g = await c.start('genesis', { extraArgs: ['--job-retention', '1h,3'] })
    assert.equal(await pruned(g.ready.http, 'count'), 0)
    assert.equal(await pruned(g.ready.http, 'age'), 0)
    const ids: string[] = []
    for (let i = 0; i < 5; i++) {
      const r = await runCli(['job', 'submit', 'fib', '--n', String(100 + i), '--segments', '1', '--wait', '--json', '--api', g.ready.api])
      assert.equal(r.code, 0, r.stderr)
      ids.push((JSON.parse(r.stdout) as JobView).id)
    }
    // Beyond the newest 3: the first two go soon after they end, from the store and memory.
    await waitFor(async () => (await pruned(g.ready.http, 'count')) >= 2, 'two jobs pruned by count', 30_000, 100)
    for (const id of ids.slice(0, 2)) assert.equal((await getJson(g.ready.http, `/grid/jobs/${id}`)).status, 404, `job ${id} pruned`)
    for (const id of ids.slice(2)) assert.equal((await getJson(g.ready.http, `/grid/jobs/${id}`)).status, 200, `job ${id} kept`)
    const list = await getJson<JobView[]>(g.ready.http, '/grid/jobs')
    assert.deepEqual(list.body.map(j => j.id).sort(), ids.slice(2).sort())
    assert.equal(await pruned(g.ready.http, 'age'), 0)
    // Restarted with a 2 s age: the rest are older than that, pruned by age from the store.
    assert.equal(await c.kill(g, 'SIGTERM'), 0)
    const g2 = await c.start('genesis', { dataDir: g.dataDir, extraArgs: ['--job-retention', '2s'] })
    await waitFor(async () => (await pruned(g2.ready.http, 'age')) >= 3, 'three jobs pruned by age', 60_000, 200)
    for (const id of ids) assert.equal((await getJson(g2.ready.http, `/grid/jobs/${id}`)).status, 404, `job ${id} pruned`)
    assert.deepEqual((await getJson<JobView[]>(g2.ready.http, '/grid/jobs')).body, [])
  })
}

test('a bad --job-retention exits 2 naming the flag and the bad part', { timeout: 60_000 }, async () => {
  const r = await runCli(['genesis', '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--http', '127.0.0.1:0', '--job-retention', '7d,lots'])
  assert.equal(r.code, 2)
  assert.match(r.stderr, /--job-retention: .*"lots" is neither an age/)
})
