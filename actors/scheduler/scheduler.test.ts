import '../../node/polyfill.js'
import { FIB_REFERENCE } from '../worker/tasks/fib-reference.js'
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { Registry } from 'prom-client'
import { GridError, type JobProgress, type JobView } from '../../node/grid-api.js'
import { createStore, type MemberRecord, type Store } from '../../node/store/index.js'
import { createActorSystem, createLoopbackTransports, type ActorSystem, type LoopbackNetwork } from '../index.js'
import { MemberTable } from '../membership/table.js'
import { createWorkerActor } from '../worker/worker-actor.js'
import { createWorkerPool, type WorkerPool, type WorkerPoolOptions } from '../worker/pool.js'
import { fibInProcess } from '../worker/tasks/fib.js'
import { fibKind } from './fib-kind.js'
import type { JobKind } from './kinds.js'
import { createScheduler, SCHEDULER_ACTOR, SCHEDULER_SPAWN_OPTIONS, type Scheduler, type SchedulerLimits } from './scheduler.js'

const PG_URL = process.env.VOIKE_TEST_DATABASE_URL

/** The contract's reference table. */
const REFERENCE: Record<number, { digits: number, sha256: string, sumMod61: string }> = Object.fromEntries(FIB_REFERENCE.map(r => [r.n, r]))

/** A job long enough (~0.6 s of CPU, split in many segments) to act on in mid-flight. */
const MID_N = 300_000
let midExpected: ReturnType<typeof fibInProcess> | undefined
function expectedMid (): ReturnType<typeof fibInProcess> {
  midExpected ??= fibInProcess(MID_N)
  return midExpected
}

// ---- the rig: N in-process nodes linked by a msgpack loopback ----------------------------

interface TestNode {
  readonly peerId: string
  readonly system: ActorSystem
  readonly pool: WorkerPool
  readonly table: MemberTable
  readonly registry: Registry
  store: Store
  scheduler: Scheduler
}

interface Cluster {
  readonly nodes: TestNode[]
  readonly net: LoopbackNetwork
  /** Stops the scheduler of node i (as a crash would) and starts a fresh one over a reopened store. */
  restartScheduler: (i: number) => Promise<void>
  /** Node i is gone: cut from the network, its work stopped, and marked dead in every table. */
  kill: (i: number) => Promise<void>
  close: () => Promise<void>
}

interface ClusterOptions {
  nodes?: number
  limits?: SchedulerLimits
  pool?: Partial<WorkerPoolOptions>
  kinds?: Array<JobKind<any>>
  /** 'postgres': every node shares one database schema. */
  backend?: 'sqlite' | 'postgres'
}

const cleanups: Array<() => Promise<void>> = []
after(async () => { for (const c of cleanups.reverse()) await c() })

function member (peerId: string): MemberRecord {
  return { peerId, addrs: [], cores: 1, memoryBytes: 1, version: 'test', startedAtMs: Date.now(), status: 'alive', lastSeenMs: Date.now(), leftAtMs: null, isGenesis: false, host: '' }
}

async function storeOptions (backend: 'sqlite' | 'postgres', peerId: string, shared: { dir?: string, schema?: string }): Promise<() => Promise<Store>> {
  if (backend === 'postgres') {
    shared.schema ??= `t_sched_${randomBytes(5).toString('hex')}`
    const schema = shared.schema
    return async () => await createStore({ databaseUrl: PG_URL as string, schema, poolMax: 2 })
  }
  const dir = await mkdtemp(join(tmpdir(), `voike-sched-${peerId}-`))
  cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
  return async () => await createStore({ dataDir: dir })
}

