/**
 * Chaos settings (issue 11 item 7), from the environment only: off by default, validated here
 * (a bad value is a ConfigError naming the variable, so the CLI exits 2), seeded per node so a
 * run can be repeated.
 *
 * - VOIKE_CHAOS_CORRUPT_RESULTS=<fraction 0..1>: the worker corrupts that share of its results
 *   before sending them, keeping them well-formed (the coordinator's checks still accept them);
 * - VOIKE_CHAOS_DROP=<fraction 0..1>: outgoing actor frames dropped;
 * - VOIKE_CHAOS_DELAY_MS=<max ms, 0..60000>: outgoing actor frames delayed by a uniform 0..max
 *   (order per peer kept);
 * - VOIKE_CHAOS_CORRUPT_AFTER=<results, 0..10^9>: the first that many successful results are sent
 *   honest, corruption starts after them (a node that earns trust, then lies; default 0);
 * - VOIKE_CHAOS_SEED=<integer 0..2^32-1>: the random stream's seed; default derived from the
 *   node's name (so every node of a run differs, and the same run repeats).
 */
import { createHash } from 'node:crypto'
import { ConfigError } from './errors.js'

export interface ChaosConfig {
  corruptResults: number
  /** Successful results sent honest before corruption starts. */
  corruptAfter: number
  drop: number
  delayMs: number
  seed: number
}

export const CHAOS_ENV = {
  corruptResults: 'VOIKE_CHAOS_CORRUPT_RESULTS',
  corruptAfter: 'VOIKE_CHAOS_CORRUPT_AFTER',
  drop: 'VOIKE_CHAOS_DROP',
  delayMs: 'VOIKE_CHAOS_DELAY_MS',
  seed: 'VOIKE_CHAOS_SEED'
} as const

export const MAX_CHAOS_DELAY_MS = 60_000

function fraction (env: NodeJS.ProcessEnv, name: string): number {
  const v = env[name]
  if (v === undefined || v.trim() === '') return 0
  const t = v.trim()
  const x = Number(t)
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(t) || !(x >= 0 && x <= 1)) throw new ConfigError(name, `expected a fraction between 0 and 1 (e.g. 0.3), got ${JSON.stringify(v)}`)
  return x
}

function integer (env: NodeJS.ProcessEnv, name: string, max: number): number | undefined {
  const v = env[name]
  if (v === undefined || v.trim() === '') return undefined
  if (!/^\s*\d+\s*$/.test(v) || Number(v) > max) throw new ConfigError(name, `expected an integer 0-${max}, got ${JSON.stringify(v)}`)
  return Number(v)
}

export function parseChaos (env: NodeJS.ProcessEnv, nodeName: string): ChaosConfig {
  const seed = integer(env, CHAOS_ENV.seed, 0xffff_ffff) ?? createHash('sha256').update(nodeName).digest().readUInt32BE(0)
  return {
    corruptResults: fraction(env, CHAOS_ENV.corruptResults),
    corruptAfter: integer(env, CHAOS_ENV.corruptAfter, 1_000_000_000) ?? 0,
    drop: fraction(env, CHAOS_ENV.drop),
    delayMs: integer(env, CHAOS_ENV.delayMs, MAX_CHAOS_DELAY_MS) ?? 0,
    seed
  }
}

export function chaosEnabled (c: ChaosConfig | undefined): c is ChaosConfig {
  return c !== undefined && (c.corruptResults > 0 || c.drop > 0 || c.delayMs > 0)
}
