/**
 * How much work a peer should get, from what PerfWatch and trust measured: pure functions, no
 * I/O, no clock (like placement.ts, which they feed).
 *
 *   weight = (1 − loadShare·load) · 1 / (1 + rttMs / rttScaleMs) · trust     in (0, 1]
 *
 * - load in [0, 1] (PerfWatch's load score; unknown = 0): a saturated peer keeps 1 − loadShare
 *   (default 0.6, so 40 %) of its credits: its own credit accounting already limits it, and a
 *   busy-but-fast peer should not be starved;
 * - rttMs (measured, smoothed; unknown = 0): at rttScaleMs (default 50 ms) a peer gets half:
 *   a segment's answer travels back over it and far peers hold credits longer;
 * - trust in [0, 1] (PTA; unknown = 1): a peer with trust 0.7 gets 70 %.
 * A peer is excluded (no credits at all) when it is not alive (suspect, dead) or distrusted.
 * The weight scales a peer's credits (`weighLoads`): credits' = max(1, round(credits · weight)),
 * so every included peer keeps at least one credit and the least-loaded-first placement
 * (placement.ts) does the rest. This node is never excluded: there must be somewhere to run.
 */
import type { PeerLoad } from './placement.js'

export interface PeerQuality {
  /** Member status as the table has it. */
  status: 'alive' | 'suspect' | 'dead' | string
  /** False when the PTA distrusts the peer. */
  trusted: boolean
  /** PerfWatch load score in [0, 1]; undefined = no summary yet. */
  load: number | undefined
  /** Measured RTT, ms; undefined = not measured yet. */
  rttMs: number | undefined
  /** PTA trust in [0, 1]; undefined = never judged. */
  trust: number | undefined
}

export interface WeightPolicy {
  /** Share of a peer's credits that its load can take away, 0..1. Default 0.6. */
  loadShare: number
  /** RTT at which a peer's weight halves, ms. Default 50. */
  rttScaleMs: number
}

export const DEFAULT_WEIGHT_POLICY: Readonly<WeightPolicy> = Object.freeze({ loadShare: 0.6, rttScaleMs: 50 })

function unit (x: number | undefined, fallback: number): number {
  if (x === undefined || !Number.isFinite(x)) return fallback
  return x < 0 ? 0 : x > 1 ? 1 : x
}

/** True when nothing may be placed on the peer: not alive, or distrusted. */
export function isExcluded (q: Pick<PeerQuality, 'status' | 'trusted'>): boolean {
  return q.status !== 'alive' || !q.trusted
}

/** The placement weight in [0, 1]; 0 for an excluded peer. */
export function placementWeight (q: PeerQuality, policy: WeightPolicy = DEFAULT_WEIGHT_POLICY): number {
  if (isExcluded(q)) return 0
  const load = unit(q.load, 0)
  const rtt = q.rttMs !== undefined && Number.isFinite(q.rttMs) && q.rttMs > 0 ? q.rttMs : 0
  const trust = unit(q.trust, 1)
  return (1 - policy.loadShare * load) * (1 / (1 + rtt / policy.rttScaleMs)) * trust
}

/**
 * The loads placement sees: excluded peers dropped (never `selfId`), every other peer's credits
 * scaled by its weight (at least 1). Pure: `loads` is not modified.
 */
export function weighLoads (loads: readonly PeerLoad[], selfId: string, excluded: (peerId: string) => boolean, weight: (peerId: string) => number): PeerLoad[] {
  const out: PeerLoad[] = []
  for (const p of loads) {
    if (p.peerId !== selfId && excluded(p.peerId)) continue
    const w = weight(p.peerId)
    const scale = Number.isFinite(w) ? Math.max(0, Math.min(1, w)) : 1
    out.push({ ...p, credits: Math.max(1, Math.round(p.credits * scale)) })
  }
  return out
}
