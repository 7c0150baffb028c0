import '../../config/polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TEST_TASKS, waitFor } from '../testing/rig.js'
import { Registry } from 'prom-client'
import { createActorSystem, createLoopbackTransports, type ActorSystem } from '../runtime/index.js'
import type { ActorRef } from '../runtime/types.js'
import { createWorkerPool, type WorkerPool, type WorkerPoolOptions } from './pool.js'
import { createWorkerActor, type WorkerStats } from './worker-actor.js'
import { combineFib, splitFib, type FibSegmentResult } from '../kinds/fib/arith.js'

// Runs for tens of seconds: surely still running when a test cancels it or times it out.
const LONG = { kind: 'fib-segment', payload: { start: 0, end: 3_000_000, last: false } }

interface Results { id: string, ok: boolean, value?: unknown, error?: { code: string, message: string }, ms: number }

/**
 * Two actor systems linked by a msgpack loopback: 'S' hosts a `sched` actor that records every
 * message it gets; 'W' hosts the worker actor over a real pool.
 */
interface Rig {
  sched: ActorSystem
  worker: ActorSystem
  workerRef: ActorRef
  pool: WorkerPool
  /** Every `results` message received by `sched`, in order. */
  messages: Array<{ type: string, results: Results[] }>
  /** The answers by id (all answers, to check there is exactly one per id). */
  answers: () => Map<string, Results[]>
  run: (tasks: unknown[]) => void
  waitForAnswers: (ids: string[], timeoutMs?: number) => Promise<Map<string, Results>>
  close: () => Promise<void>
}

async function createRig (poolOptions: Partial<WorkerPoolOptions> = {}, remote = true): Promise<Rig> {
  const pool = createWorkerPool({ registry: new Registry(), tasks: TEST_TASKS, threads: 2, ...poolOptions })
  const net = createLoopbackTransports()
  const sched = createActorSystem({ peerId: 'S', registry: new Registry(), ...(remote ? { transport: net.transport('S') } : {}) })
  const worker = remote ? createActorSystem({ peerId: 'W', registry: new Registry(), transport: net.transport('W') }) : sched
  if (remote) { net.attach(sched); net.attach(worker) }
  const messages: Rig['messages'] = []
  sched.spawn('sched', () => ({ receive (msg: unknown) { messages.push(msg as Rig['messages'][number]) } }))
  worker.spawn('worker', () => createWorkerActor({ pool }))
  const workerRef = sched.ref(worker.peerId, 'worker')
  const answers = (): Map<string, Results[]> => {
    const m = new Map<string, Results[]>()
    for (const msg of messages) {
      assert.equal(msg.type, 'results')
      for (const r of msg.results) m.set(r.id, [...(m.get(r.id) ?? []), r])
    }
    return m
  }
  return {
    sched,
    worker,
    workerRef,
    pool,
    messages,
    answers,
    run: (tasks) => { sched.tell(workerRef, { type: 'run', tasks }, 'sched') },
    async waitForAnswers (ids, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const a = answers()
        if (ids.every((id) => a.has(id))) {
          const out = new Map<string, Results>()
          for (const id of ids) {
            assert.equal(a.get(id)?.length, 1, `exactly one answer for ${id}`)
            out.set(id, (a.get(id) as Results[])[0])
          }
          return out
        }
        if (Date.now() > deadline) throw new Error(`timed out waiting for answers to ${ids.filter((id) => !a.has(id)).join(', ')}`)
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    },
    async close () {
      await sched.shutdown()
      if (remote) await worker.shutdown()
      await pool.close()
    }
  }
}


async function withRig (fn: (rig: Rig) => Promise<void>, poolOptions?: Partial<WorkerPoolOptions>, remote?: boolean): Promise<void> {
  const rig = await createRig(poolOptions, remote)
  try { await fn(rig) } finally { await rig.close() }
}

test('many small tasks come back answered and coalesced in few results messages', { timeout: 60_000 }, async () => {
  await withRig(async (rig) => {
    const ids = Array.from({ length: 500 }, (_, i) => `t${i}`)
    rig.run(ids.map((id, i) => ({ id, kind: 'noop', payload: { i } })))
    const got = await rig.waitForAnswers(ids)
    ids.forEach((id, i) => {
      const r = got.get(id) as Results
      assert.equal(r.ok, true)
      assert.deepEqual(r.value, { i })
      assert.equal(typeof r.ms, 'number')
    })
    // 500 light tasks on 2 threads = 2 batches, so at most 2 results messages.
    assert.ok(rig.messages.length <= 2, `${rig.messages.length} results messages`)
  })
})

