/**
 * Spot checks: a ResultPolicy (policy.ts) that earns trust in peers the way BOINC's adaptive
 * replication does, for kinds whose results are `deterministic` (kinds.ts).
 *
 * - A peer is *reliable* once it has `trustAfter` consecutive results that another run agreed
 *   with (and the PTA still trusts it). Until then every segment it runs is run again on another
 *   peer; once reliable, a seeded `checkFraction` of its segments still is (the choice is a hash
 *   of seed, job id and segment index: the same segment is sampled on every retry and restart).
 * - This coordinator's own results are reliable and never sampled: a coordinator trusts itself
 *   (it combines and stores the results anyway), and its own run settles a disagreement it takes
 *   part in. A corrupting coordinator is out of scope.
 * - Two runs that agree (the kind's `equal`) accept the value as checked; both peers' streaks
 *   grow. Two that differ are settled by a further run on a reliable peer that gave neither
 *   (`rerun` with `trustedOnly`); a value that two peers, one of them reliable, agree on wins,
 *   and every peer that gave another value is *caught*: `trust.reportMismatch(peer)`, its streak
 *   is reset (it must earn trust again), and the `onCaught` listeners (the scheduler) run again
 *   what it alone vouched for. At most `maxExtraRuns` runs beyond the first; past that the job
 *   fails naming the disagreement (never a guessed value).
 * - A kind that is not deterministic is never compared: its first valid answer is accepted.
 *
 * `decideSpot` is the pure decision (answers, who is reliable, the sample → decision and
 * effects); `createSpotCheck` keeps the per-peer streaks, applies the effects and counts
 * voike_spot_checks_total{status="agree"|"mismatch"|"settled"}. The streaks live in memory: after
 * a restart every peer starts again as new (the conservative side).
 */
import assert from 'node:assert/strict'
import { Counter, type Registry } from 'prom-client'
import { silentLogger, type Logger } from '../../config/logger.js'
import { SchedulerError, SchedulerErrorCode } from './errors.js'
import { valuesEqual } from './kinds.js'
import type { Answer, AnswerContext, Decision, ResultPolicy } from './policy.js'

export interface SpotCheckOptions {
  /** Consecutive agreeing results a peer needs before only a sample of its results is checked. Default 10 (1..10 000). */
  trustAfter: number
  /** Share of a reliable peer's segments run again, 0..1. Default 0.1. */
  checkFraction: number
  /** Runs of one segment beyond the first, at most (the check and the settling runs). Default 3 (2..10). */
  maxExtraRuns: number
  /** Seed of the sampling hash. Default 0. */
  seed: number
  /** Peers whose streaks are kept (the oldest is forgotten, i.e. starts again as new). Default 4096. */
  maxPeers: number
}

export const SPOT_CHECK_DEFAULTS: Readonly<SpotCheckOptions> = Object.freeze({ trustAfter: 10, checkFraction: 0.1, maxExtraRuns: 3, seed: 0, maxPeers: 4096 })

/** What the policy needs of the PTA (actors/trust/trust.ts). */
export interface SpotTrustPort {
  isTrusted: (peerId: string) => boolean
  reportMismatch: (peerId: string) => void
}

export interface SpotCheckDeps {
  /** This coordinator: its own results are reliable. */
  selfId: string
  /** The PTA: a distrusted peer is never reliable, and a caught one is reported. Absent = streaks only. */
  trust?: SpotTrustPort
  /** Registers voike_spot_checks_total here when given. */
  registry?: Registry
  logger?: Logger
  options?: Partial<SpotCheckOptions>
  /** A segment's sample in [0, 1); default spotSample with options.seed. Tests choose which segments are checked. */
  sample?: (jobId: string, index: number) => number
}

export type SpotOutcome = 'agree' | 'mismatch' | 'settled'
export const SPOT_OUTCOMES: readonly SpotOutcome[] = ['agree', 'mismatch', 'settled']

/** The pure decision's input. */
export interface SpotInput {
  readonly deterministic: boolean
  readonly equal: (a: unknown, b: unknown) => boolean
  /** Every valid answer of the segment, oldest first (the new one last). */
  readonly answers: readonly Answer[]
  readonly reliable: (peerId: string) => boolean
  /** This coordinator: its value settles a disagreement at once (it trusts itself). */
  readonly authoritative: (peerId: string) => boolean
  /** The segment's sample in [0, 1): it is checked anyway when below checkFraction. */
  readonly sample: number
  readonly checkFraction: number
  readonly maxExtraRuns: number
}

export interface SpotVerdict {
  readonly decision: Decision
  /** Peers whose result another run confirmed. */
  readonly agreed: readonly string[]
  /** Peers proven wrong (the odd ones out of a settled disagreement). */
  readonly caught: readonly string[]
  /** What to count (voike_spot_checks_total). */
  readonly outcomes: readonly SpotOutcome[]
}

interface Group { value: unknown, peers: string[], reliable: number }

