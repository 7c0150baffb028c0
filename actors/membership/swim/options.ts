/**
 * Every knob of the SWIM protocol, its default, the formulas derived from it (Lifeguard suspicion
 * timeout, retransmission limit, push-pull interval) and the detection bounds the defaults give.
 * Pure: no clock, no I/O. The README in this folder explains each default and bound in prose.
 */
import { PHI_DEFAULTS, silenceToReachPhi } from './phi.js'

/** An error of the SWIM module; `code` tells kinds apart (ERR_INVALID_OPTION, ERR_JOIN_FAILED, …). */
export class SwimError extends Error {
  readonly code: string
  constructor (code: string, message: string) {
    super(message)
    this.name = 'SwimError'
    this.code = code
  }
}

export interface SwimOptions {
  // --- probing (SWIM, memberlist's LAN defaults) ---
  /** One member is probed per period; also the unit of the suspicion timeout. Default 1000 ms. */
  probeIntervalMs: number
  /** A direct ping unanswered this long triggers indirect probes. Default 500 ms (< probeIntervalMs). */
  probeTimeoutMs: number
  /** Members asked to probe on our behalf (ping-req) after a direct timeout. Default 3. */
  indirectChecks: number
  // --- suspicion (Lifeguard) ---
  /** Minimum suspicion timeout = suspicionMult × max(1, log10 N) × probeIntervalMs. Default 4. */
  suspicionMult: number
  /** Maximum suspicion timeout = this × the minimum; it decays to the minimum with confirmations. Default 6. */
  suspicionMaxTimeoutMult: number
  // --- gossip ---
  /** Each update is piggybacked retransmitMult × ceil(log10(N + 1)) times. Default 4. */
  retransmitMult: number
  /** Most updates piggybacked on one message. Default 16. */
  maxUpdatesPerMessage: number
  /** Most bytes (JSON) of updates piggybacked on one message. Default 2048. */
  maxPiggybackBytes: number
  /** Most updates waiting for retransmission; the most-sent ones are dropped first. Default 4096. */
  maxQueuedUpdates: number
  /**
   * While updates are queued, they also go out on their own (`gossip` messages) to `gossipNodes`
   * random members this often (memberlist's gossip interval): bursts of news (many joins) spread in
   * O(log N) periods instead of waiting for pings. Nothing is sent when the queue is empty. Default 200 ms.
   */
  gossipIntervalMs: number
  /** Members each gossip round goes to. 0 = piggyback only. Default 3. */
  gossipNodes: number
  /** Members sent a `left` update directly by leave(), besides piggybacking. Default 4. */
  leaveFanout: number
  // --- heartbeats and phi accrual ---
  /** Heartbeat pings to each monitored member this often. Default 1000 ms (Akka). */
  heartbeatIntervalMs: number
  /** Each member heartbeats this many successors on a hash ring, so every member has that many monitors. Default 5. */
  monitorCount: number
  /** φ above this suspects the member. Default 8 (Akka). */
  phiThreshold: number
  /** Floor of the heartbeat-interval standard deviation. Default 100 ms (Akka). */
  minStdDeviationMs: number
  /** Silence tolerated on top of the mean heartbeat interval. Default 3000 ms (Akka). */
  acceptableHeartbeatPauseMs: number
  /** Inter-arrival samples kept per member. Default 1000. */
  phiMaxSampleSize: number
  /** φ is evaluated this often (the granularity of the φ bound). Default 250 ms. */
  phiCheckIntervalMs: number
  // --- anti-entropy, join ---
  /** Full-state exchange with one random member, scaled up with N past 32 members (memberlist). Default 30 000 ms. */
  pushPullIntervalMs: number
  /** A seed that does not answer a join within this is skipped for the next. Default 5000 ms. */
  joinTimeoutMs: number
  // --- limits ---
  /** Members known at most (dead ones are forgotten first when full). Default 10 000. */
  maxMembers: number
  /** Bytes (JSON) of one outgoing message; a full-state sync is cut into parts below it. Default 1 MiB. */
  maxMessageBytes: number
  /** Bytes (JSON) of one member's meta. Default 512. */
  maxMetaBytes: number
  /** Characters of a member's address. Default 1024. */
  maxAddrLength: number
  /** Outstanding pings (probes, heartbeats, relayed ping-reqs) at most. Default 1024. */
  maxPendingPings: number
  /** Dead and left members are forgotten after this. Default 300 000 ms. */
  forgetDeadAfterMs: number
  /** A timer firing this much late means this process stalled: its own verdicts wait. Default 1000 ms. */
  pauseToleranceMs: number
}

