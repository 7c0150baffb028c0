import './polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { resolveConfig, ConfigError } from './index.js'
import { DEFAULT_JOB_RETENTION, formatJobRetention, parseJobRetention } from './retention.js'

test('--job-retention: age and/or count, in any order, or off', () => {
  assert.deepEqual(parseJobRetention('7d,10000', '--job-retention'), { maxAgeMs: 7 * 86_400_000, maxCount: 10_000 })
  assert.deepEqual(parseJobRetention(' 500 , 90s ', '--job-retention'), { maxAgeMs: 90_000, maxCount: 500 })
  assert.deepEqual(parseJobRetention('24h', '--job-retention'), { maxAgeMs: 86_400_000, maxCount: null })
  assert.deepEqual(parseJobRetention('30m', '--job-retention'), { maxAgeMs: 1_800_000, maxCount: null })
  assert.deepEqual(parseJobRetention('3', '--job-retention'), { maxAgeMs: null, maxCount: 3 })
  assert.deepEqual(parseJobRetention('off', '--job-retention'), { maxAgeMs: null, maxCount: null })
  assert.equal(formatJobRetention(DEFAULT_JOB_RETENTION), '7d,10000')
  assert.equal(formatJobRetention({ maxAgeMs: 90_000, maxCount: null }), '90s')
  assert.equal(formatJobRetention({ maxAgeMs: null, maxCount: null }), 'off')
})

test('--job-retention: precise errors naming the flag or the variable, and the bad part', () => {
  const bad: Array<[string, RegExp]> = [
    ['7x', /"7x" is neither an age \(a number with s, m, h or d\) nor a count/],
    ['7d,8d', /two ages/],
    ['5,6', /two counts/],
    ['', /empty/],
    ['7d,,5', /empty part/],
    ['0', /count 0 is out of range 1-100000000/],
    ['0s', /age 0s is out of range 1s-3650d/],
    ['3651d', /out of range/],
    ['7d,10000,3', /at most an age and a count/]
  ]
  for (const [value, re] of bad) {
    assert.throws(() => parseJobRetention(value, '--job-retention'), (e: ConfigError) => e instanceof ConfigError && e.field === '--job-retention' && re.test(e.message), value)
  }
  assert.throws(() => resolveConfig('genesis', {}, { VOIKE_JOB_RETENTION: 'forever' }), (e: ConfigError) => e.field === 'VOIKE_JOB_RETENTION')
  assert.deepEqual(resolveConfig('genesis', {}, {}).jobRetention, DEFAULT_JOB_RETENTION)
  assert.deepEqual(resolveConfig('genesis', { 'job-retention': '2s,3' }, { VOIKE_JOB_RETENTION: 'off' }).jobRetention, { maxAgeMs: 2000, maxCount: 3 })
})
