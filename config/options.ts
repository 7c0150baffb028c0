/**
 * The one validator of numeric options, driven by a table: each option has its default and its
 * inclusive range, written once next to its documentation. Components pass how to build their
 * error (their error class, the name of the factory) so messages stay theirs, e.g.
 * `createScheduler: limits.maxAttempts must be an integer in 1..100, got 0`.
 */
export interface IntRange {
  readonly default: number
  readonly min: number
  readonly max: number
}

export type IntTable<K extends string> = { readonly [P in K]: IntRange }

/** Builds the error for an option `name` that is wrong because of `why`. */
export type OptionError = (name: string, why: string) => Error

/** One integer option: undefined → its default; else an integer in [min, max] or `fail`. */
export function intOption (value: unknown, name: string, range: IntRange, fail: OptionError): number {
  if (value === undefined) return range.default
  if (typeof value !== 'number' || !Number.isInteger(value) || value < range.min || value > range.max) {
    throw fail(name, `must be an integer in ${range.min}..${range.max}, got ${String(value)}`)
  }
  return value
}

/**
 * Every option of `table` from `given` (an object or undefined). With `strict`, a key of `given`
 * that the table does not know is an error too (a misspelt limit must not be silently ignored).
 * `prefix` is put before each name in errors (`limits.`).
 */
export function resolveInts<K extends string> (
  table: IntTable<K>, given: unknown, fail: OptionError, opts: { strict?: boolean, prefix?: string } = {}
): { [P in K]: number } {
  const prefix = opts.prefix ?? ''
  if (given !== undefined && (typeof given !== 'object' || given === null)) throw fail(prefix === '' ? 'options' : prefix.replace(/\.$/, ''), 'must be an object')
  const g = (given ?? {}) as Record<string, unknown>
  if (opts.strict === true) {
    for (const key of Object.keys(g)) {
      if (!Object.prototype.hasOwnProperty.call(table, key)) throw fail(`${prefix}${key}`, 'is not a known option')
    }
  }
  const out = {} as { [P in K]: number }
  for (const key of Object.keys(table) as K[]) out[key] = intOption(g[key], `${prefix}${key}`, table[key], fail)
  return out
}
