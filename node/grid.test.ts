import './polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Cluster, getJson, postJson, runCli, storeVariants, dropSchema, waitFor, type NodeProc } from './testkit.js'
import { fibInProcess } from '../actors/kinds/fib/arith.js'
import { FIB_REFERENCE } from '../actors/kinds/fib/reference.js'
import { createClient } from './client.js'
import type { JobView } from '../actors/scheduler/api.js'

const REFERENCE = FIB_REFERENCE

async function threeNodes (c: Cluster): Promise<NodeProc[]> {
  const g = await c.start('genesis')
  const a = await c.start('node')
  const b = await c.start('node')
  for (const n of [g, a, b]) await c.waitAlive(n, 3)
  return [g, a, b]
}

async function job (node: NodeProc, id: string): Promise<JobView> {
  const res = await getJson<JobView>(node.ready.http, `/grid/jobs/${id}`)
  assert.equal(res.status, 200, JSON.stringify(res.body))
  return res.body
}

test('fib: exact reference results over a 3-node grid, segments spread over at least two nodes', async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const [g, a] = await threeNodes(c)
  for (const ref of REFERENCE) {
    const segments = Math.min(24, Math.max(ref.n, 1))
    const r = await runCli(['job', 'submit', 'fib', '--n', String(ref.n), '--segments', String(segments), '--wait', '--json', '--api', a.ready.api])
    assert.equal(r.code, 0, r.stderr)
    const out = JSON.parse(r.stdout) as JobView
    assert.equal(out.status, 'succeeded')
    assert.equal(out.error, null)
    assert.deepEqual(out.result, ref)
    assert.equal(out.segments.length, segments)
    assert.ok(out.segments.every(s => s.node !== null && s.attempts >= 1 && typeof s.ms === 'number'))
    if (ref.n === 100000) {
      const nodes = new Set(out.segments.map(s => s.node))
      assert.ok(nodes.size >= 2, `segments ran on ${nodes.size} node(s)`)
      // Any node finds the job, not only its coordinator.
      const fromGenesis = await job(g, out.id)
      assert.equal(fromGenesis.status, 'succeeded')
      assert.deepEqual(fromGenesis.result, ref)
    }
  }
  const list = await runCli(['job', 'list', '--json', '--api', a.ready.api])
  assert.equal(list.code, 0, list.stderr)
  assert.ok((JSON.parse(list.stdout) as unknown[]).length >= REFERENCE.length)
})

test('fib: bad parameters and unknown kinds are rejected naming the field (CLI exit 2, HTTP 400, gRPC INVALID_ARGUMENT)', async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const g = await c.start('genesis')
  const cli: Array<{ args: string[], names: RegExp }> = [
    { args: ['--n', '-1', '--segments', '1'], names: /\bn\b/ },
    { args: ['--n', '10000001', '--segments', '1'], names: /\bn\b/ },
    { args: ['--n', '100', '--segments', '0'], names: /segments/ },
    { args: ['--n', '10', '--segments', '11'], names: /segments/ },
    { args: ['--n', '100', '--segments', '5000'], names: /segments/ },
    { args: ['--n', 'abc', '--segments', '1'], names: /--n/ }
  ]
  for (const k of cli) {
    const r = await runCli(['job', 'submit', 'fib', ...k.args, '--api', g.ready.api, '--wait'])
    assert.equal(r.code, 2, `${k.args.join(' ')} → ${r.code}: ${r.stderr}`)
    assert.match(r.stderr, k.names)
  }
  const unknown = await runCli(['job', 'submit', 'teleport', '--api', g.ready.api])
  assert.equal(unknown.code, 2)
  assert.match(unknown.stderr, /kind/)
  assert.match(unknown.stderr, /teleport/)

  const http = await postJson<{ error: { code: string, field: string } }>(g.ready.http, '/grid/jobs', { kind: 'fib', n: 10.5, segments: 1 })
  assert.equal(http.status, 400)
  assert.equal(http.body.error.field, 'n')
  const httpKind = await postJson<{ error: { code: string, field: string } }>(g.ready.http, '/grid/jobs', { kind: 'nope' })
  assert.equal(httpKind.status, 400)
  assert.equal(httpKind.body.error.field, 'kind')
  const garbage = await postJson<{ error: { code: string } }>(g.ready.http, '/grid/jobs', '{"kind": fib')
  assert.equal(garbage.status, 400)

  const client = createClient({ address: g.ready.api })
  try {
    await assert.rejects(client.submitJob('fib', { n: 5, segments: 'two' }), (err: { code: number, details: string }) => err.code === 3 && /segments/.test(err.details))
    await assert.rejects(client.getJob('no-such-job'), (err: { code: number }) => err.code === 5)
  } finally { client.close() }
  assert.equal((await getJson(g.ready.http, '/health')).status, 200)
})

