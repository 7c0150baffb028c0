/**
 * Job kinds: the plug-in seam of the grid. A job kind turns validated parameters into segments
 * (each described by a descriptor the kind owns, each one worker task) and folds the segments'
 * values into the job's result. Kinds live in `actors/kinds/<name>/` with their worker side
 * (task.ts) beside them; the composition root (node/node.ts) registers both, and checks at start
 * that every task kind a job kind dispatches is registered with the workers (checkTaskKinds).
 *
 * The scheduler, the store and the views never look inside a descriptor: the store keeps it as
 * JSON, the views show what `describe` returns.
 */
import { GridError } from './api.js'
import { FATAL_TASK_CODES } from './limits.js'

/** What every method of a kind learns about the job. */
export interface JobContext<P> {
  /** The normalized parameters (what validate returned). */
  readonly params: P
  /** Number of segments of the job. */
  readonly segments: number
}

/** ... and about one segment. */
export interface SegmentContext<P, D> extends JobContext<P> {
  readonly index: number
  readonly descriptor: D
  /** The segment with the highest index (fib's carries F(n)). */
  readonly isLast: boolean
}

export interface JobKind<P = unknown, D = unknown> {
  /** The name users submit (`fib`); 1..64 characters `[a-z0-9_-]`. */
  readonly name: string
  /** The worker task kinds `task` may return; each must be registered with the workers. */
  readonly taskKinds: readonly string[]
  /**
   * Name of the actor on each member that runs this kind's tasks; default the scheduler's
   * `targetActor` option (`worker`).
   */
  readonly target?: string
  /**
   * True when a segment's value depends only on its descriptor and the job's parameters (not on
   * where or when it ran): a result policy may then compare two runs of one segment with `equal`.
   */
  readonly deterministic: boolean
  /**
   * Checks the user's parameters; returns them normalized (plain JSON, what is stored and what
   * the other methods get). Throws GridError ERR_INVALID_ARGUMENT naming the field.
   */
  validate: (params: unknown) => P
  /**
   * Optional: the parameter names the kind takes. When given, a parameter object with any other
   * key is rejected before `validate`, naming that key (a typo such as `segmnets` is an error, not
   * silently dropped). Kinds without it must reject unknown keys in `validate` themselves.
   */
  readonly params?: readonly string[]
  /** The segments' descriptors, in order (plain JSON); at least one, at most MAX_SEGMENTS_PER_JOB. */
  split: (params: P) => D[]
  /** Checks a descriptor read back from the store (resume, takeover); throws when unusable. */
  checkDescriptor: (raw: unknown) => D
  /**
   * The fields a user sees for a segment, put between its `index` and its `status` in the job's
   * JSON (fib: `{ start, end }`, as the contract prints them).
   */
  describe: (descriptor: D) => Record<string, unknown>
  /** A short text naming the segment in error messages (fib: `[start, end)`). */
  label: (descriptor: D) => string
  /** The worker task of a segment (the worker's task kind, one of taskKinds, and its payload). */
  task: (seg: SegmentContext<P, D>) => { kind: string, payload: unknown }
  /**
   * Checks a segment's value as it came back from a worker (it crossed the wire) and returns the
   * clean copy to keep and persist; throws (any error, its message is kept) when it is unusable.
   */
  checkValue: (seg: SegmentContext<P, D>, value: unknown) => unknown
  /** The job's result from every segment's (checked) value, in index order. */
  combine: (job: JobContext<P>, values: unknown[]) => unknown
  /**
   * Optional: about how long one thread needs for the segment, in ms. A segment's timeout is
   * then `max(limits.segmentTimeoutMs, ESTIMATE_TIMEOUT_FACTOR × estimate)`, capped by
   * `limits.maxSegmentTimeoutMs`, so a valid but huge segment is not timed out (and retried)
   * forever. Should err on the high side; a throw or a value that is not a finite number ≥ 0
   * means "no estimate".
   */
  estimateMs?: (seg: SegmentContext<P, D>) => number
  /** Optional: whether two checked values of one segment agree (default: same JSON). */
  equal?: (a: unknown, b: unknown) => boolean
  /**
   * Optional: true for a task error code that any node would hit again (a deterministic
   * program's runtime error): the job then fails at once instead of retrying the segment.
   */
  isFatalError?: (code: string) => boolean
}

/**
 * Why a failed task ends its job at once, or undefined when another attempt may succeed: the
 * wording goes into the job's error, so a user sees the failure was not a lost node.
 */
export function fatalReason (kind: JobKind<any, any>, code: string): string | undefined {
  if (FATAL_TASK_CODES.has(code)) return 'failed'
  let fatal = false
  try { fatal = kind.isFatalError?.(code) === true } catch { fatal = false }
  return fatal ? 'failed with a deterministic error (not retried: every node would fail the same way)' : undefined
}

/** A segment's timeout allows this many times its estimated cost (slower machines, shared cores). */
export const ESTIMATE_TIMEOUT_FACTOR = 10

/**
 * The timeout of one segment: `baseMs` (limits.segmentTimeoutMs), raised to
 * ESTIMATE_TIMEOUT_FACTOR × the kind's estimate but never above `capMs` (limits.maxSegmentTimeoutMs;
 * a cap below `baseMs` leaves `baseMs`). An integer number of ms.
 */
