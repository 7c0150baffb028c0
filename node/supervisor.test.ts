import './polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { checkRestartPolicy, decideRestart, DEFAULT_RESTART_POLICY, type RestartPolicy } from './supervisor.js'
import { runCli } from './testkit.js'

const policy: RestartPolicy = { maxRestarts: 3, windowMs: 60_000, initialBackoffMs: 500, maxBackoffMs: 1500 }

test('restart policy: backoff doubles within the window, capped; past the bound, give up', () => {
  assert.deepEqual(decideRestart([], 1_000_000, policy), { action: 'restart', delayMs: 500, restart: 1 })
  assert.deepEqual(decideRestart([999_000], 1_000_000, policy), { action: 'restart', delayMs: 1000, restart: 2 })
  assert.deepEqual(decideRestart([998_000, 999_000], 1_000_000, policy), { action: 'restart', delayMs: 1500, restart: 3 })
  assert.deepEqual(decideRestart([997_000, 998_000, 999_000], 1_000_000, policy), { action: 'give-up', deaths: 4 })
  // Restarts older than the window are forgiven.
  assert.deepEqual(decideRestart([900_000, 930_000, 999_000], 1_000_000, policy), { action: 'restart', delayMs: 1000, restart: 2 })
  assert.deepEqual(decideRestart([], 0, { ...policy, maxRestarts: 0 }), { action: 'give-up', deaths: 1 })
})

test('restart policy: options are checked', () => {
  assert.equal(checkRestartPolicy({ ...DEFAULT_RESTART_POLICY }).maxRestarts, 5)
  assert.throws(() => checkRestartPolicy({ ...DEFAULT_RESTART_POLICY, maxRestarts: 101 }), /--max-restarts: expected an integer 0-100, got 101/)
  assert.throws(() => checkRestartPolicy({ ...DEFAULT_RESTART_POLICY, maxRestarts: NaN }), /--max-restarts/)
})

test('voike up: a bad --max-restarts exits 2 naming the flag', { timeout: 60_000 }, async () => {
  const r = await runCli(['up', '--nodes', '1', '--max-restarts', 'lots'])
  assert.equal(r.code, 2)
  assert.match(r.stderr, /--max-restarts: expected an integer 0-100/)
})
