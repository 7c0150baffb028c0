/**
 * PerfWatch's judgements, as pure functions: the compact summary peers exchange (and its
 * validation: it comes off the wire), the load score of a member, and the advisories.
 *
 * Load score, in [0, 1] (0 idle, 1 saturated), from a member's latest summary:
 *
 *   load = 0.35·pool + 0.20·queue + 0.25·cpu + 0.15·loop + 0.05·mem
 *
 *   pool  = worker-pool utilization (0..1): the share of its threads kept busy;
 *   queue = min(1, queued batches / threads): work waiting for a thread;
 *   cpu   = host CPU % / 100: the machine is busy with anything (other processes too);
 *   loop  = min(1, event-loop p99 / loopBoundMs): a slow loop answers and dispatches late;
 *   mem   = min(1, heap used / heap limit): close to the limit means GC pauses.
 *
 * Why these weights: placing segments is about free CPU on worker threads, so the pool and its
 * queue weigh most (0.55), the host CPU next (other members or programs on the machine); the
 * event loop and memory are early warnings and weigh little unless they are extreme.
 */
import { clamp, type PerfSample } from './measure.js'

/** The compact summary sent to peers (~150 bytes in msgpack). Short keys: it crosses the wire each second. */
export interface WireSummary {
  v: 1
  /** The sender's wall clock when it was measured, ms. */
  t: number
  /** processCpuPct, hostCpuPct */
  pc: number
  hc: number
  /** rssBytes, heapUsedBytes, heapLimitBytes */
  rss: number
  hu: number
  hl: number
  /** loop p50 / p99 ms */
  l50: number
  l99: number
  /** pool utilization, queue depth, threads */
  pu: number
  pq: number
  pt: number
}

/** The summary of a member as the APIs show it. */
export type PerfSummary = Omit<PerfSample, 'windowMs'>

export function toWire (s: PerfSample): WireSummary {
  const r = (x: number, d: number): number => Math.round(x * d) / d
  return {
    v: 1,
    t: Math.round(s.atMs),
    pc: r(s.processCpuPct, 10),
    hc: r(s.hostCpuPct, 10),
    rss: Math.round(s.rssBytes),
    hu: Math.round(s.heapUsedBytes),
    hl: Math.round(s.heapLimitBytes),
    l50: r(s.loopP50Ms, 100),
    l99: r(s.loopP99Ms, 100),
    pu: r(s.poolUtilization, 1000),
    pq: s.poolQueueDepth,
    pt: s.poolThreads
  }
}

const MAX_BYTES = 2 ** 53
/** Each field's accepted range: anything else (or an extra key) makes the summary garbage. */
const RANGES: Record<Exclude<keyof WireSummary, 'v'>, [number, number, boolean]> = {
  t: [0, 2 ** 52, true],
  pc: [0, 100 * 4096, false],
  hc: [0, 100, false],
  rss: [0, MAX_BYTES, true],
  hu: [0, MAX_BYTES, true],
  hl: [0, MAX_BYTES, true],
  l50: [0, 3_600_000, false],
  l99: [0, 3_600_000, false],
  pu: [0, 1, false],
  pq: [0, 1_000_000, true],
  pt: [0, 4096, true]
}
const KEYS = Object.keys(RANGES) as Array<keyof typeof RANGES>

/**
 * A summary received from a peer, checked field by field: the summary, or the reason it is
 * garbage (the caller drops it and counts the reason). Never throws, whatever `raw` is.
 */
export function parseSummary (raw: unknown): { ok: true, summary: PerfSummary } | { ok: false, reason: string } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, reason: 'not an object' }
  const o = raw as Record<string, unknown>
  if (o.v !== 1) return { ok: false, reason: 'bad version' }
  let keys = 0
  for (const _ in o) keys++
  if (keys !== KEYS.length + 1) return { ok: false, reason: 'unexpected fields' }
  for (const k of KEYS) {
    const x = o[k]
    const [lo, hi, integer] = RANGES[k]
    if (typeof x !== 'number' || !Number.isFinite(x) || x < lo || x > hi || (integer && !Number.isInteger(x))) return { ok: false, reason: `bad ${k}` }
  }
  const w = o as unknown as WireSummary
  return {
    ok: true,
    summary: {
      atMs: w.t,
      processCpuPct: w.pc,
      hostCpuPct: w.hc,
      rssBytes: w.rss,
      heapUsedBytes: w.hu,
      heapLimitBytes: w.hl,
      loopP50Ms: w.l50,
      loopP99Ms: w.l99,
      poolUtilization: w.pu,
      poolQueueDepth: w.pq,
      poolThreads: w.pt
    }
  }
}

export interface AdvisoryBounds {
  /** Event-loop p99 above this raises `event-loop-p99`. Default 200 ms. */
  loopP99Ms: number
  /** Pool utilization at or above this, with at least one queued batch per thread, raises `pool-saturated`. Default 0.9. */
  poolSaturation: number
  /** RSS above this raises `memory`. Default 80% of the host's memory. */
  maxRssBytes: number
  /** Heap used above this share of V8's heap limit raises `memory` too. Default 0.85. */
  maxHeapShare: number
}

