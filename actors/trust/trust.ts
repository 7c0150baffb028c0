/**
 * The PTA (peer trust) service: per-peer anomaly score from measured signals (score.ts), trust
 * events, `isTrusted` for placement, and persistence in the TrustStore.
 *
 * Inputs (all pushed in by the composition root, none guessed):
 * - `observeRtt(peer, ms)`: each RTT PerfWatch measures;
 * - `observeHeartbeat(peer)`: each arrival of the peer's heartbeat (its PerfWatch summary until
 *   SWIM is wired); φ comes from a PhiAccrualDetector over those arrivals, unless the injected
 *   `phi(peer)` source answers a number (SWIM's detector, once wired);
 * - `onTaskOutcome(peer, outcome)`: the scheduler's task outcomes per peer;
 * - `reportMismatch(peer)`: a spot check found the peer's result wrong (the strongest signal).
 *
 * Every `intervalMs` the scores of alive members are recomputed; a peer whose trust crosses the
 * hysteresis band raises an event (`distrusted` / `recovered`) and dirty peers are written to the
 * store (write-behind; a failed write is retried at the next interval). Suspect and dead members
 * keep their last score: silence is SWIM's business, and a member that is gone is not a liar.
 *
 * Actor messages: ask `{ type: 'status' }`; tell `{ type: 'mismatch', peer }` (local senders only).
 */
import type { Registry } from 'prom-client'
import { silentLogger, type Logger } from '../../config/logger.js'
import type { TrustRecord, TrustStore } from '../../store/trust.js'
import { PhiAccrualDetector, type PhiOptions } from '../membership/swim/phi.js'
import type { MemberTable } from '../membership/table.js'
import { EventRing } from '../perfwatch/ring.js'
import { ReplyError } from '../runtime/errors.js'
import type { Actor, MessageContext } from '../runtime/types.js'
import { registerTrustMetrics, type TrustMetrics } from './metrics.js'
import {
  anomalyOf, decay, dominantSignal, newEvidence, nextTrusted, observeMismatch, observeOutcome, observeRtt, signalsOf,
  TRUST_DEFAULTS, validateTrustParams, type PeerEvidence, type TrustParams, type TrustSignals
} from './score.js'
import { TrustError } from './errors.js'

export const TRUST_ACTOR = 'trust'

export interface TrustOptions extends TrustParams {
  /** Recompute, raise events and persist every this many ms. Default 1000. */
  intervalMs: number
  /** Peers tracked (evidence about others is dropped). Default 1024. */
  maxPeers: number
  /** Trust events kept for /trust/events. Default 1000. */
  maxEvents: number
  /** The heartbeats' period (PerfWatch's interval), for the fallback φ detector. Default 1000. */
  heartbeatIntervalMs: number
}

export interface TrustDeps {
  selfId: string
  table: MemberTable
  /** Where trust persists; absent = in memory only. */
  store?: TrustStore
  registry?: Registry
  logger?: Logger
  options?: Partial<Omit<TrustOptions, 'weights'>> & { weights?: Partial<TrustParams['weights']> }
  /** φ of a peer from a real failure detector (SWIM); undefined → the fallback detector here. */
  phi?: (peerId: string) => number | undefined
  /** Wall clock; tests pass their own. */
  now?: () => number
}

export interface PeerTrust {
  peerId: string
  /** The member's status in the table ('unknown' when it is no longer a member). */
  status: string
  trust: number
  trusted: boolean
  anomaly: number
  signals: TrustSignals
  /** The evidence behind the signals. */
  phi: number
  rttBaselineMs: number | null
  rttRecentMs: number | null
  successes: number
  failures: number
  mismatches: number
}

export interface TrustStatus {
  peerId: string
  distrustBelow: number
  recoverAbove: number
  weights: TrustParams['weights']
  peers: PeerTrust[]
}

export interface TrustEvent {
  atMs: number
  peerId: string
  kind: 'distrusted' | 'recovered'
  /** The signal weighing most at the time (`recovered` for a recovery). */
  reason: keyof TrustSignals | 'recovered'
  trust: number
  signals: TrustSignals
}

export interface Trust {
  readonly factory: () => Actor
  observeRtt: (peerId: string, rttMs: number) => void
  observeHeartbeat: (peerId: string) => void
  onTaskOutcome: (peerId: string, outcome: string) => void
  reportMismatch: (peerId: string) => void
  /** False while the peer is distrusted; true for this node and for peers never judged. */
  isTrusted: (peerId: string) => boolean
  /** The peer's trust in [0, 1] (1 when never judged). */
  trust: (peerId: string) => number
  status: () => TrustStatus
  events: (limit?: number) => TrustEvent[]
  /** Loads the persisted state (call once before the first interval). */
  load: () => Promise<void>
  /** Recomputes every alive member's score now (the timer calls it; tests may too). */
  tick: () => void
  /** Writes the dirty peers now. */
  flush: () => Promise<void>
  close: () => Promise<void>
}

