import '../../config/polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TEST_TASKS, waitFor } from '../testing/rig.js'
import { Registry } from 'prom-client'
import { createWorkerPool, type WorkerPool } from './pool.js'
import { combineFib, fibInProcess, splitFib, type FibSegmentResult } from '../kinds/fib/arith.js'

// A segment long enough (tens of seconds) that it is surely still running when a test aborts it.
const LONG_SEGMENT = { kind: 'fib-segment', payload: { start: 0, end: 3_000_000, last: false } }


async function withPool (options: Partial<Parameters<typeof createWorkerPool>[0]>, fn: (pool: WorkerPool, registry: Registry) => Promise<void>): Promise<void> {
  const registry = new Registry()
  const pool = createWorkerPool({ registry, tasks: TEST_TASKS, threads: 2, ...options })
  try {
    await fn(pool, registry)
  } finally {
    await pool.close()
  }
}

test('run: noop echoes its payload; fib-segment computes in a thread', { timeout: 60_000 }, async () => {
  await withPool({}, async (pool) => {
    assert.deepEqual((await pool.run('noop', { a: [1, 2] })).value, { a: [1, 2] })
    const r = await pool.run('fib-segment', { start: 0, end: 5000, last: true })
    assert.equal(typeof r.ms, 'number')
    assert.deepEqual(combineFib(5000, [r.value as FibSegmentResult]), fibInProcess(5000))
  })
})

test('runBatch: in order, per-task errors do not fail the batch', { timeout: 60_000 }, async () => {
  await withPool({}, async (pool) => {
    const results = await pool.runBatch([
      { kind: 'noop', payload: 1 },
      { kind: 'nope', payload: null },
      { kind: 'fib-segment', payload: { start: 3, end: 1, last: false } },
      { kind: 'noop', payload: 'x' }
    ])
    assert.equal(results.length, 4)
    assert.deepEqual(results[0].ok && results[0].value, 1)
    assert.equal(!results[1].ok && results[1].error.code, 'ERR_UNKNOWN_TASK_KIND')
    assert.match(!results[1].ok ? results[1].error.message : '', /nope/)
    assert.equal(!results[2].ok && results[2].error.code, 'ERR_INVALID_ARGUMENT')
    assert.deepEqual(results[3].ok && results[3].value, 'x')
    for (const r of results) assert.ok(r.ms >= 0)
    await assert.rejects(pool.run('nope', null), { code: 'ERR_UNKNOWN_TASK_KIND' })
    await assert.rejects(pool.runBatch([]), { code: 'ERR_INVALID_ARGUMENT' })
  })
})

test('24 fib segments through the pool give the reference result', { timeout: 60_000 }, async () => {
  await withPool({}, async (pool) => {
    const n = 100_000
    const ranges = splitFib(n, 24)
    const parts = await Promise.all(ranges.map(async (r, i) => (await pool.run('fib-segment', { ...r, last: i === ranges.length - 1 })).value as FibSegmentResult))
    assert.deepEqual(combineFib(n, parts), {
      n, digits: 20899, sha256: '9fe22f691a91170da9006226d479ad986b2f92021b7045ecfb0a5091b641b802', sumMod61: '1493263235092005186'
    })
    assert.ok(pool.stats().completed >= 24)
    const u = pool.utilization()
    assert.ok(u > 0 && u <= 1, `utilization ${u}`)
  })
})

test('a full pool answers ERR_WORKER_BUSY at once; abort drops waiting work and stops running work', { timeout: 60_000 }, async () => {
  await withPool({ threads: 1, maxQueue: 1 }, async (pool) => {
    // A warm thread takes the first batch at once, so it is surely running when aborted.
    await pool.run('noop', 0)
    assert.equal(pool.freeSlots(), 2)
    const running = new AbortController()
    const waiting = new AbortController()
    const p1 = pool.runBatch([LONG_SEGMENT], { signal: running.signal })
    const p2 = pool.runBatch([LONG_SEGMENT], { signal: waiting.signal })
    assert.equal(pool.freeSlots(), 0)
    await assert.rejects(pool.run('noop', 1), { code: 'ERR_WORKER_BUSY' })
    assert.equal(pool.stats().inFlight, 2)
    await waitFor(() => pool.stats().threads === 1 && pool.stats().queueSize === 1, 'the first batch to start')

    waiting.abort()
    await assert.rejects(p2, { code: 'ERR_CANCELLED' })
    running.abort()
    await assert.rejects(p1, { code: 'ERR_CANCELLED' })
    assert.equal(pool.stats().inFlight, 0)
    // The terminated thread is replaced on demand.
    assert.deepEqual((await pool.run('noop', 7)).value, 7)
    // An already aborted signal never dispatches.
    await assert.rejects(pool.run('noop', 1, { signal: AbortSignal.abort() }), { code: 'ERR_CANCELLED' })
  })
})

