/**
 * Supervision policy: when an actor crashes, decide whether to restart it (and after which
 * backoff) or give up. Pure bookkeeping, no timers: the system owns the timers and the instances.
 */
import { ActorError, ActorErrorCodes } from './errors.js'

export interface SupervisionOptions {
  /** Crashes tolerated within `windowMs`; one more gives up. Default 5. Range 0..1000. */
  maxRestarts?: number
  /** Sliding window over which crashes are counted, in ms. Default 60000. Range 1..86400000. */
  windowMs?: number
  /** Backoff before the first restart in a window, in ms; doubles per crash. Default 50. */
  minBackoffMs?: number
  /** Ceiling of the backoff, in ms. Default 5000. At most 600000 and ≥ minBackoffMs. */
  maxBackoffMs?: number
}

export interface SupervisionPolicy {
  readonly maxRestarts: number
  readonly windowMs: number
  readonly minBackoffMs: number
  readonly maxBackoffMs: number
}

export const DEFAULT_SUPERVISION: SupervisionPolicy = Object.freeze({
  maxRestarts: 5,
  windowMs: 60_000,
  minBackoffMs: 50,
  maxBackoffMs: 5_000
})

const MAX_RESTARTS_LIMIT = 1000
const MAX_WINDOW_MS = 86_400_000
const MAX_BACKOFF_LIMIT_MS = 600_000

function intInRange (field: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ActorError(ActorErrorCodes.INVALID_OPTION, `supervision.${field} must be an integer in ${min}..${max}, got ${String(value)}`)
  }
  return value
}

/** Validates supervision options and fills in defaults. */
export function resolveSupervision (options: SupervisionOptions | undefined): SupervisionPolicy {
  if (options === undefined) return DEFAULT_SUPERVISION
  if (typeof options !== 'object' || options === null) {
    throw new ActorError(ActorErrorCodes.INVALID_OPTION, 'supervision must be an object')
  }
  const d = DEFAULT_SUPERVISION
  const policy = {
    maxRestarts: intInRange('maxRestarts', options.maxRestarts, d.maxRestarts, 0, MAX_RESTARTS_LIMIT),
    windowMs: intInRange('windowMs', options.windowMs, d.windowMs, 1, MAX_WINDOW_MS),
    minBackoffMs: intInRange('minBackoffMs', options.minBackoffMs, d.minBackoffMs, 0, MAX_BACKOFF_LIMIT_MS),
    maxBackoffMs: intInRange('maxBackoffMs', options.maxBackoffMs, d.maxBackoffMs, 0, MAX_BACKOFF_LIMIT_MS)
  }
  if (policy.minBackoffMs > policy.maxBackoffMs) {
    // Only complain when the caller set both; otherwise clamp the default to what they gave.
    if (options.minBackoffMs !== undefined && options.maxBackoffMs !== undefined) {
      throw new ActorError(ActorErrorCodes.INVALID_OPTION, `supervision.minBackoffMs (${policy.minBackoffMs}) must be ≤ maxBackoffMs (${policy.maxBackoffMs})`)
    }
    if (options.minBackoffMs === undefined) policy.minBackoffMs = policy.maxBackoffMs
    else policy.maxBackoffMs = policy.minBackoffMs
  }
  return Object.freeze(policy)
}

export type CrashDecision =
  | { readonly giveUp: true, readonly crashesInWindow: number }
  | { readonly giveUp: false, readonly crashesInWindow: number, readonly backoffMs: number }

/**
 * Counts crashes in a sliding window. Holds at most maxRestarts + 1 timestamps: once that many
 * fall within the window the actor is given up, so older ones never matter.
 */
export class RestartTracker {
  private readonly crashes: number[] = []
  constructor (readonly policy: SupervisionPolicy) {}

  /** Records a crash at `nowMs` (a monotonic clock) and decides what to do. */
  recordCrash (nowMs: number): CrashDecision {
    const { maxRestarts, windowMs, minBackoffMs, maxBackoffMs } = this.policy
    const crashes = this.crashes
    crashes.push(nowMs)
    while (crashes.length > 0 && crashes[0] <= nowMs - windowMs) crashes.shift()
    if (crashes.length > maxRestarts + 1) crashes.shift()
    const n = crashes.length
    if (n > maxRestarts) return { giveUp: true, crashesInWindow: n }
    // Exponential: min, 2·min, 4·min, ... capped; the exponent is capped too so it never overflows.
    const backoffMs = Math.min(maxBackoffMs, minBackoffMs * 2 ** Math.min(n - 1, 30))
    return { giveUp: false, crashesInWindow: n, backoffMs }
  }
}
