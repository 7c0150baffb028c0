import '../../config/polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TEST_TASKS } from '../testing/rig.js'
import { Registry } from 'prom-client'
import { createActorSystem, createLoopbackTransports } from '../runtime/index.js'
import { createWorkerPool } from './pool.js'
import { createWorkerActor } from './worker-actor.js'
import { WORKER_ACTOR_NAME } from './names.js'
import { createTaskClient } from './task-client.js'

test('task client: tasks of one turn travel as one message to a remote worker and come back in order of ids', { timeout: 60_000 }, async (t) => {
  const net = createLoopbackTransports()
  const a = createActorSystem({ peerId: 'A', registry: new Registry(), transport: net.transport('A') })
  const b = createActorSystem({ peerId: 'B', registry: new Registry(), transport: net.transport('B') })
  net.attach(a)
  net.attach(b)
  const pool = createWorkerPool({ registry: new Registry(), tasks: TEST_TASKS, threads: 1 })
  b.spawn(WORKER_ACTOR_NAME, () => createWorkerActor({ pool }))
  const client = createTaskClient({ system: a, timeoutMs: 10_000 })
  t.after(async () => { await client.close(); await a.shutdown(); await b.shutdown(); await pool.close() })

  const before = net.stats.sent
  const values = await Promise.all(Array.from({ length: 500 }, async (_, i) => await client.run('B', 'noop', { i })))
  assert.deepEqual(values, Array.from({ length: 500 }, (_, i) => ({ i })))
  // 500 tasks asked in one turn: one `run` out, and far fewer `results` back than tasks.
  assert.ok(net.stats.sent - before < 50, `messages: ${net.stats.sent - before}`)
  assert.equal(client.pending(), 0)

  await assert.rejects(client.run('B', 'no-such-kind', 1), { code: 'ERR_UNKNOWN_TASK_KIND' })
  await assert.rejects(client.run('nowhere', 'noop', 1), { code: 'ERR_PEER_UNREACHABLE' })
})

test('task client: unanswered tasks time out; close rejects what is outstanding', { timeout: 60_000 }, async (t) => {
  const a = createActorSystem({ peerId: 'A', registry: new Registry() })
  // A worker that never answers.
  a.spawn(WORKER_ACTOR_NAME, () => ({ receive: () => {} }))
  const client = createTaskClient({ system: a, timeoutMs: 50 })
  t.after(async () => { await a.shutdown() })
  await assert.rejects(client.run('A', 'noop', 1), { code: 'ERR_TASK_TIMEOUT' })
  const stuck = client.run('A', 'noop', 2)
  await client.close()
  await assert.rejects(stuck, { code: 'ERR_CLIENT_CLOSED' })
  await assert.rejects(client.run('A', 'noop', 3), { code: 'ERR_CLIENT_CLOSED' })
})
