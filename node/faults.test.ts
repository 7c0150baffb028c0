/**
 * Faults that provably hit work in flight, on real node processes. The jobs are of the TEST-ONLY
 * kind `hold` (actors/kinds/hold/, enabled by VOIKE_TEST_KINDS=hold on the nodes): each segment
 * blocks on its worker until the test releases it, and writes a marker naming the worker process
 * that holds it. So a kill lands while a known worker holds a known segment (its own marker and
 * its own /metrics say so, not the coordinator), and the job cannot end before the release.
 */
import './polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Cluster, dropSchema, getJson, postJson, storeVariants, waitFor, type NodeProc } from './testkit.js'
import { HoldDir, metricValue, scrape, storedSegments } from './faultkit.js'
import { expectedHoldResult } from '../actors/kinds/hold/job.js'
import type { JobView } from '../actors/scheduler/api.js'

const PROCESS_TEST_MS = 120_000

/**
 * Genesis and two nodes. Each claims its own host (--host-id): held segments cost no CPU, and
 * without it the three would share this machine's cores, so that only two segments could be in
 * flight at once, on nodes the test cannot choose.
 */
async function threeNodes (c: Cluster): Promise<NodeProc[]> {
  const g = await c.start('genesis', { extraArgs: ['--host-id', 'host-g'] })
  const a = await c.start('node', { extraArgs: ['--host-id', 'host-a'] })
  const b = await c.start('node', { extraArgs: ['--host-id', 'host-b'] })
  for (const n of [g, a, b]) await c.waitAlive(n, 3)
  return [g, a, b]
}

async function job (node: NodeProc, id: string): Promise<JobView> {
  const res = await getJson<JobView>(node.ready.http, `/grid/jobs/${id}`)
  assert.equal(res.status, 200, JSON.stringify(res.body))
  return res.body
}

async function submitHold (node: NodeProc, token: string, segments: number): Promise<string> {
  const res = await postJson<JobView>(node.ready.http, '/grid/jobs', { kind: 'hold', params: { token, segments } })
  assert.equal(res.status, 201, JSON.stringify(res.body))
  return res.body.id
}

async function jobEnd (node: NodeProc, id: string): Promise<JobView> {
  return await waitFor(async () => {
    const j = await job(node, id)
    return j.status === 'running' || j.status === 'queued' ? undefined : j
  }, `the end of job ${id} on ${node.name}`, 60_000, 50)
}

for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
  const how = signal === 'SIGKILL' ? 'killed (kill -9)' : 'leaving (SIGTERM)'
  test(`a worker node ${how} while it holds a segment: the segment runs again elsewhere, the attempt is counted, the result is exact`, { timeout: PROCESS_TEST_MS }, async (t) => {
    const hold = await HoldDir.create()
    const c = new Cluster({ env: hold.env() })
    t.after(async () => { await c.stopAll(); await hold.remove() })
    const [g, a, b] = await threeNodes(c)
    const token = hold.token()
    const id = await submitHold(g, token, 6)
    // b holds some of the job's segments: its own markers (its pid) and its own pool say so.
    const onVictim = await waitFor(async () => {
      const mine = (await hold.markers(token)).filter(m => m.pid === b.proc.pid)
      if (mine.length === 0) return undefined
      return metricValue(await scrape(b), 'voike_worker_pool_in_flight') >= 1 ? mine : undefined
    }, 'a segment held on the victim', 30_000, 25)
    const held = [...new Set(onVictim.map(m => m.index))]
    // Nothing is released: the job cannot have ended.
    assert.equal((await job(g, id)).status, 'running')
    // A victim's task ends as `lost` (suspect, dead, left) or, when a leaving node's pool answers
    // before its leave is handled, as `error`: either way a failed attempt, counted here.
    const failed = (text: string): number => metricValue(text, 'voike_tasks_total', { status: 'lost' }) + metricValue(text, 'voike_tasks_total', { status: 'error' })
    const failedBefore = failed(await scrape(g))
    const code = await c.kill(b, signal)
    if (signal === 'SIGTERM') assert.equal(code, 0, `the leaving node exits 0; stderr:\n${b.stderr()}`)
    // The coordinator decides the loss while the segments are still held everywhere.
    await waitFor(async () => (await c.members(g)).find(m => m.peerId === b.ready.peerId && m.status === 'dead' && (signal === 'SIGKILL' ? m.leftAtMs === null : m.leftAtMs !== null)),
      `genesis sees the victim ${signal === 'SIGKILL' ? 'dead' : 'leave'}`)
    assert.ok(failed(await scrape(g)) > failedBefore, 'the victim\'s tasks were counted as failed')
    await hold.release(token)
    const done = await jobEnd(g, id)
    assert.equal(done.status, 'succeeded', done.error ?? '')
    assert.deepEqual(done.result, expectedHoldResult(token, 6))
    for (const index of held) {
      const s = done.segments[index]
      assert.notEqual(s.node, b.ready.peerId, `segment ${index} was finished by the victim`)
      assert.ok(s.attempts >= 2, `segment ${index}: the attempt on the victim counts (attempts ${s.attempts})`)
    }
    assert.ok(done.segments.every(s => s.node === g.ready.peerId || s.node === a.ready.peerId))
  })
}

for (const variant of storeVariants()) {
  test(`a coordinator killed (kill -9) while its job is held, then restarted, dispatches it again and finishes it exactly (${variant.name} store)`, { timeout: PROCESS_TEST_MS, skip: variant.skip }, async (t) => {
    const env = variant.env()
    const hold = await HoldDir.create()
    // 4 threads: the restarted coordinator's dispatches must start while the earlier ones still hold.
    const c = new Cluster({ env: { ...env, ...hold.env() }, threads: 4 })
    t.after(async () => { await c.stopAll(); await hold.remove(); await dropSchema(env) })
    const [g, a] = await threeNodes(c)
    const token = hold.token()
    const segments = 2
    const id = await submitHold(a, token, segments)
    // Both segments held by workers, and their dispatch (attempt 1) written to a's store.
    await waitFor(async () => new Set((await hold.markers(token)).map(m => m.index)).size === segments, 'every segment held')
    await waitFor(async () => {
      const stored = await storedSegments(a, env, id)
      return stored.length === segments && stored.every(s => s.status === 'running' && s.attempts === 1)
    }, 'the dispatches written to the store')
    assert.equal((await job(a, id)).status, 'running', 'held, so unfinished at the kill')
    const before = new Set((await hold.markers(token)).map(m => m.name))
    await c.kill(a, 'SIGKILL')
    const a2 = await c.restart(a, 'node', { name: 'node-restarted', extraArgs: ['--host-id', 'host-a'] })
    assert.equal(a2.ready.peerId, a.ready.peerId)
    // The restarted coordinator resumed the job: every segment starts again on some worker (new
    // markers), though nothing is released and the earlier dispatches still hold.
    await waitFor(async () => new Set((await hold.markers(token)).filter(m => !before.has(m.name)).map(m => m.index)).size === segments,
      'every segment dispatched again after the restart', 30_000, 25)
    assert.equal((await job(a2, id)).status, 'running')
    await hold.release(token)
    const done = await jobEnd(a2, id)
    assert.equal(done.status, 'succeeded', done.error ?? '')
    assert.deepEqual(done.result, expectedHoldResult(token, segments))
    for (const s of done.segments) assert.ok(s.attempts >= 2, `segment ${s.index}: one attempt before the kill and one after (attempts ${s.attempts})`)
    assert.deepEqual((await job(g, id)).result, done.result, 'another node reads the same end')
  })
}