interface PeerState {
  evidence: PeerEvidence
  detector: PhiAccrualDetector
  phi: number
  trust: number
  trusted: boolean
  anomaly: number
  signals: TrustSignals
  dirty: boolean
}

const ZERO: TrustSignals = Object.freeze({ rttDrift: 0, heartbeat: 0, failure: 0, mismatch: 0 })

function resolveOptions (given: TrustDeps['options']): TrustOptions {
  const g = given ?? {}
  const o: TrustOptions = {
    ...TRUST_DEFAULTS,
    intervalMs: 1000,
    maxPeers: 1024,
    maxEvents: 1000,
    heartbeatIntervalMs: 1000,
    ...g,
    weights: { ...TRUST_DEFAULTS.weights, ...(g.weights ?? {}) }
  } as TrustOptions
  const fail = (field: string, why: string): Error => new TrustError('ERR_INVALID_OPTION', `createTrust: options.${field} ${why}`, { field })
  validateTrustParams(o, fail)
  const int = (v: number, name: string, lo: number, hi: number): void => {
    if (!Number.isInteger(v) || v < lo || v > hi) throw fail(name, `must be an integer in ${lo}..${hi}, got ${String(v)}`)
  }
  int(o.intervalMs, 'intervalMs', 50, 60_000)
  int(o.maxPeers, 'maxPeers', 1, 100_000)
  int(o.maxEvents, 'maxEvents', 1, 100_000)
  int(o.heartbeatIntervalMs, 'heartbeatIntervalMs', 50, 60_000)
  return o
}