export function segmentTimeoutMs (kind: JobKind<any, any>, seg: SegmentContext<unknown, unknown>, baseMs: number, capMs: number): number {
  if (typeof kind.estimateMs !== 'function') return baseMs
  let estimate: number
  try {
    estimate = kind.estimateMs(seg)
  } catch {
    return baseMs
  }
  if (typeof estimate !== 'number' || !Number.isFinite(estimate) || estimate < 0) return baseMs
  return Math.max(baseMs, Math.min(capMs, Math.ceil(estimate * ESTIMATE_TIMEOUT_FACTOR)))
}

/** Whether two values of one segment agree: the kind's `equal`, else equal JSON. */
export function valuesEqual (kind: JobKind<any, any>, a: unknown, b: unknown): boolean {
  if (typeof kind.equal === 'function') return kind.equal(a, b)
  return JSON.stringify(a) === JSON.stringify(b)
}

const KIND_NAME_RE = /^[a-z0-9_-]{1,64}$/
const METHODS = ['validate', 'split', 'checkDescriptor', 'describe', 'label', 'task', 'checkValue', 'combine'] as const

export type KindRegistry = ReadonlyMap<string, JobKind<any, any>>

/** Builds the registry; throws TypeError on a malformed kind or a repeated name. */
export function createKindRegistry (kinds: ReadonlyArray<JobKind<any, any>>): KindRegistry {
  if (!Array.isArray(kinds) || kinds.length === 0) throw new TypeError('job kinds: a non-empty array is needed')
  const map = new Map<string, JobKind<any, any>>()
  for (const k of kinds) {
    if (typeof k !== 'object' || k === null || typeof k.name !== 'string' || !KIND_NAME_RE.test(k.name)) {
      throw new TypeError('job kinds: each kind needs a name matching [a-z0-9_-]{1,64}')
    }
    for (const fn of METHODS) {
      if (typeof k[fn] !== 'function') throw new TypeError(`job kind ${k.name}: ${fn} must be a function`)
    }
    for (const fn of ['estimateMs', 'equal', 'isFatalError'] as const) {
      if (k[fn] !== undefined && typeof k[fn] !== 'function') throw new TypeError(`job kind ${k.name}: ${fn} must be a function when given`)
    }
    if (!Array.isArray(k.taskKinds) || k.taskKinds.length === 0 || !k.taskKinds.every((t: unknown) => typeof t === 'string')) {
      throw new TypeError(`job kind ${k.name}: taskKinds must be a non-empty array of task kind names`)
    }
    if (typeof k.deterministic !== 'boolean') throw new TypeError(`job kind ${k.name}: deterministic must be a boolean`)
    if (k.target !== undefined && (typeof k.target !== 'string' || k.target.length === 0)) throw new TypeError(`job kind ${k.name}: target must be an actor name when given`)
    if (map.has(k.name)) throw new TypeError(`job kinds: ${k.name} is registered twice`)
    map.set(k.name, k)
  }
  return map
}

/**
 * The startup check that both sides of every kind are registered: each task kind a job kind
 * dispatches must be one the workers run (`taskKinds`, the pool's names). Throws TypeError
 * naming every one missing; a node must not start and fail each such job at its first segment.
 */
export function checkTaskKinds (kinds: ReadonlyArray<JobKind<any, any>>, taskKinds: Iterable<string>): void {
  const known = new Set(taskKinds)
  const missing: string[] = []
  for (const k of kinds) for (const t of k.taskKinds) if (!known.has(t)) missing.push(`${k.name} → ${t}`)
  if (missing.length > 0) {
    throw new TypeError(`job kinds dispatch task kinds the workers do not run: ${missing.join(', ')} (known: ${[...known].join(', ') || 'none'})`)
  }
}

/**
 * The kind a user asked for: a non-string → ERR_INVALID_ARGUMENT, an unknown name →
 * ERR_UNKNOWN_KIND, both with field `kind`.
 */
export function resolveKind (registry: KindRegistry, kind: unknown): JobKind<any, any> {
  if (typeof kind !== 'string' || kind.length === 0) {
    throw new GridError('ERR_INVALID_ARGUMENT', 'kind: must be a non-empty string', 'kind')
  }
  const k = registry.get(kind)
  if (k === undefined) {
    const known = [...registry.keys()].join(', ')
    throw new GridError('ERR_UNKNOWN_KIND', `kind: unknown job kind ${JSON.stringify(kind.slice(0, 64))} (known: ${known})`, 'kind')
  }
  return k
}

/** Keys of a parameter object checked against `kind.params` (at most this many looked at). */
const MAX_PARAM_KEYS_CHECKED = 1024

/**
 * Rejects a parameter the kind does not take (ERR_INVALID_ARGUMENT naming it), when the kind
 * lists its parameters (`JobKind.params`). Anything but a plain object is left to `validate`.
 */
export function checkParamNames (kind: JobKind<any, any>, params: unknown): void {
  if (kind.params === undefined || typeof params !== 'object' || params === null || Array.isArray(params)) return
  let seen = 0
  for (const key in params) {
    if (!Object.hasOwn(params, key)) continue
    if (!kind.params.includes(key)) {
      const name = key.length > 64 ? key.slice(0, 64) + '…' : key
      throw new GridError('ERR_INVALID_ARGUMENT', `${name}: unknown parameter of ${kind.name} jobs (they take ${kind.params.join(', ')})`, name)
    }
    if (++seen >= MAX_PARAM_KEYS_CHECKED) return
  }
}
