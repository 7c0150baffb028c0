import '../../config/polyfill.js'
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { Registry } from 'prom-client'
import { MemberTable } from '../membership/table.js'
import { createActorSystem, createLoopbackTransports, type ActorSystem } from '../runtime/index.js'
import { member } from '../testing/cluster.js'
import { waitFor } from '../testing/rig.js'
import { hostCpuPercent, loopDelayMs, makeSample, processCpuPercent, type CpuTimes } from './measure.js'
import { createPerfWatch, PERFWATCH_ACTOR, type PerfWatch } from './perfwatch.js'
import { EventRing } from './ring.js'
import { advisoriesOf, diffAdvisories, loadScore, parseSummary, rankRoutes, toWire, type AdvisoryBounds, type PerfSummary } from './score.js'

const cpu = (user: number, sys: number, idle: number): CpuTimes => ({ user, nice: 0, sys, idle, irq: 0 })

test('process CPU % is CPU time over wall time, of one core', () => {
  assert.equal(processCpuPercent({ user: 0, system: 0 }, { user: 300_000, system: 200_000 }, 1000), 50)
  assert.equal(processCpuPercent({ user: 0, system: 0 }, { user: 1_500_000, system: 0 }, 1000), 150) // two threads busy
  assert.equal(processCpuPercent({ user: 5, system: 5 }, { user: 0, system: 0 }, 1000), 0) // counters never go back
  assert.equal(processCpuPercent({ user: 0, system: 0 }, { user: 10, system: 0 }, 0), 0)
})

test('host CPU % is the busy share of all cores between readings', () => {
  const prev = [cpu(100, 100, 800), cpu(0, 0, 1000)]
  const cur = [cpu(200, 200, 1400), cpu(300, 100, 1600)] // core 0: 200 busy of 800; core 1: 400 busy of 1000
  assert.ok(Math.abs(hostCpuPercent(prev, cur) - 600 / 1800 * 100) < 1e-9)
  assert.equal(hostCpuPercent(prev, prev), 0)
  assert.equal(hostCpuPercent([], []), 0)
})

test('event-loop delay percentiles are read in ms, and an empty window is 0', () => {
  const h = { count: 10, percentile: (p: number) => p === 50 ? 2e6 : 40e6 }
  assert.deepEqual(loopDelayMs(h), { p50Ms: 2, p99Ms: 40 })
  assert.deepEqual(loopDelayMs({ count: 0, percentile: () => Number.NaN }), { p50Ms: 0, p99Ms: 0 })
})

const bounds: AdvisoryBounds = { loopP99Ms: 200, poolSaturation: 0.9, maxRssBytes: 1e9, maxHeapShare: 0.85 }
const summary = (over: Partial<PerfSummary> = {}): PerfSummary => ({
  atMs: 1, processCpuPct: 10, hostCpuPct: 20, rssBytes: 1e8, heapUsedBytes: 1e7, heapLimitBytes: 1e9, loopP50Ms: 1, loopP99Ms: 5, poolUtilization: 0.1, poolQueueDepth: 0, poolThreads: 2, ...over
})

test('load score follows the documented weights and stays in [0, 1]', () => {
  assert.ok(Math.abs(loadScore(summary({ poolUtilization: 0, hostCpuPct: 0, loopP99Ms: 0, heapUsedBytes: 0 }), 200)) < 1e-12)
  const full = summary({ poolUtilization: 1, poolQueueDepth: 4, hostCpuPct: 100, loopP99Ms: 400, heapUsedBytes: 1e9 })
  assert.ok(Math.abs(loadScore(full, 200) - 1) < 1e-12)
  const s = summary({ poolUtilization: 0.5, poolQueueDepth: 1, hostCpuPct: 40, loopP99Ms: 100, heapUsedBytes: 1e8 })
  const expected = 0.35 * 0.5 + 0.2 * 0.5 + 0.25 * 0.4 + 0.15 * 0.5 + 0.05 * 0.1
  assert.ok(Math.abs(loadScore(s, 200) - expected) < 1e-12)
  // A busier pool never scores lower.
  assert.ok(loadScore(summary({ poolUtilization: 0.9 }), 200) > loadScore(summary({ poolUtilization: 0.2 }), 200))
})

test('advisories name their reason and are edge-triggered', () => {
  assert.deepEqual(advisoriesOf(summary(), bounds), [])
  const bad = summary({ loopP99Ms: 250, poolUtilization: 0.95, poolQueueDepth: 2, rssBytes: 2e9 })
  const a = advisoriesOf(bad, bounds)
  assert.deepEqual(a.map(x => x.reason), ['event-loop-p99', 'pool-saturated', 'memory'])
  assert.match(a[0].message, /250\.0 ms is over 200 ms/)
  // Heap share alone is a memory advisory too.
  assert.deepEqual(advisoriesOf(summary({ heapUsedBytes: 0.9e9 }), bounds).map(x => x.reason), ['memory'])
  // A pool busy but with nothing queued is not saturated.
  assert.deepEqual(advisoriesOf(summary({ poolUtilization: 1, poolQueueDepth: 0 }), bounds), [])
  const d1 = diffAdvisories(new Set(), a)
  assert.equal(d1.raised.length, 3)
  const d2 = diffAdvisories(new Set(['event-loop-p99', 'pool-saturated', 'memory']), a)
  assert.deepEqual([d2.raised.length, d2.cleared.length], [0, 0])
  const d3 = diffAdvisories(new Set(['event-loop-p99', 'memory']), [])
  assert.deepEqual(d3.cleared, ['event-loop-p99', 'memory'])
})

