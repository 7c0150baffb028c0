/**
 * One shape for the service actors a node runs (membership, worker, scheduler, and the coming
 * ones: failure detection, PerfWatch, trust, blobs). The composition root (node/node.ts) spawns
 * a list of these; each service folder says how it is spawned, whether the node can live without
 * it, and what must be released when the node stops.
 */
import type { Actor, ActorSystem, SpawnOptions } from './types.js'

export interface ServiceActor {
  /** The actor's name, the same on every node (peers address it by name). */
  readonly name: string
  readonly spawnOptions: SpawnOptions
  /** Builds the actor; the supervisor calls it again on a restart. */
  readonly factory: () => Actor
  /**
   * Without it the node only pretends to be a member: when it gives up after repeated crashes
   * the node reports a fatal error (and its process supervisor restarts it).
   */
  readonly critical: boolean
  /**
   * True when the service's state lives outside the actor instance (in the factory's closure or
   * in a part the factory reads), so a supervisor restart keeps it; false when a restart starts
   * it afresh (what was in flight is lost and recovered by its peers' timeouts).
   */
  readonly stateSurvivesRestart: boolean
  /** Releases what the service holds beyond the actor (pools, timers, stores), at node stop. */
  readonly close?: () => Promise<void>
}

/**
 * Spawns the services in order and returns the names of the critical ones. Closing them is the
 * caller's (in reverse order, after stopping what uses them).
 */
export function spawnServices (system: ActorSystem, services: readonly ServiceActor[]): ReadonlySet<string> {
  const critical = new Set<string>()
  for (const s of services) {
    system.spawn(s.name, s.factory, s.spawnOptions)
    if (s.critical) critical.add(s.name)
  }
  return critical
}