test('fib segments run remotely, one per Piscina task, and combine to the reference', { timeout: 60_000 }, async () => {
  await withRig(async (rig) => {
    const n = 100_000
    const ranges = splitFib(n, 24)
    const ids = ranges.map((_, i) => `seg${i}`)
    rig.run(ranges.map((r, i) => ({ id: ids[i], kind: 'fib-segment', payload: { ...r, last: i === ranges.length - 1 }, timeoutMs: 60_000 })))
    const got = await rig.waitForAnswers(ids)
    const parts = ids.map((id) => {
      const r = got.get(id) as Results
      assert.equal(r.ok, true, JSON.stringify(r.error))
      return r.value as FibSegmentResult
    })
    assert.deepEqual(combineFib(n, parts), {
      n, digits: 20899, sha256: '9fe22f691a91170da9006226d479ad986b2f92021b7045ecfb0a5091b641b802', sumMod61: '1493263235092005186'
    })
    assert.ok(rig.pool.stats().completed >= 24, 'heavy tasks were not packed together')
  })
})

test('unknown kinds, bad timeouts and bad payloads are answered with errors, others still run', { timeout: 60_000 }, async () => {
  await withRig(async (rig) => {
    rig.run([
      { id: 'a', kind: 'no-such-kind', payload: 1 },
      { id: 'b', kind: 'noop', payload: 2, timeoutMs: -5 },
      { id: 'c', kind: 'fib-segment', payload: { start: 9, end: 3, last: false } },
      { id: 'd', kind: 42, payload: null },
      { id: 'e', kind: 'noop', payload: 'fine', timeoutMs: null },
      { id: 'e', kind: 'noop', payload: 'duplicate in the same message' }
    ])
    const got = await rig.waitForAnswers(['a', 'b', 'c', 'd', 'e'])
    assert.equal(got.get('a')?.error?.code, 'ERR_UNKNOWN_TASK_KIND')
    assert.match(got.get('a')?.error?.message ?? '', /no-such-kind/)
    assert.equal(got.get('b')?.error?.code, 'ERR_INVALID_ARGUMENT')
    assert.equal(got.get('c')?.error?.code, 'ERR_INVALID_ARGUMENT')
    assert.equal(got.get('d')?.error?.code, 'ERR_UNKNOWN_TASK_KIND')
    assert.deepEqual(got.get('e')?.value, 'fine')
    await rig.worker.ask(rig.worker.ref(rig.worker.peerId, 'worker'), { type: 'stats' }) // flush the mailbox
    assert.equal(rig.answers().get('e')?.length, 1)
  })
})

test('cancel answers waiting and running tasks at once and frees the threads', { timeout: 60_000 }, async () => {
  await withRig(async (rig) => {
    rig.run([{ id: 'run', ...LONG }, { id: 'wait', ...LONG }])
    await waitFor(() => rig.pool.stats().inFlight === 2, 'both batches dispatched')
    rig.sched.tell(rig.workerRef, { type: 'cancel', ids: ['wait', 'unknown-id'] }, 'sched')
    const first = await rig.waitForAnswers(['wait'])
    assert.equal(first.get('wait')?.error?.code, 'ERR_CANCELLED')
    assert.equal(rig.answers().has('run'), false)
    rig.sched.tell(rig.workerRef, { type: 'cancel', ids: ['run'] }, 'sched')
    const second = await rig.waitForAnswers(['run'])
    assert.equal(second.get('run')?.error?.code, 'ERR_CANCELLED')
    // Fully cancelled batches are dropped or their thread terminated: nothing stays in flight.
    await waitFor(() => rig.pool.stats().inFlight === 0, 'the pool to drop cancelled work')
    const stats = await rig.sched.ask<WorkerStats>(rig.workerRef, { type: 'stats' }, { from: 'sched' })
    assert.equal(stats.running, 0)
    rig.run([{ id: 'after', kind: 'noop', payload: 1 }])
    assert.equal((await rig.waitForAnswers(['after'])).get('after')?.ok, true)
  }, { threads: 1 })
})

test('a full pool answers overflowing tasks with ERR_WORKER_BUSY at once', { timeout: 60_000 }, async () => {
  await withRig(async (rig) => {
    // 1 thread + 1 queued batch = room for 2 heavy tasks.
    rig.run([{ id: 'h1', ...LONG }, { id: 'h2', ...LONG }, { id: 'h3', ...LONG }, { id: 'h4', ...LONG }])
    const busy = await rig.waitForAnswers(['h3', 'h4'])
    assert.equal(busy.get('h3')?.error?.code, 'ERR_WORKER_BUSY')
    assert.equal(busy.get('h4')?.error?.code, 'ERR_WORKER_BUSY')
    assert.equal(rig.answers().has('h1') || rig.answers().has('h2'), false)
    const stats = await rig.sched.ask<WorkerStats>(rig.workerRef, { type: 'stats' }, { from: 'sched' })
    assert.equal(stats.running, 2)
    assert.equal(stats.freeSlots, 0)
    assert.equal(stats.maxThreads, 1)
    assert.ok(stats.utilization >= 0 && stats.utilization <= 1)
    rig.sched.tell(rig.workerRef, { type: 'cancel', ids: ['h1', 'h2'] }, 'sched')
    await rig.waitForAnswers(['h1', 'h2'])
    await waitFor(() => rig.pool.stats().inFlight === 0, 'the pool to drain')
  }, { threads: 1, maxQueue: 1 })
})