async function createCluster (options: ClusterOptions = {}): Promise<Cluster> {
  const count = options.nodes ?? 3
  const backend = options.backend ?? 'sqlite'
  const net = createLoopbackTransports()
  const ids = Array.from({ length: count }, (_, i) => `peer-${i}`)
  const shared: { schema?: string } = {}
  const openers = new Map<string, () => Promise<Store>>()
  const nodes: TestNode[] = []
  const makeScheduler = (n: Omit<TestNode, 'scheduler'>): Scheduler => {
    const s = createScheduler({ system: n.system, store: n.store, table: n.table, registry: n.registry, limits: options.limits, kinds: options.kinds })
    n.system.spawn(SCHEDULER_ACTOR, s.factory, SCHEDULER_SPAWN_OPTIONS)
    return s
  }
  for (const peerId of ids) {
    const registry = new Registry()
    const system = createActorSystem({ peerId, transport: net.transport(peerId), registry })
    net.attach(system)
    const pool = createWorkerPool({ registry, threads: 1, ...options.pool })
    system.spawn('worker', () => createWorkerActor({ pool }), { mailboxCapacity: 65_536 })
    const table = new MemberTable(peerId)
    for (const id of ids) table.put(member(id))
    const open = await storeOptions(backend, peerId, shared)
    openers.set(peerId, open)
    const partial = { peerId, system, pool, table, registry, store: await open() }
    const node: TestNode = { ...partial, scheduler: makeScheduler(partial) }
    nodes.push(node)
  }
  for (const n of nodes) await n.scheduler.resume()
  let closed = false
  const cluster: Cluster = {
    nodes,
    net,
    async restartScheduler (i) {
      const n = nodes[i]
      await n.scheduler.close()
      await n.system.stop(SCHEDULER_ACTOR)
      await n.store.close()
      n.store = await (openers.get(n.peerId) as () => Promise<Store>)()
      n.scheduler = makeScheduler(n)
      await n.scheduler.resume()
    },
    async kill (i) {
      const n = nodes[i]
      net.detach(n.peerId)
      await n.pool.close()
      for (const other of nodes) if (other !== n) other.table.setStatus(n.peerId, 'dead', Date.now())
    },
    async close () {
      if (closed) return
      closed = true
      for (const n of nodes) await n.scheduler.close()
      for (const n of nodes) await n.system.shutdown({ timeoutMs: 2000 })
      for (const n of nodes) await n.pool.close()
      for (const n of nodes) await n.store.close()
      if (shared.schema !== undefined) {
        const admin = new pg.Client({ connectionString: PG_URL })
        await admin.connect()
        try { await admin.query(`DROP SCHEMA IF EXISTS ${shared.schema} CASCADE`) } finally { await admin.end() }
      }
    }
  }
  cleanups.push(async () => { await cluster.close() })
  return cluster
}

// ---- helpers -------------------------------------------------------------------------------

async function waitFor (what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

async function runToEnd (s: Scheduler, id: string): Promise<JobView> {
  return await s.grid.watch(id, () => {}, new AbortController().signal)
}

function assertFib (job: JobView, n: number, expected: { digits: number, sha256: string, sumMod61: string }): void {
  assert.equal(job.status, 'succeeded', `job failed: ${String(job.error)}`)
  assert.equal(job.error, null)
  assert.deepEqual(job.result, { n, ...expected })
  assert.equal(job.segmentsDone, job.segmentsTotal)
  for (const s of job.segments) {
    assert.equal(s.status, 'done')
    assert.equal(typeof s.node, 'string')
    assert.ok(s.attempts >= 1)
    assert.equal(typeof s.ms, 'number')
  }
}

async function rejectsGrid (p: Promise<unknown>, code: GridError['code'], field?: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof GridError, `expected a GridError, got ${String(err)}`)
    assert.equal(err.code, code)
    if (field !== undefined) {
      assert.equal(err.field, field)
      assert.match(err.message, new RegExp(field))
    }
    return true
  })
}

// ---- the suites ----------------------------------------------------------------------------

