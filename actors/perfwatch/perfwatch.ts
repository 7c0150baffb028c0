/**
 * The PerfWatch service (Hypermesh health and load). Each window (default 1 s) it measures this
 * node (measure.ts), sends a compact summary to the `perfwatch` actor of every alive member
 * (carrying a ping sequence number: the peer answers `pong` at once, which measures the RTT of
 * the actor streams themselves), keeps every member's latest summary, scores their load and raises
 * advisories (score.ts). Everything read here is measured; nothing is guessed.
 *
 * Protocol (tells between `perfwatch` actors, `from` set):
 * - `{ type: 'summary', seq, s: WireSummary }` → the receiver stores `s` (validated; garbage is
 *   dropped and counted by reason) and tells back `{ type: 'pong', seq }`;
 * - `{ type: 'pong', seq }` → RTT = now − when that seq was sent to that peer (unknown seqs are
 *   dropped: a pong cannot be forged into a smaller RTT than the real one without the seq).
 * - ask `{ type: 'status' }` → the same object as `status()`.
 *
 * The state lives in this closure, so a supervisor restart of the actor keeps it.
 */
import { cpus, type CpuInfo } from 'node:os'
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks'
import { getHeapStatistics } from 'node:v8'
import type { Registry } from 'prom-client'
import { silentLogger, type Logger } from '../../config/logger.js'
import type { MemberTable } from '../membership/table.js'
import { ReplyError } from '../runtime/errors.js'
import type { Actor, ActorSystem, MessageContext } from '../runtime/types.js'
import { makeSample, type CpuTimes, type CpuUsage, type PerfSample, type PoolReading } from './measure.js'
import { registerPerfWatchMetrics, type PerfWatchMetrics } from './metrics.js'
import { PerfWatchError, resolvePerfWatchOptions, type PerfWatchOptions } from './options.js'
import { EventRing } from './ring.js'
import {
  advisoriesOf, diffAdvisories, ewma, loadScore, parseSummary, rankRoutes, toWire,
  type AdvisoryReason, type PerfSummary, type Route
} from './score.js'

export const PERFWATCH_ACTOR = 'perfwatch'
/** Largest `seq` accepted (it wraps long before). */
const MAX_SEQ = 0xffff_ffff

export interface PerfWatchDeps {
  system: ActorSystem
  /** Who the members are (summaries go to the alive ones). */
  table: MemberTable
  /** The worker pool's gauges (WorkerPool.stats() in the node). */
  pool: () => PoolReading
  /** Where voike_perfwatch_* are registered (removed at close). */
  registry?: Registry
  logger?: Logger
  options?: Partial<PerfWatchOptions>
  /** Each measured RTT of a peer (trust's drift signal). */
  onRtt?: (peerId: string, rttMs: number, nowMs: number) => void
  /** Each valid summary of a peer (its arrivals are a heartbeat for trust's φ). */
  onSummary?: (peerId: string, nowMs: number) => void
}

export interface MemberPerf {
  peerId: string
  /** The member table's status ('alive' for this node). */
  status: string
  summary: PerfSummary | null
  /** How old the summary is, by our clock (ms since it arrived); null without one. */
  summaryAgeMs: number | null
  load: number | null
  /** Smoothed RTT (EWMA), the last sample, and how many were measured. Null for this node / unmeasured. */
  rttMs: number | null
  lastRttMs: number | null
  rttSamples: number
  advisories: AdvisoryReason[]
}

export interface HypermeshStatus {
  peerId: string
  intervalMs: number
  self: MemberPerf
  peers: MemberPerf[]
}

export interface HypermeshEvent {
  atMs: number
  peerId: string
  /** `raised` when the condition starts, `cleared` when it ends. */
  kind: 'raised' | 'cleared'
  reason: AdvisoryReason
  value: number | null
  bound: number | null
  message: string
}

export interface PerfWatch {
  /** The actor's factory (the service spawns it under PERFWATCH_ACTOR). */
  readonly factory: () => Actor
  status: () => HypermeshStatus
  routes: () => Route[]
  /** The newest `limit` advisory events, oldest first. */
  events: (limit?: number) => HypermeshEvent[]
  /** Smoothed RTT to a peer, ms, or undefined when not measured. */
  rttMs: (peerId: string) => number | undefined
  /** A member's load score (this node's too), or undefined without a summary. */
  load: (peerId: string) => number | undefined
  /** Summaries and pongs dropped, by reason. */
  dropped: () => Record<string, number>
  /** Measures and shares one window now (the timer calls it; tests may too). */
  tick: () => void
  close: () => Promise<void>
}

interface PeerState {
  summary: PerfSummary | null
  receivedAtMs: number
  load: number | null
  rttMs: number | undefined
  lastRttMs: number | undefined
  rttSamples: number
  /** seq → performance.now() when sent, oldest first (Map keeps insertion order). */
  pings: Map<number, number>
  advisories: Set<AdvisoryReason>
}

interface Readings { at: number, cpu: CpuUsage, cpus: CpuTimes[] }