export const SWIM_DEFAULTS: Readonly<SwimOptions> = Object.freeze({
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  indirectChecks: 3,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  retransmitMult: 4,
  maxUpdatesPerMessage: 16,
  maxPiggybackBytes: 2048,
  maxQueuedUpdates: 4096,
  gossipIntervalMs: 200,
  gossipNodes: 3,
  leaveFanout: 4,
  heartbeatIntervalMs: PHI_DEFAULTS.heartbeatIntervalMs,
  monitorCount: 5,
  phiThreshold: PHI_DEFAULTS.threshold,
  minStdDeviationMs: PHI_DEFAULTS.minStdDeviationMs,
  acceptableHeartbeatPauseMs: PHI_DEFAULTS.acceptableHeartbeatPauseMs,
  phiMaxSampleSize: PHI_DEFAULTS.maxSampleSize,
  phiCheckIntervalMs: 250,
  pushPullIntervalMs: 30_000,
  joinTimeoutMs: 5000,
  maxMembers: 10_000,
  maxMessageBytes: 1 << 20,
  maxMetaBytes: 512,
  maxAddrLength: 1024,
  maxPendingPings: 1024,
  forgetDeadAfterMs: 300_000,
  pauseToleranceMs: 1000
})

const INTEGER_OPTIONS = new Set<keyof SwimOptions>([
  'indirectChecks', 'retransmitMult', 'maxUpdatesPerMessage', 'maxQueuedUpdates', 'leaveFanout',
  'monitorCount', 'gossipNodes', 'phiMaxSampleSize', 'maxMembers', 'maxMessageBytes', 'maxMetaBytes', 'maxAddrLength',
  'maxPendingPings', 'suspicionMult', 'suspicionMaxTimeoutMult', 'maxPiggybackBytes'
])
/** Options that may be 0. */
const ZERO_OK = new Set<keyof SwimOptions>(['indirectChecks', 'monitorCount', 'gossipNodes', 'acceptableHeartbeatPauseMs', 'leaveFanout'])

/** Merges `partial` over the defaults and validates every field; throws SwimError ERR_INVALID_OPTION naming it. */
export function resolveOptions (partial: Partial<SwimOptions> = {}): SwimOptions {
  const o: SwimOptions = { ...SWIM_DEFAULTS }
  for (const [key, value] of Object.entries(partial)) {
    if (!(key in SWIM_DEFAULTS)) throw new SwimError('ERR_INVALID_OPTION', `options.${key}: unknown option`)
    if (value !== undefined) (o as unknown as Record<string, unknown>)[key] = value
  }
  for (const key of Object.keys(SWIM_DEFAULTS) as Array<keyof SwimOptions>) {
    const v = o[key]
    const min = ZERO_OK.has(key) ? 0 : Number.MIN_VALUE
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) {
      throw new SwimError('ERR_INVALID_OPTION', `options.${key} must be a finite number ≥ ${ZERO_OK.has(key) ? 0 : '> 0'}, got ${String(v)}`)
    }
    if (INTEGER_OPTIONS.has(key) && !Number.isInteger(v)) {
      throw new SwimError('ERR_INVALID_OPTION', `options.${key} must be an integer, got ${v}`)
    }
  }
  if (o.probeTimeoutMs >= o.probeIntervalMs) {
    throw new SwimError('ERR_INVALID_OPTION', `options.probeTimeoutMs (${o.probeTimeoutMs}) must be below probeIntervalMs (${o.probeIntervalMs}): indirect probes need the rest of the period`)
  }
  if (o.suspicionMult < 2) throw new SwimError('ERR_INVALID_OPTION', `options.suspicionMult must be ≥ 2, got ${o.suspicionMult}`)
  if (o.suspicionMaxTimeoutMult < 1) throw new SwimError('ERR_INVALID_OPTION', `options.suspicionMaxTimeoutMult must be ≥ 1, got ${o.suspicionMaxTimeoutMult}`)
  if (o.phiMaxSampleSize < 2) throw new SwimError('ERR_INVALID_OPTION', `options.phiMaxSampleSize must be ≥ 2, got ${o.phiMaxSampleSize}`)
  if (o.maxMembers < 2 || o.maxMembers > 100_000) throw new SwimError('ERR_INVALID_OPTION', `options.maxMembers must be in [2, 100000], got ${o.maxMembers}`)
  if (o.maxMessageBytes < 4096) throw new SwimError('ERR_INVALID_OPTION', `options.maxMessageBytes must be ≥ 4096, got ${o.maxMessageBytes}`)
  return o
}