test('fib: kill -9 of a worker node mid-job still gives the exact result', async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const [g, a, b] = await threeNodes(c)
  const n = 300_000
  const expected = fibInProcess(n)
  const submitted = await postJson<JobView>(g.ready.http, '/grid/jobs', { kind: 'fib', params: { n, segments: 24 } })
  assert.equal(submitted.status, 201, JSON.stringify(submitted.body))
  const id = submitted.body.id
  // Kill b while it is running one of the job's segments and the job is not done.
  await waitFor(async () => {
    const j = await job(g, id)
    assert.notEqual(j.status, 'succeeded', 'the job finished before a segment ran on the victim; make it longer')
    return j.segments.some(s => s.status === 'running' && s.node === b.ready.peerId)
  }, 'a segment running on the victim', 60_000, 10)
  await c.kill(b, 'SIGKILL')
  const done = await waitFor(async () => { const j = await job(g, id); return j.status !== 'running' && j.status !== 'queued' ? j : undefined }, 'job end', 120_000, 100)
  assert.equal(done.status, 'succeeded', done.error ?? '')
  assert.deepEqual(done.result, expected)
  assert.ok(done.segments.every(s => s.node !== b.ready.peerId || s.status === 'done'))
  // The victim turned suspect at once and its segments were placed again (an attempt is counted
  // only once it is declared dead, which this short job may not live to see).
  const metrics = await getJson<string>(g.ready.http, '/metrics')
  const lost = Number(/^voike_tasks_total\{[^}]*status="lost"[^}]*\} (\d+)/m.exec(metrics.body)?.[1] ?? '0')
  assert.ok(lost >= 1 || done.segments.some(s => s.attempts > 1), 'a segment was placed again')
  assert.ok(new Set(done.segments.map(s => s.node)).has(a.ready.peerId))
})

for (const variant of storeVariants()) {
  test(`fib: a coordinator killed and restarted mid-job finishes it (${variant.name} store)`, async (t) => {
    const env = variant.env()
    const c = new Cluster({ env })
    t.after(async () => { await c.stopAll(); await dropSchema(env) })
    const [g, a] = await threeNodes(c)
    const n = 300_000
    const expected = fibInProcess(n)
    const submitted = await postJson<JobView>(a.ready.http, '/grid/jobs', { kind: 'fib', n, segments: 24 })
    assert.equal(submitted.status, 201, JSON.stringify(submitted.body))
    const id = submitted.body.id
    await waitFor(async () => { const j = await job(a, id); assert.notEqual(j.status, 'succeeded'); return j.segmentsDone >= 2 }, 'some progress', 60_000, 10)
    await c.kill(a, 'SIGKILL')
    const a2 = await c.restart(a, 'node', { name: 'node-restarted' })
    assert.equal(a2.ready.peerId, a.ready.peerId)
    const done = await waitFor(async () => { const j = await job(a2, id); return j.status === 'succeeded' || j.status === 'failed' ? j : undefined }, 'resumed job end', 120_000, 100)
    assert.equal(done.status, 'succeeded', done.error ?? '')
    assert.deepEqual(done.result, expected)
    assert.deepEqual((await job(g, id)).result, expected)
  })
}

test('cancel stops outstanding work', async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const [g] = await threeNodes(c)
  const submitted = await postJson<JobView>(g.ready.http, '/grid/jobs', { kind: 'fib', n: 3_000_000, segments: 48 })
  assert.equal(submitted.status, 201)
  const id = submitted.body.id
  await waitFor(async () => (await job(g, id)).segments.some(s => s.status === 'running'), 'a running segment')
  const r = await runCli(['job', 'cancel', id, '--json', '--api', g.ready.api])
  assert.equal(r.code, 0, r.stderr) // cancelled by this command → exit 0 (issue 9, item 14)
  assert.equal((JSON.parse(r.stdout) as JobView).status, 'cancelled')
  const after = await job(g, id)
  assert.equal(after.status, 'cancelled')
  assert.ok(after.segmentsDone < after.segmentsTotal)
  // No task of the job stays in flight anywhere once the cancel has been delivered.
  await waitFor(async () => {
    const m = await getJson<string>(g.ready.http, '/metrics')
    const inflight = [...m.body.matchAll(/^voike_tasks_in_flight\{[^}]*\} (\d+)/gm)].reduce((s, x) => s + Number(x[1]), 0)
    return inflight === 0
  }, 'no tasks in flight')
  const watched = await runCli(['job', 'watch', id, '--json', '--api', g.ready.api])
  assert.equal(watched.code, 1)
})