test('a task past its timeoutMs is answered ERR_TASK_TIMEOUT and its thread is freed', { timeout: 60_000 }, async () => {
  await withRig(async (rig) => {
    rig.run([{ id: 'slow', ...LONG, timeoutMs: 200 }, { id: 'quick', kind: 'noop', payload: 1, timeoutMs: 10_000 }])
    const got = await rig.waitForAnswers(['slow', 'quick'])
    assert.equal(got.get('slow')?.error?.code, 'ERR_TASK_TIMEOUT')
    assert.ok((got.get('slow')?.ms ?? 0) >= 199)
    assert.equal(got.get('quick')?.ok, true)
    await waitFor(() => rig.pool.stats().inFlight === 0, 'the timed-out work to be stopped')
  }, { threads: 1 })
})

test('bad messages are ignored (tell) or rejected (ask) and the actor keeps working', { timeout: 60_000 }, async () => {
  await withRig(async (rig) => {
    const { sched, workerRef } = rig
    sched.tell(workerRef, 'hello', 'sched')
    sched.tell(workerRef, null, 'sched')
    sched.tell(workerRef, { type: 'explode' }, 'sched')
    sched.tell(workerRef, { type: 'run', tasks: 'nope' }, 'sched')
    sched.tell(workerRef, { type: 'run', tasks: [{ id: '', kind: 'noop' }] }, 'sched')
    sched.tell(workerRef, { type: 'run', tasks: [{ id: 7, kind: 'noop' }] }, 'sched')
    sched.tell(workerRef, { type: 'run', tasks: [{ id: 'x'.repeat(129), kind: 'noop' }] }, 'sched')
    sched.tell(workerRef, { type: 'run', tasks: Array.from({ length: 4097 }, (_, i) => ({ id: `m${i}`, kind: 'noop' })) }, 'sched')
    sched.tell(workerRef, { type: 'cancel', ids: 'all' }, 'sched')
    sched.tell(workerRef, { type: 'run', tasks: [{ id: 'no-sender', kind: 'noop' }] }) // nobody to answer
    await assert.rejects(sched.ask(workerRef, { type: 'explode' }, { from: 'sched' }), { code: 'ERR_INVALID_ARGUMENT' })
    await assert.rejects(sched.ask(workerRef, 42, { from: 'sched' }), { code: 'ERR_INVALID_ARGUMENT' })
    rig.run([{ id: 'ok', kind: 'noop', payload: 'still here' }])
    assert.deepEqual((await rig.waitForAnswers(['ok'])).get('ok')?.value, 'still here')
    assert.deepEqual([...rig.answers().keys()], ['ok'])
    assert.ok(rig.worker.actorNames().includes('worker'))
  })
})

test('local path: results go back to a local sender; stopping the actor cancels pending tasks', { timeout: 60_000 }, async () => {
  await withRig(async (rig) => {
    rig.run([{ id: 'l1', kind: 'noop', payload: 1 }])
    assert.equal((await rig.waitForAnswers(['l1'])).get('l1')?.ok, true)
    rig.run([{ id: 'long', ...LONG }])
    await waitFor(() => rig.pool.stats().inFlight === 1, 'the long task to start')
    await rig.worker.stop('worker')
    const got = await rig.waitForAnswers(['long'])
    assert.equal(got.get('long')?.error?.code, 'ERR_CANCELLED')
    await waitFor(() => rig.pool.stats().inFlight === 0, 'the pool to drop the work')
  }, { threads: 1 }, false)
})

test('options are validated', { timeout: 60_000 }, () => {
  assert.throws(() => createWorkerActor({} as never), /pool/)
  const pool = { runBatch: async () => [], freeSlots: () => 1 } as unknown as WorkerPool
  assert.throws(() => createWorkerActor({ pool, maxTasksPerMessage: 0 }), /maxTasksPerMessage/)
  assert.throws(() => createWorkerActor({ pool, maxBatchSize: 1.5 }), /maxBatchSize/)
})
