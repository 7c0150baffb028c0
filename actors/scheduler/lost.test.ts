/**
 * A segment lost with its node shows it: `lost` counts the dispatches placed again without an
 * attempt (attempts + lost = every dispatch), in the view, after the job ended, and in the store.
 */
import '../../config/polyfill.js'
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { waitFor } from '../testing/rig.js'
import { assertFib, closeAll, createCluster, REFERENCE, runToEnd, ScriptedWorker, taskSeq } from '../testing/cluster.js'

after(closeAll)

test('a segment whose node is lost mid-job shows the lost dispatch, whether the node then dies or not', { timeout: 120_000 }, async () => {
  for (const thenDies of [false, true]) {
    const workers: ScriptedWorker[] = []
    const c = await createCluster({
      nodes: 2,
      limits: { creditsPerCore: 4 },
      worker: (i, system) => { workers[i] = new ScriptedWorker(system, () => 'hold'); return workers[i].actor() }
    })
    try {
      const [n0, n1] = c.nodes
      const a = n0.scheduler
      const { id } = await a.grid.submit('fib', { n: 5000, segments: 4 })
      await waitFor(() => workers[0].held.size > 0 && workers[1].held.size > 0, 'tasks held on both nodes')
      const moved = [...workers[1].held.keys()].map(t => taskSeq(t).index)
      // Its node is lost: its segments go to node 0 without counting an attempt.
      n0.table.setStatus(n1.peerId, 'suspect', Date.now())
      await waitFor(() => workers[0].held.size === 4, 'its segments placed on node 0')
      const running = await a.grid.get(id)
      for (const s of running?.segments ?? []) assert.deepEqual([s.attempts, s.lost], moved.includes(s.index) ? [1, 1] : [1, 0], `segment ${s.index} while running`)
      // Declared dead while the job runs: the lost dispatch becomes a counted attempt.
      if (thenDies) n0.table.setStatus(n1.peerId, 'dead', Date.now())
      workers[0].release()
      const job = await runToEnd(a, id)
      assertFib(job, 5000, REFERENCE[5000])
      const expected = (i: number): number[] => !moved.includes(i) ? [1, 0] : thenDies ? [2, 0] : [1, 1]
      for (const s of job.segments) assert.deepEqual([s.attempts, s.lost], expected(s.index), `segment ${s.index} (node ${thenDies ? 'died' : 'lost'})`)
      // Declared dead after the job ended: the view does not change.
      if (!thenDies) n0.table.setStatus(n1.peerId, 'dead', Date.now())
      const later = await a.grid.get(id)
      for (const s of later?.segments ?? []) assert.deepEqual([s.attempts, s.lost], expected(s.index), `segment ${s.index} later`)
      // The store has the same: what a restarted coordinator and the other nodes read.
      const stored = await n0.store.getJob(id)
      for (const s of stored?.segments ?? []) assert.deepEqual([s.attempts, s.lost], expected(s.index), `segment ${s.index} in the store`)
    } finally {
      await c.close()
    }
  }
})
