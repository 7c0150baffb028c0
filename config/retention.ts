/**
 * How long a node keeps ended jobs (`--job-retention`, VOIKE_JOB_RETENTION): an age and/or a
 * count, comma-separated in any order, or `off`.
 *
 *   7d,10000   ended jobs older than 7 days go, and beyond the newest 10000 (the default)
 *   24h        by age only;  500  by count only;  off  never
 *
 * An age is an integer with a unit: s, m, h or d (1s to 3650d). A count is a plain integer
 * (1 to 100,000,000): the ended jobs kept in the store.
 */
import { ConfigError } from './errors.js'

export interface JobRetention {
  /** Ended jobs older than this (since they ended) are pruned; null = no age limit. */
  maxAgeMs: number | null
  /** At most this many ended jobs are kept (the newest); null = no count limit. */
  maxCount: number | null
}

export const DEFAULT_JOB_RETENTION: Readonly<JobRetention> = { maxAgeMs: 7 * 86_400_000, maxCount: 10_000 }

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const
const MIN_AGE_MS = 1000
const MAX_AGE_MS = 3650 * 86_400_000
const MAX_COUNT = 100_000_000
const SYNTAX = 'expected AGE,COUNT such as 7d,10000 (either may be left out), or off'

export function parseJobRetention (value: string, source: string): JobRetention {
  const text = value.trim()
  if (text === '') throw new ConfigError(source, `empty: ${SYNTAX}`)
  if (text === 'off' || text === 'none') return { maxAgeMs: null, maxCount: null }
  const parts = text.split(',').map(p => p.trim())
  if (parts.includes('')) throw new ConfigError(source, `${JSON.stringify(value)} has an empty part; ${SYNTAX}`)
  if (parts.length > 2) throw new ConfigError(source, `${JSON.stringify(value)}: at most an age and a count; ${SYNTAX}`)
  const out: JobRetention = { maxAgeMs: null, maxCount: null }
  for (const part of parts) {
    if (part === '') throw new ConfigError(source, `${JSON.stringify(value)} has an empty part; ${SYNTAX}`)
    const age = /^(\d{1,10})([smhd])$/.exec(part)
    if (age !== null) {
      if (out.maxAgeMs !== null) throw new ConfigError(source, `${JSON.stringify(value)} gives two ages; ${SYNTAX}`)
      const ms = Number(age[1]) * UNIT_MS[age[2] as keyof typeof UNIT_MS]
      if (ms < MIN_AGE_MS || ms > MAX_AGE_MS) throw new ConfigError(source, `age ${part} is out of range 1s-3650d`)
      out.maxAgeMs = ms
    } else if (/^\d{1,10}$/.test(part)) {
      if (out.maxCount !== null) throw new ConfigError(source, `${JSON.stringify(value)} gives two counts; ${SYNTAX}`)
      const n = Number(part)
      if (n < 1 || n > MAX_COUNT) throw new ConfigError(source, `count ${n} is out of range 1-${MAX_COUNT}`)
      out.maxCount = n
    } else {
      throw new ConfigError(source, `${JSON.stringify(part)} is neither an age (a number with s, m, h or d) nor a count; ${SYNTAX}`)
    }
  }
  return out
}

/** The canonical text of a retention (largest exact unit), e.g. for logs and docs. */
export function formatJobRetention (r: JobRetention): string {
  const parts: string[] = []
  if (r.maxAgeMs !== null) {
    const unit = (['d', 'h', 'm', 's'] as const).find(u => r.maxAgeMs! % UNIT_MS[u] === 0) ?? 's'
    parts.push(`${Math.round(r.maxAgeMs / UNIT_MS[unit])}${unit}`)
  }
  if (r.maxCount !== null) parts.push(String(r.maxCount))
  return parts.length === 0 ? 'off' : parts.join(',')
}