function suite (backend: 'sqlite' | 'postgres'): void {
  describe(`scheduler (${backend})`, () => {
    test('fib: exact reference values with several segment counts, segments on several nodes', { timeout: 120_000 }, async () => {
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

    test('bad parameters and unknown kinds are rejected naming the field, and nothing is stored', { timeout: 120_000 }, async () => {
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

    test('a worker node dying mid-job: its segments are placed again and the result is exact', { timeout: 120_000 }, async () => {
      const c = await createCluster({ backend, limits: { creditsPerCore: 1 } })
      try {
        const a = c.nodes[0].scheduler
        const victim = c.nodes[2].peerId
        const { id } = await a.grid.submit('fib', { n: MID_N, segments: 24 })
        await waitFor('a task in flight on the victim', () => (a.stats().inFlightByPeer[victim] ?? 0) > 0)
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

    test('a coordinator restarted mid-job resumes it from the store and finishes it exactly', { timeout: 120_000 }, async () => {
      const c = await createCluster({ backend, nodes: 2, limits: { creditsPerCore: 1 } })
      try {
        const { id } = await c.nodes[0].scheduler.grid.submit('fib', { n: MID_N, segments: 48 })
        // Stop the coordinator from inside the progress callback, while it is surely mid-job.
        let doneAtStop = -1
        let stopping: Promise<void> | undefined
        const watching = c.nodes[0].scheduler.grid.watch(id, (p) => {
          if (stopping === undefined && p.segmentsDone >= 3) {
            doneAtStop = p.segmentsDone
            stopping = c.restartScheduler(0)
          }
        }, new AbortController().signal)
        await assert.rejects(watching, (err: GridError) => err.code === 'ERR_UNAVAILABLE')
        await waitFor('the restart', () => stopping !== undefined)
        await stopping
        assert.ok(doneAtStop >= 3 && doneAtStop < 48, `stopped mid-job (${doneAtStop} of 48 done)`)
        const job = await runToEnd(c.nodes[0].scheduler, id)
        assertFib(job, MID_N, expectedMid())
        // The segments done before the restart were kept, not recomputed.
        assert.ok(job.segments.filter(s => s.attempts === 1).length >= doneAtStop)
        assert.equal(job.coordinator, c.nodes[0].peerId)
      } finally {
        await c.close()
      }
    })

    test('cancel stops outstanding work; a cancelled job stays cancelled', { timeout: 120_000 }, async () => {
      const c = await createCluster({ backend })
      try {
        const a = c.nodes[0].scheduler
        const { id } = await a.grid.submit('fib', { n: 2_000_000, segments: 16 })
        await waitFor('tasks in flight on every node', () => Object.keys(a.stats().inFlightByPeer).length === 3)
        // Cancel through another node: it is forwarded to the coordinator.
        const cancelled = await c.nodes[1].scheduler.grid.cancel(id)
        assert.equal(cancelled.status, 'cancelled')
        assert.equal(a.stats().inFlight, 0, 'no task is outstanding any more')
        // Every worker drops the work (threads terminated), long before it could have finished.
        await waitFor('idle worker pools', () => c.nodes.every(n => n.pool.stats().inFlight === 0), 10_000)
        const stored = await a.grid.get(id)
        assert.equal(stored?.status, 'cancelled')
        assert.equal(stored?.segmentsDone, cancelled.segmentsDone, 'nothing finished after the cancel')
        assert.deepEqual(await a.grid.cancel(id), stored, 'cancelling again returns it unchanged')
        assert.equal((await a.grid.watch(id, () => {}, new AbortController().signal)).status, 'cancelled')
      } finally {
        await c.close()
      }
    })

    test('get, watch and cancel of a job coordinated on another node', { timeout: 120_000 }, async () => {
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

    test('watch reports monotonic progress and resolves with the final job; an aborted watch rejects', { timeout: 120_000 }, async () => {
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
if (PG_URL !== undefined && PG_URL !== '') suite('postgres')

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

  test('a segment failing on every attempt fails the job, naming the segment and the error', { timeout: 120_000 }, async () => {
    const broken: JobKind<{ n: number, segments: number }> = {
      ...fibKind,
      name: 'broken',
      task: (p, span, index, isLast) => index === 1 ? { kind: 'no-such-task', payload: {} } : fibKind.task(p, span, index, isLast)
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
    const c = await createCluster({ nodes: 2, limits: { segmentTimeoutMs: 100, remoteAskTimeoutMs: 50, maxAttempts: 2, tickMs: 10 } })
    try {
      const a = c.nodes[0].scheduler
      const { id } = await a.grid.submit('fib', { n: 3_000_000, segments: 1 })
      const job = await runToEnd(a, id)
      assert.equal(job.status, 'failed')
      assert.match(String(job.error), /segment 0 .*after 2 attempts.*ERR_TASK_TIMEOUT/)
      await waitFor('idle worker pools', () => c.nodes.every(n => n.pool.stats().inFlight === 0), 10_000)
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
      assert.match(text, /voike_jobs_total\{kind="fib",status="submitted"\} 1/)
      assert.match(text, /voike_jobs_total\{kind="fib",status="succeeded"\} 1/)
      assert.match(text, /voike_job_duration_seconds_count\{kind="fib"\} 1/)
      assert.match(text, /voike_tasks_total\{kind="fib",status="ok"\} 4/)
      assert.match(text, /# TYPE voike_tasks_in_flight gauge/)
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
      const make = (limits: SchedulerLimits): Scheduler => createScheduler({ system, store, table, registry, limits })
      assert.throws(() => make({ maxAttempts: 0 }), (e: { code?: string, message: string }) => e.code === 'ERR_INVALID_OPTION' && /limits\.maxAttempts/.test(e.message))
      assert.throws(() => make({ segmentTimeoutMs: 1.5 }), /limits\.segmentTimeoutMs/)
      assert.throws(() => make({ bogus: 1 } as SchedulerLimits), /limits\.bogus/)
      assert.throws(() => createScheduler({ system, store, table: new MemberTable('y'), registry }), /table/)
      const ok = make({ maxAttempts: 1 })
      await ok.close()
      await assert.rejects(ok.grid.submit('fib', { n: 1, segments: 1 }), (e: GridError) => e.code === 'ERR_UNAVAILABLE')
    } finally {
      await store.close()
      await system.shutdown()
    }
  })
})