test('work queued behind an aborted batch still runs (its thread is replaced)', { timeout: 60_000 }, async () => {
  await withPool({ threads: 1, minThreads: 0 }, async (pool) => {
    await pool.run('noop', 0) // warm thread: the long batch starts at once
    const ac = new AbortController()
    const long = pool.runBatch([LONG_SEGMENT], { signal: ac.signal })
    const queued = pool.run('noop', 'behind')
    await waitFor(() => pool.stats().threads === 1 && pool.stats().queueSize === 1, 'the long batch to start')
    ac.abort()
    await assert.rejects(long, { code: 'ERR_CANCELLED' })
    // No further call to the pool: the queued batch must not wait for one.
    assert.deepEqual((await queued).value, 'behind')
  })
})

test('metrics are on the given registry and removed on close', { timeout: 60_000 }, async () => {
  const registry = new Registry()
  const pool = createWorkerPool({ registry, tasks: TEST_TASKS, threads: 1 })
  await pool.run('noop', null)
  const text = await registry.metrics()
  assert.match(text, /^voike_worker_pool_utilization_ratio \d/m)
  assert.match(text, /^voike_worker_pool_queue_size 0$/m)
  assert.match(text, /^voike_worker_tasks_total\{kind="noop",status="ok"\} 1$/m)
  assert.match(text, /^voike_task_duration_seconds_count\{kind="noop"\} 1$/m)
  await pool.close()
  assert.doesNotMatch(await registry.metrics(), /voike_worker_pool/)
  // A new pool can take the same registry.
  const again = createWorkerPool({ registry, tasks: TEST_TASKS, threads: 1 })
  await again.close()
})

test('threads are created on demand and retired when idle', { timeout: 60_000 }, async () => {
  await withPool({ threads: 2, minThreads: 0, idleTimeoutMs: 50 }, async (pool) => {
    assert.equal(pool.stats().threads, 0)
    await Promise.all([pool.run('fib-segment', { start: 0, end: 20_000, last: false }), pool.run('fib-segment', { start: 0, end: 20_000, last: false })])
    assert.ok(pool.stats().threads >= 1)
    await waitFor(() => pool.stats().threads === 0, 'idle threads to exit')
  })
})

test('close rejects work in flight and later calls with ERR_POOL_CLOSED', { timeout: 60_000 }, async () => {
  const pool = createWorkerPool({ registry: new Registry(), tasks: TEST_TASKS, threads: 1 })
  const inFlight = pool.runBatch([LONG_SEGMENT])
  const settled = inFlight.then(() => undefined, (err: unknown) => err) // observed before close rejects it
  await waitFor(() => pool.stats().running === 1 && pool.stats().threads === 1, 'the batch to start')
  await pool.close()
  assert.equal((await settled as { code?: string }).code, 'ERR_POOL_CLOSED')
  await assert.rejects(pool.run('noop', 1), { code: 'ERR_POOL_CLOSED' })
  assert.equal(pool.freeSlots(), 0)
  await pool.close() // idempotent
})

test('options are validated', { timeout: 60_000 }, () => {
  const registry = new Registry()
  assert.throws(() => createWorkerPool({ registry, tasks: TEST_TASKS, threads: 0 }), /threads/)
  assert.throws(() => createWorkerPool({ registry, tasks: TEST_TASKS, threads: 2, minThreads: 3 }), /minThreads/)
  assert.throws(() => createWorkerPool({ registry, tasks: TEST_TASKS, maxQueue: -1 }), /maxQueue/)
  assert.throws(() => createWorkerPool({ registry, tasks: TEST_TASKS, idleTimeoutMs: 1.5 }), /idleTimeoutMs/)
  assert.throws(() => createWorkerPool({} as never), /registry/)
})
