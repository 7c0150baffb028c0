/** The scheduler service actor (scheduler.ts): the jobs live in the Scheduler, not the actor. */
import type { ServiceActor } from '../runtime/service.js'
import type { Scheduler } from './api.js'
import { SCHEDULER_ACTOR, SCHEDULER_SPAWN_OPTIONS } from './scheduler.js'

export function schedulerService (scheduler: Scheduler): ServiceActor {
  return {
    name: SCHEDULER_ACTOR,
    spawnOptions: SCHEDULER_SPAWN_OPTIONS,
    factory: scheduler.factory,
    critical: true,
    stateSurvivesRestart: true,
    close: async () => { await scheduler.close() }
  }
}
