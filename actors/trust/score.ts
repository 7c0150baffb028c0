/**
 * PTA (peer trust) formulas, pure: no clock, no I/O (every call takes `nowMs`). See README.md for
 * the formula, the weights and why.
 *
 * Per peer, four signals in [0, 1] (0 = nothing odd):
 *   rttDrift  = clamp01(((recent − baseline) / max(baseline, rttFloorMs)) / rttDriftFull)
 *               recent and baseline are EWMAs of the measured RTT (fast α 0.3, slow α 0.05);
 *               0 until `minRttSamples` samples (no baseline yet);
 *   heartbeat = clamp01(φ / phiFull), φ of the peer's heartbeats (its PerfWatch summaries until
 *               SWIM is wired; an injected φ source then);
 *   failure   = failed / (ok + failed + failurePrior), counts decayed with `failureHalfLifeMs`;
 *   mismatch  = 1 − 0.5^m, m the mismatches reported (spot checks), decayed with `mismatchHalfLifeMs`.
 * anomaly = 1 − Π (1 − wᵢ·sᵢ)  (a noisy-OR: each signal alone can raise it up to its weight, and
 * independent signals add up without ever passing 1); trust = 1 − anomaly.
 * Distrusted when trust < distrustBelow (0.65); trusted again only when trust ≥ recoverAbove (0.75).
 */
import { clamp } from '../perfwatch/measure.js'
import { ewma } from '../perfwatch/score.js'

export interface TrustWeights {
  mismatch: number
  failure: number
  heartbeat: number
  rttDrift: number
}

export const TRUST_WEIGHTS: Readonly<TrustWeights> = Object.freeze({ mismatch: 0.9, failure: 0.6, heartbeat: 0.3, rttDrift: 0.25 })

export interface TrustParams {
  weights: TrustWeights
  /** Below this trust a peer is distrusted (the seed's threshold). */
  distrustBelow: number
  /** A distrusted peer is trusted again at or above this (hysteresis: no flapping at the line). */
  recoverAbove: number
  rttBaselineAlpha: number
  rttRecentAlpha: number
  /** RTT drift is relative to max(baseline, this): sub-ms loopback jitter is not drift. */
  rttFloorMs: number
  /** Relative drift that gives the full signal (3 = recent RTT four times the baseline). */
  rttDriftFull: number
  /** RTT samples before a baseline counts. */
  minRttSamples: number
  /** φ giving the full heartbeat signal (Akka's suspicion threshold). */
  phiFull: number
  /** Pseudo-successes in the failure rate's denominator: one failure of one task is not 100 %. */
  failurePrior: number
  failureHalfLifeMs: number
  mismatchHalfLifeMs: number
}

export const TRUST_DEFAULTS: Readonly<TrustParams> = Object.freeze({
  weights: TRUST_WEIGHTS,
  distrustBelow: 0.65,
  recoverAbove: 0.75,
  rttBaselineAlpha: 0.05,
  rttRecentAlpha: 0.3,
  rttFloorMs: 5,
  rttDriftFull: 3,
  minRttSamples: 5,
  phiFull: 8,
  failurePrior: 2,
  failureHalfLifeMs: 60_000,
  mismatchHalfLifeMs: 30 * 60_000
})

/** A peer's accumulated evidence (persisted in the TrustStore, except φ which is live). */
export interface PeerEvidence {
  rttBaselineMs: number | undefined
  rttRecentMs: number | undefined
  rttSamples: number
  /** Decayed counts of task outcomes, as of `outcomesAtMs`. */
  successes: number
  failures: number
  outcomesAtMs: number
  /** Decayed count of result mismatches, as of `mismatchesAtMs`. */
  mismatches: number
  mismatchesAtMs: number
}

export interface TrustSignals {
  rttDrift: number
  heartbeat: number
  failure: number
  mismatch: number
}

export function newEvidence (nowMs: number): PeerEvidence {
  return { rttBaselineMs: undefined, rttRecentMs: undefined, rttSamples: 0, successes: 0, failures: 0, outcomesAtMs: nowMs, mismatches: 0, mismatchesAtMs: nowMs }
}

/** `value` decayed from `fromMs` to `toMs` with a half-life (no growth when time goes back). */
export function decay (value: number, fromMs: number, toMs: number, halfLifeMs: number): number {
  const dt = toMs - fromMs
  if (!(dt > 0) || !(halfLifeMs > 0)) return value
  return value * Math.pow(0.5, dt / halfLifeMs)
}

export function observeRtt (e: PeerEvidence, rttMs: number, p: TrustParams): void {
  if (!Number.isFinite(rttMs) || rttMs < 0) return
  e.rttRecentMs = ewma(e.rttRecentMs, rttMs, p.rttRecentAlpha)
  e.rttBaselineMs = ewma(e.rttBaselineMs, rttMs, p.rttBaselineAlpha)
  e.rttSamples++
}

/** The outcomes that say something about the peer: `ok`, or a failure it caused. */
export type OutcomeClass = 'success' | 'failure' | 'neutral'

/**
 * `busy` (an honest refusal), `ignored` (late or for ended jobs) and anything unknown say nothing;
 * `error`, `timeout` and `lost` count against the peer.
 */
