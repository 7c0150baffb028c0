/** The PTA trust service actor (trust.ts). */
import type { ServiceActor } from '../runtime/service.js'
import { TRUST_ACTOR, type Trust } from './trust.js'

export function trustService (trust: Trust): ServiceActor {
  return {
    name: TRUST_ACTOR,
    spawnOptions: { mailboxCapacity: 4096 },
    factory: trust.factory,
    // Placement falls back to trusting everyone without it; the node still works.
    critical: false,
    // Evidence and scores live in createTrust's closure (and the store).
    stateSurvivesRestart: true,
    close: async () => { await trust.close() }
  }
}
