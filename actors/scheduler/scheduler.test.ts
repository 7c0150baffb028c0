import '../../config/polyfill.js'
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { GridError, type JobProgress, type JobView } from './api.js'
import type { SegmentRecord } from '../../store/types.js'
import { fibInProcess } from '../kinds/fib/arith.js'
import { RESUME_SEQ_MARGIN } from './scheduler.js'
import { roundMs } from './views.js'
import { pgSkip, TEST_TASKS, waitFor } from '../testing/rig.js'
import { fibKind } from '../kinds/fib/job.js'
import { holdKind } from '../kinds/hold/job.js'
import holdTasks, { HOLD_DIR_ENV } from '../kinds/hold/task.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  assertFib, closeAll, createCluster, expectedMid, goneForGood, MID_N, REFERENCE, rejectsGrid, runToEnd, ScriptedWorker, taskSeq,
  type ReceivedTask
} from '../testing/cluster.js'

after(closeAll)

const holdDirs: string[] = []
after(async () => { for (const d of holdDirs) await rm(d, { recursive: true, force: true }) })
/** A directory for the hold task's markers (it reads it from its thread's environment). */
async function holdDir (): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'voike-hold-'))
  holdDirs.push(d)
  return d
}

function suite (backend: 'sqlite' | 'postgres'): void {
  // Without a database the PostgreSQL tests are reported as skipped, with the reason.
  const testOpts = { timeout: 120_000, skip: backend === 'postgres' ? pgSkip() : false }
  describe(`scheduler (${backend})`, () => {
    test('fib: exact reference values with several segment counts, segments on several nodes', testOpts, async () => {
      const c = await createCluster({ backend })
      try {
        const cases: Array<[number, number]> = [[0, 1], [1, 1], [10, 1], [10, 3], [10, 10], [5000, 1], [5000, 7], [5000, 64], [100000, 1], [100000, 5], [100000, 16]]
        for (const [n, segments] of cases) {
          const coordinator = c.nodes[n % c.nodes.length].scheduler
          const submitted = await coordinator.grid.submit('fib', { n, segments })
          assert.match(submitted.id, /^[A-Za-z0-9_-]{1,64}$/)
          assert.equal(submitted.segmentsTotal, segments)
          assert.equal(submitted.segments.length, segments)
          const job = await runToEnd(coordinator, submitted.id)
          assertFib(job, n, REFERENCE[n])
          assert.equal(job.segments.length, segments)
          if (segments >= 5) {
            const used = new Set(job.segments.map(s => s.node))
            assert.ok(used.size >= 2, `segments of fib(${n})/${segments} all ran on ${[...used].join(', ')}`)
          }
          // What a later reader (or a restarted node) sees in the store is the same.
          const again = await coordinator.grid.get(submitted.id)
          assert.deepEqual(again?.result, job.result)
        }
      } finally {
        await c.close()
      }
    })

    test('task ids never repeat across a resume: the dispatch seq is persisted and continued', testOpts, async () => {
      // Segment 0 is refused as busy 3 times (seq 1..3, attempts back to 0), then held (seq 4),
      // then answered.
      let workerOf: ScriptedWorker | undefined
      let dispatchesOf0 = 0
      const c = await createCluster({
        backend,
        nodes: 1,
        limits: { busyHoldMs: 0, busyPenaltyMs: 0 },
        worker: (_i, system) => {
          workerOf = new ScriptedWorker(system, (t) => {
            if (taskSeq(t.id).index !== 0) return 'ok'
            dispatchesOf0++
            return dispatchesOf0 <= 3 ? 'busy' : dispatchesOf0 === 4 ? 'hold' : 'ok'
          })
          return workerOf.actor()
        }
      })
      try {
        const w = workerOf as ScriptedWorker
        const n0 = c.nodes[0]
        const { id } = await n0.scheduler.grid.submit('fib', { n: 5000, segments: 2 })
        await waitFor(() => w.held.size === 1, 'segment 0 held on its 4th dispatch')
        assert.deepEqual(w.received.filter(t => taskSeq(t.id).index === 0).map(t => taskSeq(t.id).seq), [1, 2, 3, 4])
        const before = new Set(w.received.map(t => t.id))
        // The held task is still on the worker when the coordinator comes back.
        await c.restartScheduler(0, async () => {
          const stored = await n0.store.getJob(id)
          assert.equal(stored?.segments[0].seq, 4, 'the dispatch seq was written')
          assert.equal(stored?.segments[0].attempts, 1, 'busy answers are not attempts')
        })
        const job = await runToEnd(n0.scheduler, id)
        assertFib(job, 5000, REFERENCE[5000])
        const after = w.received.filter(t => !before.has(t.id))
        assert.ok(after.length >= 1, 'segment 0 was dispatched again after the resume')
        for (const t of after) {
          assert.ok(taskSeq(t.id).seq > 4, `task id ${t.id} after the resume is above every earlier one`)
          assert.ok(taskSeq(t.id).seq > RESUME_SEQ_MARGIN, 'the resume continues above the stored seq with a margin')
        }
        const final = await n0.store.getJob(id)
        assert.equal(final?.segments[0].seq, taskSeq(after[after.length - 1].id).seq, 'the stored seq follows the dispatches')
      } finally {
        await c.close()
      }
    })

    test('takeover: the jobs of a coordinator gone for good are claimed by the lowest alive member and finished exactly', testOpts, async () => {
      const c = await createCluster({ backend, nodes: 3, sharedStore: true, limits: { creditsPerCore: 1, takeoverAfterMs: 300 } })
      try {
        const [a, b, cc] = c.nodes
        const { id } = await a.scheduler.grid.submit('fib', { n: MID_N, segments: 48 })
        const { id: id2 } = await a.scheduler.grid.submit('fib', { n: 2_000_000, segments: 16 })
        await waitFor(async () => ((await a.scheduler.grid.get(id))?.segmentsDone ?? 0) >= 3, 'job 1 mid-way')
        // A crashes for good; B and C see it dead (not a graceful leave: takeoverAfterMs applies).
        await goneForGood(c, 0, false)
        const doneBefore = (await b.store.getJob(id))?.segments.filter(s => s.status === 'done') ?? []
        const doneAtStop = doneBefore.length
        assert.ok(doneAtStop >= 3 && doneAtStop < 48, `stopped mid-job (${doneAtStop} of 48 done)`)
        await waitFor(() => b.scheduler.stats().jobs === 2, 'B claimed both jobs')
        assert.equal(cc.scheduler.stats().jobs, 0, 'only the lowest alive member claims')
        assert.deepEqual(await b.store.listUnfinishedJobs(a.peerId), [])
        // get and cancel work on the new coordinator (and through another node).
        const running = await b.scheduler.grid.get(id2)
        assert.equal(running?.coordinator, b.peerId)
        assert.equal(running?.status, 'running')
        const cancelled = await cc.scheduler.grid.cancel(id2)
        assert.equal(cancelled.status, 'cancelled')
        assert.equal((await b.scheduler.grid.get(id2))?.status, 'cancelled')
        const job = await runToEnd(b.scheduler, id)
        assertFib(job, MID_N, expectedMid())
        assert.equal(job.coordinator, b.peerId)
        assertKept(job, doneBefore)
        assert.deepEqual((await cc.scheduler.grid.get(id))?.result, job.result)
        assert.deepEqual(await b.scheduler.grid.cancel(id), await b.scheduler.grid.get(id), 'cancelling an ended job returns it unchanged')
      } finally {
        await c.close()
      }
    })

    test('takeover: a coordinator that left is taken over at once', testOpts, async () => {
      // takeoverAfterMs is long: only the leave can trigger the claim within the test.
      const c = await createCluster({ backend, nodes: 2, sharedStore: true, limits: { takeoverAfterMs: 3_600_000 } })
      try {
        const [a, b] = c.nodes
        const { id } = await a.scheduler.grid.submit('fib', { n: MID_N, segments: 24 })
        await goneForGood(c, 0, true)
        await waitFor(() => b.scheduler.stats().jobs === 1, 'B claimed the job', 10_000)
        assertFib(await runToEnd(b.scheduler, id), MID_N, expectedMid())
      } finally {
        await c.close()
      }
    })

    test('fencing: a coordinator claimed while alive (cut off) cannot overwrite the new coordinator\'s cancel; it drops the job', testOpts, async () => {
      // Segment writes are held back: A's only write after the claim is the end of the job.
      const workers: ScriptedWorker[] = []
      const c = await createCluster({
        backend,
        nodes: 2,
        sharedStore: true,
        limits: { takeoverAfterMs: 300, storeFlushMs: 10_000 },
        worker: (i, system) => { workers[i] = new ScriptedWorker(system, () => 'hold'); return workers[i].actor() }
      })
      try {
        const [b, a] = c.nodes
        const heldOf = (peer: string): ReceivedTask[] => workers.flatMap(w => [...w.held.values()]).filter(t => t.sender.peerId === peer)
        const n = 20_000
        const { id } = await a.scheduler.grid.submit('fib', { n, segments: 4 })
        const watched = a.scheduler.grid.watch(id, () => {}, new AbortController().signal)
        await waitFor(() => heldOf(a.peerId).length === 4, 'A dispatched every segment')
        // B loses sight of A (A is alive and keeps running), and claims its job.
        b.table.setStatus(a.peerId, 'dead', Date.now())
        await waitFor(() => b.scheduler.stats().jobs === 1, 'B claimed the job')
        const cancelled = await b.scheduler.grid.cancel(id)
        assert.equal(cancelled.status, 'cancelled')
        assert.equal(cancelled.coordinator, b.peerId)
        b.table.setStatus(a.peerId, 'alive', Date.now())
        // A's workers answer: A finishes the job, and its end write finds B's claim.
        for (const w of workers) w.release(t => t.sender.peerId === a.peerId)
        const seenByA = await watched
        assert.equal(seenByA.status, 'cancelled', 'A\'s watch follows the job to its new coordinator')
        assert.equal(seenByA.coordinator, b.peerId)
        await waitFor(() => a.scheduler.stats().jobs === 0, 'A dropped the job')
        const stored = await a.store.getJob(id)
        assert.equal(stored?.job.status, 'cancelled', 'the cancel through B stands')
        assert.equal(stored?.job.coordinator, b.peerId)
        assert.equal(stored?.job.result, null)
        assert.equal((await a.scheduler.grid.get(id))?.status, 'cancelled')
        const fenced = (await a.registry.getSingleMetric('voike_jobs_fenced_total')?.get())?.values ?? []
        assert.deepEqual(fenced.map(v => [v.labels.kind, v.value]), [['fib', 1]])
      } finally {
        await c.close()
      }
    })

    test('fencing: a deposed coordinator\'s segment write drops the job and cancels its tasks on the workers', testOpts, async () => {
      const workers: ScriptedWorker[] = []
      const c = await createCluster({
        backend,
        nodes: 2,
        sharedStore: true,
        limits: { takeoverAfterMs: 300 },
        worker: (i, system) => { workers[i] = new ScriptedWorker(system, () => 'hold'); return workers[i].actor() }
      })
      try {
        const [b, a] = c.nodes
        const heldOf = (peer: string): ReceivedTask[] => workers.flatMap(w => [...w.held.values()]).filter(t => t.sender.peerId === peer)
        const n = 20_000
        const { id } = await a.scheduler.grid.submit('fib', { n, segments: 4 })
        await waitFor(() => heldOf(a.peerId).length === 4, 'A dispatched every segment')
        b.table.setStatus(a.peerId, 'dead', Date.now())
        await waitFor(() => b.scheduler.stats().jobs === 1, 'B claimed the job')
        // One of A's tasks answers: A writes the segment, and the write finds B's claim.
        const [first, ...rest] = heldOf(a.peerId)
        for (const w of workers) w.release(t => t.id === first.id)
        await waitFor(() => a.scheduler.stats().jobs === 0, 'A dropped the job')
        assert.equal(a.scheduler.stats().inFlight, 0, 'A\'s credits are free')
        await waitFor(() => {
          const cancelledIds = workers.flatMap(w => w.cancelled)
          return rest.every(t => cancelledIds.includes(t.id))
        }, 'A told the workers to cancel its other tasks')
        assert.equal(heldOf(a.peerId).length, 0)
        // B runs the job to its end, unhindered.
        b.table.setStatus(a.peerId, 'alive', Date.now())
        for (const w of workers) w.decide = () => 'ok'
        for (const w of workers) w.release(t => t.sender.peerId === b.peerId)
        const job = await runToEnd(b.scheduler, id)
        assertFib(job, n, fibInProcess(n))
        assert.equal(job.coordinator, b.peerId)
        assert.equal((await a.scheduler.grid.get(id))?.status, 'succeeded')
      } finally {
        await c.close()
      }
    })

    test('takeover: a claimed job whose loading fails is loaded by a later sweep; the other claimed jobs load at once', testOpts, async () => {
      let claimed = false
      let failed = false
      let sweeps = 0
      const c = await createCluster({
        backend,
        nodes: 2,
        sharedStore: true,
        limits: { takeoverAfterMs: 300 },
        // Node 0's store fails the first getJob after a claim (a transient store error).
        wrapStore: (i, store) => i !== 0
          ? store
          : new Proxy(store, {
            get (target, key) {
              if (key === 'claimJobs') return async (from: string, to: string) => { const r = await target.claimJobs(from, to); if (r.length > 0) claimed = true; return r }
              if (key === 'getJob') {
                return async (id: string) => {
                  if (claimed && !failed) { failed = true; throw new Error('transient store error') }
                  return await target.getJob(id)
                }
              }
              if (key === 'listUnfinishedJobs') return async (coordinator: string) => { if (claimed) sweeps++; return await target.listUnfinishedJobs(coordinator) }
              const v = (target as unknown as Record<string | symbol, unknown>)[key]
              return typeof v === 'function' ? v.bind(target) : v
            }
          })
      })
      try {
        const [b, a] = c.nodes
        const { id: first } = await a.scheduler.grid.submit('fib', { n: 20_000, segments: 4 })
        const { id: second } = await a.scheduler.grid.submit('fib', { n: 30_000, segments: 4 })
        await goneForGood(c, 1, false)
        await waitFor(() => b.scheduler.stats().jobs >= 1, 'B loaded the job that did not fail', 15_000)
        assert.ok(failed, 'the first load failed')
        assert.equal(sweeps, 0, 'loaded by the claim itself, not by a sweep')
        await waitFor(() => b.scheduler.stats().jobs === 2, 'B loaded the job whose loading failed', 15_000)
        assert.ok(sweeps >= 1)
        assertFib(await runToEnd(b.scheduler, first), 20_000, fibInProcess(20_000))
        assertFib(await runToEnd(b.scheduler, second), 30_000, fibInProcess(30_000))
        assert.deepEqual(await b.store.listUnfinishedJobs(b.peerId), [])
      } finally {
        await c.close()
      }
    })

    test('get on another node asks the coordinator of a running job for its live state, else answers the stored copy', testOpts, async () => {
      // Segment writes are held back for long: the stored copy lags the coordinator.
      // Node 1's worker never answers: the job stays running.
      const c = await createCluster({
        backend,
        nodes: 2,
        sharedStore: true,
        limits: { storeFlushMs: 10_000, freshReadTimeoutMs: 300 },
        worker: (i, system) => i === 1 ? new ScriptedWorker(system, () => 'hold').actor() : undefined
      })
      try {
        const [a, b] = c.nodes
        const { id } = await a.scheduler.grid.submit('fib', { n: MID_N, segments: 24 })
        await waitFor(async () => ((await a.scheduler.grid.get(id))?.segmentsDone ?? 0) >= 2, 'progress on the coordinator')
        const stored = await b.store.getJob(id)
        assert.equal(stored?.job.status, 'running')
        const storedDone = stored?.segments.filter(s => s.status === 'done').length ?? -1
        const live = await a.scheduler.grid.get(id)
        const seen = await b.scheduler.grid.get(id)
        assert.equal(seen?.coordinator, a.peerId)
        assert.ok((seen?.segmentsDone ?? 0) >= (live?.segmentsDone ?? Infinity), `B sees the live state (${String(seen?.segmentsDone)} done), not the stored one (${storedDone})`)
        assert.ok((seen?.segmentsDone ?? 0) > storedDone)
        // The coordinator cannot be reached: the stored copy, after a short wait.
        c.net.detach(a.peerId)
        const t0 = Date.now()
        const fallback = await b.scheduler.grid.get(id)
        assert.equal(fallback?.id, id)
        assert.equal(fallback?.status, 'running')
        assert.ok(Date.now() - t0 < 3000, 'the ask is bounded by freshReadTimeoutMs')
      } finally {
        await c.close()
      }
    })

    test('bad parameters and unknown kinds are rejected naming the field, and nothing is stored', testOpts, async () => {
      const c = await createCluster({ backend, nodes: 1 })
      try {
        const g = c.nodes[0].scheduler.grid
        await rejectsGrid(g.submit('fib', { n: -1, segments: 1 }), 'ERR_INVALID_ARGUMENT', 'n')
        await rejectsGrid(g.submit('fib', { n: 10_000_001, segments: 1 }), 'ERR_INVALID_ARGUMENT', 'n')
        await rejectsGrid(g.submit('fib', { n: 1.5, segments: 1 }), 'ERR_INVALID_ARGUMENT', 'n')
        await rejectsGrid(g.submit('fib', { segments: 1 }), 'ERR_INVALID_ARGUMENT', 'n')
        await rejectsGrid(g.submit('fib', { n: 10, segments: 11 }), 'ERR_INVALID_ARGUMENT', 'segments')
        await rejectsGrid(g.submit('fib', { n: 10, segments: 0 }), 'ERR_INVALID_ARGUMENT', 'segments')
        await rejectsGrid(g.submit('fib', { n: 100_000, segments: 4097 }), 'ERR_INVALID_ARGUMENT', 'segments')
        await rejectsGrid(g.submit('fib', { n: 10 }), 'ERR_INVALID_ARGUMENT', 'segments')
        await rejectsGrid(g.submit('fib', 'n=10'), 'ERR_INVALID_ARGUMENT', 'params')
        await rejectsGrid(g.submit('nope', { n: 10, segments: 1 }), 'ERR_UNKNOWN_KIND', 'kind')
        await rejectsGrid(g.submit(42, { n: 10, segments: 1 }), 'ERR_INVALID_ARGUMENT', 'kind')
        await rejectsGrid(g.submit(undefined, {}), 'ERR_INVALID_ARGUMENT', 'kind')
        assert.deepEqual(await g.list({}), [])
        await rejectsGrid(g.get('bad id!'), 'ERR_INVALID_ARGUMENT', 'id')
        assert.equal(await g.get('unknown-job'), null)
        await rejectsGrid(g.cancel('unknown-job'), 'ERR_NOT_FOUND')
        await rejectsGrid(g.watch('unknown-job', () => {}, new AbortController().signal), 'ERR_NOT_FOUND')
      } finally {
        await c.close()
      }
    })

    test('a worker node dying mid-job: its segments are placed again and the result is exact', testOpts, async () => {
      const c = await createCluster({ backend, limits: { creditsPerCore: 1 } })
      try {
        const a = c.nodes[0].scheduler
        const victim = c.nodes[2].peerId
        const { id } = await a.grid.submit('fib', { n: MID_N, segments: 24 })
        await waitFor(() => (a.stats().inFlightByPeer[victim] ?? 0) > 0, 'a task in flight on the victim')
        await c.kill(2)
        assert.equal(a.stats().inFlightByPeer[victim], undefined, 'the dead node holds nothing any more')
        const job = await runToEnd(a, id)
        assertFib(job, MID_N, expectedMid())
        const retried = job.segments.filter(s => s.attempts > 1)
        assert.ok(retried.length >= 1, 'some segment was placed again')
        const lostMetric = (await c.nodes[0].registry.getSingleMetric('voike_tasks_total')?.get())?.values.find(v => v.labels.status === 'lost')
        assert.ok((lostMetric?.value ?? 0) >= 1, 'lost tasks are counted')
      } finally {
        await c.close()
      }
    })

    test('a coordinator restarted mid-job resumes it from the store and finishes it exactly', testOpts, async () => {
      const c = await createCluster({ backend, nodes: 2, limits: { creditsPerCore: 1 } })
      try {
        const { id } = await c.nodes[0].scheduler.grid.submit('fib', { n: MID_N, segments: 48 })
        // Stop the coordinator from inside the progress callback, while it is surely mid-job.
        let doneAtStop = -1
        let doneBefore: SegmentRecord[] = []
        let stopping: Promise<void> | undefined
        const watching = c.nodes[0].scheduler.grid.watch(id, (p) => {
          if (stopping === undefined && p.segmentsDone >= 3) {
            doneAtStop = p.segmentsDone
            // What the store holds while the coordinator is down: the done segments to keep.
            stopping = c.restartScheduler(0, async () => {
              doneBefore = (await c.nodes[0].store.getJob(id))?.segments.filter(s => s.status === 'done') ?? []
            })
          }
        }, new AbortController().signal)
        await assert.rejects(watching, (err: GridError) => err.code === 'ERR_UNAVAILABLE')
        await waitFor(() => stopping !== undefined, 'the restart')
        await stopping
        assert.ok(doneAtStop >= 3 && doneAtStop < 48, `stopped mid-job (${doneAtStop} of 48 done)`)
        const job = await runToEnd(c.nodes[0].scheduler, id)
        assertFib(job, MID_N, expectedMid())
        // The segments done before the restart were kept, not recomputed.
        assert.ok(doneBefore.length >= 3, `${doneBefore.length} segments stored as done at the stop`)
        assertKept(job, doneBefore)
        assert.equal(job.coordinator, c.nodes[0].peerId)
      } finally {
        await c.close()
      }
    })

    test('cancel stops outstanding work; a cancelled job stays cancelled', testOpts, async () => {
      // Segments of the TEST-ONLY kind `hold` block until released, and nothing is released here:
      // a pool can only go idle because the cancel reached it.
      process.env[HOLD_DIR_ENV] = await holdDir()
      const c = await createCluster({ backend, kinds: [fibKind, holdKind], pool: { tasks: [...TEST_TASKS, holdTasks] } })
      try {
        const a = c.nodes[0].scheduler
        const { id } = await a.grid.submit('hold', { token: 'cancel-test', segments: 3 })
        await waitFor(() => c.nodes.every(n => n.pool.stats().running === 1), 'a held segment running on every node')
        // Cancel through another node: it is forwarded to the coordinator.
        const cancelled = await c.nodes[1].scheduler.grid.cancel(id)
        assert.equal(cancelled.status, 'cancelled')
        assert.equal(a.stats().inFlight, 0, 'no task is outstanding any more')
        // Every worker drops the held work (threads terminated).
        await waitFor(() => c.nodes.every(n => n.pool.stats().inFlight === 0), 'idle worker pools', 20_000)
        const stored = await a.grid.get(id)
        assert.equal(stored?.status, 'cancelled')
        assert.equal(stored?.segmentsDone, 0, 'nothing finished')
        assert.deepEqual(await a.grid.cancel(id), stored, 'cancelling again returns it unchanged')
        assert.equal((await a.grid.watch(id, () => {}, new AbortController().signal)).status, 'cancelled')
      } finally {
        await c.close()
      }
    })

    test('get, watch and cancel of a job coordinated on another node', testOpts, async () => {
      const c = await createCluster({ backend, nodes: 2 })
      try {
        const a = c.nodes[0].scheduler
        const b = c.nodes[1].scheduler
        const { id } = await a.grid.submit('fib', { n: MID_N, segments: 16 })
        const seen = await b.grid.get(id)
        assert.equal(seen?.id, id)
        assert.equal(seen?.coordinator, c.nodes[0].peerId)
        const progress: JobProgress[] = []
        const final = await b.grid.watch(id, (p) => { progress.push(p) }, new AbortController().signal)
        assertFib(final, MID_N, expectedMid())
        assertMonotonic(progress, 16)
        assert.deepEqual((await b.grid.get(id))?.result, final.result)
      } finally {
        await c.close()
      }
    })

    test('watch reports monotonic progress and resolves with the final job; an aborted watch rejects', testOpts, async () => {
      const c = await createCluster({ backend, nodes: 2 })
      try {
        const a = c.nodes[0].scheduler
        const { id } = await a.grid.submit('fib', { n: 100000, segments: 32 })
        const progress: JobProgress[] = []
        const final = await a.grid.watch(id, (p) => { progress.push(p) }, new AbortController().signal)
        assertFib(final, 100000, REFERENCE[100000])
        assertMonotonic(progress, 32)
        const ac = new AbortController()
        const { id: id2 } = await a.grid.submit('fib', { n: 2_000_000, segments: 8 })
        const w = a.grid.watch(id2, () => { ac.abort() }, ac.signal)
        await assert.rejects(w, (err: { code?: string }) => err.code === 'ERR_ABORTED')
        await a.grid.cancel(id2)
      } finally {
        await c.close()
      }
    })
  })
}