export const LOAD_WEIGHTS = Object.freeze({ pool: 0.35, queue: 0.2, cpu: 0.25, loop: 0.15, mem: 0.05 })

/** The load score of a member in [0, 1] (see the formula at the top). */
export function loadScore (s: PerfSummary, loopBoundMs: number): number {
  const pool = clamp(s.poolUtilization, 0, 1)
  const queue = s.poolThreads > 0 ? clamp(s.poolQueueDepth / s.poolThreads, 0, 1) : (s.poolQueueDepth > 0 ? 1 : 0)
  const cpu = clamp(s.hostCpuPct / 100, 0, 1)
  const loop = loopBoundMs > 0 ? clamp(s.loopP99Ms / loopBoundMs, 0, 1) : 0
  const mem = s.heapLimitBytes > 0 ? clamp(s.heapUsedBytes / s.heapLimitBytes, 0, 1) : 0
  const w = LOAD_WEIGHTS
  return clamp(w.pool * pool + w.queue * queue + w.cpu * cpu + w.loop * loop + w.mem * mem, 0, 1)
}

export type AdvisoryReason = 'event-loop-p99' | 'pool-saturated' | 'memory'
export const ADVISORY_REASONS: readonly AdvisoryReason[] = ['event-loop-p99', 'pool-saturated', 'memory']

export interface Advisory {
  reason: AdvisoryReason
  /** The measured value and the bound it crossed (same unit). */
  value: number
  bound: number
  message: string
}

/** The advisories a summary warrants now (each reason at most once). */
export function advisoriesOf (s: PerfSummary, b: AdvisoryBounds): Advisory[] {
  const out: Advisory[] = []
  if (s.loopP99Ms > b.loopP99Ms) {
    out.push({ reason: 'event-loop-p99', value: s.loopP99Ms, bound: b.loopP99Ms, message: `event-loop delay p99 ${s.loopP99Ms.toFixed(1)} ms is over ${b.loopP99Ms} ms` })
  }
  if (s.poolThreads > 0 && s.poolUtilization >= b.poolSaturation && s.poolQueueDepth >= s.poolThreads) {
    out.push({ reason: 'pool-saturated', value: s.poolUtilization, bound: b.poolSaturation, message: `worker pool saturated: utilization ${s.poolUtilization.toFixed(2)}, ${s.poolQueueDepth} batches queued for ${s.poolThreads} threads` })
  }
  const heapShare = s.heapLimitBytes > 0 ? s.heapUsedBytes / s.heapLimitBytes : 0
  if (s.rssBytes > b.maxRssBytes) {
    out.push({ reason: 'memory', value: s.rssBytes, bound: b.maxRssBytes, message: `RSS ${mib(s.rssBytes)} MiB is over ${mib(b.maxRssBytes)} MiB` })
  } else if (heapShare > b.maxHeapShare) {
    out.push({ reason: 'memory', value: heapShare, bound: b.maxHeapShare, message: `heap used is ${(heapShare * 100).toFixed(0)}% of V8's limit (bound ${(b.maxHeapShare * 100).toFixed(0)}%)` })
  }
  return out
}

/**
 * Advisories are edge-triggered: an event when a reason starts (`raised`) and when it ends
 * (`cleared`), not one per window, so a node stuck over a bound does not flood the ring.
 */
export function diffAdvisories (active: ReadonlySet<AdvisoryReason>, now: readonly Advisory[]): { raised: Advisory[], cleared: AdvisoryReason[] } {
  const nowReasons = new Set(now.map(a => a.reason))
  return {
    raised: now.filter(a => !active.has(a.reason)),
    cleared: [...active].filter(r => !nowReasons.has(r))
  }
}

function mib (bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(0)
}

export interface RouteInput {
  peerId: string
  /** Smoothed measured RTT, ms; undefined = not measured yet (such peers are not routes). */
  rttMs: number | undefined
  /** Load score in [0, 1]; undefined = no summary yet (counted as 0.5: unknown, not idle). */
  load: number | undefined
}

export interface Route {
  rank: number
  peerId: string
  rttMs: number
  load: number
  /** rttMs × (1 + 2·load): lower is better. */
  cost: number
}

/**
 * Peers ranked by measured RTT and load: cost = rttMs × (1 + 2·load), ascending (ties by peer
 * id). A fully loaded peer counts as three times as far: a nearby idle peer comes first, and a
 * busy one loses to an idle one up to three times its distance.
 */
export function rankRoutes (peers: readonly RouteInput[]): Route[] {
  const routes: Array<Omit<Route, 'rank'>> = []
  for (const p of peers) {
    if (p.rttMs === undefined || !Number.isFinite(p.rttMs) || p.rttMs < 0) continue
    const load = p.load === undefined ? 0.5 : clamp(p.load, 0, 1)
    routes.push({ peerId: p.peerId, rttMs: p.rttMs, load, cost: p.rttMs * (1 + 2 * load) })
  }
  routes.sort((a, b) => a.cost - b.cost || (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0))
  return routes.map((r, i) => ({ rank: i + 1, ...r }))
}

/** Exponentially weighted moving average; the first sample is taken as is. */
export function ewma (prev: number | undefined, sample: number, alpha: number): number {
  return prev === undefined ? sample : prev + alpha * (sample - prev)
}
