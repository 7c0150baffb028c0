import './polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Cluster, getJson, postJson, runCli, waitFor, type NodeProc } from './testkit.js'
import { HoldDir, metricValue, scrape } from './faultkit.js'
import { FIB_REFERENCE } from '../actors/kinds/fib/reference.js'
import { createClient } from './client.js'
import type { JobView } from '../actors/scheduler/api.js'

const REFERENCE = FIB_REFERENCE
const PROCESS_TEST_MS = 120_000

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

test('fib: exact reference results over a 3-node grid, segments spread over at least two nodes', { timeout: PROCESS_TEST_MS }, async (t) => {
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

test('fib: bad parameters and unknown kinds are rejected naming the field (CLI exit 2, HTTP 400, gRPC INVALID_ARGUMENT)', { timeout: PROCESS_TEST_MS }, async (t) => {
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

// Worker and coordinator faults: node/faults.test.ts (with jobs that provably hold their segments).

test('cancel stops outstanding work on every worker', { timeout: PROCESS_TEST_MS }, async (t) => {
  const hold = await HoldDir.create()
  const c = new Cluster({ env: hold.env() })
  t.after(async () => { await c.stopAll(); await hold.remove() })
  // Each its own host: three held segments in flight at once, one per node (see faults.test.ts).
  const g = await c.start('genesis', { extraArgs: ['--host-id', 'host-g'] })
  const a = await c.start('node', { extraArgs: ['--host-id', 'host-a'] })
  const b = await c.start('node', { extraArgs: ['--host-id', 'host-b'] })
  for (const n of [g, a, b]) await c.waitAlive(n, 3)
  const token = hold.token()
  const submitted = await postJson<JobView>(g.ready.http, '/grid/jobs', { kind: 'hold', params: { token, segments: 3 } })
  assert.equal(submitted.status, 201, JSON.stringify(submitted.body))
  const id = submitted.body.id
  // Every segment held by a worker, as the workers' own markers and pools say.
  await waitFor(async () => new Set((await hold.markers(token)).map(m => m.index)).size === 3, 'every segment held')
  const holders = [g, a, b]
  const busy = await Promise.all(holders.map(async n => metricValue(await scrape(n), 'voike_worker_pool_in_flight')))
  assert.equal(busy.reduce((x, y) => x + y, 0), 3, `held batches per worker: ${busy.join(', ')}`)
  const r = await runCli(['job', 'cancel', id, '--json', '--api', g.ready.api])
  assert.equal(r.code, 0, r.stderr) // cancelled by this command → exit 0 (issue 9, item 14)
  assert.equal((JSON.parse(r.stdout) as JobView).status, 'cancelled')
  // Nothing is ever released, so a worker's pool goes idle only if the cancel reached it and
  // dropped the held task (its thread terminated): read on each worker, not on the coordinator.
  for (const n of holders) {
    await waitFor(async () => metricValue(await scrape(n), 'voike_worker_pool_in_flight') === 0, `${n.name}'s pool idle after the cancel`, 20_000)
  }
  const after = await job(g, id)
  assert.equal(after.status, 'cancelled')
  assert.equal(after.segmentsDone, 0)
  const watched = await runCli(['job', 'watch', id, '--json', '--api', g.ready.api])
  assert.equal(watched.code, 1)
})