/** The first answer of each peer: a peer answering twice (an earlier dispatch) is one run, not two. */
function distinctRuns (answers: readonly Answer[]): Answer[] {
  const seen = new Set<string>()
  const out: Answer[] = []
  for (const a of answers) {
    if (seen.has(a.peer)) continue
    seen.add(a.peer)
    out.push(a)
  }
  return out
}

function groupsOf (runs: readonly Answer[], equal: SpotInput['equal'], reliable: SpotInput['reliable']): Group[] {
  const groups: Group[] = []
  for (const a of runs) {
    const g = groups.find(x => equal(x.value, a.value))
    const r = reliable(a.peer) ? 1 : 0
    if (g === undefined) groups.push({ value: a.value, peers: [a.peer], reliable: r })
    else { g.peers.push(a.peer); g.reliable += r }
  }
  return groups
}

/**
 * The decision for a segment's answers (pure). See the module comment for the rules; the
 * returned `caught` peers are those to penalize, `agreed` those whose streak grows.
 */
export function decideSpot (input: SpotInput): SpotVerdict {
  const { answers, equal, reliable, authoritative } = input
  assert.ok(answers.length >= 1, 'decideSpot needs the new answer')
  const latest = answers[answers.length - 1]
  if (!input.deterministic) return { decision: { action: 'accept', value: latest.value }, agreed: [], caught: [], outcomes: [] }
  const runs = distinctRuns(answers)
  const peers = runs.map(a => a.peer)
  if (runs.length === 1) {
    const only = runs[0]
    const sampled = input.sample < input.checkFraction && !authoritative(only.peer)
    if (reliable(only.peer) && !sampled) return { decision: { action: 'accept', value: only.value, checked: false }, agreed: [], caught: [], outcomes: [] }
    // New, distrusted, or sampled: another peer runs it too (any other: two independent runs agreeing check both).
    return { decision: { action: 'rerun', exclude: peers }, agreed: [], caught: [], outcomes: [] }
  }
  const groups = groupsOf(runs, equal, reliable)
  if (groups.length === 1) return { decision: { action: 'accept', value: groups[0].value, checked: true, peer: peers[0] }, agreed: peers, caught: [], outcomes: ['agree'] }
  const first: SpotOutcome[] = runs.length === 2 ? ['mismatch'] : []
  // The coordinator's own run settles at once: it trusts itself.
  const own = groups.find(g => g.peers.some(authoritative))
  if (own !== undefined) return settle(own, groups, [...first, 'settled'])
  // The first disagreement of the segment: a reliable peer that gave neither settles it.
  if (runs.length === 2) return { decision: rerunOrReject(runs.length, input.maxExtraRuns, peers), agreed: [], caught: [], outcomes: first }
  // Three runs or more: a value two peers agree on, one of them reliable, wins; the most reliable
  // backing breaks a tie, a tie of that is no verdict (another trusted run, within the bound).
  const candidates = groups.filter(g => g.peers.length >= 2 && g.reliable >= 1)
    .sort((a, b) => b.reliable - a.reliable || b.peers.length - a.peers.length)
  const best = candidates[0]
  const tied = candidates.length > 1 && candidates[1].reliable === best.reliable && candidates[1].peers.length === best.peers.length
  if (best !== undefined && !tied) return settle(best, groups, ['settled'])
  return { decision: rerunOrReject(runs.length, input.maxExtraRuns, peers), agreed: [], caught: [], outcomes: [] }
}

/** `winner`'s value is used; every peer that gave another value is caught. */
function settle (winner: Group, groups: Group[], outcomes: SpotOutcome[]): SpotVerdict {
  const caught = groups.filter(g => g !== winner).flatMap(g => g.peers)
  return { decision: { action: 'accept', value: winner.value, checked: true, peer: winner.peers[0] }, agreed: winner.peers, caught, outcomes }
}

function rerunOrReject (runs: number, maxExtraRuns: number, peers: string[]): Decision {
  if (runs - 1 >= maxExtraRuns) {
    return { action: 'reject', reason: `${runs} runs on ${peers.join(', ')} gave ${runs === 2 ? 'different values' : 'no value that two of them, one trusted, agree on'} (at most ${maxExtraRuns} extra runs)` }
  }
  return { action: 'rerun', exclude: peers, trustedOnly: true }
}

/** The segment's sample in [0, 1): FNV-1a of `seed:jobId:index` (the same on every retry and restart). */
export function spotSample (seed: number, jobId: string, index: number): number {
  let h = 0x811c9dc5
  const text = `${seed}:${jobId}:${index}`
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  // A final avalanche: FNV's low bits alone are weak for short keys.
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b) >>> 0; h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35) >>> 0; h ^= h >>> 16
  return (h >>> 0) / 4294967296
}

function invalid (field: string, why: string): SchedulerError {
  return new SchedulerError(SchedulerErrorCode.INVALID_OPTION, `createSpotCheck: options.${field} ${why}`, { field })
}

