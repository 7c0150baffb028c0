/**
 * The failure detector on real processes (issue 11 items 1, 2, 9): kill -9, SIGSTOP/SIGCONT and a
 * killed Genesis, with default timings. Detection times are printed (diagnostics); the assertions
 * hold them to the documented bounds (actors/membership/swim/options.ts detectionBounds) with an
 * allowance for this shared machine, since the targets proper live in bench/.
 */
import './polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Cluster, getJson, postJson, waitFor, type NodeProc } from './testkit.js'
import { fibInProcess } from '../actors/kinds/fib/arith.js'
import type { JobView } from '../actors/scheduler/api.js'
import { DETECTOR_DEFAULTS } from '../config/detector.js'
import { detectionBounds, resolveOptions } from '../actors/membership/swim/options.js'
import { swimOptionsFrom } from '../actors/membership/detector-bridge.js'

const OPTIONS = resolveOptions(swimOptionsFrom(DETECTOR_DEFAULTS))
/** Scheduling noise allowed on top of a bound: several node processes share 2 cores here. */
const SLACK_MS = 4000

async function job (node: NodeProc, id: string): Promise<JobView> {
  const res = await getJson<JobView>(node.ready.http, `/grid/jobs/${id}`)
  assert.equal(res.status, 200, JSON.stringify(res.body))
  return res.body
}

async function statusOf (c: Cluster, seer: NodeProc, peerId: string): Promise<string | undefined> {
  return (await c.members(seer)).find(m => m.peerId === peerId)?.status
}

async function submitFib (node: NodeProc, n: number, segments: number): Promise<string> {
  const r = await postJson<JobView>(node.ready.http, '/grid/jobs', { kind: 'fib', n, segments })
  assert.equal(r.status, 201, JSON.stringify(r.body))
  return r.body.id
}

async function jobEnd (node: NodeProc, id: string, timeoutMs = 120_000): Promise<JobView> {
  return await waitFor(async () => { const j = await job(node, id); return j.status !== 'running' && j.status !== 'queued' ? j : undefined }, `job ${id} end`, timeoutMs, 100)
}

async function segmentRunningOn (coordinator: NodeProc, id: string, victim: NodeProc): Promise<number> {
  return await waitFor(async () => {
    const j = await job(coordinator, id)
    assert.notEqual(j.status, 'succeeded', 'the job finished before a segment ran on the victim; make it longer')
    return j.segments.find(s => s.status === 'running' && s.node === victim.ready.peerId)?.index
  }, 'a segment running on the victim', 60_000, 10)
}

test('kill -9: the node is seen dead within the bound and a job running meanwhile is exact', { timeout: 240_000 }, async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const g = await c.start('genesis')
  const a = await c.start('node')
  const b = await c.start('node')
  const v = await c.start('node')
  for (const n of [g, a, b, v]) await c.waitAlive(n, 4)
  const n = 300_000
  const expected = fibInProcess(n)
  const id = await submitFib(g, n, 24)
  await segmentRunningOn(g, id, v)
  const t0 = Date.now()
  await c.kill(v, 'SIGKILL')
  const seen = await Promise.all([g, a, b].map(async s => {
    await waitFor(async () => await statusOf(c, s, v.ready.peerId) === 'dead', `${s.name} sees the killed node dead`, 60_000, 25)
    return Date.now() - t0
  }))
  const bound = detectionBounds(OPTIONS, 4).deadWithHintMs
  t.diagnostic(`kill -9 → dead at g, a, b after ${seen.join(', ')} ms (bound ${bound} ms with the transport's hint)`)
  assert.ok(Math.max(...seen) <= bound + SLACK_MS, `dead after ${Math.max(...seen)} ms, bound ${bound} ms`)
  const done = await jobEnd(g, id)
  assert.equal(done.status, 'succeeded', done.error ?? '')
  assert.deepEqual(done.result, expected)
})

