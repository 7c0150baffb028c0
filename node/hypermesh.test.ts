import './polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { credentials, Metadata } from '@grpc/grpc-js'
import { Cluster, getJson, runCli, waitFor } from './testkit.js'
import { loadHypermeshProto } from './grpc-hypermesh.js'

interface Member { peerId: string, status: string, summary: Record<string, number> | null, load: number | null, rttMs: number | null, rttSamples: number }
interface Status { peerId: string, self: Member, peers: Member[] }
interface TrustPeer { peerId: string, trust: number, trusted: boolean, signals: Record<string, number> }

test('three nodes: /hypermesh/status shows all with measured RTT and load, routes and trust list peers; gRPC mirrors; chaos shows in /health', { timeout: 180_000 }, async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const g = await c.start('genesis')
  const a = await c.start('node')
  const b = await c.start('node')
  for (const n of [g, a, b]) await c.waitAlive(n, 3)
  const ids = [g, a, b].map(n => n.ready.peerId)

  // Every node sees the two others with a summary, a load score and a measured RTT.
  for (const n of [g, a, b]) {
    const st = await waitFor(async () => {
      const res = await getJson<Status>(n.ready.http, '/hypermesh/status')
      if (res.status !== 200) return false
      const ok = res.body.peers.length === 2 && res.body.peers.every(p => p.summary !== null && p.load !== null && (p.rttMs ?? 0) > 0) && res.body.self.summary !== null
      return ok ? res.body : false
    }, `${n.name} sees both peers measured`, 60_000, 200)
    assert.equal(st.self.peerId, n.ready.peerId)
    assert.ok(st.self.load !== null && st.self.load >= 0 && st.self.load <= 1)
    assert.deepEqual(new Set([st.self.peerId, ...st.peers.map(p => p.peerId)]), new Set(ids))
    for (const p of st.peers) {
      assert.ok((p.load as number) >= 0 && (p.load as number) <= 1)
      assert.ok((p.summary as Record<string, number>).rssBytes > 0, 'a real RSS')
      assert.ok((p.summary as Record<string, number>).poolThreads === 1, 'the pool of one thread the testkit gives')
    }
  }

  const routes = await getJson<Array<{ rank: number, peerId: string, rttMs: number, load: number }>>(g.ready.http, '/hypermesh/routes')
  assert.equal(routes.status, 200)
  assert.deepEqual(routes.body.map(r => r.rank), [1, 2])
  assert.deepEqual(new Set(routes.body.map(r => r.peerId)), new Set([a.ready.peerId, b.ready.peerId]))
  const events = await getJson<unknown[]>(g.ready.http, '/hypermesh/events')
  assert.equal(events.status, 200)
  assert.ok(Array.isArray(events.body))
  const badLimit = await getJson<{ error: { field: string } }>(g.ready.http, '/hypermesh/events?limit=0')
  assert.equal(badLimit.status, 400)
  assert.equal(badLimit.body.error.field, 'limit')

  // Trust: peers listed with trust in [0, 1] and each signal (after a job, outcomes count too).
  const job = await runCli(['job', 'submit', 'fib', '--n', '20000', '--segments', '6', '--wait', '--api', g.ready.api])
  assert.equal(job.code, 0, job.stderr)
  const trust = await waitFor(async () => {
    const res = await getJson<{ peers: TrustPeer[], distrustBelow: number }>(g.ready.http, '/trust/status')
    return res.status === 200 && res.body.peers.length === 2 ? res.body : false
  }, 'trust lists both peers', 30_000, 200)
  assert.equal(trust.distrustBelow, 0.65)
  for (const p of trust.peers) {
    assert.ok(p.trust >= 0 && p.trust <= 1)
    assert.deepEqual(Object.keys(p.signals).sort(), ['failure', 'heartbeat', 'mismatch', 'rttDrift'])
    assert.ok(ids.includes(p.peerId))
  }
  assert.equal((await getJson<unknown[]>(g.ready.http, '/trust/events')).status, 200)

  const metrics = await getJson<string>(g.ready.http, '/metrics')
  for (const family of ['voike_perfwatch_host_cpu_ratio', 'voike_perfwatch_event_loop_delay_p99_seconds', 'voike_perfwatch_load_score', 'voike_perfwatch_rtt_seconds', 'voike_trust_score', 'voike_trust_events_total']) {
    assert.match(metrics.body, new RegExp(`^# TYPE ${family} `, 'm'), `missing ${family}`)
  }
  assert.match(metrics.body, /^voike_trust_events_total\{reason="mismatch"\} 0$/m)

  // gRPC mirror.
  const { Hypermesh, Trust } = loadHypermeshProto()
  const hm = new Hypermesh(a.ready.api, credentials.createInsecure())
  const tr = new Trust(a.ready.api, credentials.createInsecure())
  t.after(() => { hm.close(); tr.close() })
  const call = async <R>(client: InstanceType<typeof Hypermesh>, method: string): Promise<R> => await new Promise((resolve, reject) => {
    (client as unknown as Record<string, (req: unknown, md: Metadata, cb: (err: Error | null, res: R) => void) => void>)[method]({}, new Metadata(), (err, res) => { if (err !== null) reject(err); else resolve(res) })
  })
  const gs = await call<{ peerId: string, peers: Array<{ peerId: string, rttMs: number, load: number, hasSummary: boolean }> }>(hm, 'Status')
  assert.equal(gs.peerId, a.ready.peerId)
  assert.equal(gs.peers.length, 2)
  assert.ok(gs.peers.every(p => p.hasSummary && p.rttMs > 0 && p.load >= 0 && p.load <= 1))
  const gr = await call<{ routes: unknown[] }>(hm, 'Routes')
  assert.equal(gr.routes.length, 2)
  const gt = await call<{ peers: Array<{ trust: number }>, distrustBelow: number }>(tr, 'Status')
  assert.equal(gt.distrustBelow, 0.65)
  assert.ok(gt.peers.every(p => p.trust >= 0 && p.trust <= 1))

  // No chaos on the plain nodes; a corrupting node says so in /health.
  assert.deepEqual((await getJson(g.ready.http, '/health')).body, { status: 'ok', peerId: g.ready.peerId })
  const liar = await c.start('node', { name: 'liar', env: { VOIKE_CHAOS_CORRUPT_RESULTS: '1', VOIKE_CHAOS_SEED: '42' } })
  const health = await getJson<{ status: string, peerId: string, chaos: Record<string, number> }>(liar.ready.http, '/health')
  assert.deepEqual(health.body, { status: 'ok', peerId: liar.ready.peerId, chaos: { corruptResults: 1, corruptAfter: 0, drop: 0, delayMs: 0, seed: 42 } })
  assert.match(liar.stderr(), /CHAOS ON/)
})

test('a bad chaos setting stops the node with exit 2 naming the variable', { timeout: 60_000 }, async () => {
  const r = await runCli(['genesis', '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--http', '127.0.0.1:0', '--data', '/tmp/voike-never-used'], { VOIKE_CHAOS_DROP: '1.5' })
  assert.equal(r.code, 2, r.stderr)
  assert.match(r.stderr, /VOIKE_CHAOS_DROP: expected a fraction between 0 and 1/)
})