export function resolveSpotOptions (given: Partial<SpotCheckOptions> | undefined): SpotCheckOptions {
  const o: SpotCheckOptions = { ...SPOT_CHECK_DEFAULTS, ...(given ?? {}) }
  const int = (name: keyof SpotCheckOptions, lo: number, hi: number): void => {
    const v = o[name]
    if (!Number.isInteger(v) || v < lo || v > hi) throw invalid(name, `must be an integer in ${lo}..${hi}, got ${String(v)}`)
  }
  int('trustAfter', 1, 10_000)
  int('maxExtraRuns', 2, 10)
  int('seed', 0, 0xffff_ffff)
  int('maxPeers', 1, 1_000_000)
  if (typeof o.checkFraction !== 'number' || !(o.checkFraction >= 0 && o.checkFraction <= 1)) throw invalid('checkFraction', `must be a number in 0..1, got ${String(o.checkFraction)}`)
  return o
}

export interface SpotCheck extends ResultPolicy {
  /** True for this node and for peers that earned trust (and the PTA has not distrusted). */
  isReliable: (peerId: string) => boolean
  /** The peer's current run of agreeing results. */
  streak: (peerId: string) => number
  readonly options: Readonly<SpotCheckOptions>
  /** Removes the metric from the registry. */
  close: () => void
}

interface PeerStreak { streak: number, earned: boolean }

export function createSpotCheck (deps: SpotCheckDeps): SpotCheck {
  if (typeof deps?.selfId !== 'string' || deps.selfId === '') throw invalid('selfId', 'must be a peer id')
  const opts = resolveSpotOptions(deps.options)
  const { selfId, trust } = deps
  const log = (deps.logger ?? silentLogger).child({ component: 'spot-check' })
  const peers = new Map<string, PeerStreak>()
  const listeners = new Set<(peerId: string) => void>()
  const sampleOf = deps.sample ?? ((jobId: string, index: number) => spotSample(opts.seed, jobId, index))
  const counter = deps.registry === undefined
    ? undefined
    : new Counter({ name: 'voike_spot_checks_total', help: 'Spot checks of results on this coordinator: two runs agreed, differed, or a trusted run settled a difference', labelNames: ['status'] as const, registers: [deps.registry] })
  // `status`, the one label name for outcomes across the voike_ families.
  for (const status of SPOT_OUTCOMES) counter?.inc({ status }, 0)

  const isReliable = (peerId: string): boolean => {
    if (peerId === selfId) return true
    if (trust !== undefined && !trust.isTrusted(peerId)) return false
    return peers.get(peerId)?.earned === true
  }

  function streakOf (peerId: string): PeerStreak {
    let st = peers.get(peerId)
    if (st === undefined) {
      if (peers.size >= opts.maxPeers) {
        const oldest = peers.keys().next().value
        if (oldest !== undefined) peers.delete(oldest)
      }
      st = { streak: 0, earned: false }
      peers.set(peerId, st)
    }
    return st
  }

  function apply (v: SpotVerdict, ctx: AnswerContext): void {
    for (const status of v.outcomes) counter?.inc({ status })
    for (const p of v.agreed) {
      if (p === selfId) continue
      const st = streakOf(p)
      st.streak++
      if (!st.earned && st.streak >= opts.trustAfter) {
        st.earned = true
        log.info('peer earned trust: its results are now sampled', { peer: p, streak: st.streak, checkFraction: opts.checkFraction })
      }
    }
    for (const p of v.caught) {
      // A coordinator trusts itself: its own wrong result is out of scope (see the module comment).
      if (p === selfId) continue
      const st = streakOf(p)
      st.streak = 0
      st.earned = false
      log.warn('spot check caught a peer returning a wrong result', { peer: p, job: ctx.jobId, segment: ctx.index })
      try { trust?.reportMismatch(p) } catch (err) { log.warn('reportMismatch threw', { err }) }
      for (const l of [...listeners]) {
        try { l(p) } catch (err) { log.error('a caught-peer listener threw', { err }) }
      }
    }
  }

  return {
    name: 'spot-check',
    options: opts,
    decide: (ctx) => {
      const v = decideSpot({
        deterministic: ctx.kind.deterministic,
        equal: (a, b) => valuesEqual(ctx.kind, a, b),
        answers: [...ctx.earlier, ctx.answer],
        reliable: isReliable,
        authoritative: (p) => p === selfId,
        sample: sampleOf(ctx.jobId, ctx.index),
        checkFraction: opts.checkFraction,
        maxExtraRuns: opts.maxExtraRuns
      })
      apply(v, ctx)
      return v.decision
    },
    isTrustedRunner: isReliable,
    isReliable,
    streak: (peerId) => peers.get(peerId)?.streak ?? 0,
    onCaught: (listener) => {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    },
    close: () => { deps.registry?.removeSingleMetric('voike_spot_checks_total') }
  }
}
