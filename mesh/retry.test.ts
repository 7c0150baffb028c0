import '../node/polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { backoffDelayMs, retryEach } from './retry.js'

test('backoffDelayMs: the upper half of a doubling cap, capped', { timeout: 60_000 }, () => {
  const o = { initialDelayMs: 100, maxDelayMs: 2000 }
  assert.deepEqual([0, 1, 2, 3, 4, 5, 50].map(r => backoffDelayMs(r, { ...o, random: () => 0 })), [50, 100, 200, 400, 800, 1000, 1000])
  assert.deepEqual([0, 1, 2, 3, 4, 5, 50].map(r => backoffDelayMs(r, { ...o, random: () => 0.999999 })), [100, 200, 400, 800, 1600, 2000, 2000])
  assert.throws(() => backoffDelayMs(-1, o), { code: 'ERR_INVALID_OPTION' })
})

test('retryEach tries every target in order, round after round, until one answers', { timeout: 60_000 }, async () => {
  const calls: string[] = []
  const failures: string[] = []
  let n = 0
  const result = await retryEach(['a', 'b', 'c'], async (target) => {
    calls.push(target)
    if (++n < 5) throw new Error(`${target} refused`)
    return target.toUpperCase()
  }, { timeoutMs: 20_000, initialDelayMs: 1, maxDelayMs: 2, onFailure: (t, err, round) => { failures.push(`${round}:${t}:${(err as Error).message}`) } })
  assert.deepEqual(result, { target: 'b', value: 'B' })
  assert.deepEqual(calls, ['a', 'b', 'c', 'a', 'b'])
  assert.deepEqual(failures, ['0:a:a refused', '0:b:b refused', '0:c:c refused', '1:a:a refused'])
})

test('retryEach gives up after maxRounds naming each target\'s last error', { timeout: 60_000 }, async () => {
  let calls = 0
  await assert.rejects(retryEach(['s1', 's2'], async (target) => { calls++; throw new Error(`${target} down`) }, { timeoutMs: 20_000, initialDelayMs: 1, maxDelayMs: 1, maxRounds: 3 }),
    { code: 'ERR_RETRIES_EXHAUSTED', message: /in 3 rounds \(s1: s1 down; s2: s2 down\)/ })
  assert.equal(calls, 6)
})

test('retryEach: the deadline aborts a hanging attempt; an outer abort is reported as such', { timeout: 60_000 }, async () => {
  const hang = async (_t: string, signal: AbortSignal): Promise<never> => await new Promise((_resolve, reject) => {
    signal.addEventListener('abort', () => { reject(new Error('attempt aborted')) }, { once: true })
  })
  await assert.rejects(retryEach(['slow'], hang, { timeoutMs: 100, initialDelayMs: 10, maxDelayMs: 10 }), { code: 'ERR_RETRIES_EXHAUSTED', message: /within 100 ms \(slow: attempt aborted\)/ })
  const ac = new AbortController()
  const p = retryEach(['slow'], hang, { timeoutMs: 60_000, initialDelayMs: 10, maxDelayMs: 10, signal: ac.signal })
  ac.abort()
  await assert.rejects(p, { code: 'ERR_ABORTED' })
})

test('retryEach validates its options', { timeout: 60_000 }, async () => {
  const ok = async (): Promise<number> => 1
  await assert.rejects(retryEach([], ok, { timeoutMs: 1, initialDelayMs: 1, maxDelayMs: 1 }), { code: 'ERR_INVALID_OPTION', message: /targets must not be empty/ })
  await assert.rejects(retryEach(['a'], ok, { timeoutMs: 0, initialDelayMs: 1, maxDelayMs: 1 }), { code: 'ERR_INVALID_OPTION', message: /timeoutMs must be a positive integer, got 0/ })
  await assert.rejects(retryEach(['a'], ok, { timeoutMs: 10, initialDelayMs: 5, maxDelayMs: 1 }), { code: 'ERR_INVALID_OPTION', message: /maxDelayMs \(1\) must be at least initialDelayMs \(5\)/ })
  await assert.rejects(retryEach(['a'], ok, { timeoutMs: 10, initialDelayMs: 1, maxDelayMs: 1, maxRounds: 0 }), { code: 'ERR_INVALID_OPTION', message: /maxRounds/ })
})
