import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PhiAccrualDetector, phiOf, silenceToReachPhi, PHI_DEFAULTS } from './phi.js'
import { detectionBounds, resolveOptions } from './options.js'

/** A detector fed `n` heartbeats every `everyMs` (± jitter from a fixed pattern), starting at 0. */
function fed (n: number, everyMs: number, jitter: number[] = [0]): { d: PhiAccrualDetector, last: number } {
  const d = new PhiAccrualDetector()
  let t = 0
  for (let i = 0; i < n; i++) {
    t += everyMs + jitter[i % jitter.length]
    d.heartbeat(t)
  }
  return { d, last: t }
}

test('phi is 0 before the first heartbeat and grows monotonically with silence', { timeout: 60_000 }, () => {
  const d = new PhiAccrualDetector()
  assert.equal(d.phi(10_000), 0)
  const { d: d2, last } = fed(50, 1000)
  let previous = -1
  for (let silence = 0; silence <= 10_000; silence += 250) {
    const phi = d2.phi(last + silence)
    assert.ok(phi >= previous, `phi must not fall: ${previous} → ${phi} at ${silence} ms`)
    previous = phi
  }
  assert.ok(d2.phi(last + 10_000) > 8, 'ten silent seconds must cross the default threshold')
  assert.ok(Number.isFinite(d2.phi(last + 1e9)), 'phi stays finite for any silence')
})

test('regular heartbeats keep phi low', { timeout: 60_000 }, () => {
  const { d, last } = fed(200, 1000, [0, 30, -20, 10])
  for (const dt of [0, 500, 1000, 1500, 2000]) {
    assert.ok(d.phi(last + dt) < 1, `phi ${d.phi(last + dt)} at ${dt} ms after a heartbeat`)
    assert.ok(d.isAvailable(last + dt))
  }
})

test('with defaults, phi crosses 8 about 4.52 s after the last regular 1 s heartbeat (the documented bound)', { timeout: 60_000 }, () => {
  const { d, last } = fed(100, 1000)
  const at = d.suspectAtMs()
  assert.ok(at !== undefined)
  const silence = at - last
  // mean 1000 + pause 3000, σ at its 100 ms floor: y ≈ 5.22 → 4522 ms (the two bootstrap samples lift σ slightly).
  assert.ok(silence > 4450 && silence < 4700, `crossing after ${silence} ms`)
  assert.ok(d.phi(at - 50) < 8 && d.phi(at + 50) > 8)
  const bound = detectionBounds(resolveOptions(), 4)
  assert.ok(Math.abs(bound.phiSilenceMs - silenceToReachPhi(8, 4000, 100)) <= 1)
  assert.ok(silence <= bound.phiSilenceMs + 150, `measured ${silence} ms vs documented ${bound.phiSilenceMs} ms`)
})

test('irregular heartbeats widen sigma and postpone the verdict', { timeout: 60_000 }, () => {
  const regular = fed(100, 1000)
  const jittery = fed(100, 1000, [-400, 400, -300, 300])
  assert.ok(jittery.d.stdDeviationMs > regular.d.stdDeviationMs)
  assert.ok((jittery.d.suspectAtMs() as number) - jittery.last > (regular.d.suspectAtMs() as number) - regular.last)
})

test('the window is bounded and the logistic tail is computed without cancellation', { timeout: 60_000 }, () => {
  const d = new PhiAccrualDetector({ maxSampleSize: 10 })
  for (let i = 1; i <= 1000; i++) d.heartbeat(i * 1000)
  assert.equal(d.sampleCount, 10)
  // Far in the upper tail 1 − F is ~1e-200: computed directly, phi is large but finite.
  const far = phiOf(100_000, 1000, 100)
  assert.ok(far > 100 && far <= 300)
  assert.ok(phiOf(0, 1000, 100) < 1e-6)
})

test('our own stall is not their silence', { timeout: 60_000 }, () => {
  const { d, last } = fed(20, 1000)
  assert.ok(d.phi(last + 20_000) > 8)
  d.excuseSilenceUntil(last + 20_000)
  assert.ok(d.phi(last + 20_500) < 1)
  assert.equal(d.sampleCount, 21, 'no sample was added')
})

test('invalid options are rejected with a code naming the field', { timeout: 60_000 }, () => {
  assert.throws(() => new PhiAccrualDetector({ threshold: 0 }), (err: Error & { code?: string }) => err.code === 'ERR_INVALID_OPTION' && /threshold/.test(err.message))
  assert.throws(() => new PhiAccrualDetector({ maxSampleSize: 1 }), /maxSampleSize/)
  assert.equal(PHI_DEFAULTS.acceptableHeartbeatPauseMs, 3000)
})
