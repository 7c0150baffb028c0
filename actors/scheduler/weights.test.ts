import { test } from 'node:test'
import assert from 'node:assert/strict'
import { placeTasks, type PeerLoad } from './placement.js'
import { DEFAULT_WEIGHT_POLICY, isExcluded, placementWeight, weighLoads, type PeerQuality } from './weights.js'

const q = (over: Partial<PeerQuality> = {}): PeerQuality => ({ status: 'alive', trusted: true, load: 0, rttMs: 0, trust: 1, ...over })

test('an idle, near, trusted peer weighs 1; unknowns count as idle, near and trusted', () => {
  assert.equal(placementWeight(q()), 1)
  assert.equal(placementWeight(q({ load: undefined, rttMs: undefined, trust: undefined })), 1)
})

test('load, RTT and trust each lower the weight as documented', () => {
  assert.ok(Math.abs(placementWeight(q({ load: 1 })) - 0.4) < 1e-12)
  assert.ok(Math.abs(placementWeight(q({ load: 0.5 })) - 0.7) < 1e-12)
  assert.ok(Math.abs(placementWeight(q({ rttMs: DEFAULT_WEIGHT_POLICY.rttScaleMs })) - 0.5) < 1e-12)
  assert.ok(Math.abs(placementWeight(q({ trust: 0.7 })) - 0.7) < 1e-12)
  assert.ok(Math.abs(placementWeight(q({ load: 1, rttMs: 50, trust: 0.8 })) - 0.4 * 0.5 * 0.8) < 1e-12)
  // Monotonic: more load or more RTT never weighs more.
  let prev = Infinity
  for (let l = 0; l <= 1; l += 0.1) { const w = placementWeight(q({ load: l })); assert.ok(w <= prev); prev = w }
  prev = Infinity
  for (let r = 0; r <= 500; r += 25) { const w = placementWeight(q({ rttMs: r })); assert.ok(w <= prev); prev = w }
  // Out-of-range inputs are clamped, never negative or above 1.
  assert.equal(placementWeight(q({ load: 7, trust: 3 })), 0.4)
  assert.equal(placementWeight(q({ load: -1, rttMs: -5, trust: Number.NaN })), 1)
})

test('suspect, dead and distrusted peers are excluded and weigh 0', () => {
  for (const status of ['suspect', 'dead']) {
    assert.equal(isExcluded({ status, trusted: true }), true)
    assert.equal(placementWeight(q({ status })), 0)
  }
  assert.equal(isExcluded({ status: 'alive', trusted: false }), true)
  assert.equal(placementWeight(q({ trusted: false })), 0)
  assert.equal(isExcluded({ status: 'alive', trusted: true }), false)
})

const loads: PeerLoad[] = [
  { peerId: 'self', credits: 4, inFlight: 0 },
  { peerId: 'a', credits: 8, inFlight: 0 },
  { peerId: 'bad', credits: 8, inFlight: 0 },
  { peerId: 'far', credits: 8, inFlight: 0 }
]

test('weighLoads drops excluded peers (never self) and scales credits, at least 1', () => {
  const weight: Record<string, number> = { self: 0.5, a: 1, far: 0.01 }
  const out = weighLoads(loads, 'self', (p) => p === 'bad' || p === 'self', (p) => weight[p] ?? 1)
  assert.deepEqual(out.map(l => [l.peerId, l.credits]), [['self', 2], ['a', 8], ['far', 1]])
  // Pure: the input is untouched.
  assert.deepEqual(loads.map(l => l.credits), [4, 8, 8, 8])
  // A non-finite weight leaves the credits as they are.
  assert.equal(weighLoads([loads[1]], 'self', () => false, () => Number.NaN)[0].credits, 8)
})

test('placement never places on a distrusted peer, even when it alone has room', () => {
  const full: PeerLoad[] = [{ peerId: 'self', credits: 1, inFlight: 1 }, { peerId: 'bad', credits: 100, inFlight: 0 }]
  const weighed = weighLoads(full, 'self', (p) => p === 'bad', () => 1)
  const placement = placeTasks(weighed, [null, null, null], 0)
  assert.deepEqual(placement.chosen, [])
  // With exclusions and weights, a lighter peer gets proportionally more of a burst.
  const w = weighLoads(loads, 'self', (p) => p === 'bad', (p) => p === 'far' ? 0.25 : 1)
  const p2 = placeTasks(w, new Array(14).fill(null), 0)
  const counts: Record<string, number> = {}
  for (const i of p2.chosen) counts[w[i].peerId] = (counts[w[i].peerId] ?? 0) + 1
  assert.equal(counts.bad, undefined)
  assert.deepEqual(counts, { self: 4, a: 8, far: 2 })
})
