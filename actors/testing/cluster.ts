/**
 * The in-process cluster of the scheduler's tests: N nodes (actor system, worker pool, member
 * table, store, scheduler) linked by a msgpack loopback, with scripted workers and faults. Not a
 * test file (see rig.ts on names).
 */
import { randomBytes } from 'node:crypto'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { Registry } from 'prom-client'
import { createStore, type MemberRecord, type Store } from '../../store/index.js'
import { fibKind } from '../kinds/fib/job.js'
import { fibInProcess } from '../kinds/fib/arith.js'
import { FIB_REFERENCE } from '../kinds/fib/reference.js'
import { MemberTable } from '../membership/table.js'
import { createActorSystem, createLoopbackTransports, type Actor, type ActorRef, type ActorSystem, type LoopbackNetwork } from '../runtime/index.js'
import { GridError, type JobView } from '../scheduler/api.js'
import type { JobKind } from '../scheduler/kinds.js'
import type { ResultPolicy } from '../scheduler/policy.js'
import { createScheduler, SCHEDULER_ACTOR, SCHEDULER_SPAWN_OPTIONS, type Scheduler, type SchedulerLimits } from '../scheduler/scheduler.js'
import { createWorkerActor } from '../worker/worker-actor.js'
import { createWorkerPool, type WorkerPool, type WorkerPoolOptions } from '../worker/pool.js'
import { createTaskRegistry } from '../worker/task-kinds.js'
import { TEST_TASKS } from './rig.js'

const TEST_TASK_KINDS = createTaskRegistry(TEST_TASKS)

export const PG_URL = process.env.VOIKE_TEST_DATABASE_URL

/** The contract's reference table. */
export const REFERENCE: Record<number, { digits: number, sha256: string, sumMod61: string }> = Object.fromEntries(FIB_REFERENCE.map(r => [r.n, r]))

/** A job long enough (~0.6 s of CPU, split in many segments) to act on in mid-flight. */
export const MID_N = 300_000
let midExpected: ReturnType<typeof fibInProcess> | undefined
export function expectedMid (): ReturnType<typeof fibInProcess> {
  midExpected ??= fibInProcess(MID_N)
  return midExpected
}

// ---- the rig: N in-process nodes linked by a msgpack loopback ----------------------------

export interface TestNode {
  readonly peerId: string
  readonly system: ActorSystem
  readonly pool: WorkerPool
  readonly table: MemberTable
  readonly registry: Registry
  store: Store
  scheduler: Scheduler
}

export interface Cluster {
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

export interface ClusterOptions {
  nodes?: number
  limits?: SchedulerLimits
  pool?: Partial<WorkerPoolOptions>
  /** Default [fibKind]. */
  kinds?: Array<JobKind<any, any>>
  /** One policy for every node, or one per node (spot checks keep per-coordinator state). */
  resultPolicy?: ResultPolicy | ((i: number, peerId: string) => ResultPolicy)
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

/** Closes every cluster (and temporary directory) made so far: each test file calls it in after(). */
export async function closeAll (): Promise<void> {
  for (const c of cleanups.reverse()) await c()
  cleanups.length = 0
}

export function member (peerId: string): MemberRecord {
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

export async function createCluster (options: ClusterOptions = {}): Promise<Cluster> {
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
    const s = createScheduler({ system: n.system, store, table: n.table, registry: n.registry, limits: options.limits, kinds: options.kinds ?? [fibKind], resultPolicy: typeof options.resultPolicy === 'function' ? options.resultPolicy(i, n.peerId) : options.resultPolicy })
    n.system.spawn(SCHEDULER_ACTOR, s.factory, SCHEDULER_SPAWN_OPTIONS)
    return s
  }
  for (const [i, peerId] of ids.entries()) {
    const registry = new Registry()
    const system = createActorSystem({ peerId, transport: net.transport(peerId), registry })
    net.attach(system)
    const pool = createWorkerPool({ registry, tasks: TEST_TASKS, threads: 1, ...options.pool })
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


export async function runToEnd (s: Scheduler, id: string): Promise<JobView> {
  return await s.grid.watch(id, () => {}, new AbortController().signal)
}

export function assertFib (job: JobView, n: number, expected: { digits: number, sha256: string, sumMod61: string }): void {
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

export async function rejectsGrid (p: Promise<unknown>, code: GridError['code'], field?: string): Promise<void> {
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
export interface ReceivedTask { id: string, kind: string, payload: unknown, timeoutMs: unknown, sender: ActorRef }

/**
 * A stand-in for the worker actor that the test drives: every task is recorded, then answered
 * at once with the real value, refused as busy, or held until the test releases it, as
 * `decide` says. Cancelled ids are recorded (and held tasks among them dropped).
 */
export class ScriptedWorker {
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
    const value = TEST_TASK_KINDS.get(t.kind)?.run(t.payload)
    this.reply(t, { ok: true, value, ms: 1 })
  }

  private reply (t: ReceivedTask, r: Record<string, unknown>): void {
    this.system.tell(t.sender, { type: 'results', results: [{ id: t.id, ...r }] }, 'worker')
  }
}

/** Segment index and seq of a task id `${job}/${index}/${seq}`. */
export function taskSeq (id: string): { index: number, seq: number } {
  const [, index, seq] = id.split('/')
  return { index: Number(index), seq: Number(seq) }
}

/** Node i is gone for good: its scheduler closed (jobs left in the store), cut off, dead (or left) everywhere else. */
export async function goneForGood (c: Cluster, i: number, left: boolean): Promise<void> {
  const n = c.nodes[i]
  await n.scheduler.close()
  await n.system.stop(SCHEDULER_ACTOR)
  c.net.detach(n.peerId)
  for (const other of c.nodes) if (other !== n) other.table.setStatus(n.peerId, 'dead', Date.now(), left)
}
