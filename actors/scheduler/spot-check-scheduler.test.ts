import '../../config/polyfill.js'
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Registry } from 'prom-client'
import { corruptValue } from '../chaos/corrupt.js'
import type { Actor, ActorSystem } from '../runtime/index.js'
import { waitFor, TEST_TASKS } from '../testing/rig.js'
import { assertFib, closeAll, createCluster, REFERENCE, runToEnd, ScriptedWorker } from '../testing/cluster.js'
import { createTaskRegistry } from '../worker/task-kinds.js'
import type { JobView } from './api.js'
import { fibKind } from '../kinds/fib/job.js'
import { firstValidWins, type ResultPolicy } from './policy.js'
import { createSpotCheck, type SpotCheck } from './spot-check.js'

after(closeAll)

const TASKS = createTaskRegistry(TEST_TASKS)
const N = 100000

/** A worker that computes every task for real and then, while `lying`, corrupts the value (well-formed). */
class LyingWorker {
  lying: boolean
  answered = 0
  lies = 0
  constructor (private readonly system: ActorSystem, lying: boolean) { this.lying = lying }
  actor (): Actor {
    return {
      receive: (msg: any, ctx) => {
        if (msg?.type !== 'run' || ctx.sender === undefined) return
        const to = { peerId: ctx.sender.peerId, name: ctx.sender.name }
        for (const t of msg.tasks as Array<{ id: string, kind: string, payload: unknown }>) {
          let value = TASKS.get(t.kind)?.run(t.payload)
          if (this.lying) { value = corruptValue(value).value; this.lies++ }
          this.answered++
          this.system.tell(to, { type: 'results', results: [{ id: t.id, ok: true, value, ms: 1 }] }, 'worker')
        }
      }
    }
  }
}

function exact (job: JobView): boolean {
  const r = job.result as Record<string, unknown> | null
  return job.status === 'succeeded' && r !== null && r.sha256 === REFERENCE[N].sha256 && r.sumMod61 === REFERENCE[N].sumMod61
}

async function spotMetric (registry: Registry): Promise<Record<string, number>> {
  return Object.fromEntries(((await registry.getSingleMetric('voike_spot_checks_total')?.get())?.values ?? []).map(v => [v.labels.status, v.value]))
}

