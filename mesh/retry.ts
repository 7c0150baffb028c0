/**
 * Trying a list of targets (seeds) round after round with backoff, until one answers.
 *
 * Why jitter: nodes started together (a grid's `up`, a restarted rack) retry together; a seed
 * that refused them for a moment would see them all again at the same instant. A delay drawn
 * uniformly from the upper half of an exponentially growing cap ("equal jitter") spreads them
 * out and still always waits.
 */
import { MeshError } from './errors.js'

export interface BackoffOptions {
  /** Cap of the first delay. */
  initialDelayMs: number
  /** Largest cap, reached after a few doublings. */
  maxDelayMs: number
  /** Uniform in [0, 1); injectable so tests are deterministic. Default Math.random. */
  random?: () => number
}

/** Delay before retry round `round` (0-based): uniform in [cap/2, cap], cap = min(max, initial·2^round). */
export function backoffDelayMs (round: number, options: BackoffOptions): number {
  if (!Number.isInteger(round) || round < 0) throw new MeshError('ERR_INVALID_OPTION', `round must be a non-negative integer, got ${round}`)
  const cap = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** Math.min(round, 30))
  const r = (options.random ?? Math.random)()
  // Half the cap at least: full jitter (0 to cap) may retry at once, which a seed under a flood
  // can do without; half the cap is spread enough for nodes started together.
  return Math.round(cap / 2 + r * cap / 2)
}

export interface RetryEachOptions extends BackoffOptions {
  /** Give up after this long in all. */
  timeoutMs: number
  /** Rounds at most (every target once per round). Default unbounded (the timeout bounds it). */
  maxRounds?: number
  signal?: AbortSignal
  /** Called after each failed attempt, e.g. to log it. */
  onFailure?: (target: string, err: unknown, round: number) => void
}

/**
 * Calls `attempt(target, signal)` for each target in order, round after round with a backoff
 * between rounds, until one resolves; resolves with that target and value. The signal given to
 * `attempt` aborts at the overall deadline (or when `options.signal` aborts), so no attempt
 * outlives it. Rejects with MeshError ERR_RETRIES_EXHAUSTED naming every target's last error.
 */
export async function retryEach<T> (targets: readonly string[], attempt: (target: string, signal: AbortSignal) => Promise<T>, options: RetryEachOptions): Promise<{ target: string, value: T }> {
  validate(targets, options)
  // A timer of our own, not AbortSignal.timeout: that one does not keep the process alive, so a
  // caller with nothing else pending would exit while waiting for its join.
  const deadline = new AbortController()
  const timer = setTimeout(() => { deadline.abort(new MeshError('ERR_TIMEOUT', `retry deadline of ${options.timeoutMs} ms passed`)) }, options.timeoutMs)
  const signal = options.signal !== undefined ? AbortSignal.any([options.signal, deadline.signal]) : deadline.signal
  try {
    return await rounds(targets, attempt, options, signal)
  } finally {
    clearTimeout(timer)
  }
}

async function rounds<T> (targets: readonly string[], attempt: (target: string, signal: AbortSignal) => Promise<T>, options: RetryEachOptions, signal: AbortSignal): Promise<{ target: string, value: T }> {
  const lastErrors = new Map<string, unknown>()
  const maxRounds = options.maxRounds ?? Number.POSITIVE_INFINITY
  let lastError: unknown
  let round = 0
  for (; round < maxRounds && !signal.aborted; round++) {
    for (const target of targets) {
      if (signal.aborted) break
      try {
        return { target, value: await attempt(target, signal) }
      } catch (err) {
        lastErrors.set(target, err)
        lastError = err
        options.onFailure?.(target, err, round)
      }
    }
    if (round + 1 < maxRounds) await sleep(backoffDelayMs(round, options), signal)
  }
  if (options.signal?.aborted === true) throw new MeshError('ERR_ABORTED', 'retry aborted', { cause: options.signal.reason })
  const detail = targets.map(t => `${t}: ${describe(lastErrors.get(t))}`).join('; ')
  const why = signal.aborted ? `within ${options.timeoutMs} ms` : `in ${round} rounds`
  throw new MeshError('ERR_RETRIES_EXHAUSTED', `no target answered ${why} (${detail})`, { cause: lastError })
}

function describe (err: unknown): string {
  if (err === undefined) return 'not tried'
  return err instanceof Error ? err.message : String(err)
}

function validate (targets: readonly string[], o: RetryEachOptions): void {
  if (targets.length === 0) throw new MeshError('ERR_INVALID_OPTION', 'targets must not be empty')
  for (const [name, value] of [['timeoutMs', o.timeoutMs], ['initialDelayMs', o.initialDelayMs], ['maxDelayMs', o.maxDelayMs]] as const) {
    if (!Number.isInteger(value) || value <= 0) throw new MeshError('ERR_INVALID_OPTION', `${name} must be a positive integer, got ${value}`)
  }
  if (o.maxDelayMs < o.initialDelayMs) throw new MeshError('ERR_INVALID_OPTION', `maxDelayMs (${o.maxDelayMs}) must be at least initialDelayMs (${o.initialDelayMs})`)
  if (o.maxRounds !== undefined && (!Number.isInteger(o.maxRounds) || o.maxRounds <= 0)) throw new MeshError('ERR_INVALID_OPTION', `maxRounds must be a positive integer, got ${o.maxRounds}`)
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return
  await new Promise<void>(resolve => {
    const done = (): void => { clearTimeout(timer); signal.removeEventListener('abort', done); resolve() }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}
