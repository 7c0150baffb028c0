/**
 * Where segments run: pure functions, no I/O, no clock (the scheduler passes `nowMs`).
 *
 * Every alive member has *credits*: how many of our tasks it may hold at once (in flight = sent
 * and not answered). Credits grow with its cores and are capped, so a node is never flooded and a
 * node with more cores gets more. A node that answered ERR_WORKER_BUSY gets its credits halved
 * for a while (once more per further busy answer), so a busy or slow node gets less work.
 *
 * Each task goes to the peer with the lowest inFlight/credits that still has a free credit; ties
 * go round robin, so equal peers share evenly. A task that just failed on a peer avoids it when
 * another peer has room.
 *
 * Several members on one machine share its cores. Segments are CPU-bound, so such a machine gets
 * at most one task per core in flight across all its members (`hostCap`): measured on a 2-core
 * machine running 3 nodes of 2 threads each, 24 fib segments took ~690 ms with 6 running at once
 * and ~380 ms with 2 (time slicing evicts each thread's working set from the caches).
 */

export interface CreditPolicy {
  /** Credits per core of a member. */
  creditsPerCore: number
  /** Upper bound of one member's credits. */
  maxCreditsPerPeer: number
}

/** Most halvings of a busy peer's credits (it keeps at least 1 credit anyway). */
export const MAX_PENALTY_LEVEL = 6

/** Credits of a member with `cores` cores: min(cores × creditsPerCore, maxCreditsPerPeer), at least 1. */
export function baseCredits (cores: number, policy: CreditPolicy): number {
  const c = Number.isFinite(cores) && cores >= 1 ? Math.floor(cores) : 1
  return Math.max(1, Math.min(c * policy.creditsPerCore, policy.maxCreditsPerPeer))
}

/** Credits after `penaltyLevel` halvings (busy answers), at least 1. */
export function effectiveCredits (base: number, penaltyLevel: number): number {
  const level = Math.max(0, Math.min(MAX_PENALTY_LEVEL, Math.floor(penaltyLevel)))
  return Math.max(1, Math.floor(base / 2 ** level))
}

/**
 * A peer's busy state: each ERR_WORKER_BUSY raises the level (credits halve) and restarts the
 * penalty window; the level drops back to 0 once the window has passed without a new busy. The
 * peer also gets nothing at all for a short hold, so a busy answer does not bounce straight back.
 */
export interface BusyState {
  penaltyLevel: number
  penaltyUntilMs: number
  holdUntilMs: number
}

export function onBusy (s: BusyState, nowMs: number, penaltyMs: number, holdMs: number): void {
  s.penaltyLevel = Math.min(MAX_PENALTY_LEVEL, s.penaltyLevel + 1)
  s.penaltyUntilMs = nowMs + penaltyMs
  s.holdUntilMs = Math.max(s.holdUntilMs, nowMs + holdMs)
}

/** Forgets a penalty whose window has passed. */
export function decayBusy (s: BusyState, nowMs: number): void {
  if (s.penaltyLevel > 0 && nowMs >= s.penaltyUntilMs) s.penaltyLevel = 0
}

export interface PeerLoad {
  readonly peerId: string
  /** Effective credits, ≥ 1. */
  readonly credits: number
  /** Tasks sent and not answered, ≥ 0. */
  readonly inFlight: number
  /** The machine it runs on; peers sharing a non-empty host share `hostCap`. */
  readonly host?: string
  /** Most tasks in flight on all peers of `host` together; absent = no cap beyond credits. */
  readonly hostCap?: number
}

/** Free credits of all peers together: how many tasks one placement pass can hand out. */
export function freeCredits (peers: ReadonlyArray<PeerLoad>): number {
  let free = 0
  const hosts = new Map<string, { cap: number, used: number, own: number }>()
  for (const p of peers) {
    const own = Math.max(0, p.credits - p.inFlight)
    if (p.hostCap === undefined || p.host === undefined) { free += own; continue }
    const h = hosts.get(p.host) ?? { cap: p.hostCap, used: 0, own: 0 }
    h.used += p.inFlight
    h.own += own
    hosts.set(p.host, h)
  }
  // A shared machine offers what its members' credits offer, but never beyond its cap.
  for (const h of hosts.values()) free += Math.min(h.own, Math.max(0, h.cap - h.used))
  return free
}

export interface Placement {
  /** For the first `chosen.length` requests, the index (into `peers`) of the peer chosen. */
  chosen: number[]
  /** Round-robin cursor for the next pass. */
  nextRr: number
}

/**
 * Chooses a peer for each request in order; `avoid[i]` is a peer id request i should not go to
 * when another peer has room (null: none). Stops at the first request no peer has room for (all
 * credits used), so `chosen` may be shorter than `avoid`. `allowed[i]`, when given, is a hard
 * rule (a result policy's re-run: never these peers, only trusted ones): a request no allowed
 * peer has room for gets -1 and the next requests are still placed. `rr` is the round-robin
 * cursor, returned advanced. Pure: `peers` is not modified.
 */
export function placeTasks (peers: ReadonlyArray<PeerLoad>, avoid: ReadonlyArray<string | null>, rr: number, allowed?: ReadonlyArray<((peerId: string) => boolean) | null>): Placement {
  const n = peers.length
  const inFlight = new Array<number>(n)
  for (let i = 0; i < n; i++) inFlight[i] = peers[i].inFlight
  const hostInFlight = new Map<string, number>()
  for (const p of peers) if (p.hostCap !== undefined && p.host !== undefined) hostInFlight.set(p.host, (hostInFlight.get(p.host) ?? 0) + p.inFlight)
  const chosen: number[] = []
  let cursor = n === 0 ? 0 : ((rr % n) + n) % n
  for (let r = 0; r < avoid.length; r++) {
    const avoidId = avoid[r]
    const rule = allowed?.[r] ?? null
    let best = pickLeastLoaded(peers, inFlight, hostInFlight, cursor, avoidId, rule)
    if (best < 0 && avoidId !== null) best = pickLeastLoaded(peers, inFlight, hostInFlight, cursor, null, rule)
    if (best < 0 && rule !== null) { chosen.push(-1); continue }
    if (best < 0) break
    inFlight[best]++
    const host = peers[best].host
    if (peers[best].hostCap !== undefined && host !== undefined) hostInFlight.set(host, (hostInFlight.get(host) ?? 0) + 1)
    chosen.push(best)
    cursor = (best + 1) % n
  }
  return { chosen, nextRr: cursor }
}

/** Index of the peer with a free credit and the lowest load, first in rotation from `cursor` on ties; -1 if none. */
function pickLeastLoaded (peers: ReadonlyArray<PeerLoad>, inFlight: number[], hostInFlight: Map<string, number>, cursor: number, avoidId: string | null, rule: ((peerId: string) => boolean) | null): number {
  const n = peers.length
  let best = -1
  for (let t = 0; t < n; t++) {
    const i = (cursor + t) % n
    const p = peers[i]
    if (inFlight[i] >= p.credits || p.peerId === avoidId || (rule !== null && !rule(p.peerId))) continue
    if (p.hostCap !== undefined && p.host !== undefined && (hostInFlight.get(p.host) ?? 0) >= p.hostCap) continue
    // inFlight[i]/credits < inFlight[best]/credits[best], without division.
    if (best < 0 || inFlight[i] * peers[best].credits < inFlight[best] * p.credits) best = i
  }
  return best
}
