import '../../config/polyfill.js'
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { createStore } from '../../store/index.js'
import { MemberTable } from '../membership/table.js'
import { member } from '../testing/cluster.js'
import {
  anomalyOf, classifyOutcome, decay, dominantSignal, newEvidence, nextTrusted, observeMismatch, observeOutcome, observeRtt, signalsOf,
  TRUST_DEFAULTS, TRUST_WEIGHTS
} from './score.js'
import { createTrust } from './trust.js'

const P = TRUST_DEFAULTS
const close = (a: number, b: number): boolean => Math.abs(a - b) < 1e-9

test('a fresh peer has no anomaly: trust 1', () => {
  const e = newEvidence(0)
  const s = signalsOf(e, 0, 0, P)
  assert.deepEqual(s, { rttDrift: 0, heartbeat: 0, failure: 0, mismatch: 0 })
  assert.equal(anomalyOf(s, TRUST_WEIGHTS), 0)
})

test('anomaly is the noisy-OR of weighted signals, in [0, 1]', () => {
  const w = TRUST_WEIGHTS
  assert.ok(close(anomalyOf({ rttDrift: 0, heartbeat: 0, failure: 0, mismatch: 1 }, w), 0.9))
  assert.ok(close(anomalyOf({ rttDrift: 1, heartbeat: 1, failure: 0, mismatch: 0 }, w), 1 - 0.75 * 0.7))
  assert.ok(close(anomalyOf({ rttDrift: 1, heartbeat: 1, failure: 1, mismatch: 1 }, w), 1 - 0.1 * 0.4 * 0.7 * 0.75))
})

test('one mismatch alone distrusts (the strongest signal); RTT drift or heartbeats alone do not', () => {
  const e = newEvidence(0)
  observeMismatch(e, 0, P)
  const s = signalsOf(e, 0, 0, P)
  assert.ok(close(s.mismatch, 0.5))
  const trust = 1 - anomalyOf(s, TRUST_WEIGHTS)
  assert.ok(trust < P.distrustBelow, `trust ${trust}`)
  assert.equal(dominantSignal(s, TRUST_WEIGHTS), 'mismatch')
  assert.ok(1 - TRUST_WEIGHTS.rttDrift >= P.distrustBelow)
  assert.ok(1 - TRUST_WEIGHTS.heartbeat >= P.distrustBelow)
  // Mismatches decay with their half-life.
  assert.ok(close(signalsOf(e, 0, P.mismatchHalfLifeMs, P).mismatch, 1 - Math.pow(0.5, 0.5)))
})

test('RTT drift is measured against the peer\'s own baseline, after enough samples', () => {
  const e = newEvidence(0)
  for (let i = 0; i < 50; i++) observeRtt(e, 10, P)
  assert.equal(signalsOf(e, 0, 0, P).rttDrift, 0)
  for (let i = 0; i < 10; i++) observeRtt(e, 40, P)
  const s = signalsOf(e, 0, 0, P).rttDrift
  assert.ok(s > 0.2 && s <= 1, `drift ${s}`)
  // Sub-floor jitter (0.2 → 1 ms on loopback) is no drift worth the name.
  const l = newEvidence(0)
  for (let i = 0; i < 50; i++) observeRtt(l, 0.2, P)
  for (let i = 0; i < 10; i++) observeRtt(l, 1, P)
  assert.ok(signalsOf(l, 0, 0, P).rttDrift < 0.1)
  // Too few samples: no baseline yet.
  const f = newEvidence(0)
  observeRtt(f, 1, P); observeRtt(f, 100, P)
  assert.equal(signalsOf(f, 0, 0, P).rttDrift, 0)
})

