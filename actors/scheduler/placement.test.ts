import '../../config/polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { baseCredits, decayBusy, effectiveCredits, freeCredits, MAX_PENALTY_LEVEL, onBusy, placeTasks, type BusyState, type PeerLoad } from './placement.js'

const policy = { creditsPerCore: 2, maxCreditsPerPeer: 64 }

function counts (peers: PeerLoad[], chosen: number[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const i of chosen) out[peers[i].peerId] = (out[peers[i].peerId] ?? 0) + 1
  return out
}

test('credits grow with cores, are capped, and never drop below 1', { timeout: 60_000 }, () => {
  assert.equal(baseCredits(1, policy), 2)
  assert.equal(baseCredits(8, policy), 16)
  assert.equal(baseCredits(1000, policy), 64)
  assert.equal(baseCredits(0, policy), 2, 'a bogus core count counts as 1 core')
  assert.equal(baseCredits(Number.NaN, policy), 2)
  assert.equal(baseCredits(4, { creditsPerCore: 1, maxCreditsPerPeer: 1 }), 1)
})

test('a busy peer gets its credits halved per busy answer, down to 1, and recovers after the window', { timeout: 60_000 }, () => {
  assert.equal(effectiveCredits(16, 0), 16)
  assert.equal(effectiveCredits(16, 1), 8)
  assert.equal(effectiveCredits(16, 3), 2)
  assert.equal(effectiveCredits(16, 10), 1)
  const s: BusyState = { penaltyLevel: 0, penaltyUntilMs: 0, holdUntilMs: 0 }
  onBusy(s, 1000, 500, 50)
  assert.deepEqual(s, { penaltyLevel: 1, penaltyUntilMs: 1500, holdUntilMs: 1050 })
  onBusy(s, 1200, 500, 50)
  assert.equal(s.penaltyLevel, 2)
  assert.equal(s.penaltyUntilMs, 1700)
  for (let i = 0; i < 20; i++) onBusy(s, 1300, 500, 50)
  assert.equal(s.penaltyLevel, MAX_PENALTY_LEVEL)
  decayBusy(s, 1799)
  assert.equal(s.penaltyLevel, MAX_PENALTY_LEVEL, 'still inside the window')
  decayBusy(s, 1800)
  assert.equal(s.penaltyLevel, 0)
})

test('equal peers share evenly (round robin on ties) and placement stops when credits run out', { timeout: 60_000 }, () => {
  const peers: PeerLoad[] = [
    { peerId: 'a', credits: 2, inFlight: 0 },
    { peerId: 'b', credits: 2, inFlight: 0 },
    { peerId: 'c', credits: 2, inFlight: 0 }
  ]
  assert.equal(freeCredits(peers), 6)
  const p = placeTasks(peers, new Array(10).fill(null), 0)
  assert.equal(p.chosen.length, 6, 'only as many as there are free credits')
  assert.deepEqual(p.chosen.slice(0, 3).map(i => peers[i].peerId).sort(), ['a', 'b', 'c'], 'the first round touches every peer')
  assert.deepEqual(counts(peers, p.chosen), { a: 2, b: 2, c: 2 })
  assert.equal(peers[0].inFlight, 0, 'the input is not modified')
})

test('the round-robin cursor rotates who goes first across passes', { timeout: 60_000 }, () => {
  const peers: PeerLoad[] = [
    { peerId: 'a', credits: 4, inFlight: 0 },
    { peerId: 'b', credits: 4, inFlight: 0 }
  ]
  const first = placeTasks(peers, [null], 0)
  const second = placeTasks(peers, [null], first.nextRr)
  assert.notEqual(first.chosen[0], second.chosen[0])
})

test('the least loaded peer (relative to its credits) is chosen first', { timeout: 60_000 }, () => {
  const peers: PeerLoad[] = [
    { peerId: 'big', credits: 8, inFlight: 4 }, // half full
    { peerId: 'small', credits: 2, inFlight: 0 }, // empty
    { peerId: 'full', credits: 2, inFlight: 2 } // no credit
  ]
  const p = placeTasks(peers, [null, null, null, null, null, null], 0)
  // small (0/2) first, then small 1/2 ties big 4/8 ...; all 6 free credits used, none on "full".
  assert.equal(p.chosen.length, 6)
  assert.equal(peers[p.chosen[0]].peerId, 'small')
  assert.deepEqual(counts(peers, p.chosen), { big: 4, small: 2 })
})

test('a peer with more credits gets proportionally more', { timeout: 60_000 }, () => {
  const peers: PeerLoad[] = [
    { peerId: 'a', credits: 8, inFlight: 0 },
    { peerId: 'b', credits: 2, inFlight: 0 }
  ]
  const p = placeTasks(peers, new Array(5).fill(null), 0)
  assert.deepEqual(counts(peers, p.chosen), { a: 4, b: 1 })
})

test('a task avoids the peer it failed on when another has room, and falls back to it otherwise', { timeout: 60_000 }, () => {
  const peers: PeerLoad[] = [
    { peerId: 'a', credits: 1, inFlight: 0 },
    { peerId: 'b', credits: 1, inFlight: 0 }
  ]
  const p = placeTasks(peers, ['a', 'a'], 0)
  assert.deepEqual(p.chosen.map(i => peers[i].peerId), ['b', 'a'])
  const only = placeTasks([{ peerId: 'a', credits: 3, inFlight: 0 }], ['a'], 0)
  assert.deepEqual(only.chosen, [0])
})

test('no peers, or no free credit: nothing is placed', { timeout: 60_000 }, () => {
  assert.deepEqual(placeTasks([], [null], 5).chosen, [])
  assert.deepEqual(placeTasks([{ peerId: 'a', credits: 1, inFlight: 1 }], [null], 0).chosen, [])
  assert.equal(freeCredits([{ peerId: 'a', credits: 1, inFlight: 3 }]), 0)
})

test('members sharing a machine share its cap: no more tasks in flight there than it has cores', { timeout: 60_000 }, () => {
  const peers: PeerLoad[] = [
    { peerId: 'g', credits: 4, inFlight: 0, host: 'box', hostCap: 2 },
    { peerId: 'n1', credits: 4, inFlight: 0, host: 'box', hostCap: 2 },
    { peerId: 'n2', credits: 4, inFlight: 1, host: 'box', hostCap: 2 },
    { peerId: 'far', credits: 2, inFlight: 0 }
  ]
  assert.equal(freeCredits(peers), 1 + 2)
  const p = placeTasks(peers, new Array(10).fill(null), 0)
  const c = counts(peers, p.chosen)
  assert.equal((c.g ?? 0) + (c.n1 ?? 0) + (c.n2 ?? 0), 1, 'the shared machine had one core left')
  assert.equal(c.far, 2)
  assert.equal(p.chosen.length, 3)
  // The cap binds only where members declare it: alone on its machine a peer keeps its credits.
  assert.equal(placeTasks([{ peerId: 'solo', credits: 4, inFlight: 0 }], new Array(6).fill(null), 0).chosen.length, 4)
})