export function createPerfWatch (deps: PerfWatchDeps): PerfWatch {
  if (typeof deps?.system?.tell !== 'function') throw new PerfWatchError('ERR_INVALID_OPTION', 'createPerfWatch: system must be an ActorSystem', { field: 'system' })
  if (typeof deps.table?.all !== 'function') throw new PerfWatchError('ERR_INVALID_OPTION', 'createPerfWatch: table must be a MemberTable', { field: 'table' })
  if (typeof deps.pool !== 'function') throw new PerfWatchError('ERR_INVALID_OPTION', 'createPerfWatch: pool must be a function returning { utilization, queueSize, maxThreads }', { field: 'pool' })
  const opts = resolvePerfWatchOptions(deps.options)
  const { system, table } = deps
  const selfId = system.peerId
  const log = (deps.logger ?? silentLogger).child({ component: 'perfwatch' })
  const peers = new Map<string, PeerState>()
  const ring = new EventRing<HypermeshEvent>(opts.maxEvents)
  const droppedBy = new Map<string, number>()
  const selfAdvisories = new Set<AdvisoryReason>()
  let selfSample: PerfSample | null = null
  let seq = 0
  let closed = false
  const delay: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 })
  delay.enable()
  let last: Readings = read()
  const metrics: PerfWatchMetrics | undefined = deps.registry === undefined ? undefined : registerPerfWatchMetrics(deps.registry, () => ({ self: selfSample, peers, dropped: droppedBy, selfLoad: selfLoad() }), selfId)
  const timer = setInterval(() => { tick() }, opts.intervalMs)
  timer.unref()

  function read (): Readings {
    return { at: performance.now(), cpu: process.cpuUsage(), cpus: cpus().map((c: CpuInfo) => c.times) }
  }

  function drop (reason: string): void {
    droppedBy.set(reason, (droppedBy.get(reason) ?? 0) + 1)
  }

  function selfLoad (): number | undefined {
    return selfSample === null ? undefined : loadScore(selfSample, opts.loopP99Ms)
  }

  /** Edge-triggered advisories of one member (see diffAdvisories). */
  function judge (peerId: string, summary: PerfSummary, active: Set<AdvisoryReason>): void {
    const { raised, cleared } = diffAdvisories(active, advisoriesOf(summary, opts))
    const atMs = Date.now()
    for (const a of raised) {
      active.add(a.reason)
      ring.push({ atMs, peerId, kind: 'raised', reason: a.reason, value: a.value, bound: a.bound, message: a.message })
      metrics?.advisories.inc({ reason: a.reason })
      if (peerId === selfId) log.warn('perfwatch advisory', { reason: a.reason, message: a.message })
    }
    for (const r of cleared) {
      active.delete(r)
      ring.push({ atMs, peerId, kind: 'cleared', reason: r, value: null, bound: null, message: `${r} back under its bound` })
    }
  }

  function tick (): void {
    if (closed) return
    const cur = read()
    let pool: PoolReading
    try { pool = deps.pool() } catch (err) { log.debug('pool reading failed', { err }); pool = { utilization: 0, queueSize: 0, maxThreads: 0 } }
    const mem = process.memoryUsage()
    selfSample = makeSample({
      atMs: Date.now(),
      elapsedMs: cur.at - last.at,
      cpuPrev: last.cpu,
      cpuCur: cur.cpu,
      cpusPrev: last.cpus,
      cpusCur: cur.cpus,
      memory: mem,
      heapLimitBytes: getHeapStatistics().heap_size_limit,
      delay,
      pool
    })
    // One window per sample: the histogram restarts with it.
    delay.reset()
    last = cur
    judge(selfId, selfSample, selfAdvisories)
    share(selfSample)
  }

  /** Sends our summary (with a ping) to every alive member; forgets members that are gone. */
  function share (sample: PerfSample): void {
    const wire = toWire(sample)
    const members = new Set<string>()
    for (const m of table.all()) {
      if (m.peerId === selfId) continue
      members.add(m.peerId)
      if (m.status !== 'alive') continue
      const st = state(m.peerId)
      if (st === undefined) continue
      seq = seq >= MAX_SEQ ? 1 : seq + 1
      st.pings.set(seq, performance.now())
      while (st.pings.size > opts.maxPendingPings) st.pings.delete(st.pings.keys().next().value as number)
      try {
        system.tell(system.ref(m.peerId, PERFWATCH_ACTOR), { type: 'summary', seq, s: wire }, PERFWATCH_ACTOR)
      } catch (err) {
        log.debug('summary not sent', { peer: m.peerId, err })
      }
    }
    for (const id of peers.keys()) if (!members.has(id)) peers.delete(id)
  }

  /** The peer's state, created on first use; undefined when too many peers are tracked. */
  function state (peerId: string): PeerState | undefined {
    let st = peers.get(peerId)
    if (st === undefined) {
      if (peers.size >= opts.maxPeers) { drop('too many peers'); return undefined }
      st = { summary: null, receivedAtMs: 0, load: null, rttMs: undefined, lastRttMs: undefined, rttSamples: 0, pings: new Map(), advisories: new Set() }
      peers.set(peerId, st)
    }
    return st
  }

  function isSeq (x: unknown): x is number {
    return typeof x === 'number' && Number.isInteger(x) && x >= 1 && x <= MAX_SEQ
  }

  function onSummary (m: Record<string, unknown>, ctx: MessageContext): void {
    const from = ctx.sender
    if (from === undefined || from.peerId === selfId) { drop('no sender'); return }
    const member = table.get(from.peerId)
    if (member === undefined) { drop('not a member'); return }
    if (!isSeq(m.seq)) { drop('bad seq'); return }
    const parsed = parseSummary(m.s)
    if (!parsed.ok) { drop(parsed.reason); return }
    // Answer first: the pong's delay is the RTT the sender measures.
    try { system.tell({ peerId: from.peerId, name: from.name }, { type: 'pong', seq: m.seq }, PERFWATCH_ACTOR) } catch (err) { log.debug('pong not sent', { peer: from.peerId, err }) }
    const st = state(from.peerId)
    if (st === undefined) return
    const now = Date.now()
    st.summary = parsed.summary
    st.receivedAtMs = now
    st.load = loadScore(parsed.summary, opts.loopP99Ms)
    judge(from.peerId, parsed.summary, st.advisories)
    deps.onSummary?.(from.peerId, now)
  }

  function onPong (m: Record<string, unknown>, ctx: MessageContext): void {
    const now = performance.now()
    const from = ctx.sender
    const st = from === undefined ? undefined : peers.get(from.peerId)
    if (st === undefined || from === undefined) { drop('pong from unknown peer'); return }
    if (!isSeq(m.seq)) { drop('bad seq'); return }
    const sentAt = st.pings.get(m.seq)
    if (sentAt === undefined) { drop('unknown pong'); return }
    st.pings.delete(m.seq)
    // Older pings still pending were lost or overtaken: their pongs would only measure less.
    for (const [s, at] of st.pings) if (at < sentAt) st.pings.delete(s)
    const rtt = Math.max(0.001, now - sentAt)
    st.lastRttMs = rtt
    st.rttMs = ewma(st.rttMs, rtt, opts.rttAlpha)
    st.rttSamples++
    deps.onRtt?.(from.peerId, rtt, Date.now())
  }

  function memberPerf (peerId: string, status: string, st: PeerState | undefined, now: number): MemberPerf {
    return {
      peerId,
      status,
      summary: st?.summary ?? null,
      summaryAgeMs: st?.summary != null ? Math.max(0, now - st.receivedAtMs) : null,
      load: st?.load ?? null,
      rttMs: st?.rttMs ?? null,
      lastRttMs: st?.lastRttMs ?? null,
      rttSamples: st?.rttSamples ?? 0,
      advisories: st === undefined ? [] : [...st.advisories]
    }
  }

  function status (): HypermeshStatus {
    const now = Date.now()
    const { windowMs: _w, ...summary } = selfSample ?? { windowMs: 0 }
    const self: MemberPerf = {
      peerId: selfId,
      status: 'alive',
      summary: selfSample === null ? null : summary as PerfSummary,
      summaryAgeMs: selfSample === null ? null : Math.max(0, now - selfSample.atMs),
      load: selfLoad() ?? null,
      rttMs: null,
      lastRttMs: null,
      rttSamples: 0,
      advisories: [...selfAdvisories]
    }
    const list: MemberPerf[] = []
    for (const m of table.all()) {
      if (m.peerId === selfId) continue
      list.push(memberPerf(m.peerId, m.status, peers.get(m.peerId), now))
    }
    list.sort((a, b) => a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)
    return { peerId: selfId, intervalMs: opts.intervalMs, self, peers: list }
  }

  const actor = (): Actor => ({
    receive (msg: unknown, ctx: MessageContext): unknown {
      const m = (typeof msg === 'object' && msg !== null ? msg : {}) as Record<string, unknown>
      switch (m.type) {
        case 'summary': onSummary(m, ctx); return undefined
        case 'pong': onPong(m, ctx); return undefined
        case 'status': return status()
        default:
          drop('unknown message')
          throw new ReplyError('ERR_UNKNOWN_MESSAGE', 'perfwatch: expected { type: "summary" | "pong" | "status" }')
      }
    }
  })

  return {
    factory: actor,
    status,
    routes: () => rankRoutes(table.all().filter(m => m.peerId !== selfId && m.status === 'alive').map(m => ({ peerId: m.peerId, rttMs: peers.get(m.peerId)?.rttMs, load: peers.get(m.peerId)?.load ?? undefined }))),
    events: (limit) => ring.list(limit),
    rttMs: (peerId) => peers.get(peerId)?.rttMs,
    load: (peerId) => peerId === selfId ? selfLoad() : peers.get(peerId)?.load ?? undefined,
    dropped: () => Object.fromEntries(droppedBy),
    tick,
    close: async () => {
      if (closed) return
      closed = true
      clearInterval(timer)
      delay.disable()
      metrics?.unregister()
    }
  }
}
