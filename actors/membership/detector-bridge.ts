/**
 * Between the SWIM core and the member table: the member record as SWIM meta (so gossip alone
 * carries everything the table needs), SWIM events as membership messages (the membership actor
 * stays the one writer of the table), and the node's timing config as SWIM options.
 *
 * Why the table is still written by the membership actor: the scheduler, the APIs, metrics and
 * Genesis persistence read and subscribe to it; one writer keeps their view ordered.
 */
import type { MemberRecord } from './table.js'
import type { SwimEvent } from './swim/members.js'
import type { SwimOptions } from './swim/options.js'
import { parseMember } from './membership-actor.js'

/** What `detected` tells the membership actor: a verdict of the failure detector. */
export interface DetectedMessage {
  type: 'detected'
  peerId: string
  state: 'alive' | 'suspect' | 'dead' | 'left'
  /** The record carried in the member's SWIM meta, when it parsed. */
  member?: MemberRecord
}

/** The record's fields that describe the member (status fields are the detector's). */
export function recordToMeta (m: MemberRecord): Record<string, unknown> {
  return {
    a: m.addrs, c: m.cores, mb: m.memoryBytes, v: m.version, s: m.startedAtMs, g: m.isGenesis, h: m.host,
    ...(m.name !== undefined ? { n: m.name } : {})
  }
}

/** The record in a SWIM meta, or undefined when it is missing or malformed (validated as any member record). */
export function metaToRecord (id: string, meta: Record<string, unknown>, isValidId: (id: string) => boolean): MemberRecord | undefined {
  try {
    return parseMember({
      peerId: id, addrs: meta.a, cores: meta.c, memoryBytes: meta.mb, version: meta.v, startedAtMs: meta.s,
      isGenesis: meta.g, host: meta.h, name: meta.n, status: 'alive', lastSeenMs: 0, leftAtMs: null
    }, isValidId)
  } catch {
    return undefined
  }
}

/** A SWIM event as the membership actor's message; `updated` (new meta, same state) refreshes the record. */
export function eventToMessage (ev: SwimEvent, isValidId: (id: string) => boolean): DetectedMessage {
  const member = metaToRecord(ev.id, ev.meta, isValidId)
  return { type: 'detected', peerId: ev.id, state: ev.state, ...(member !== undefined ? { member } : {}) }
}

/** The node's detector config (config/detector.ts) as SWIM options; the rest keep their defaults. */
export function swimOptionsFrom (c: {
  probeIntervalMs: number, probeTimeoutMs: number, indirectProbes: number, suspicionMult: number,
  phiThreshold: number, heartbeatIntervalMs: number, acceptablePauseMs: number
}): Partial<SwimOptions> {
  return {
    probeIntervalMs: c.probeIntervalMs,
    probeTimeoutMs: c.probeTimeoutMs,
    indirectChecks: c.indirectProbes,
    suspicionMult: c.suspicionMult,
    phiThreshold: c.phiThreshold,
    heartbeatIntervalMs: c.heartbeatIntervalMs,
    acceptableHeartbeatPauseMs: c.acceptablePauseMs,
    // A member record (a few multiaddrs, name, host) is larger than the core's 512-byte default.
    maxMetaBytes: 2048,
    maxPiggybackBytes: 8192,
    // Our stall tolerance follows the probe period: a late timer past it means we were stopped.
    pauseToleranceMs: Math.max(1000, c.probeIntervalMs)
  }
}
