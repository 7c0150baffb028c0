/** The PerfWatch service actor (perfwatch.ts): health and load of every member, measured. */
import type { ServiceActor } from '../runtime/service.js'
import { PERFWATCH_ACTOR, type PerfWatch } from './perfwatch.js'

export function perfwatchService (perfwatch: PerfWatch): ServiceActor {
  return {
    name: PERFWATCH_ACTOR,
    // A summary and a pong per peer and window: room for a large cluster's burst.
    spawnOptions: { mailboxCapacity: 8192 },
    factory: perfwatch.factory,
    // The node works without it (placement then weighs nothing but credits).
    critical: false,
    // Summaries, RTTs and events live in createPerfWatch's closure.
    stateSurvivesRestart: true,
    close: async () => { await perfwatch.close() }
  }
}
