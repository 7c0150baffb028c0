/**
 * Spot-check settings (the result policy actors/scheduler/spot-check.ts), from the environment
 * only; a bad value is a ConfigError naming the variable (the CLI exits 2).
 *
 * - VOIKE_SPOT_CHECKS=on|off: whether results are spot-checked at all (default on; off = the
 *   first valid answer wins, and jobs show `verification.status` "unverified");
 * - VOIKE_SPOT_TRUST_AFTER=<1..10000>: consecutive agreeing results before a peer's results are
 *   only sampled (default 10);
 * - VOIKE_SPOT_CHECK_FRACTION=<0..1>: share of a trusted peer's segments run again (default 0.1);
 * - VOIKE_SPOT_MAX_EXTRA_RUNS=<2..10>: runs of one segment beyond the first, at most (default 3);
 * - VOIKE_SPOT_SEED=<0..2^32-1>: the sampling seed; default random at every start, so that a peer
 *   cannot tell from a task id whether it will be checked.
 */
import { randomBytes } from 'node:crypto'
import { ConfigError } from './errors.js'

export interface SpotConfig {
  enabled: boolean
  trustAfter: number
  checkFraction: number
  maxExtraRuns: number
  seed: number
}

export const SPOT_ENV = {
  enabled: 'VOIKE_SPOT_CHECKS',
  trustAfter: 'VOIKE_SPOT_TRUST_AFTER',
  checkFraction: 'VOIKE_SPOT_CHECK_FRACTION',
  maxExtraRuns: 'VOIKE_SPOT_MAX_EXTRA_RUNS',
  seed: 'VOIKE_SPOT_SEED'
} as const

function integer (env: NodeJS.ProcessEnv, name: string, min: number, max: number, fallback: number): number {
  const v = env[name]
  if (v === undefined || v.trim() === '') return fallback
  if (!/^\s*\d+\s*$/.test(v) || Number(v) < min || Number(v) > max) throw new ConfigError(name, `expected an integer ${min}-${max}, got ${JSON.stringify(v)}`)
  return Number(v)
}

export function parseSpot (env: NodeJS.ProcessEnv): SpotConfig {
  const on = env[SPOT_ENV.enabled]
  if (on !== undefined && on.trim() !== '' && !['on', 'off'].includes(on.trim())) throw new ConfigError(SPOT_ENV.enabled, `expected on or off, got ${JSON.stringify(on)}`)
  const f = env[SPOT_ENV.checkFraction]
  let checkFraction = 0.1
  if (f !== undefined && f.trim() !== '') {
    const t = f.trim()
    if (!/^(\d+(\.\d*)?|\.\d+)$/.test(t) || !(Number(t) >= 0 && Number(t) <= 1)) throw new ConfigError(SPOT_ENV.checkFraction, `expected a fraction between 0 and 1 (e.g. 0.1), got ${JSON.stringify(f)}`)
    checkFraction = Number(t)
  }
  return {
    enabled: on === undefined || on.trim() !== 'off',
    trustAfter: integer(env, SPOT_ENV.trustAfter, 1, 10_000, 10),
    checkFraction,
    maxExtraRuns: integer(env, SPOT_ENV.maxExtraRuns, 2, 10, 3),
    seed: integer(env, SPOT_ENV.seed, 0, 0xffff_ffff, randomBytes(4).readUInt32BE(0))
  }
}
