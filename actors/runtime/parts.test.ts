import '../../config/polyfill.js'
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Mailbox, RestartTracker, resolveSupervision, DEFAULT_SUPERVISION, envelopeProblem, ReplyError } from './index.js'

describe('Mailbox', () => {
  it('is FIFO across growth and wrap-around, and bounded', { timeout: 60_000 }, () => {
    const mb = new Mailbox<string, number>(40)
    let next = 0
    let expect = 0
    // Interleave pushes and shifts so the ring wraps while it grows.
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 3; i++) if (mb.push(next, `s${next}`, next)) next++
      const msg = mb.shift()
      assert.equal(msg, expect)
      assert.equal(mb.shiftedSender, `s${expect}`)
      assert.equal(mb.shiftedReply, expect)
      expect++
    }
    assert.equal(mb.length, 39)
    assert.equal(mb.push(next, `s${next}`, next), true)
    next++
    assert.equal(mb.length, 40, 'filled to capacity')
    assert.equal(mb.push('x', undefined, undefined), false, 'full')
    while (mb.length > 0) assert.equal(mb.shift(), expect++)
    assert.equal(expect, next)
    assert.throws(() => mb.shift())
  })

  it('rejects bad capacities', { timeout: 60_000 }, () => {
    for (const c of [0, -1, 1.5, Number.NaN, 2 ** 30]) assert.throws(() => new Mailbox(c), RangeError)
    const one = new Mailbox(1)
    assert.equal(one.push(1, undefined, undefined), true)
    assert.equal(one.push(2, undefined, undefined), false)
  })
})

describe('supervision policy', () => {
  it('defaults and validation', { timeout: 60_000 }, () => {
    assert.deepEqual(resolveSupervision(undefined), DEFAULT_SUPERVISION)
    assert.deepEqual({ ...resolveSupervision({ maxRestarts: 1 }) }, { ...DEFAULT_SUPERVISION, maxRestarts: 1 })
    assert.equal(resolveSupervision({ maxBackoffMs: 10 }).minBackoffMs, 10, 'default min clamped to a smaller max')
    for (const bad of [{ maxRestarts: -1 }, { windowMs: 0 }, { minBackoffMs: 1.5 }, { minBackoffMs: 100, maxBackoffMs: 10 }, { maxBackoffMs: 1e9 }]) {
      assert.throws(() => resolveSupervision(bad), (err: unknown) => (err as { code?: string }).code === 'ERR_INVALID_OPTION', JSON.stringify(bad))
    }
  })

  it('exponential backoff capped, give-up after maxRestarts in the window, window slides', { timeout: 60_000 }, () => {
    const tr = new RestartTracker(resolveSupervision({ maxRestarts: 4, windowMs: 1000, minBackoffMs: 50, maxBackoffMs: 300 }))
    const backoffs: number[] = []
    for (let i = 0; i < 4; i++) {
      const d = tr.recordCrash(i)
      assert.equal(d.giveUp, false)
      if (!d.giveUp) backoffs.push(d.backoffMs)
    }
    assert.deepEqual(backoffs, [50, 100, 200, 300])
    assert.equal(tr.recordCrash(999).giveUp, true, 'fifth crash within 1000 ms')

    const slide = new RestartTracker(resolveSupervision({ maxRestarts: 1, windowMs: 100, minBackoffMs: 10, maxBackoffMs: 1000 }))
    assert.deepEqual(slide.recordCrash(0), { giveUp: false, crashesInWindow: 1, backoffMs: 10 })
    assert.deepEqual(slide.recordCrash(150), { giveUp: false, crashesInWindow: 1, backoffMs: 10 }, 'first crash left the window')
    assert.equal(slide.recordCrash(200).giveUp, true)

    const never = new RestartTracker(resolveSupervision({ maxRestarts: 0 }))
    assert.equal(never.recordCrash(0).giveUp, true)
  })
})

describe('envelopes and errors', () => {
  it('accepts well-formed envelopes', { timeout: 60_000 }, () => {
    assert.equal(envelopeProblem({ k: 't', to: 'a', b: null }), undefined)
    assert.equal(envelopeProblem({ k: 't', to: 'a', b: 1, f: 'x' }), undefined)
    assert.equal(envelopeProblem({ k: 't', to: 'a', b: 1, f: null }), undefined)
    assert.equal(envelopeProblem({ k: 'a', to: 'a', id: 0, b: 1 }), undefined)
    assert.equal(envelopeProblem({ k: 'o', id: 5, b: undefined }), undefined)
    assert.equal(envelopeProblem({ k: 'e', id: 5, e: { code: 'E', message: '' } }), undefined)
    assert.equal(typeof envelopeProblem({ k: 'o', id: -5 }), 'string')
  })

  it('ReplyError validates its code', { timeout: 60_000 }, () => {
    assert.equal(new ReplyError('ERR_X', 'm').code, 'ERR_X')
    assert.throws(() => new ReplyError('', 'm'), TypeError)
    assert.throws(() => new ReplyError('x'.repeat(65), 'm'), TypeError)
  })
})
