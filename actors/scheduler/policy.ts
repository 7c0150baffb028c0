/**
 * Result acceptance: what the scheduler does with a valid answer for a segment that is not done
 * yet. A policy object is given to createScheduler; today's (firstValidWins) takes the first valid
 * answer. A trust policy (spot checks) can ask for more runs of a segment before accepting, and
 * compare them with the kind's `equal` (kinds.ts valuesEqual).
 */
import type { JobKind } from './kinds.js'

/** One valid answer of a segment: who gave it and the checked value. */
export interface Answer {
  readonly peer: string
  readonly value: unknown
}

export interface AnswerContext {
  readonly kind: JobKind<any, any>
  readonly jobId: string
  readonly index: number
  /** The answer that just came in. */
  readonly answer: Answer
  /** Valid answers kept earlier for this segment (by 'rerun' decisions), oldest first. */
  readonly earlier: readonly Answer[]
}

export type Decision =
  /**
   * The segment is done with this value. `checked`: it was compared with another run (default
   * false: accepted on the word of the peer that gave it, see verification.ts). `peer`: the node
   * the segment is credited to (default the one that just answered; a check credits the first run).
   */
  | { readonly action: 'accept', readonly value: unknown, readonly checked?: boolean, readonly peer?: string }
  /**
   * Keep the answer and run the segment again on another peer (it counts as an attempt). The run
   * never goes to a peer in `exclude`, and with `trustedOnly` only to one the policy's
   * `isTrustedRunner` accepts (it waits until such a peer has a free credit).
   */
  | { readonly action: 'rerun', readonly exclude?: readonly string[], readonly trustedOnly?: boolean }
  /** The answers disagree beyond repair: the job fails with this reason. */
  | { readonly action: 'reject', readonly reason: string }

export interface ResultPolicy {
  readonly name: string
  decide: (ctx: AnswerContext) => Decision
  /** Peers trusted to settle a disagreement (`rerun` with `trustedOnly`); default: every peer. */
  isTrustedRunner?: (peerId: string) => boolean
  /**
   * Subscribes to peers caught returning a wrong result: the scheduler then runs again what they
   * alone vouched for and marks finished jobs (verification.ts). Returns the unsubscribe.
   */
  onCaught?: (listener: (peerId: string) => void) => () => void
}

/** Today's policy: the first valid answer wins (results are deterministic and workers trusted). */
export const firstValidWins: ResultPolicy = {
  name: 'first-valid-wins',
  decide: (ctx) => ({ action: 'accept', value: ctx.answer.value })
}

/**
 * The hard placement rule of a `rerun` decision (state.ts `placeOn`): never a peer in `exclude`,
 * and with `trustedOnly` only a peer the policy's `isTrustedRunner` accepts. Null: anywhere.
 */
export function placementRule (d: Extract<Decision, { action: 'rerun' }>, policy: ResultPolicy): ((peerId: string) => boolean) | null {
  const exclude = new Set(d.exclude ?? [])
  const trusted = d.trustedOnly === true ? policy.isTrustedRunner : undefined
  if (exclude.size === 0 && trusted === undefined) return null
  return (peerId) => !exclude.has(peerId) && (trusted === undefined || trusted(peerId))
}