/**
 * Each segment stored as done before a stop is in the final job as it was: same node, same
 * measured ms, no further attempt. A recomputed segment would show a later attempt and its own
 * timing.
 */
function assertKept (job: JobView, doneBefore: SegmentRecord[]): void {
  for (const d of doneBefore) {
    const s = job.segments[d.index]
    assert.equal(s.status, 'done')
    assert.equal(s.attempts, d.attempts, `segment ${d.index} was run again (attempts ${d.attempts} → ${s.attempts})`)
    assert.equal(s.node, d.node, `segment ${d.index} moved from ${d.node} to ${s.node}`)
    // Views show ms rounded to one decimal (views.ts roundMs); a re-timed segment differs anyway.
    assert.equal(s.ms, roundMs(d.ms), `segment ${d.index} was timed again`)
  }
}

function assertMonotonic (progress: JobProgress[], total: number): void {
  assert.ok(progress.length >= 2, 'the current state, then changes')
  for (let i = 1; i < progress.length; i++) {
    assert.ok(progress[i].segmentsDone >= progress[i - 1].segmentsDone, 'segmentsDone never goes back')
    assert.equal(progress[i].segmentsTotal, total)
  }
  const last = progress[progress.length - 1]
  assert.equal(last.status, 'succeeded')
  assert.equal(last.segmentsDone, total)
}

suite('sqlite')
suite('postgres')