/** log10 N clamped at 1: small clusters keep the base timeouts. */
function nodeScale (n: number): number {
  return Math.max(1, Math.log10(Math.max(1, n)))
}

/** Lifeguard/memberlist minimum suspicion timeout: suspicionMult × max(1, log10 N) × probeIntervalMs. */
export function suspicionMinMs (o: SwimOptions, n: number): number {
  return o.suspicionMult * nodeScale(n) * o.probeIntervalMs
}

export function suspicionMaxMs (o: SwimOptions, n: number): number {
  return o.suspicionMaxTimeoutMult * suspicionMinMs(o, n)
}

/**
 * Independent confirmations that bring the timeout down to its minimum (memberlist: suspicionMult − 2,
 * or 0 when the cluster has too few other members to provide them, and the timeout is then the minimum).
 */
export function expectedConfirmations (o: SwimOptions, n: number): number {
  const k = o.suspicionMult - 2
  return n - 2 < k ? 0 : k
}

/**
 * Lifeguard's dynamic suspicion timeout after `confirmations` independent suspicions beyond the first:
 * max − (max − min) × log(c + 1) / log(k + 1), never below min. It starts long (a lone suspicion is
 * weak evidence) and shrinks as other members independently agree.
 */
export function suspicionTimeoutMs (o: SwimOptions, n: number, confirmations: number): number {
  const min = suspicionMinMs(o, n)
  const k = expectedConfirmations(o, n)
  if (k < 1) return min
  const max = suspicionMaxMs(o, n)
  const frac = Math.log(confirmations + 1) / Math.log(k + 1)
  return Math.max(min, Math.floor(max - (max - min) * frac))
}

/** memberlist: each update is retransmitted retransmitMult × ceil(log10(N + 1)) times. */
export function retransmitLimit (o: SwimOptions, n: number): number {
  return o.retransmitMult * Math.ceil(Math.log10(Math.max(1, n) + 1))
}

/** memberlist's push-pull scaling: past 32 members the interval grows with log2(N / 32). */
export function pushPullIntervalFor (o: SwimOptions, n: number): number {
  if (n <= 32) return o.pushPullIntervalMs
  const mult = Math.ceil(Math.log2(n) - Math.log2(32)) + 1
  return o.pushPullIntervalMs * mult
}

/**
 * What the options promise for a cluster of `n` members, in milliseconds after the event
 * (README "Detection bounds" derives each line):
 * - phiSilenceMs: silence after the last heartbeat at which φ crosses the threshold (regular heartbeats, σ at its floor);
 * - suspectMs: a crashed or frozen member is suspected by its monitors within this;
 * - disseminationMs: allowance for a verdict to reach every member by piggybacking, ceil(log2 N) periods;
 * - deadMs: a crashed member (or one frozen for good) is dead at every member within this;
 * - deadWithHintMs: same when the transport reports the lost connection (kill -9: the TCP link resets);
 * - refutableStallMs: a stall (GC, SIGSTOP) shorter than this is refuted and never becomes dead.
 */
export interface DetectionBounds {
  n: number
  phiSilenceMs: number
  suspectMs: number
  suspicionMinMs: number
  suspicionMaxMs: number
  disseminationMs: number
  deadMs: number
  deadWithHintMs: number
  refutableStallMs: number
}

export function detectionBounds (o: SwimOptions, n: number): DetectionBounds {
  const phiSilenceMs = Math.ceil(silenceToReachPhi(o.phiThreshold, o.heartbeatIntervalMs + o.acceptableHeartbeatPauseMs, o.minStdDeviationMs))
  const suspectMs = phiSilenceMs + o.phiCheckIntervalMs
  const min = suspicionMinMs(o, n)
  const disseminationMs = Math.ceil(Math.log2(Math.max(2, n))) * o.probeIntervalMs
  // With ≥ k + 1 monitors, k confirmations arrive by the φ bound, so the minimum applies; otherwise
  // k is 0 (tiny cluster) and the minimum applies anyway.
  return {
    n,
    phiSilenceMs,
    suspectMs,
    suspicionMinMs: min,
    suspicionMaxMs: suspicionMaxMs(o, n),
    disseminationMs,
    deadMs: suspectMs + min + disseminationMs,
    deadWithHintMs: min + disseminationMs,
    refutableStallMs: o.probeIntervalMs + min - o.pauseToleranceMs
  }
}
