import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConfigError } from './errors.js'
import { parseSpot } from './spot.js'

test('spot-check settings: defaults, values, and errors naming the variable', () => {
  const d = parseSpot({})
  assert.deepEqual({ ...d, seed: 0 }, { enabled: true, trustAfter: 10, checkFraction: 0.1, maxExtraRuns: 3, seed: 0 })
  assert.ok(Number.isInteger(d.seed) && d.seed >= 0 && d.seed <= 0xffff_ffff, 'a random seed by default')
  assert.deepEqual(parseSpot({ VOIKE_SPOT_CHECKS: 'off', VOIKE_SPOT_TRUST_AFTER: '3', VOIKE_SPOT_CHECK_FRACTION: '.5', VOIKE_SPOT_MAX_EXTRA_RUNS: '4', VOIKE_SPOT_SEED: '9' }),
    { enabled: false, trustAfter: 3, checkFraction: 0.5, maxExtraRuns: 4, seed: 9 })
  const bad: Array<[Record<string, string>, string]> = [
    [{ VOIKE_SPOT_CHECKS: 'maybe' }, 'VOIKE_SPOT_CHECKS'],
    [{ VOIKE_SPOT_TRUST_AFTER: '0' }, 'VOIKE_SPOT_TRUST_AFTER'],
    [{ VOIKE_SPOT_CHECK_FRACTION: '1.1' }, 'VOIKE_SPOT_CHECK_FRACTION'],
    [{ VOIKE_SPOT_MAX_EXTRA_RUNS: '1' }, 'VOIKE_SPOT_MAX_EXTRA_RUNS'],
    [{ VOIKE_SPOT_SEED: 'x' }, 'VOIKE_SPOT_SEED']
  ]
  for (const [env, name] of bad) {
    assert.throws(() => parseSpot(env), (e: unknown) => e instanceof ConfigError && e.source === name && e.message.startsWith(`${name}: `))
  }
})