test('SIGSTOP: suspected within the bound, its segments finish elsewhere; SIGCONT: alive again, same process', { timeout: 300_000 }, async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const g = await c.start('genesis')
  const a = await c.start('node')
  const b = await c.start('node')
  for (const n of [g, a, b]) await c.waitAlive(n, 3)
  const n = 300_000
  const expected = fibInProcess(n)
  const id = await submitFib(g, n, 24)
  const frozenSegment = await segmentRunningOn(g, id, b)
  const pid = b.proc.pid
  const t0 = Date.now()
  b.proc.kill('SIGSTOP')
  t.after(() => { b.proc.kill('SIGCONT') })
  await waitFor(async () => await statusOf(c, g, b.ready.peerId) !== 'alive', 'genesis suspects the frozen node', 60_000, 25)
  const suspectMs = Date.now() - t0
  const done = await jobEnd(g, id)
  assert.equal(done.status, 'succeeded', done.error ?? '')
  assert.deepEqual(done.result, expected)
  const seg = done.segments.find(s => s.index === frozenSegment)
  assert.ok(seg !== undefined && seg.status === 'done' && seg.node !== b.ready.peerId, `the frozen node's segment ${frozenSegment} was finished elsewhere: ${JSON.stringify(seg)}`)
  await waitFor(async () => await statusOf(c, g, b.ready.peerId) === 'dead', 'genesis declares the frozen node dead', 60_000, 25)
  const deadMs = Date.now() - t0
  const bounds = detectionBounds(OPTIONS, 3)
  t.diagnostic(`SIGSTOP → suspect after ${suspectMs} ms (bound ${bounds.suspectMs} ms), dead after ${deadMs} ms (bound ${bounds.deadMs} ms)`)
  assert.ok(suspectMs <= bounds.suspectMs + SLACK_MS, `suspected after ${suspectMs} ms, bound ${bounds.suspectMs} ms`)
  assert.ok(deadMs <= bounds.deadMs + SLACK_MS, `dead after ${deadMs} ms, bound ${bounds.deadMs} ms`)

  const t1 = Date.now()
  b.proc.kill('SIGCONT')
  for (const s of [g, a]) await waitFor(async () => await statusOf(c, s, b.ready.peerId) === 'alive', `${s.name} sees the resumed node alive`, 60_000, 25)
  await c.waitAlive(b, 3, 60_000)
  t.diagnostic(`SIGCONT → alive everywhere after ${Date.now() - t1} ms`)
  assert.equal(b.proc.exitCode, null)
  assert.equal(b.proc.signalCode, null)
  assert.equal(b.proc.pid, pid)
  assert.equal((await getJson<{ peerId: string }>(b.ready.http, '/health')).body.peerId, b.ready.peerId)
  // And it works again: a job placed over all three finishes exactly.
  const again = await jobEnd(b, await submitFib(b, 20_000, 6))
  assert.equal(again.status, 'succeeded', again.error ?? '')
  assert.deepEqual(again.result, fibInProcess(20_000))
})

test('Genesis killed: the members carry on, a new node joins through a member and runs a job; a restarted Genesis learns them all', { timeout: 300_000 }, async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const g = await c.start('genesis')
  const a = await c.start('node')
  const b = await c.start('node')
  for (const n of [g, a, b]) await c.waitAlive(n, 3)
  await c.kill(g, 'SIGKILL')
  for (const [s, o] of [[a, b], [b, a]]) {
    await waitFor(async () => await statusOf(c, s, g.ready.peerId) === 'dead', `${s.name} sees Genesis dead`, 60_000, 50)
    assert.equal(await statusOf(c, s, o.ready.peerId), 'alive', `${s.name} still sees ${o.name} alive`)
  }
  // Joins through a member (Genesis is gone; the first seed given is dead, the join tries the next).
  const d = await c.start('node', { seed: `${g.ready.p2p[0]},${a.ready.p2p[0]}` })
  for (const s of [a, b, d]) await waitFor(async () => (await c.members(s)).filter(m => m.status === 'alive').length === 3, `${s.name} sees a, b and the new node alive`, 60_000, 50)
  const n = 100_000
  const done = await jobEnd(d, await submitFib(d, n, 12))
  assert.equal(done.status, 'succeeded', done.error ?? '')
  assert.deepEqual(done.result, fibInProcess(n))

  const g2 = await c.restart(g, 'genesis')
  assert.equal(g2.ready.peerId, g.ready.peerId)
  // It never met d: it learns it from the members it had persisted.
  for (const s of [g2, a, b, d]) await c.waitAlive(s, 4, 60_000)
})
