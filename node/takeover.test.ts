/**
 * Takeover on a shared PostgreSQL store with real node processes: the jobs of a coordinator that
 * left are claimed at once by the lowest alive member; those of one killed (kill -9) after it has
 * been dead for --takeover-after-ms. The jobs are of the TEST-ONLY kind `hold`
 * (actors/kinds/hold/), so they are provably unfinished when their coordinator goes.
 */
import './polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Cluster, dropSchema, getJson, pgSchemaName, pgSkip, postJson, waitFor, type NodeProc } from './testkit.js'
import { HoldDir, storedJobPg, storedSegments } from './faultkit.js'
import { expectedHoldResult } from '../actors/kinds/hold/job.js'
import type { JobView } from '../actors/scheduler/api.js'

const PROCESS_TEST_MS = 120_000
const SEGMENTS = 3

async function run (t: { after: (fn: () => Promise<void>) => void, diagnostic: (m: string) => void }, signal: 'SIGTERM' | 'SIGKILL', takeoverAfterMs: number): Promise<void> {
  const env = { DATABASE_URL: process.env.VOIKE_TEST_DATABASE_URL as string, VOIKE_DB_SCHEMA: pgSchemaName() }
  const hold = await HoldDir.create()
  const c = new Cluster({ env: { ...env, ...hold.env() } })
  t.after(async () => { await c.stopAll(); await hold.remove(); await dropSchema(env) })
  const start = async (role: 'genesis' | 'node', host: string): Promise<NodeProc> =>
    await c.start(role, { extraArgs: ['--host-id', host, '--takeover-after-ms', String(takeoverAfterMs)] })
  const g = await start('genesis', 'host-g')
  const a = await start('node', 'host-a')
  const b = await start('node', 'host-b')
  for (const n of [g, a, b]) await c.waitAlive(n, 3)
  const token = hold.token()
  const submitted = await postJson<JobView>(a.ready.http, '/grid/jobs', { kind: 'hold', params: { token, segments: SEGMENTS } })
  assert.equal(submitted.status, 201, JSON.stringify(submitted.body))
  const id = submitted.body.id
  await waitFor(async () => new Set((await hold.markers(token)).map(m => m.index)).size === SEGMENTS, 'every segment held')
  await waitFor(async () => (await storedSegments(a, env, id)).every(s => s.attempts === 1), 'the dispatches written')
  assert.deepEqual(await storedJobPg(env, id), { coordinator: a.ready.peerId, status: 'running' })

  const goneAtMs = Date.now()
  const code = await c.kill(a, signal)
  if (signal === 'SIGTERM') assert.equal(code, 0, a.stderr())
  // Every node computes the same claimer: the lowest alive peer id.
  const claimer = [g, b].sort((x, y) => x.ready.peerId < y.ready.peerId ? -1 : 1)[0]
  const claimed = await waitFor(async () => {
    const j = await storedJobPg(env, id)
    return j !== null && j.coordinator !== a.ready.peerId ? j : undefined
    // 45 s: well under the default takeover delay (60 s after the 5 s of suspicion), so a claim
    // in time after a kill shows that --takeover-after-ms took effect.
  }, 'the job claimed in the store', 45_000, 50)
  const claimMs = Date.now() - goneAtMs
  assert.equal(claimed.coordinator, claimer.ready.peerId, 'claimed by the lowest alive member')
  assert.equal(claimed.status, 'running', 'claimed while unfinished (nothing was released)')
  if (signal === 'SIGKILL') {
    // Not before it was dead for --takeover-after-ms (suspect first: 5 s; then dead).
    assert.ok(claimMs >= takeoverAfterMs, `claimed ${claimMs} ms after the kill`)
  }
  t.diagnostic(`claimed ${claimMs} ms after the coordinator went (${signal})`)
  await hold.release(token)
  const done = await waitFor(async () => {
    const j = (await getJson<JobView>(claimer.ready.http, `/grid/jobs/${id}`)).body
    return j.status === 'succeeded' || j.status === 'failed' ? j : undefined
  }, 'the claimed job\'s end', 60_000, 50)
  assert.equal(done.status, 'succeeded', done.error ?? '')
  assert.deepEqual(done.result, expectedHoldResult(token, SEGMENTS))
  assert.equal(done.coordinator, claimer.ready.peerId)
  for (const s of done.segments) assert.ok(s.attempts >= 2, `segment ${s.index}: one attempt under the old coordinator, one under the new (attempts ${s.attempts})`)
  const other = claimer === g ? b : g
  assert.deepEqual((await getJson<JobView>(other.ready.http, `/grid/jobs/${id}`)).body.result, done.result)
}

test('a coordinator that leaves (SIGTERM) mid-job: the lowest alive member takes the job over at once and finishes it exactly', { timeout: PROCESS_TEST_MS, skip: pgSkip() }, async (t) => {
  // An hour: only the leave can make the claim happen within the test.
  await run(t, 'SIGTERM', 3_600_000)
})

test('a coordinator killed (kill -9) mid-job: taken over after --takeover-after-ms and finished exactly', { timeout: PROCESS_TEST_MS, skip: pgSkip() }, async (t) => {
  await run(t, 'SIGKILL', 1000)
})
