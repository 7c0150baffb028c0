/**
 * PerfWatch's options: defaults and ranges written once, validated up front with errors naming
 * the option (`createPerfWatch: options.intervalMs must be an integer in 100..60000, got 5`).
 */
import { totalmem } from 'node:os'
import { VoikeError } from '../../config/errors.js'
import { resolveInts, type IntTable } from '../../config/options.js'
import type { AdvisoryBounds } from './score.js'

export class PerfWatchError extends VoikeError {
  constructor (code: string, message: string, options?: { field?: string, cause?: unknown }) {
    super(code, message, options)
    this.name = 'PerfWatchError'
  }
}

export interface PerfWatchOptions extends AdvisoryBounds {
  /** One measuring window, and the period of the summaries sent to peers. Default 1000 ms. */
  intervalMs: number
  /** Peers tracked at once (summaries of others are dropped, counted). Default 1024. */
  maxPeers: number
  /** Advisory events kept for /hypermesh/events. Default 1000. */
  maxEvents: number
  /** Pings awaiting their pong per peer; older ones are forgotten (their pong is ignored). Default 8. */
  maxPendingPings: number
  /** Smoothing of the RTT shown and used for placement (EWMA weight of a new sample). Default 0.3. */
  rttAlpha: number
}

const INTS: IntTable<'intervalMs' | 'maxPeers' | 'maxEvents' | 'maxPendingPings' | 'loopP99Ms'> = {
  intervalMs: { default: 1000, min: 100, max: 60_000 },
  maxPeers: { default: 1024, min: 1, max: 100_000 },
  maxEvents: { default: 1000, min: 1, max: 100_000 },
  maxPendingPings: { default: 8, min: 1, max: 1024 },
  loopP99Ms: { default: 200, min: 1, max: 60_000 }
}

function fail (name: string, why: string): PerfWatchError {
  return new PerfWatchError('ERR_INVALID_OPTION', `createPerfWatch: options.${name} ${why}`, { field: name })
}

function fraction (v: unknown, name: string, def: number, lo: number, hi: number): number {
  if (v === undefined) return def
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) throw fail(name, `must be a number in ${lo}..${hi}, got ${String(v)}`)
  return v
}

export function resolvePerfWatchOptions (given: Partial<PerfWatchOptions> | undefined): PerfWatchOptions {
  const g = (given ?? {}) as Record<string, unknown>
  const ints = resolveInts(INTS, {
    intervalMs: g.intervalMs, maxPeers: g.maxPeers, maxEvents: g.maxEvents, maxPendingPings: g.maxPendingPings, loopP99Ms: g.loopP99Ms
  }, fail)
  return {
    ...ints,
    poolSaturation: fraction(g.poolSaturation, 'poolSaturation', 0.9, 0.01, 1),
    maxRssBytes: fraction(g.maxRssBytes, 'maxRssBytes', Math.floor(totalmem() * 0.8), 1024 * 1024, 2 ** 53),
    maxHeapShare: fraction(g.maxHeapShare, 'maxHeapShare', 0.85, 0.01, 1),
    rttAlpha: fraction(g.rttAlpha, 'rttAlpha', 0.3, 0.01, 1)
  }
}