test('summaries round-trip the wire and garbage is refused with a reason', () => {
  const sample = makeSample({
    atMs: 1_700_000_000_000, elapsedMs: 1000, cpuPrev: { user: 0, system: 0 }, cpuCur: { user: 250_000, system: 0 },
    cpusPrev: [cpu(0, 0, 0)], cpusCur: [cpu(500, 0, 500)], memory: { rss: 123_456_789, heapUsed: 9_876_543 }, heapLimitBytes: 4e9,
    delay: { count: 5, percentile: (p) => p * 1e5 }, pool: { utilization: 0.4567, queueSize: 3, maxThreads: 2 }
  })
  const wire = toWire(sample)
  const parsed = parseSummary(structuredClone(wire))
  assert.ok(parsed.ok)
  assert.equal(parsed.summary.processCpuPct, 25)
  assert.equal(parsed.summary.hostCpuPct, 50)
  assert.equal(parsed.summary.rssBytes, 123_456_789)
  assert.equal(parsed.summary.loopP99Ms, 9.9)
  assert.equal(parsed.summary.poolUtilization, 0.457)
  assert.ok(Buffer.byteLength(JSON.stringify(wire)) < 256)
  const garbage: Array<[unknown, RegExp]> = [
    [null, /not an object/], [[1], /not an object/], [{ ...wire, v: 2 }, /version/], [{ ...wire, extra: 1 }, /unexpected fields/],
    [{ ...wire, hc: 101 }, /bad hc/], [{ ...wire, pu: Number.NaN }, /bad pu/], [{ ...wire, rss: 1.5 }, /bad rss/], [{ ...wire, t: '1' }, /bad t/]
  ]
  for (const [g, why] of garbage) {
    const r = parseSummary(g)
    assert.ok(!r.ok)
    assert.match(r.reason, why)
  }
})

test('routes rank by RTT × (1 + 2·load); unmeasured peers are not routes', () => {
  const routes = rankRoutes([
    { peerId: 'far-idle', rttMs: 10, load: 0 },
    { peerId: 'near-busy', rttMs: 4, load: 1 },
    { peerId: 'near-idle', rttMs: 4, load: 0 },
    { peerId: 'unmeasured', rttMs: undefined, load: 0 }
  ])
  assert.deepEqual(routes.map(r => [r.rank, r.peerId, r.cost]), [[1, 'near-idle', 4], [2, 'far-idle', 10], [3, 'near-busy', 12]])
})

test('the event ring keeps the newest, oldest first', () => {
  const r = new EventRing<number>(3)
  for (let i = 1; i <= 5; i++) r.push(i)
  assert.deepEqual(r.list(), [3, 4, 5])
  assert.deepEqual(r.list(2), [4, 5])
  assert.equal(r.total, 5)
  assert.throws(() => new EventRing(0))
})

// ---- the actor over a loopback: summaries, RTT, garbage ------------------------------------

const closers: Array<() => Promise<void>> = []
after(async () => { for (const c of closers.reverse()) await c() })

test('two PerfWatch actors share summaries, measure RTT > 0 and drop garbage, counted', async () => {
  const net = createLoopbackTransports()
  const ids = ['pw-a', 'pw-b']
  const systems: ActorSystem[] = []
  const watches: PerfWatch[] = []
  for (const id of ids) {
    const system = createActorSystem({ peerId: id, transport: net.transport(id), registry: new Registry() })
    net.attach(system)
    const table = new MemberTable(id)
    for (const m of ids) table.put(member(m))
    const registry = new Registry()
    const pw = createPerfWatch({ system, table, registry, pool: () => ({ utilization: 0.5, queueSize: 0, maxThreads: 2 }), options: { intervalMs: 60_000 } })
    system.spawn(PERFWATCH_ACTOR, pw.factory)
    systems.push(system)
    watches.push(pw)
    closers.push(async () => { await pw.close(); await system.shutdown({ timeoutMs: 1000 }) })
  }
  assert.throws(() => createPerfWatch({ system: systems[0], table: new MemberTable('x'), pool: () => ({ utilization: 0, queueSize: 0, maxThreads: 1 }), options: { intervalMs: 5 } }), /options\.intervalMs must be an integer in 100\.\.60000, got 5/)
  watches[0].tick()
  watches[1].tick()
  await waitFor(() => watches[0].rttMs('pw-b') !== undefined && watches[1].status().peers[0].summary !== null, 'summaries and RTT', 5000)
  const st = watches[0].status()
  assert.equal(st.self.peerId, 'pw-a')
  assert.ok(st.self.load !== null && st.self.load >= 0 && st.self.load <= 1)
  assert.ok(st.self.summary !== null && st.self.summary.poolUtilization === 0.5)
  assert.ok((watches[0].rttMs('pw-b') ?? 0) > 0)
  assert.equal(watches[0].routes()[0].peerId, 'pw-b')
  // Garbage from a member is dropped and counted by reason; from a stranger too.
  systems[1].tell(systems[1].ref('pw-a', PERFWATCH_ACTOR), { type: 'summary', seq: 1, s: { v: 1, t: 'x' } }, PERFWATCH_ACTOR)
  systems[1].tell(systems[1].ref('pw-a', PERFWATCH_ACTOR), { type: 'pong', seq: 999_999 }, PERFWATCH_ACTOR)
  await waitFor(() => (watches[0].dropped()['unexpected fields'] ?? 0) === 1 && (watches[0].dropped()['unknown pong'] ?? 0) === 1, 'garbage counted', 5000)
})
