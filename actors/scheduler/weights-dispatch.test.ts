import '../../config/polyfill.js'
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { Registry } from 'prom-client'
import { createStore, type Store } from '../../store/index.js'
import { fibKind } from '../kinds/fib/job.js'
import { MemberTable } from '../membership/table.js'
import { createActorSystem, createLoopbackTransports, type ActorSystem } from '../runtime/index.js'
import { member, runToEnd, ScriptedWorker } from '../testing/cluster.js'
import { createScheduler, SCHEDULER_ACTOR, SCHEDULER_SPAWN_OPTIONS, type Scheduler } from './scheduler.js'

const closers: Array<() => Promise<void>> = []
after(async () => { for (const c of closers.reverse()) await c() })

/** Three loopback nodes with scripted workers; node 0's scheduler gets the given deps. */
async function rig (extra: Parameters<typeof createScheduler>[0] extends infer D ? Partial<D> : never): Promise<{ scheduler: Scheduler, workers: ScriptedWorker[], ids: string[] }> {
  const net = createLoopbackTransports()
  const ids = ['peer-0', 'peer-1', 'peer-2']
  const systems: ActorSystem[] = []
  const workers: ScriptedWorker[] = []
  for (const id of ids) {
    const system = createActorSystem({ peerId: id, transport: net.transport(id), registry: new Registry() })
    net.attach(system)
    const w = new ScriptedWorker(system)
    system.spawn('worker', () => w.actor())
    systems.push(system)
    workers.push(w)
  }
  const table = new MemberTable(ids[0])
  for (const id of ids) table.put({ ...member(id), cores: 2 })
  const store: Store = await createStore({ dataDir: ':memory:' })
  const scheduler = createScheduler({ system: systems[0], store, table, registry: new Registry(), kinds: [fibKind], ...extra })
  systems[0].spawn(SCHEDULER_ACTOR, scheduler.factory, SCHEDULER_SPAWN_OPTIONS)
  await scheduler.resume()
  closers.push(async () => {
    await scheduler.close()
    for (const s of systems) await s.shutdown({ timeoutMs: 1000 })
    await store.close()
  })
  return { scheduler, workers, ids }
}

test('an excluded (distrusted) peer gets no task; outcomes are told per peer', async () => {
  const outcomes: Array<[string, string]> = []
  const { scheduler, workers } = await rig({
    excluded: (p) => p === 'peer-1',
    peerWeight: () => 1,
    onTaskOutcome: (peer, outcome) => { outcomes.push([peer, outcome]) }
  })
  const job = await scheduler.grid.submit('fib', { n: 2000, segments: 12 })
  const end = await runToEnd(scheduler, job.id)
  assert.equal(end.status, 'succeeded')
  assert.equal(workers[1].received.length, 0, 'the distrusted peer received tasks')
  assert.ok(workers[2].received.length > 0, 'the trusted peer got work')
  // Only other peers' outcomes are told (this node judges others, not itself).
  assert.ok(outcomes.length > 0)
  assert.ok(outcomes.every(([peer, o]) => peer === 'peer-2' && o === 'ok'), JSON.stringify(outcomes))
  assert.equal(outcomes.length, workers[2].received.length)
})

test('failures are told with their outcome; a lighter weight gets fewer tasks at once', async () => {
  const outcomes: Array<[string, string]> = []
  const { scheduler, workers } = await rig({
    peerWeight: (p) => p === 'peer-2' ? 0.25 : 1,
    onTaskOutcome: (peer, outcome) => { outcomes.push([peer, outcome]) }
  })
  // peer-1 holds every task: we then see how many were placed on each peer at once.
  workers[0].decide = () => 'hold'
  workers[1].decide = () => 'hold'
  workers[2].decide = () => 'hold'
  const job = await scheduler.grid.submit('fib', { n: 5000, segments: 64 })
  const { waitFor } = await import('../testing/rig.js')
  await waitFor(() => workers.every(w => w.held.size > 0), 'tasks on every peer', 10_000)
  // Credits are 2 cores × creditsPerCore; peer-2's are a quarter of that (at least 1).
  assert.ok(workers[2].held.size < workers[1].held.size, `peer-2 held ${workers[2].held.size}, peer-1 ${workers[1].held.size}`)
  // peer-1 answers its tasks with an error: counted attempts, told as `error`.
  const errors = [...workers[1].held.values()]
  workers[1].held.clear()
  for (const t of errors) {
    (workers[1] as unknown as { reply: (t: unknown, r: unknown) => void }).reply(t, { ok: false, error: { code: 'ERR_TASK_FAILED', message: 'scripted failure' }, ms: 1 })
  }
  await waitFor(() => outcomes.filter(o => o[0] === 'peer-1' && o[1] === 'error').length === errors.length, 'errors told', 10_000)
  await scheduler.grid.cancel(job.id)
})
