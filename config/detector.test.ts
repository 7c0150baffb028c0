import { test } from 'node:test'
import assert from 'node:assert/strict'
import { resolveConfig, ConfigError } from './index.js'
import { DETECTOR_DEFAULTS } from './detector.js'

test('detector timings: defaults, flags over env, and errors naming the flag or variable', () => {
  assert.deepEqual(resolveConfig('genesis', {}, {}).detector, DETECTOR_DEFAULTS)
  const c = resolveConfig('genesis', { 'probe-interval-ms': '400', 'phi-threshold': '10.5' }, { VOIKE_PROBE_INTERVAL_MS: '2000', VOIKE_TAKEOVER_AFTER_MS: '0', VOIKE_PROBE_TIMEOUT_MS: '200' })
  assert.equal(c.detector.probeIntervalMs, 400)
  assert.equal(c.detector.phiThreshold, 10.5)
  assert.equal(c.takeoverAfterMs, 0)
  assert.equal(resolveConfig('genesis', {}, {}).takeoverAfterMs, 3000)
  assert.equal(c.detector.probeTimeoutMs, 200)
  const fails = (flags: Record<string, string>, env: Record<string, string>, where: string, what: RegExp): void => {
    assert.throws(() => resolveConfig('genesis', flags, env), (err: unknown) => err instanceof ConfigError && err.message.includes(where) && what.test(err.message))
  }
  fails({ 'indirect-probes': 'three' }, {}, '--indirect-probes', /integer/)
  fails({}, { VOIKE_SUSPICION_MULT: '0' }, 'VOIKE_SUSPICION_MULT', /range/)
  fails({ 'heartbeat-interval-ms': '10' }, {}, '--heartbeat-interval-ms', /range/)
  fails({ 'probe-timeout-ms': '1000' }, {}, '--probe-timeout-ms', /below the probe interval/)
  fails({ 'phi-threshold': '-1' }, {}, '--phi-threshold', /number/)
  fails({ 'takeover-after-ms': '1.5' }, {}, '--takeover-after-ms', /integer/)
})
