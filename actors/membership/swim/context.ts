/**
 * What the protocol's parts share: injected dependencies (clock, randomness, transport) and the
 * few operations the prober and the heartbeat monitor need from the core. Each part owns its own
 * state; this interface is the only way they reach each other.
 */
import type { SwimOptions } from './options.js'
import type { Member, MemberTable } from './members.js'
import type { SwimMessage, Update } from './messages.js'

/** Injected time: the real node passes Date.now/setTimeout, the simulator a virtual clock. */
export interface SwimClock {
  now: () => number
  setTimeout: (fn: () => void, ms: number) => unknown
  clearTimeout: (handle: unknown) => void
}

/** Where a message goes: `id` may be '' when only the address is known (a seed). */
export interface PeerRef {
  id: string
  addr: string
}

export interface SwimCounters {
  sent: Record<string, number>
  received: Record<string, number>
  /** Incoming messages rejected, by reason (bad-seq, unknown-type, wrong-target, …). */
  rejected: Record<string, number>
  /** Updates ignored, by reason (stale, duplicate, final, unknown, full). */
  ignored: Record<string, number>
  probes: number
  probeFailures: number
  indirectProbes: number
  /** Probe rounds and verdicts skipped because this process itself had stalled. */
  pausesDetected: number
  phiSuspicions: number
  refutations: number
  /** Full-state syncs started because an unknown member talked to us. */
  strangerSyncs: number
  sendErrors: number
  internalErrors: number
}

export interface Context {
  readonly o: SwimOptions
  readonly table: MemberTable
  readonly clock: SwimClock
  readonly random: () => number
  readonly counters: SwimCounters
  /** True after leave(): we answer but no longer accuse anyone. */
  isLeaving: () => boolean
  send: (to: PeerRef, msg: SwimMessage) => void
  /** Updates to piggyback on a message to `toId`: its own bad news first, then the queue. */
  piggyback: (toId: string) => Update[]
  /** Our own evidence that `id` (at incarnation `inc`) is not answering. */
  suspectLocally: (id: string, inc: number) => void
  nextSeq: () => number
  /**
   * setTimeout that tells the callback how late it ran: a callback running far behind its time
   * means this process stalled, and its verdicts about others would be unfair.
   */
  timer: (delayMs: number, fn: (lateMs: number) => void) => unknown
  cancel: (handle: unknown) => void
}

export function emptyCounters (): SwimCounters {
  return {
    sent: {},
    received: {},
    rejected: {},
    ignored: {},
    probes: 0,
    probeFailures: 0,
    indirectProbes: 0,
    pausesDetected: 0,
    phiSuspicions: 0,
    refutations: 0,
    strangerSyncs: 0,
    sendErrors: 0,
    internalErrors: 0
  }
}

export function bump (counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1
}

/** A member as a peer reference. */
export function refOf (m: Member): PeerRef {
  return { id: m.id, addr: m.addr }
}

/** A uniform integer in [0, n). */
export function randomIndex (random: () => number, n: number): number {
  return Math.min(n - 1, Math.floor(random() * n))
}
