import '../../config/polyfill.js'
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Registry } from 'prom-client'
import { GridError } from './api.js'
import { createStore } from '../../store/index.js'
import { createActorSystem } from '../runtime/index.js'
import { MemberTable } from '../membership/table.js'
import { fibKind, fibSegmentEstimateMs, type FibParams, type FibSpan } from '../kinds/fib/job.js'
import { ESTIMATE_TIMEOUT_FACTOR, segmentTimeoutMs, type JobKind } from './kinds.js'
import { createScheduler, MAX_DEAD_TRACKED, type Scheduler, type SchedulerLimits } from './scheduler.js'
import { waitFor } from '../testing/rig.js'
import {
  assertFib, closeAll, createCluster, expectedMid, MID_N, REFERENCE, rejectsGrid, runToEnd, ScriptedWorker, taskSeq, member
} from '../testing/cluster.js'
import { valuesEqual, type SegmentContext } from './kinds.js'
import type { ResultPolicy } from './policy.js'

after(closeAll)

/** A one-segment job's context for the kind's per-segment methods. */
function seg (params: unknown, descriptor: unknown): SegmentContext<any, any> {
  return { params, segments: 1, index: 0, descriptor, isLast: true }
}

describe('scheduler limits and failures', () => {
  test('busy workers: tasks come back, are placed again without counting attempts, and the job is exact', { timeout: 120_000 }, async () => {
    // One thread and no queue: a second task on a node is refused with ERR_WORKER_BUSY.
    const c = await createCluster({ nodes: 2, pool: { maxQueue: 0 }, limits: { creditsPerCore: 3, busyHoldMs: 10 } })
    try {
      const a = c.nodes[0].scheduler
      const { id } = await a.grid.submit('fib', { n: 100000, segments: 12 })
      const job = await runToEnd(a, id)
      assertFib(job, 100000, REFERENCE[100000])
      for (const s of job.segments) assert.equal(s.attempts, 1, 'busy answers are not attempts')
      const busy = (await c.nodes[0].registry.getSingleMetric('voike_tasks_total')?.get())?.values.find(v => v.labels.status === 'busy')
      assert.ok((busy?.value ?? 0) >= 1, 'busy answers happened and were counted')
    } finally {
      await c.close()
    }
  })

  test('a result policy given to the scheduler decides: two agreeing runs of every segment (spot check)', { timeout: 120_000 }, async () => {
    // Accept a value once two runs on different peers agree (kinds.ts valuesEqual); disagreeing runs fail the job.
    const twoAgree: ResultPolicy = {
      name: 'two-agree',
      decide: ({ kind, answer, earlier }) => {
        if (earlier.length === 0) return { action: 'rerun' }
        return valuesEqual(kind, earlier[0].value, answer.value) ? { action: 'accept', value: answer.value } : { action: 'reject', reason: 'runs disagree' }
      }
    }
    const c = await createCluster({ nodes: 2, resultPolicy: twoAgree })
    try {
      const a = c.nodes[0].scheduler
      const { id } = await a.grid.submit('fib', { n: 5000, segments: 3 })
      const job = await runToEnd(a, id)
      assertFib(job, 5000, REFERENCE[5000])
      for (const s of job.segments) assert.equal(s.attempts, 2, 'every segment ran twice')
    } finally {
      await c.close()
    }
  })

  test('a segment failing on every attempt fails the job, naming the segment and the error', { timeout: 120_000 }, async () => {
    const broken: JobKind<FibParams, FibSpan> = {
      ...fibKind,
      name: 'broken',
      task: (seg) => seg.index === 1 ? { kind: 'no-such-task', payload: {} } : fibKind.task(seg)
    }
    const c = await createCluster({ nodes: 2, kinds: [fibKind, broken], limits: { maxAttempts: 3 } })
    try {
      const a = c.nodes[0].scheduler
      const { id } = await a.grid.submit('broken', { n: 1000, segments: 3 })
      const job = await runToEnd(a, id)
      assert.equal(job.status, 'failed')
      assert.match(String(job.error), /segment 1 .*after 3 attempts.*ERR_UNKNOWN_TASK_KIND/)
      assert.equal(job.segments[1].attempts, 3)
      assert.equal(job.result, null)
      assert.equal((await a.grid.get(id))?.status, 'failed')
    } finally {
      await c.close()
    }
  })

  test('a segment not answered in time is placed again, then the job fails when attempts run out', { timeout: 120_000 }, async () => {
    // The cap keeps fib's cost estimate from raising the timeout (see the timeout tests below).
    const c = await createCluster({ nodes: 2, limits: { segmentTimeoutMs: 100, maxSegmentTimeoutMs: 100, remoteAskTimeoutMs: 50, maxAttempts: 2, tickMs: 10 } })
    try {
      const a = c.nodes[0].scheduler
      const { id } = await a.grid.submit('fib', { n: 3_000_000, segments: 1 })
      const job = await runToEnd(a, id)
      assert.equal(job.status, 'failed')
      assert.match(String(job.error), /segment 0 .*after 2 attempts.*ERR_TASK_TIMEOUT/)
      await waitFor(() => c.nodes.every(n => n.pool.stats().inFlight === 0), 'idle worker pools', 10_000)
    } finally {
      await c.close()
    }
  })

  test('a suspect peer: its tasks are placed elsewhere without counting an attempt; its late results are accepted', { timeout: 120_000 }, async () => {
    // maxAttempts 1: one counted failure would fail the job.
    const workers: ScriptedWorker[] = []
    const c = await createCluster({
      nodes: 2,
      // 4 credits per node: 2 segments on each, and room on node 0 for those of node 1.
      limits: { maxAttempts: 1, creditsPerCore: 4 },
      worker: (i, system) => { workers[i] = new ScriptedWorker(system, () => 'hold'); return workers[i].actor() }
    })
    try {
      const [n0, n1] = c.nodes
      const a = n0.scheduler
      const { id } = await a.grid.submit('fib', { n: 5000, segments: 4 })
      await waitFor(() => workers[0].held.size > 0 && workers[1].held.size > 0, 'tasks held on both nodes')
      const onSuspect = [...workers[1].held.keys()]
      n0.table.setStatus(n1.peerId, 'suspect', Date.now())
      assert.equal(a.stats().inFlightByPeer[n1.peerId], undefined, 'nothing left on the suspect peer')
      await waitFor(() => workers[0].held.size === 4, 'its segments placed on node 0')
      let view = await a.grid.get(id)
      assert.equal(view?.status, 'running', 'a suspect peer does not fail the job')
      assert.ok(view?.segments.every(s => s.attempts === 1))
      // The suspect peer answers after all: accepted, and the newer dispatches cancelled.
      assert.equal(workers[1].release(), onSuspect.length)
      await waitFor(async () => ((await a.grid.get(id))?.segmentsDone ?? 0) === onSuspect.length, 'the late results counted')
      await waitFor(() => workers[0].cancelled.length === onSuspect.length, 'the newer dispatches cancelled')
      workers[0].release()
      const job = await runToEnd(a, id)
      assertFib(job, 5000, REFERENCE[5000])
      for (const t of onSuspect) assert.equal(job.segments[taskSeq(t).index].node, n1.peerId)
      assert.ok(job.segments.every(s => s.attempts === 1), 'no attempt was counted')

      // Suspect, then back: nothing is held against anyone, even if it dies later.
      n0.table.setStatus(n1.peerId, 'alive', Date.now())
      const { id: id2 } = await a.grid.submit('fib', { n: 5000, segments: 4 })
      await waitFor(() => workers[1].held.size > 0, 'tasks held on node 1')
      n0.table.setStatus(n1.peerId, 'suspect', Date.now())
      await waitFor(() => workers[0].held.size === 4, 'its segments placed on node 0')
      n0.table.setStatus(n1.peerId, 'alive', Date.now())
      n0.table.setStatus(n1.peerId, 'dead', Date.now())
      await waitFor(() => { workers[0].release(); return a.stats().inFlight === 0 }, 'every segment answered')
      view = await runToEnd(a, id2)
      assertFib(view, 5000, REFERENCE[5000])
      assert.ok(view.segments.every(s => s.attempts === 1))
    } finally {
      await c.close()
    }
  })

  test('a suspect peer that then dies: the attempts of the tasks moved off it count', { timeout: 120_000 }, async () => {
    const workers: ScriptedWorker[] = []
    const c = await createCluster({
      nodes: 2,
      limits: { maxAttempts: 2, creditsPerCore: 4 },
      worker: (i, system) => { workers[i] = new ScriptedWorker(system, () => 'hold'); return workers[i].actor() }
    })
    try {
      const [n0, n1] = c.nodes
      const a = n0.scheduler
      const { id } = await a.grid.submit('fib', { n: 5000, segments: 4 })
      await waitFor(() => workers[1].held.size > 0 && workers[0].held.size > 0, 'tasks held on node 1')
      const moved = [...workers[1].held.keys()].map(t => taskSeq(t).index)
      n0.table.setStatus(n1.peerId, 'suspect', Date.now())
      await waitFor(() => workers[0].held.size === 4, 'its segments placed on node 0')
      assert.ok((await a.grid.get(id))?.segments.every(s => s.attempts === 1))
      // One of them is even done elsewhere before the peer is declared dead: it counts too.
      assert.equal(workers[0].release(t => taskSeq(t.id).index === moved[0]), 1)
      await waitFor(async () => ((await a.grid.get(id))?.segmentsDone ?? 0) === 1, 'one moved segment done')
      n0.table.setStatus(n1.peerId, 'dead', Date.now())
      const view = await a.grid.get(id)
      for (const s of view?.segments ?? []) assert.equal(s.attempts, moved.includes(s.index) ? 2 : 1, `segment ${s.index}`)
      workers[0].release()
      const job = await runToEnd(a, id)
      assertFib(job, 5000, REFERENCE[5000])
      for (const s of job.segments) assert.equal(s.attempts, moved.includes(s.index) ? 2 : 1)
      assert.ok(job.segments.every(s => s.node === n0.peerId))
    } finally {
      await c.close()
    }
  })

  test('suspect re-placements are bounded: beyond maxLostRetries they count as attempts', { timeout: 120_000 }, async () => {
    const workers: ScriptedWorker[] = []
    const c = await createCluster({
      nodes: 2,
      limits: { maxAttempts: 1, maxLostRetries: 0 },
      worker: (i, system) => { workers[i] = new ScriptedWorker(system, () => 'hold'); return workers[i].actor() }
    })
    try {
      const [n0, n1] = c.nodes
      const { id } = await n0.scheduler.grid.submit('fib', { n: 5000, segments: 4 })
      await waitFor(() => workers[1].held.size > 0, 'tasks held on node 1')
      n0.table.setStatus(n1.peerId, 'suspect', Date.now())
      const job = await runToEnd(n0.scheduler, id)
      assert.equal(job.status, 'failed')
      assert.match(String(job.error), /after 1 attempts.*ERR_PEER_LOST/)
    } finally {
      await c.close()
    }
  })

  test('peerUnreachable: the peer\'s tasks are placed elsewhere at once, without counting attempts, and it gets nothing for a while', { timeout: 120_000 }, async () => {
    const workers: ScriptedWorker[] = []
    const c = await createCluster({
      nodes: 2,
      limits: { maxAttempts: 1, unreachableHoldMs: 600_000 },
      worker: (i, system) => { workers[i] = new ScriptedWorker(system, () => i === 1 ? 'hold' : 'ok'); return workers[i].actor() }
    })
    try {
      const [n0, n1] = c.nodes
      const a = n0.scheduler
      const { id } = await a.grid.submit('fib', { n: 5000, segments: 8 })
      await waitFor(() => workers[1].held.size > 0, 'tasks held on node 1')
      const sent = workers[1].received.length
      a.peerUnreachable(n1.peerId)
      assert.equal(a.stats().inFlightByPeer[n1.peerId], undefined, 're-placed at once')
      const job = await runToEnd(a, id)
      assertFib(job, 5000, REFERENCE[5000])
      assert.ok(job.segments.every(s => s.attempts === 1 && s.node === n0.peerId), 'no attempt counted; all ran on node 0')
      assert.equal(workers[1].received.length, sent, 'nothing new was sent to the unreachable peer')
      // Its own id and unknown peers are ignored; so are calls after close.
      a.peerUnreachable(n0.peerId)
      a.peerUnreachable('nobody')
      assert.equal(a.stats().inFlight, 0)
    } finally {
      await c.close()
    }
  })

  test('segment timeouts follow the kind\'s cost estimate, within the cap', { timeout: 60_000 }, () => {
    const base = 600_000
    const cap = 21_600_000
    // The calibration point: [0, 300000) measured 600 ms.
    assert.ok(Math.abs(fibSegmentEstimateMs(0, 300_000) - 600) < 1)
    // fib(10^7) in one segment: ~52 min measured; estimated above it, and the timeout well above that.
    const huge = fibSegmentEstimateMs(0, 10_000_000)
    assert.ok(huge > 52 * 60_000 && huge < 90 * 60_000, `estimate ${huge} ms`)
    assert.equal(segmentTimeoutMs(fibKind, seg({ n: 10_000_000, segments: 1 }, { start: 0, end: 10_000_000 }), base, cap), cap)
    const big = { start: 0, end: 3_000_000 } // ~5 min
    assert.equal(segmentTimeoutMs(fibKind, seg({}, big), base, cap), Math.ceil(ESTIMATE_TIMEOUT_FACTOR * fibSegmentEstimateMs(0, 3_000_000)))
    assert.ok(segmentTimeoutMs(fibKind, seg({}, big), base, cap) > base)
    // A small segment (fib(10^7) cut in 4096) keeps the base timeout.
    assert.equal(segmentTimeoutMs(fibKind, seg({}, { start: 9_998_000, end: 10_000_000 }), base, cap), base)
    // Monotonic in the range's position and length.
    assert.ok(fibSegmentEstimateMs(5_000_000, 5_100_000) > fibSegmentEstimateMs(1_000_000, 1_100_000))
    assert.ok(fibSegmentEstimateMs(1_400_000, 1_600_000) > fibSegmentEstimateMs(1_400_000, 1_500_000))
    // No estimate, a throwing or unusable one: the base. A cap below the base leaves the base.
    const without: JobKind<any, any> = { ...fibKind, name: 'plain', estimateMs: undefined }
    assert.equal(segmentTimeoutMs(without, seg({}, big), base, cap), base)
    for (const bad of [() => { throw new Error('x') }, () => NaN, () => -1, () => Infinity, () => '9' as unknown as number]) {
      assert.equal(segmentTimeoutMs({ ...fibKind, estimateMs: bad } as JobKind<any, any>, seg({}, big), base, cap), base)
    }
    assert.equal(segmentTimeoutMs(fibKind, seg({}, big), base, 1000), base)
  })

  test('a long segment is given the time its estimate asks for, beyond segmentTimeoutMs', { timeout: 120_000 }, async () => {
    // [0, 300000) takes ~0.6 s: far beyond segmentTimeoutMs, within 10× its estimate.
    const c = await createCluster({ nodes: 1, limits: { segmentTimeoutMs: 100, remoteAskTimeoutMs: 50, maxAttempts: 1, tickMs: 10 } })
    try {
      const a = c.nodes[0].scheduler
      const { id } = await a.grid.submit('fib', { n: MID_N, segments: 1 })
      const job = await runToEnd(a, id)
      assertFib(job, MID_N, expectedMid())
      assert.equal(job.segments[0].attempts, 1)
    } finally {
      await c.close()
    }
  })

  test('jobs beyond maxActiveJobs wait queued; beyond maxQueuedJobs submit fails with ERR_OVERLOADED', { timeout: 120_000 }, async () => {
    const c = await createCluster({ nodes: 1, limits: { maxActiveJobs: 1, maxQueuedJobs: 1 } })
    try {
      const g = c.nodes[0].scheduler.grid
      const first = await g.submit('fib', { n: MID_N, segments: 4 })
      const second = await g.submit('fib', { n: 5000, segments: 2 })
      assert.equal(first.status, 'running')
      assert.equal(second.status, 'queued')
      await rejectsGrid(g.submit('fib', { n: 10, segments: 1 }), 'ERR_OVERLOADED')
      assertFib(await runToEnd(c.nodes[0].scheduler, second.id), 5000, REFERENCE[5000])
      assertFib(await runToEnd(c.nodes[0].scheduler, first.id), MID_N, expectedMid())
      const listed = await g.list({})
      assert.deepEqual(listed.map(j => j.id).sort(), [first.id, second.id].sort())
      assert.ok(listed.every(j => j.status === 'succeeded' && j.segments.length === 0 && j.segmentsDone === j.segmentsTotal))
      assert.deepEqual((await g.list({ status: 'failed' })), [])
      await rejectsGrid(g.list({ limit: 0 }), 'ERR_INVALID_ARGUMENT', 'limit')
    } finally {
      await c.close()
    }
  })

  test('metrics: jobs, durations, tasks and in-flight per peer', { timeout: 120_000 }, async () => {
    const c = await createCluster({ nodes: 2 })
    try {
      const n0 = c.nodes[0]
      const { id } = await n0.scheduler.grid.submit('fib', { n: 5000, segments: 4 })
      await runToEnd(n0.scheduler, id)
      const text = await n0.registry.metrics()
      assert.match(text, /voike_jobs_submitted_total\{kind="fib"\} 1/)
      assert.match(text, /voike_jobs_finished_total\{kind="fib",status="succeeded"\} 1/)
      assert.match(text, /voike_jobs_finished_total\{kind="fib",status="failed"\} 0/)
      assert.match(text, /voike_jobs_running\{kind="fib"\} 0/)
      assert.match(text, /voike_job_duration_seconds_count\{kind="fib"\} 1/)
      assert.match(text, /voike_tasks_total\{kind="fib-segment",status="ok"\} 4/)
      assert.match(text, /# TYPE voike_tasks_in_flight gauge/)
    } finally {
      await c.close()
    }
  })

  test('dead members forgotten by the membership are not tracked forever; the tracking is bounded', { timeout: 120_000 }, async () => {
    // Node 1 is not the lowest member: it never claims, so nothing else would forget them.
    const c = await createCluster({ nodes: 2, limits: { takeoverAfterMs: 300 } })
    try {
      const n1 = c.nodes[1]
      for (let round = 0; round < 3; round++) {
        const ids = Array.from({ length: 1000 }, (_, i) => `gone-${round}-${i}`)
        for (const id of ids) n1.table.put({ ...member(id), status: 'dead' })
        for (const id of ids) n1.table.remove(id)
        assert.ok(n1.scheduler.stats().deadTracked <= MAX_DEAD_TRACKED, `at most ${MAX_DEAD_TRACKED} tracked (${n1.scheduler.stats().deadTracked})`)
      }
      assert.equal(n1.scheduler.stats().deadTracked, MAX_DEAD_TRACKED)
      // A member still in the table stays tracked; forgotten ones go after 2 × takeoverAfterMs.
      n1.table.put({ ...member('still-dead'), status: 'dead' })
      await waitFor(() => n1.scheduler.stats().deadTracked === 1, 'forgotten members dropped', 10_000)
    } finally {
      await c.close()
    }
  })

  test('options are validated with a message naming the option', { timeout: 120_000 }, async () => {
    const registry = new Registry()
    const system = createActorSystem({ peerId: 'x', registry })
    const store = await createStore({ dataDir: ':memory:' })
    try {
      const table = new MemberTable('x')
      const make = (limits: SchedulerLimits): Scheduler => createScheduler({ system, store, table, registry, kinds: [fibKind], limits })
      assert.throws(() => make({ maxAttempts: 0 }), (e: { code?: string, message: string }) => e.code === 'ERR_INVALID_OPTION' && /limits\.maxAttempts/.test(e.message))
      assert.throws(() => make({ segmentTimeoutMs: 1.5 }), /limits\.segmentTimeoutMs/)
      assert.throws(() => make({ bogus: 1 } as SchedulerLimits), /limits\.bogus/)
      assert.throws(() => make({ takeoverAfterMs: -1 }), /limits\.takeoverAfterMs/)
      assert.throws(() => make({ maxLostRetries: 0.5 }), /limits\.maxLostRetries/)
      assert.throws(() => make({ freshReadTimeoutMs: 0 }), /limits\.freshReadTimeoutMs/)
      assert.throws(() => make({ maxSegmentTimeoutMs: 99 }), /limits\.maxSegmentTimeoutMs/)
      assert.throws(() => createScheduler({ system, store, table: new MemberTable('y'), registry, kinds: [fibKind] }), /table/)
      const ok = make({ maxAttempts: 1 })
      await ok.close()
      await assert.rejects(ok.grid.submit('fib', { n: 1, segments: 1 }), (e: GridError) => e.code === 'ERR_UNAVAILABLE')
    } finally {
      await store.close()
      await system.shutdown()
    }
  })
})
