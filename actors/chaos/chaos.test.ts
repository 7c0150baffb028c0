import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseChaos, chaosEnabled } from '../../config/chaos.js'
import { ConfigError } from '../../config/errors.js'
import { fibKind } from '../kinds/fib/job.js'
import { fibSegment } from '../kinds/fib/arith.js'
import type { Envelope } from '../runtime/envelope.js'
import { waitFor } from '../testing/rig.js'
import { corruptValue } from './corrupt.js'
import { seededRandom } from './rng.js'
import { corruptingPool } from './pool.js'
import type { WorkerPool } from '../worker/pool.js'
import { chaosTransport } from './transport.js'

const SEED = 20240611
console.log(`chaos test seed ${SEED}`)

test('chaos settings: off by default, fractions and delays validated naming the variable, seed per node', () => {
  const off = parseChaos({}, 'node-a')
  assert.deepEqual([off.corruptResults, off.drop, off.delayMs], [0, 0, 0])
  assert.equal(chaosEnabled(off), false)
  assert.equal(off.seed, parseChaos({}, 'node-a').seed)
  assert.notEqual(off.seed, parseChaos({}, 'node-b').seed)
  const on = parseChaos({ VOIKE_CHAOS_CORRUPT_RESULTS: '0.3', VOIKE_CHAOS_DROP: '.05', VOIKE_CHAOS_DELAY_MS: '250', VOIKE_CHAOS_SEED: '7' }, 'n')
  assert.deepEqual(on, { corruptResults: 0.3, corruptAfter: 0, drop: 0.05, delayMs: 250, seed: 7 })
  assert.equal(parseChaos({ VOIKE_CHAOS_CORRUPT_AFTER: '40' }, 'n').corruptAfter, 40)
  assert.equal(chaosEnabled(on), true)
  assert.equal(parseChaos({ VOIKE_CHAOS_CORRUPT_RESULTS: '1' }, 'n').corruptResults, 1)
  const bad: Array<[Record<string, string>, string]> = [
    [{ VOIKE_CHAOS_CORRUPT_RESULTS: '1.5' }, 'VOIKE_CHAOS_CORRUPT_RESULTS'],
    [{ VOIKE_CHAOS_CORRUPT_RESULTS: '-0.1' }, 'VOIKE_CHAOS_CORRUPT_RESULTS'],
    [{ VOIKE_CHAOS_DROP: 'half' }, 'VOIKE_CHAOS_DROP'],
    [{ VOIKE_CHAOS_DELAY_MS: '60001' }, 'VOIKE_CHAOS_DELAY_MS'],
    [{ VOIKE_CHAOS_DELAY_MS: '1.5' }, 'VOIKE_CHAOS_DELAY_MS'],
    [{ VOIKE_CHAOS_SEED: '-1' }, 'VOIKE_CHAOS_SEED'],
    [{ VOIKE_CHAOS_CORRUPT_AFTER: 'soon' }, 'VOIKE_CHAOS_CORRUPT_AFTER']
  ]
  for (const [env, name] of bad) {
    assert.throws(() => parseChaos(env, 'n'), (e: unknown) => e instanceof ConfigError && e.source === name && e.message.startsWith(`${name}: `))
  }
})

test('a corrupted fib result is wrong but still passes checkValue', () => {
  const rnd = seededRandom(SEED)
  for (let i = 0; i < 50; i++) {
    const start = Math.floor(rnd() * 5000)
    const end = start + 1 + Math.floor(rnd() * 3000)
    const last = rnd() < 0.5
    const real = fibSegment({ start, end, last })
    const { value, changed } = corruptValue(real)
    assert.ok(changed)
    const seg = { params: { n: end, segments: 1 }, descriptor: { start, end }, index: 0, isLast: last } as never
    const checked = fibKind.checkValue(seg, value)
    assert.equal(fibKind.equal?.(checked, fibKind.checkValue(seg, real)), false, `not different for [${start}, ${end})`)
  }
  // Shapes: digits go down at the same length, hex changes, numbers move by one, the input is untouched.
  const input = { a: '1000', b: 'ff00ff00', c: 7 }
  assert.deepEqual(corruptValue(input).value, { a: '1000', b: 'ff00ff01', c: 7 })
  assert.deepEqual(input, { a: '1000', b: 'ff00ff00', c: 7 })
  assert.equal(corruptValue('1000').changed, false)
  assert.deepEqual(corruptValue('1230'), { value: '1220', changed: true })
  assert.deepEqual(corruptValue({ h: 'ab12cd34' }), { value: { h: 'ab12cd30' }, changed: true })
  assert.deepEqual(corruptValue([1, 2]), { value: [0, 2], changed: true })
  assert.deepEqual(corruptValue(null), { value: null, changed: false })
})

test('the chaos transport drops a seeded fraction and delays without reordering a peer’s frames', async () => {
  const sent: Array<[string, number]> = []
  const inner = { send: (peer: string, env: Envelope) => { sent.push([peer, (env as { b: number }).b]) } }
  const lossy = chaosTransport(inner, { drop: 0.3, delayMs: 0, random: seededRandom(SEED) })
  for (let i = 0; i < 1000; i++) lossy.send('p', { k: 't', to: 'x', b: i })
  assert.ok(sent.length > 600 && sent.length < 800, `${sent.length} of 1000 sent at drop 0.3`)
  sent.length = 0
  const slow = chaosTransport(inner, { drop: 0, delayMs: 30, random: seededRandom(SEED) })
  for (let i = 0; i < 200; i++) slow.send(i % 2 === 0 ? 'p' : 'q', { k: 't', to: 'x', b: i })
  assert.equal(sent.length, 0)
  await waitFor(() => sent.length === 200, 'every delayed frame sent', 5000)
  for (const peer of ['p', 'q']) {
    const order = sent.filter(s => s[0] === peer).map(s => s[1])
    assert.deepEqual(order, [...order].sort((a, b) => a - b))
  }
  slow.close()
})

test('VOIKE_CHAOS_CORRUPT_AFTER: the first n successful results are honest, then the fraction applies', async () => {
  const honest = { ok: true, value: '555', ms: 1 }
  const inner = { run: async () => honest, runBatch: async (tasks: unknown[]) => tasks.map(() => honest) } as unknown as WorkerPool
  const pool = corruptingPool(inner, 1, seededRandom(SEED), undefined, 3)
  const values: unknown[] = []
  for (let i = 0; i < 2; i++) values.push((await pool.run('k', {})).value)
  for (const r of await pool.runBatch([{ kind: 'k', payload: {} }, { kind: 'k', payload: {} }, { kind: 'k', payload: {} }] as never)) values.push(r.ok ? r.value : undefined)
  assert.deepEqual(values, ['555', '555', '555', '554', '554'])
})
