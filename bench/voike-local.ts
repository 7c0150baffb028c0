/**
 * VOIKE's side of "local tasks": no-op tasks through the worker actor and its Piscina pool in
 * this process (local sends, no serialization), N in flight. One fresh child process per round,
 * like the bare Piscina peer.
 *
 *   node dist/bench/voike-local.js measure --threads 2 --in-flight 64 --duration-ms 1000 --warmup-ms 300
 *     → {"event":"result","perSec":N}
 */
import '../node/polyfill.js'
import { Registry } from 'prom-client'
import { createActorSystem } from '../actors/runtime/index.js'
import { createWorkerPool } from '../actors/worker/pool.js'
import noopTasks from '../actors/kinds/noop/task.js'
import { createWorkerActor } from '../actors/worker/worker-actor.js'
import { WORKER_ACTOR_NAME } from '../actors/worker/names.js'
import { createTaskClient } from '../actors/worker/task-client.js'
import { BenchError, argValue, emit, isMain } from './proc.js'
import { measureThroughput } from './echo.js'

export interface VoikeLocalOptions { threads: number, inFlight: number, durationMs: number, warmupMs: number }

export async function measureVoikeLocal (o: VoikeLocalOptions): Promise<number> {
  const registry = new Registry()
  const system = createActorSystem({ peerId: 'local', registry })
  // Threads started up front, as the Piscina peer's minThreads = maxThreads.
  const pool = createWorkerPool({ registry, tasks: [noopTasks], threads: o.threads, minThreads: o.threads })
  system.spawn(WORKER_ACTOR_NAME, () => createWorkerActor({ pool }), { mailboxCapacity: 65_536 })
  const client = createTaskClient({ system })
  try {
    let next = 0
    return await measureThroughput(async () => {
      const i = next++ & 0x3fffffff
      const r = await client.run('local', 'noop', i)
      if (r !== i) throw new BenchError('ERR_BAD_ECHO', `task ${i} returned ${String(r)}`)
    }, { inFlight: o.inFlight, durationMs: o.durationMs, warmupMs: o.warmupMs })
  } finally {
    await client.close()
    await system.shutdown()
    await pool.close()
  }
}

function intArg (argv: string[], name: string): number {
  const v = Number(argValue(argv, name))
  if (!Number.isInteger(v) || v < 0) throw new BenchError('ERR_USAGE', `voike-local.js measure needs ${name} INT`)
  return v
}

if (isMain(import.meta.url)) {
  process.stdin.on('end', () => { process.exit(0) })
  process.stdin.resume()
  const argv = process.argv.slice(2)
  measureVoikeLocal({ threads: intArg(argv, '--threads'), inFlight: intArg(argv, '--in-flight'), durationMs: intArg(argv, '--duration-ms'), warmupMs: intArg(argv, '--warmup-ms') })
    .then((perSec) => { emit('result', { perSec }); process.exit(0) }, (err: unknown) => { process.stderr.write(`voike-local: ${String(err)}\n`); process.exit(1) })
}
