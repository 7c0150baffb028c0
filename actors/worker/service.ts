/** The worker service actor: runs segment tasks on the node's pool (worker-actor.ts). */
import type { ServiceActor } from '../runtime/service.js'
import { WORKER_ACTOR_NAME } from './names.js'
import type { WorkerPool } from './pool.js'
import { createWorkerActor, type WorkerActorOptions } from './worker-actor.js'

/** The service owns the pool: closing it stops the threads. */
export function workerService (options: WorkerActorOptions & { pool: WorkerPool }): ServiceActor {
  return {
    name: WORKER_ACTOR_NAME,
    // Tasks of many coordinators may arrive at once.
    spawnOptions: { mailboxCapacity: 65_536 },
    factory: () => createWorkerActor(options),
    critical: true,
    // Unanswered tasks live in the actor: a restart forgets them and their coordinators re-place
    // them at timeout (the pool keeps running what it runs).
    stateSurvivesRestart: false,
    close: async () => { await options.pool.close() }
  }
}