export function createTrust (deps: TrustDeps): Trust {
  if (typeof deps?.selfId !== 'string' || deps.selfId === '') throw new TrustError('ERR_INVALID_OPTION', 'createTrust: selfId must be a peer id', { field: 'selfId' })
  if (typeof deps.table?.get !== 'function') throw new TrustError('ERR_INVALID_OPTION', 'createTrust: table must be a MemberTable', { field: 'table' })
  const opts = resolveOptions(deps.options)
  const { selfId, table, store } = deps
  const now = deps.now ?? Date.now
  const log = (deps.logger ?? silentLogger).child({ component: 'trust' })
  const peers = new Map<string, PeerState>()
  const ring = new EventRing<TrustEvent>(opts.maxEvents)
  const phiOptions: Partial<PhiOptions> = { heartbeatIntervalMs: opts.heartbeatIntervalMs, firstHeartbeatEstimateMs: opts.heartbeatIntervalMs }
  let closed = false
  let flushing: Promise<void> | undefined
  const metrics: TrustMetrics | undefined = deps.registry === undefined ? undefined : registerTrustMetrics(deps.registry, () => peers)
  const timer = setInterval(() => { tick(); void flush() }, opts.intervalMs)
  timer.unref()

  /** The peer's state, created on first evidence about a member (or a stored record at load). */
  function state (peerId: string, stored = false): PeerState | undefined {
    if (peerId === selfId || typeof peerId !== 'string' || peerId === '') return undefined
    let st = peers.get(peerId)
    if (st === undefined) {
      // Evidence about a peer that is not a member (a stray id) is not kept.
      if (!stored && table.get(peerId) === undefined) return undefined
      if (peers.size >= opts.maxPeers) return undefined
      st = { evidence: newEvidence(now()), detector: new PhiAccrualDetector(phiOptions), phi: 0, trust: 1, trusted: true, anomaly: 0, signals: ZERO, dirty: true }
      peers.set(peerId, st)
    }
    return st
  }

  /** Recomputes one peer's score; raises an event when it crosses the band. */
  function score (peerId: string, st: PeerState, t: number): void {
    const injected = deps.phi?.(peerId)
    st.phi = injected !== undefined && Number.isFinite(injected) ? injected : st.detector.phi(t)
    st.signals = signalsOf(st.evidence, st.phi, t, opts)
    st.anomaly = anomalyOf(st.signals, opts.weights)
    const trust = 1 - st.anomaly
    if (Math.abs(trust - st.trust) > 1e-6) st.dirty = true
    st.trust = trust
    const trusted = nextTrusted(st.trusted, trust, opts)
    if (trusted === st.trusted) return
    st.trusted = trusted
    st.dirty = true
    const reason = trusted ? 'recovered' : dominantSignal(st.signals, opts.weights)
    ring.push({ atMs: t, peerId, kind: trusted ? 'recovered' : 'distrusted', reason, trust, signals: st.signals })
    metrics?.events.inc({ reason })
    if (trusted) log.info('peer trusted again', { peer: peerId, trust })
    else log.warn('peer distrusted: no more work is placed on it', { peer: peerId, trust, reason, signals: st.signals })
  }

  function tick (): void {
    if (closed) return
    const t = now()
    for (const [peerId, st] of peers) {
      const m = table.get(peerId)
      if (m?.status === 'alive') score(peerId, st, t)
    }
  }

  function toRecord (peerId: string, st: PeerState, t: number): TrustRecord {
    const e = st.evidence
    return {
      peerId,
      trust: st.trust,
      trusted: st.trusted,
      successes: decay(e.successes, e.outcomesAtMs, t, opts.failureHalfLifeMs),
      failures: decay(e.failures, e.outcomesAtMs, t, opts.failureHalfLifeMs),
      mismatches: decay(e.mismatches, e.mismatchesAtMs, t, opts.mismatchHalfLifeMs),
      rttBaselineMs: e.rttBaselineMs ?? null,
      countsAtMs: Math.floor(t),
      updatedAtMs: Math.floor(t)
    }
  }

  async function flush (): Promise<void> {
    if (store === undefined) return
    if (flushing !== undefined) { await flushing; return }
    const t = now()
    const dirty: Array<[PeerState, TrustRecord]> = []
    for (const [peerId, st] of peers) if (st.dirty) dirty.push([st, toRecord(peerId, st, t)])
    if (dirty.length === 0) return
    for (const [st] of dirty) st.dirty = false
    flushing = store.upsertTrust(dirty.map(d => d[1])).catch((err: unknown) => {
      for (const [st] of dirty) st.dirty = true
      log.warn('trust not persisted; retried at the next interval', { peers: dirty.length, err })
    }).finally(() => { flushing = undefined })
    await flushing
  }

  async function load (): Promise<void> {
    if (store === undefined) return
    const records = await store.listTrust()
    for (const r of records) {
      const st = state(r.peerId, true)
      if (st === undefined) continue
      const e = st.evidence
      e.successes = r.successes
      e.failures = r.failures
      e.outcomesAtMs = r.countsAtMs
      e.mismatches = r.mismatches
      e.mismatchesAtMs = r.countsAtMs
      e.rttBaselineMs = r.rttBaselineMs ?? undefined
      st.trust = r.trust
      st.trusted = r.trusted
      st.dirty = false
    }
    if (records.length > 0) log.info('trust loaded', { peers: records.length, distrusted: records.filter(r => !r.trusted).length })
  }

  function peerTrust (peerId: string, st: PeerState): PeerTrust {
    const t = now()
    const e = st.evidence
    return {
      peerId,
      status: table.get(peerId)?.status ?? 'unknown',
      trust: st.trust,
      trusted: st.trusted,
      anomaly: st.anomaly,
      signals: st.signals,
      phi: st.phi,
      rttBaselineMs: e.rttBaselineMs ?? null,
      rttRecentMs: e.rttRecentMs ?? null,
      successes: decay(e.successes, e.outcomesAtMs, t, opts.failureHalfLifeMs),
      failures: decay(e.failures, e.outcomesAtMs, t, opts.failureHalfLifeMs),
      mismatches: decay(e.mismatches, e.mismatchesAtMs, t, opts.mismatchHalfLifeMs)
    }
  }

  function status (): TrustStatus {
    const list = [...peers].map(([id, st]) => peerTrust(id, st)).sort((a, b) => a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)
    return { peerId: selfId, distrustBelow: opts.distrustBelow, recoverAbove: opts.recoverAbove, weights: { ...opts.weights }, peers: list }
  }

  function reportMismatch (peerId: string): void {
    const st = state(peerId)
    if (st === undefined) return
    const t = now()
    observeMismatch(st.evidence, t, opts)
    st.dirty = true
    // The strongest signal acts at once, not at the next interval.
    score(peerId, st, t)
  }

  const actor = (): Actor => ({
    receive (msg: unknown, ctx: MessageContext): unknown {
      const m = (typeof msg === 'object' && msg !== null ? msg : {}) as Record<string, unknown>
      switch (m.type) {
        case 'status': return status()
        case 'mismatch':
          // Only this node's own spot checks may accuse a peer.
          if (ctx.sender !== undefined && ctx.sender.peerId !== selfId) throw new ReplyError('ERR_FORBIDDEN', 'trust: mismatches are reported by local actors only')
          if (typeof m.peer !== 'string') throw new ReplyError('ERR_INVALID_ARGUMENT', 'trust: peer must be a peer id')
          reportMismatch(m.peer)
          return undefined
        default:
          throw new ReplyError('ERR_UNKNOWN_MESSAGE', 'trust: expected { type: "status" | "mismatch" }')
      }
    }
  })

  return {
    factory: actor,
    observeRtt: (peerId, rttMs) => { const st = state(peerId); if (st !== undefined) observeRtt(st.evidence, rttMs, opts) },
    observeHeartbeat: (peerId) => { state(peerId)?.detector.heartbeat(now()) },
    onTaskOutcome: (peerId, outcome) => {
      const st = state(peerId)
      if (st === undefined) return
      observeOutcome(st.evidence, outcome, now(), opts)
      st.dirty = true
    },
    reportMismatch,
    isTrusted: (peerId) => peers.get(peerId)?.trusted ?? true,
    trust: (peerId) => peers.get(peerId)?.trust ?? 1,
    status,
    events: (limit) => ring.list(limit),
    load,
    tick,
    flush,
    close: async () => {
      if (closed) return
      closed = true
      clearInterval(timer)
      await flush()
      metrics?.unregister()
    }
  }
}
