import '../../config/polyfill.js'
import { FIB_REFERENCE } from '../kinds/fib/reference.js'
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { Registry } from 'prom-client'
import { GridError, type JobProgress, type JobView } from './api.js'
import { createStore, type MemberRecord, type Store } from '../../store/index.js'
import { createActorSystem, createLoopbackTransports, type Actor, type ActorRef, type ActorSystem, type LoopbackNetwork } from '../runtime/index.js'
import { MemberTable } from '../membership/table.js'
import { createWorkerActor } from '../worker/worker-actor.js'
import { createWorkerPool, type WorkerPool, type WorkerPoolOptions } from '../worker/pool.js'
import { fibInProcess } from '../kinds/fib/arith.js'
import { getTaskKind } from '../worker/tasks/index.js'
import { fibKind, fibSegmentEstimateMs } from '../kinds/fib/job.js'
import { ESTIMATE_TIMEOUT_FACTOR, segmentTimeoutMs, type JobKind } from './kinds.js'
import { createScheduler, MAX_DEAD_TRACKED, RESUME_SEQ_MARGIN, SCHEDULER_ACTOR, SCHEDULER_SPAWN_OPTIONS, type Scheduler, type SchedulerLimits } from './scheduler.js'

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
  /**
   * Stops the scheduler of node i (as a crash would) and starts a fresh one over a reopened store;
   * `between` runs while it is stopped.
   */
  restartScheduler: (i: number, between?: () => Promise<void>) => Promise<void>
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
  /**
   * Every node uses one store (as nodes sharing a PostgreSQL database do): with 'postgres' they
   * always share the schema; with 'sqlite' this makes them share one store object.
   */
  sharedStore?: boolean
  /** Node i's worker actor, instead of the real one (scripted workers). */
  worker?: (i: number, system: ActorSystem) => Actor | undefined
  /** What node i's scheduler uses instead of its store (faults injected by the test). */
  wrapStore?: (i: number, store: Store) => Store
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
  // One SQLite store object for every node (opened once, closed once).
  let sharedSqlite: Store | undefined
  if (options.sharedStore === true && backend === 'sqlite') sharedSqlite = await (await storeOptions('sqlite', 'shared', shared))()
  const nodes: TestNode[] = []
  const makeScheduler = (n: Omit<TestNode, 'scheduler'>): Scheduler => {
    const i = ids.indexOf(n.peerId)
    const store = options.wrapStore?.(i, n.store) ?? n.store
    const s = createScheduler({ system: n.system, store, table: n.table, registry: n.registry, limits: options.limits, kinds: options.kinds })
    n.system.spawn(SCHEDULER_ACTOR, s.factory, SCHEDULER_SPAWN_OPTIONS)
    return s
  }
  for (const [i, peerId] of ids.entries()) {
    const registry = new Registry()
    const system = createActorSystem({ peerId, transport: net.transport(peerId), registry })
    net.attach(system)
    const pool = createWorkerPool({ registry, threads: 1, ...options.pool })
    const scripted = options.worker?.(i, system)
    system.spawn('worker', () => scripted ?? createWorkerActor({ pool }), { mailboxCapacity: 65_536 })
    const table = new MemberTable(peerId)
    for (const id of ids) table.put(member(id))
    const open = sharedSqlite !== undefined ? async () => sharedSqlite as Store : await storeOptions(backend, peerId, shared)
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
    async restartScheduler (i, between) {
      const n = nodes[i]
      await n.scheduler.close()
      await n.system.stop(SCHEDULER_ACTOR)
      if (sharedSqlite === undefined) await n.store.close()
      n.store = await (openers.get(n.peerId) as () => Promise<Store>)()
      await between?.()
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
      if (sharedSqlite !== undefined) await sharedSqlite.close()
      else for (const n of nodes) await n.store.close()
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

/** A task as a scripted worker received it. */
interface ReceivedTask { id: string, kind: string, payload: unknown, timeoutMs: unknown, sender: ActorRef }

/**
 * A stand-in for the worker actor that the test drives: every task is recorded, then answered
 * at once with the real value, refused as busy, or held until the test releases it, as
 * `decide` says. Cancelled ids are recorded (and held tasks among them dropped).
 */
class ScriptedWorker {
  readonly received: ReceivedTask[] = []
  readonly held = new Map<string, ReceivedTask>()
  readonly cancelled: string[] = []
  constructor (private readonly system: ActorSystem, public decide: (t: ReceivedTask) => 'ok' | 'busy' | 'hold' = () => 'ok') {}

  actor (): Actor {
    return {
      receive: (msg: any, ctx) => {
        if (msg?.type === 'cancel') {
          for (const id of msg.ids as string[]) { this.cancelled.push(id); this.held.delete(id) }
          return
        }
        if (msg?.type !== 'run' || ctx.sender === undefined) return
        const sender = { peerId: ctx.sender.peerId, name: ctx.sender.name }
        for (const t of msg.tasks as Array<Omit<ReceivedTask, 'sender'>>) {
          const task: ReceivedTask = { ...t, sender }
          this.received.push(task)
          const what = this.decide(task)
          if (what === 'hold') this.held.set(task.id, task)
          else if (what === 'busy') this.reply(task, { ok: false, error: { code: 'ERR_WORKER_BUSY', message: 'scripted busy' }, ms: 0 })
          else this.answer(task)
        }
      }
    }
  }

  /** Answers every held task (that `which` selects) with its real value. */
  release (which: (t: ReceivedTask) => boolean = () => true): number {
    let n = 0
    for (const t of [...this.held.values()]) {
      if (!which(t)) continue
      this.held.delete(t.id)
      this.answer(t)
      n++
    }
    return n
  }

  private answer (t: ReceivedTask): void {
    const value = getTaskKind(t.kind)?.run(t.payload)
    this.reply(t, { ok: true, value, ms: 1 })
  }

  private reply (t: ReceivedTask, r: Record<string, unknown>): void {
    this.system.tell(t.sender, { type: 'results', results: [{ id: t.id, ...r }] }, 'worker')
  }
}

/** Segment index and seq of a task id `${job}/${index}/${seq}`. */
function taskSeq (id: string): { index: number, seq: number } {
  const [, index, seq] = id.split('/')
  return { index: Number(index), seq: Number(seq) }
}

/** Node i is gone for good: its scheduler closed (jobs left in the store), cut off, dead (or left) everywhere else. */
async function goneForGood (c: Cluster, i: number, left: boolean): Promise<void> {
  const n = c.nodes[i]
  await n.scheduler.close()
  await n.system.stop(SCHEDULER_ACTOR)
  c.net.detach(n.peerId)
  for (const other of c.nodes) if (other !== n) other.table.setStatus(n.peerId, 'dead', Date.now(), left)
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

    test('task ids never repeat across a resume: the dispatch seq is persisted and continued', { timeout: 120_000 }, async () => {
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
        await waitFor('segment 0 held on its 4th dispatch', () => w.held.size === 1)
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

    test('takeover: the jobs of a coordinator gone for good are claimed by the lowest alive member and finished exactly', { timeout: 120_000 }, async () => {
      const c = await createCluster({ backend, nodes: 3, sharedStore: true, limits: { creditsPerCore: 1, takeoverAfterMs: 300 } })
      try {
        const [a, b, cc] = c.nodes
        const { id } = await a.scheduler.grid.submit('fib', { n: MID_N, segments: 48 })
        const { id: id2 } = await a.scheduler.grid.submit('fib', { n: 2_000_000, segments: 16 })
        await waitFor('job 1 mid-way', async () => ((await a.scheduler.grid.get(id))?.segmentsDone ?? 0) >= 3)
        // A crashes for good; B and C see it dead (not a graceful leave: takeoverAfterMs applies).
        await goneForGood(c, 0, false)
        const doneAtStop = (await b.store.getJob(id))?.segments.filter(s => s.status === 'done').length ?? 0
        assert.ok(doneAtStop >= 3 && doneAtStop < 48, `stopped mid-job (${doneAtStop} of 48 done)`)
        await waitFor('B claimed both jobs', () => b.scheduler.stats().jobs === 2)
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
        assert.ok(job.segments.filter(s => s.attempts === 1).length >= doneAtStop, 'segments done before were kept')
        assert.deepEqual((await cc.scheduler.grid.get(id))?.result, job.result)
        assert.deepEqual(await b.scheduler.grid.cancel(id), await b.scheduler.grid.get(id), 'cancelling an ended job returns it unchanged')
      } finally {
        await c.close()
      }
    })

    test('takeover: a coordinator that left is taken over at once', { timeout: 120_000 }, async () => {
      // takeoverAfterMs is long: only the leave can trigger the claim within the test.
      const c = await createCluster({ backend, nodes: 2, sharedStore: true, limits: { takeoverAfterMs: 3_600_000 } })
      try {
        const [a, b] = c.nodes
        const { id } = await a.scheduler.grid.submit('fib', { n: MID_N, segments: 24 })
        await goneForGood(c, 0, true)
        await waitFor('B claimed the job', () => b.scheduler.stats().jobs === 1, 10_000)
        assertFib(await runToEnd(b.scheduler, id), MID_N, expectedMid())
      } finally {
        await c.close()
      }
    })

    test('fencing: a coordinator claimed while alive (cut off) cannot overwrite the new coordinator\'s cancel; it drops the job', { timeout: 120_000 }, async () => {
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
        await waitFor('A dispatched every segment', () => heldOf(a.peerId).length === 4)
        // B loses sight of A (A is alive and keeps running), and claims its job.
        b.table.setStatus(a.peerId, 'dead', Date.now())
        await waitFor('B claimed the job', () => b.scheduler.stats().jobs === 1)
        const cancelled = await b.scheduler.grid.cancel(id)
        assert.equal(cancelled.status, 'cancelled')
        assert.equal(cancelled.coordinator, b.peerId)
        b.table.setStatus(a.peerId, 'alive', Date.now())
        // A's workers answer: A finishes the job, and its end write finds B's claim.
        for (const w of workers) w.release(t => t.sender.peerId === a.peerId)
        const seenByA = await watched
        assert.equal(seenByA.status, 'cancelled', 'A\'s watch follows the job to its new coordinator')
        assert.equal(seenByA.coordinator, b.peerId)
        await waitFor('A dropped the job', () => a.scheduler.stats().jobs === 0)
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

    test('fencing: a deposed coordinator\'s segment write drops the job and cancels its tasks on the workers', { timeout: 120_000 }, async () => {
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
        await waitFor('A dispatched every segment', () => heldOf(a.peerId).length === 4)
        b.table.setStatus(a.peerId, 'dead', Date.now())
        await waitFor('B claimed the job', () => b.scheduler.stats().jobs === 1)
        // One of A's tasks answers: A writes the segment, and the write finds B's claim.
        const [first, ...rest] = heldOf(a.peerId)
        for (const w of workers) w.release(t => t.id === first.id)
        await waitFor('A dropped the job', () => a.scheduler.stats().jobs === 0)
        assert.equal(a.scheduler.stats().inFlight, 0, 'A\'s credits are free')
        await waitFor('A told the workers to cancel its other tasks', () => {
          const cancelledIds = workers.flatMap(w => w.cancelled)
          return rest.every(t => cancelledIds.includes(t.id))
        })
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

    test('takeover: a claimed job whose loading fails is loaded by a later sweep; the other claimed jobs load at once', { timeout: 120_000 }, async () => {
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
        await waitFor('B loaded the job that did not fail', () => b.scheduler.stats().jobs >= 1, 15_000)
        assert.ok(failed, 'the first load failed')
        assert.equal(sweeps, 0, 'loaded by the claim itself, not by a sweep')
        await waitFor('B loaded the job whose loading failed', () => b.scheduler.stats().jobs === 2, 15_000)
        assert.ok(sweeps >= 1)
        assertFib(await runToEnd(b.scheduler, first), 20_000, fibInProcess(20_000))
        assertFib(await runToEnd(b.scheduler, second), 30_000, fibInProcess(30_000))
        assert.deepEqual(await b.store.listUnfinishedJobs(b.peerId), [])
      } finally {
        await c.close()
      }
    })

    test('get on another node asks the coordinator of a running job for its live state, else answers the stored copy', { timeout: 120_000 }, async () => {
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
        await waitFor('progress on the coordinator', async () => ((await a.scheduler.grid.get(id))?.segmentsDone ?? 0) >= 2)
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
    // The cap keeps fib's cost estimate from raising the timeout (see the timeout tests below).
    const c = await createCluster({ nodes: 2, limits: { segmentTimeoutMs: 100, maxSegmentTimeoutMs: 100, remoteAskTimeoutMs: 50, maxAttempts: 2, tickMs: 10 } })
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
      await waitFor('tasks held on both nodes', () => workers[0].held.size > 0 && workers[1].held.size > 0)
      const onSuspect = [...workers[1].held.keys()]
      n0.table.setStatus(n1.peerId, 'suspect', Date.now())
      assert.equal(a.stats().inFlightByPeer[n1.peerId], undefined, 'nothing left on the suspect peer')
      await waitFor('its segments placed on node 0', () => workers[0].held.size === 4)
      let view = await a.grid.get(id)
      assert.equal(view?.status, 'running', 'a suspect peer does not fail the job')
      assert.ok(view?.segments.every(s => s.attempts === 1))
      // The suspect peer answers after all: accepted, and the newer dispatches cancelled.
      assert.equal(workers[1].release(), onSuspect.length)
      await waitFor('the late results counted', async () => ((await a.grid.get(id))?.segmentsDone ?? 0) === onSuspect.length)
      await waitFor('the newer dispatches cancelled', () => workers[0].cancelled.length === onSuspect.length)
      workers[0].release()
      const job = await runToEnd(a, id)
      assertFib(job, 5000, REFERENCE[5000])
      for (const t of onSuspect) assert.equal(job.segments[taskSeq(t).index].node, n1.peerId)
      assert.ok(job.segments.every(s => s.attempts === 1), 'no attempt was counted')

      // Suspect, then back: nothing is held against anyone, even if it dies later.
      n0.table.setStatus(n1.peerId, 'alive', Date.now())
      const { id: id2 } = await a.grid.submit('fib', { n: 5000, segments: 4 })
      await waitFor('tasks held on node 1', () => workers[1].held.size > 0)
      n0.table.setStatus(n1.peerId, 'suspect', Date.now())
      await waitFor('its segments placed on node 0', () => workers[0].held.size === 4)
      n0.table.setStatus(n1.peerId, 'alive', Date.now())
      n0.table.setStatus(n1.peerId, 'dead', Date.now())
      await waitFor('every segment answered', () => { workers[0].release(); return a.stats().inFlight === 0 })
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
      await waitFor('tasks held on node 1', () => workers[1].held.size > 0 && workers[0].held.size > 0)
      const moved = [...workers[1].held.keys()].map(t => taskSeq(t).index)
      n0.table.setStatus(n1.peerId, 'suspect', Date.now())
      await waitFor('its segments placed on node 0', () => workers[0].held.size === 4)
      assert.ok((await a.grid.get(id))?.segments.every(s => s.attempts === 1))
      // One of them is even done elsewhere before the peer is declared dead: it counts too.
      assert.equal(workers[0].release(t => taskSeq(t.id).index === moved[0]), 1)
      await waitFor('one moved segment done', async () => ((await a.grid.get(id))?.segmentsDone ?? 0) === 1)
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
      await waitFor('tasks held on node 1', () => workers[1].held.size > 0)
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
      await waitFor('tasks held on node 1', () => workers[1].held.size > 0)
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

  test('segment timeouts follow the kind\'s cost estimate, within the cap', () => {
    const base = 600_000
    const cap = 21_600_000
    // The calibration point: [0, 300000) measured 600 ms.
    assert.ok(Math.abs(fibSegmentEstimateMs(0, 300_000) - 600) < 1)
    // fib(10^7) in one segment: ~52 min measured; estimated above it, and the timeout well above that.
    const huge = fibSegmentEstimateMs(0, 10_000_000)
    assert.ok(huge > 52 * 60_000 && huge < 90 * 60_000, `estimate ${huge} ms`)
    assert.equal(segmentTimeoutMs(fibKind, { n: 10_000_000, segments: 1 }, { start: 0, end: 10_000_000 }, base, cap), cap)
    const big = { start: 0, end: 3_000_000 } // ~5 min
    assert.equal(segmentTimeoutMs(fibKind, {}, big, base, cap), Math.ceil(ESTIMATE_TIMEOUT_FACTOR * fibSegmentEstimateMs(0, 3_000_000)))
    assert.ok(segmentTimeoutMs(fibKind, {}, big, base, cap) > base)
    // A small segment (fib(10^7) cut in 4096) keeps the base timeout.
    assert.equal(segmentTimeoutMs(fibKind, {}, { start: 9_998_000, end: 10_000_000 }, base, cap), base)
    // Monotonic in the range's position and length.
    assert.ok(fibSegmentEstimateMs(5_000_000, 5_100_000) > fibSegmentEstimateMs(1_000_000, 1_100_000))
    assert.ok(fibSegmentEstimateMs(1_400_000, 1_600_000) > fibSegmentEstimateMs(1_400_000, 1_500_000))
    // No estimate, a throwing or unusable one: the base. A cap below the base leaves the base.
    const without: JobKind<any> = { ...fibKind, name: 'plain', estimateMs: undefined }
    assert.equal(segmentTimeoutMs(without, {}, big, base, cap), base)
    for (const bad of [() => { throw new Error('x') }, () => NaN, () => -1, () => Infinity, () => '9' as unknown as number]) {
      assert.equal(segmentTimeoutMs({ ...fibKind, estimateMs: bad }, {}, big, base, cap), base)
    }
    assert.equal(segmentTimeoutMs(fibKind, {}, big, base, 1000), base)
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
      assert.match(text, /voike_jobs_total\{kind="fib",status="submitted"\} 1/)
      assert.match(text, /voike_jobs_total\{kind="fib",status="succeeded"\} 1/)
      assert.match(text, /voike_job_duration_seconds_count\{kind="fib"\} 1/)
      assert.match(text, /voike_tasks_total\{kind="fib",status="ok"\} 4/)
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
      await waitFor('forgotten members dropped', () => n1.scheduler.stats().deadTracked === 1, 10_000)
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
      assert.throws(() => make({ takeoverAfterMs: -1 }), /limits\.takeoverAfterMs/)
      assert.throws(() => make({ maxLostRetries: 0.5 }), /limits\.maxLostRetries/)
      assert.throws(() => make({ freshReadTimeoutMs: 0 }), /limits\.freshReadTimeoutMs/)
      assert.throws(() => make({ maxSegmentTimeoutMs: 99 }), /limits\.maxSegmentTimeoutMs/)
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
