/**
 * The registry of job kinds. A job kind turns validated parameters into segments (contiguous
 * ranges, each one worker task) and folds the segments' values into the job's result. To add a
 * kind: implement JobKind (see fib-kind.ts) and pass it in `kinds` to createScheduler, or add it to
 * DEFAULT_JOB_KINDS.
 */
import { GridError } from './api.js'
import { fibKind } from '../kinds/fib/job.js'

export interface SegmentSpan {
  start: number
  end: number
}

export interface JobKind<P = unknown> {
  /** The name users submit (`fib`); 1..64 characters `[a-z0-9_-]`. */
  readonly name: string
  /**
   * Checks the user's parameters; returns them normalized (plain JSON, what is stored and what
   * the other methods get). Throws GridError ERR_INVALID_ARGUMENT naming the field.
   */
  validate: (params: unknown) => P
  /** The segments, in order; at least one, at most MAX_SEGMENTS_PER_JOB (store limit). */
  split: (params: P) => SegmentSpan[]
  /** The worker task of segment `index` (the worker's task kind and its payload). */
  task: (params: P, span: SegmentSpan, index: number, isLast: boolean) => { kind: string, payload: unknown }
  /**
   * Checks a segment's value as it came back from a worker (it crossed the wire) and returns the
   * clean copy to keep and persist; throws (any error, its message is kept) when it is unusable.
   */
  checkValue: (params: P, span: SegmentSpan, index: number, isLast: boolean, value: unknown) => unknown
  /** The job's result from every segment's (checked) value, in index order. */
  combine: (params: P, values: unknown[]) => unknown
  /**
   * Optional: about how long one thread needs for the segment, in ms. A segment's timeout is
   * then `max(limits.segmentTimeoutMs, ESTIMATE_TIMEOUT_FACTOR × estimate)`, capped by
   * `limits.maxSegmentTimeoutMs`, so a valid but huge segment is not timed out (and retried)
   * forever. Should err on the high side; a throw or a value that is not a finite number ≥ 0
   * means "no estimate".
   */
  estimateMs?: (params: P, span: SegmentSpan) => number
}

/** A segment's timeout allows this many times its estimated cost (slower machines, shared cores). */
export const ESTIMATE_TIMEOUT_FACTOR = 10

/**
 * The timeout of one segment: `baseMs` (limits.segmentTimeoutMs), raised to
 * ESTIMATE_TIMEOUT_FACTOR × the kind's estimate but never above `capMs` (limits.maxSegmentTimeoutMs;
 * a cap below `baseMs` leaves `baseMs`). An integer number of ms.
 */
export function segmentTimeoutMs (kind: JobKind<any>, params: unknown, span: SegmentSpan, baseMs: number, capMs: number): number {
  if (typeof kind.estimateMs !== 'function') return baseMs
  let estimate: number
  try {
    estimate = kind.estimateMs(params, span)
  } catch {
    return baseMs
  }
  if (typeof estimate !== 'number' || !Number.isFinite(estimate) || estimate < 0) return baseMs
  return Math.max(baseMs, Math.min(capMs, Math.ceil(estimate * ESTIMATE_TIMEOUT_FACTOR)))
}

/** Kinds known when createScheduler is given none. */
export const DEFAULT_JOB_KINDS: ReadonlyArray<JobKind<any>> = [fibKind]

const KIND_NAME_RE = /^[a-z0-9_-]{1,64}$/

export type KindRegistry = ReadonlyMap<string, JobKind<any>>

/** Builds the registry; throws TypeError on a malformed kind or a repeated name. */
export function createKindRegistry (kinds: ReadonlyArray<JobKind<any>> = DEFAULT_JOB_KINDS): KindRegistry {
  if (!Array.isArray(kinds) || kinds.length === 0) throw new TypeError('job kinds: a non-empty array is needed')
  const map = new Map<string, JobKind<any>>()
  for (const k of kinds) {
    if (typeof k !== 'object' || k === null || typeof k.name !== 'string' || !KIND_NAME_RE.test(k.name)) {
      throw new TypeError('job kinds: each kind needs a name matching [a-z0-9_-]{1,64}')
    }
    for (const fn of ['validate', 'split', 'task', 'checkValue', 'combine'] as const) {
      if (typeof k[fn] !== 'function') throw new TypeError(`job kind ${k.name}: ${fn} must be a function`)
    }
    if (k.estimateMs !== undefined && typeof k.estimateMs !== 'function') throw new TypeError(`job kind ${k.name}: estimateMs must be a function when given`)
    if (map.has(k.name)) throw new TypeError(`job kinds: ${k.name} is registered twice`)
    map.set(k.name, k)
  }
  return map
}

/**
 * The kind a user asked for: a non-string → ERR_INVALID_ARGUMENT, an unknown name →
 * ERR_UNKNOWN_KIND, both with field `kind`.
 */
export function resolveKind (registry: KindRegistry, kind: unknown): JobKind<any> {
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
