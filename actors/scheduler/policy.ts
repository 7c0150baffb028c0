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
  /** The segment is done with this value. */
  | { readonly action: 'accept', readonly value: unknown }
  /** Keep the answer and run the segment again on another peer (it counts as an attempt). */
  | { readonly action: 'rerun' }
  /** The answers disagree beyond repair: the job fails with this reason. */
  | { readonly action: 'reject', readonly reason: string }

export interface ResultPolicy {
  readonly name: string
  decide: (ctx: AnswerContext) => Decision
}

/** Today's policy: the first valid answer wins (results are deterministic and workers trusted). */
export const firstValidWins: ResultPolicy = {
  name: 'first-valid-wins',
  decide: (ctx) => ({ action: 'accept', value: ctx.answer.value })
}
