/** The membership service actor: the member table kept current (membership-actor.ts). */
import type { ServiceActor } from '../runtime/service.js'
import { createMembershipActor, MEMBERSHIP_ACTOR, type MembershipDeps } from './membership-actor.js'

export function membershipService (deps: MembershipDeps): ServiceActor {
  return {
    name: MEMBERSHIP_ACTOR,
    spawnOptions: { mailboxCapacity: 4096 },
    factory: createMembershipActor(deps),
    critical: true,
    // The table is the caller's, the dial and suspicion timers live in the factory's closure.
    stateSurvivesRestart: true
  }
}