describe('spot checks in the scheduler (in process)', () => {
  test('a peer lying on every result: every job exact, only the liar reported, outcomes counted', { timeout: 120_000 }, async () => {
    const registry = new Registry()
    const mismatches: string[] = []
    let spot: SpotCheck | undefined
    let liar: LyingWorker | undefined
    const c = await createCluster({
      nodes: 3,
      worker: (i, system) => { if (i !== 2) return undefined; liar = new LyingWorker(system, true); return liar.actor() },
      resultPolicy: (i, peerId): ResultPolicy => {
        if (i !== 0) return firstValidWins
        spot = createSpotCheck({ selfId: peerId, registry, trust: { isTrusted: () => true, reportMismatch: (p) => { mismatches.push(p) } } })
        return spot
      }
    })
    try {
      const s = c.nodes[0].scheduler
      for (let k = 0; k < 2; k++) {
        const { id } = await s.grid.submit('fib', { n: N, segments: 12 })
        const job = await runToEnd(s, id)
        assertFib(job, N, REFERENCE[N])
        assert.ok(job.verification !== undefined)
        assert.equal(job.verification.uncheckedBy['peer-2'], undefined, 'nothing accepted on the liar\'s word')
        assert.notEqual(job.verification.status, 'suspect')
      }
      assert.ok((liar?.lies ?? 0) > 0, 'the liar answered (and lied)')
      assert.ok(mismatches.length > 0 && mismatches.every(p => p === 'peer-2'), `only the liar is reported: ${mismatches.join(', ')}`)
      assert.equal(spot?.isReliable('peer-2'), false)
      const m = await spotMetric(registry)
      // Every disagreement was settled (honest peers' checks may or may not land on each other: agree ≥ 0).
      assert.ok(m.mismatch >= 1 && m.settled === m.mismatch && m.agree >= 0, JSON.stringify(m))
    } finally {
      await c.close()
    }
  })

  test('a peer lying after earning trust: caught by a sampled check; every job exact or marked suspect, in memory and in the store', { timeout: 180_000 }, async () => {
    const mismatches: string[] = []
    let spot: SpotCheck | undefined
    let liar: LyingWorker | undefined
    const c = await createCluster({
      nodes: 3,
      worker: (i, system) => { if (i !== 2) return undefined; liar = new LyingWorker(system, false); return liar.actor() },
      resultPolicy: (i, peerId): ResultPolicy => {
        if (i !== 0) return firstValidWins
        // Every 4th segment is checked; 2 agreeing results earn trust.
        spot = createSpotCheck({
          selfId: peerId,
          trust: { isTrusted: () => true, reportMismatch: (p) => { mismatches.push(p) } },
          options: { trustAfter: 2, checkFraction: 0.25 },
          sample: (_job, index) => index % 4 === 3 ? 0 : 0.5
        })
        return spot
      }
    })
    try {
      const s = c.nodes[0].scheduler
      const jobs: string[] = []
      const run = async (): Promise<JobView> => {
        const { id } = await s.grid.submit('fib', { n: N, segments: 16 })
        jobs.push(id)
        return await runToEnd(s, id)
      }
      // Honest until it is reliable (and has vouched alone for some segment).
      let vouched = false
      for (let k = 0; k < 6 && !(vouched && spot?.isReliable('peer-2') === true); k++) {
        const job = await run()
        assertFib(job, N, REFERENCE[N])
        vouched ||= (job.verification?.uncheckedBy['peer-2']?.length ?? 0) > 0
      }
      assert.ok(vouched && spot?.isReliable('peer-2'), 'the peer earned trust and vouched alone for segments')
      const honestJobs = [...jobs]
      // Now it lies on every result, and is caught by the first sampled check of its work.
      if (liar !== undefined) liar.lying = true
      for (let k = 0; k < 8 && mismatches.length === 0; k++) await run()
      assert.deepEqual([...new Set(mismatches)], ['peer-2'], 'the liar was caught, nobody else')
      assert.equal(spot?.isReliable('peer-2'), false)
      // Every job: exact, or marked suspect naming the liar (never silently wrong).
      await waitFor(async () => {
        for (const id of jobs) {
          const v = await s.grid.get(id)
          if (v === null) return false
          if (!exact(v) && !(v.verification?.status === 'suspect' && v.verification.caughtPeers.includes('peer-2'))) return false
        }
        return true
      }, 'every job exact or suspect', 30_000)
      // The honest phase's jobs that took the liar's word are suspect now, and so recorded in the store.
      for (const id of honestJobs) {
        const v = await s.grid.get(id)
        assert.ok(v?.verification !== undefined)
        if (v.verification.uncheckedBy['peer-2'] === undefined) continue
        assert.equal(v.verification.status, 'suspect')
        assert.deepEqual(v.verification.suspectSegments, v.verification.uncheckedBy['peer-2'])
        await waitFor(async () => ((await c.nodes[0].store.getJob(id))?.job.verification as { status?: string } | undefined)?.status === 'suspect', 'suspect written', 10_000)
      }
    } finally {
      await c.close()
    }
  })

  test('a caught peer: its unchecked segments of a running job run again elsewhere; an ended job no longer in memory is marked in the store', { timeout: 180_000 }, async () => {
    const listeners: Array<(peer: string) => void> = []
    let held: ScriptedWorker | undefined
    const c = await createCluster({
      nodes: 3,
      // Ended jobs leave memory at once: the store path marks them.
      limits: { maxRetainedJobs: 0 },
      worker: (i, system) => { if (i !== 1) return undefined; held = new ScriptedWorker(system, () => 'ok'); return held.actor() },
      resultPolicy: (i, peerId): ResultPolicy => {
        if (i !== 0) return firstValidWins
        // One agreeing result earns trust; nothing is sampled after that.
        const spot = createSpotCheck({ selfId: peerId, options: { trustAfter: 1, checkFraction: 0 } })
        // The test raises the catch itself, when the state it wants is there.
        return { ...spot, onCaught: (l) => { listeners.push(l); return spot.onCaught?.(l) ?? (() => {}) } }
      }
    })
    try {
      const s = c.nodes[0].scheduler
      // An ended job that took peer-2's word for some segment.
      let ended: JobView | undefined
      for (let k = 0; k < 5 && ended === undefined; k++) {
        const { id } = await s.grid.submit('fib', { n: N, segments: 8 })
        const job = await runToEnd(s, id)
        assertFib(job, N, REFERENCE[N])
        if ((job.verification?.uncheckedBy['peer-2']?.length ?? 0) > 0) ended = job
      }
      assert.ok(ended !== undefined, 'a job took peer-2\'s word')
      // A running job: peer-1 holds its tasks, so it cannot end; wait for peer-2 to vouch alone.
      assert.ok(held !== undefined)
      held.decide = () => 'hold'
      const { id } = await s.grid.submit('fib', { n: N, segments: 12 })
      let vouched: number[] = []
      await waitFor(async () => {
        const v = await s.grid.get(id)
        vouched = v?.verification?.uncheckedBy['peer-2'] ?? []
        return vouched.length > 0
      }, 'peer-2 vouching alone in the running job', 30_000)
      const before = await s.grid.get(id)
      assert.equal(before?.status, 'running')
      assert.equal(listeners.length, 1, 'the scheduler subscribed to caught peers')
      listeners[0]('peer-2')
      const after = await s.grid.get(id)
      for (const i of vouched) assert.notEqual(after?.segments[i].status, 'done', `segment ${i} runs again`)
      assert.equal(after?.segmentsDone, (before?.segmentsDone ?? 0) - vouched.length)
      // peer-1 answers again: the job ends exact, and the reopened segments ran elsewhere.
      held.decide = () => 'ok'
      held.release()
      const job = await runToEnd(s, id)
      assertFib(job, N, REFERENCE[N])
      for (const i of vouched) assert.notEqual(job.segments[i].node, 'peer-2', `segment ${i} ran on another peer`)
      // The ended job (no longer in memory) is suspect in the store and in its view.
      const endedId = ended.id
      const endedVouched = ended.verification?.uncheckedBy['peer-2']
      await waitFor(async () => (await s.grid.get(endedId))?.verification?.status === 'suspect', 'the ended job marked suspect', 10_000)
      const marked = await s.grid.get(endedId)
      assert.deepEqual(marked?.verification?.suspectSegments, endedVouched)
      assert.deepEqual(marked?.verification?.caughtPeers, ['peer-2'])
      assert.match(String(marked?.verification?.reason), /caught returning wrong results/)
    } finally {
      await c.close()
    }
  })

  test('a kind that is not deterministic is never compared: first answers win, the job says unverified, nobody is reported', { timeout: 120_000 }, async () => {
    const mismatches: string[] = []
    const loose = { ...fibKind, name: 'loose', deterministic: false }
    const c = await createCluster({
      nodes: 3,
      kinds: [fibKind, loose],
      resultPolicy: (i, peerId): ResultPolicy => i !== 0 ? firstValidWins : createSpotCheck({ selfId: peerId, trust: { isTrusted: () => true, reportMismatch: (p) => { mismatches.push(p) } } })
    })
    try {
      const s = c.nodes[0].scheduler
      const { id } = await s.grid.submit('loose', { n: N, segments: 9 })
      const job = await runToEnd(s, id)
      assert.equal(job.status, 'succeeded')
      assert.ok(job.segments.every(x => x.attempts === 1), 'no segment ran twice')
      assert.deepEqual(mismatches, [])
      const v = job.verification
      assert.ok(v !== undefined)
      if (job.segments.some(x => x.node !== 'peer-0')) {
        assert.equal(v.status, 'unverified')
        assert.match(v.reason, /kind loose is not deterministic/)
      }
    } finally {
      await c.close()
    }
  })
})