test('failure rate counts error/timeout/lost, not busy or ignored, with a prior and decay', () => {
  assert.deepEqual(['ok', 'error', 'timeout', 'lost', 'busy', 'ignored', 'x'].map(classifyOutcome), ['success', 'failure', 'failure', 'failure', 'neutral', 'neutral', 'neutral'])
  const e = newEvidence(0)
  observeOutcome(e, 'error', 0, P)
  assert.ok(close(signalsOf(e, 0, 0, P).failure, 1 / 3))
  for (let i = 0; i < 20; i++) observeOutcome(e, 'timeout', 0, P)
  for (let i = 0; i < 20; i++) observeOutcome(e, 'busy', 0, P)
  const s = signalsOf(e, 0, 0, P)
  assert.ok(close(s.failure, 21 / 23))
  assert.ok(1 - anomalyOf(s, TRUST_WEIGHTS) < P.distrustBelow)
  // Successes dilute; both decay together, so the rate holds but the evidence fades.
  for (let i = 0; i < 100; i++) observeOutcome(e, 'ok', 0, P)
  assert.ok(signalsOf(e, 0, 0, P).failure < 0.2)
  assert.ok(close(decay(8, 0, P.failureHalfLifeMs, P.failureHalfLifeMs), 4))
})

test('hysteresis: distrusted below 0.65, trusted again only at 0.75', () => {
  assert.equal(nextTrusted(true, 0.66, P), true)
  assert.equal(nextTrusted(true, 0.64, P), false)
  assert.equal(nextTrusted(false, 0.7, P), false)
  assert.equal(nextTrusted(false, 0.75, P), true)
})

test('φ of the heartbeats feeds the heartbeat signal', () => {
  const e = newEvidence(0)
  assert.equal(signalsOf(e, 4, 0, P).heartbeat, 0.5)
  assert.equal(signalsOf(e, 80, 0, P).heartbeat, 1)
  assert.equal(signalsOf(e, Number.NaN, 0, P).heartbeat, 0)
})

const dirs: string[] = []
after(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }) })

test('the service: events on crossing, isTrusted, metrics, persistence across a restart', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'voike-trust-svc-'))
  dirs.push(dir)
  let t = 1_000_000
  const table = new MemberTable('self')
  for (const id of ['self', 'liar', 'honest']) table.put(member(id))
  const store = await createStore({ dataDir: dir })
  const registry = new Registry()
  assert.throws(() => createTrust({ selfId: 'self', table, options: { distrustBelow: 0.8, recoverAbove: 0.7 } }), /options\.recoverAbove must be a number in 0\.8\.\.1/)
  const trust = createTrust({ selfId: 'self', table, store, registry, now: () => t, options: { intervalMs: 60_000 } })
  assert.equal(trust.isTrusted('liar'), true)
  assert.equal(trust.isTrusted('self'), true)
  for (let i = 0; i < 5; i++) { trust.onTaskOutcome('honest', 'ok'); trust.observeHeartbeat('honest'); t += 1000 }
  trust.reportMismatch('liar')
  assert.equal(trust.isTrusted('liar'), false)
  trust.reportMismatch('self') // this node never judges itself
  trust.reportMismatch('stranger') // nor peers that are not members
  assert.equal(trust.status().peers.some(p => p.peerId === 'stranger'), false)
  assert.equal(trust.isTrusted('self'), true)
  trust.tick()
  assert.equal(trust.isTrusted('honest'), true)
  const ev = trust.events()
  assert.equal(ev.length, 1)
  assert.deepEqual([ev[0].peerId, ev[0].kind, ev[0].reason], ['liar', 'distrusted', 'mismatch'])
  const st = trust.status()
  assert.deepEqual(st.peers.map(p => p.peerId), ['honest', 'liar'])
  for (const p of st.peers) assert.ok(p.trust >= 0 && p.trust <= 1)
  const text = await registry.metrics()
  assert.match(text, /voike_trust_score\{peer_id="liar"\} 0\.55/)
  assert.match(text, /voike_trust_events_total\{reason="mismatch"\} 1/)
  assert.match(text, /voike_trust_events_total\{reason="failure"\} 0/)
  await trust.close()
  // A restarted node remembers: the liar stays distrusted.
  const again = createTrust({ selfId: 'self', table, store, now: () => t, options: { intervalMs: 60_000 } })
  await again.load()
  assert.equal(again.isTrusted('liar'), false)
  again.tick()
  assert.equal(again.isTrusted('liar'), false)
  // Hours later the mismatch has decayed: it recovers (one event).
  t += 4 * P.mismatchHalfLifeMs
  again.tick()
  assert.equal(again.isTrusted('liar'), true)
  assert.deepEqual(again.events().map(e => [e.peerId, e.kind]), [['liar', 'recovered']])
  await again.close()
  await store.close()
})