export function classifyOutcome (outcome: string): OutcomeClass {
  if (outcome === 'ok') return 'success'
  if (outcome === 'error' || outcome === 'timeout' || outcome === 'lost') return 'failure'
  return 'neutral'
}

export function observeOutcome (e: PeerEvidence, outcome: string, nowMs: number, p: TrustParams): void {
  const c = classifyOutcome(outcome)
  if (c === 'neutral') return
  e.successes = decay(e.successes, e.outcomesAtMs, nowMs, p.failureHalfLifeMs)
  e.failures = decay(e.failures, e.outcomesAtMs, nowMs, p.failureHalfLifeMs)
  e.outcomesAtMs = Math.max(e.outcomesAtMs, nowMs)
  if (c === 'success') e.successes++
  else e.failures++
}

export function observeMismatch (e: PeerEvidence, nowMs: number, p: TrustParams): void {
  e.mismatches = decay(e.mismatches, e.mismatchesAtMs, nowMs, p.mismatchHalfLifeMs) + 1
  e.mismatchesAtMs = Math.max(e.mismatchesAtMs, nowMs)
}

/** The four signals at `nowMs`; `phi` is the peer's current φ (0 when unknown). */
export function signalsOf (e: PeerEvidence, phi: number, nowMs: number, p: TrustParams): TrustSignals {
  let rttDrift = 0
  if (e.rttSamples >= p.minRttSamples && e.rttBaselineMs !== undefined && e.rttRecentMs !== undefined) {
    const rel = (e.rttRecentMs - e.rttBaselineMs) / Math.max(e.rttBaselineMs, p.rttFloorMs)
    rttDrift = clamp(rel / p.rttDriftFull, 0, 1)
  }
  const heartbeat = Number.isFinite(phi) && phi > 0 ? clamp(phi / p.phiFull, 0, 1) : 0
  const ok = decay(e.successes, e.outcomesAtMs, nowMs, p.failureHalfLifeMs)
  const bad = decay(e.failures, e.outcomesAtMs, nowMs, p.failureHalfLifeMs)
  const failure = clamp(bad / (ok + bad + p.failurePrior), 0, 1)
  const m = decay(e.mismatches, e.mismatchesAtMs, nowMs, p.mismatchHalfLifeMs)
  const mismatch = clamp(1 - Math.pow(0.5, m), 0, 1)
  return { rttDrift, heartbeat, failure, mismatch }
}

/** anomaly = 1 − Π (1 − wᵢ·sᵢ), in [0, 1]. */
export function anomalyOf (s: TrustSignals, w: TrustWeights): number {
  const keep = (1 - w.mismatch * s.mismatch) * (1 - w.failure * s.failure) * (1 - w.heartbeat * s.heartbeat) * (1 - w.rttDrift * s.rttDrift)
  return clamp(1 - keep, 0, 1)
}

/** Hysteresis: a trusted peer falls below `distrustBelow`; a distrusted one must climb to `recoverAbove`. */
export function nextTrusted (wasTrusted: boolean, trust: number, p: TrustParams): boolean {
  return wasTrusted ? trust >= p.distrustBelow : trust >= p.recoverAbove
}

/** The signal that weighs most in the anomaly now: the reason given with a trust event. */
export function dominantSignal (s: TrustSignals, w: TrustWeights): keyof TrustSignals {
  const parts: Array<[keyof TrustSignals, number]> = [
    ['mismatch', w.mismatch * s.mismatch], ['failure', w.failure * s.failure], ['heartbeat', w.heartbeat * s.heartbeat], ['rttDrift', w.rttDrift * s.rttDrift]
  ]
  parts.sort((a, b) => b[1] - a[1])
  return parts[0][0]
}

export function validateTrustParams (p: TrustParams, fail: (field: string, why: string) => Error): void {
  const inRange = (v: number, name: string, lo: number, hi: number): void => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) throw fail(name, `must be a number in ${lo}..${hi}, got ${String(v)}`)
  }
  for (const k of ['mismatch', 'failure', 'heartbeat', 'rttDrift'] as const) inRange(p.weights[k], `weights.${k}`, 0, 1)
  inRange(p.distrustBelow, 'distrustBelow', 0, 1)
  inRange(p.recoverAbove, 'recoverAbove', p.distrustBelow, 1)
  inRange(p.rttBaselineAlpha, 'rttBaselineAlpha', 0.001, 1)
  inRange(p.rttRecentAlpha, 'rttRecentAlpha', 0.001, 1)
  inRange(p.rttFloorMs, 'rttFloorMs', 0, 60_000)
  inRange(p.rttDriftFull, 'rttDriftFull', 0.01, 1000)
  inRange(p.minRttSamples, 'minRttSamples', 1, 1_000_000)
  inRange(p.phiFull, 'phiFull', 0.1, 300)
  inRange(p.failurePrior, 'failurePrior', 0, 1_000_000)
  inRange(p.failureHalfLifeMs, 'failureHalfLifeMs', 1, 86_400_000 * 30)
  inRange(p.mismatchHalfLifeMs, 'mismatchHalfLifeMs', 1, 86_400_000 * 365)
}
