import '../../config/polyfill.js'
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Registry } from 'prom-client'
import { fibKind } from '../kinds/fib/job.js'
import type { JobKind } from './kinds.js'
import { placeTasks } from './placement.js'
import { placementRule, type Answer, type AnswerContext } from './policy.js'
import { createSpotCheck, decideSpot, resolveSpotOptions, spotSample, type SpotInput } from './spot-check.js'
import { markCaught, parseVerification, verificationOf } from './verification.js'

const SELF = 'self'
const eq = (a: unknown, b: unknown): boolean => a === b
const ans = (peer: string, value: unknown): Answer => ({ peer, value })
/** fib's flags with plain values (its `equal` reads fib results). */
const kindOf: JobKind<any, any> = { ...fibKind, equal: eq }

/** A decision input: by default deterministic, nobody reliable but self, not sampled. */
function input (answers: Answer[], o: Partial<SpotInput> = {}): SpotInput {
  return {
    deterministic: true,
    equal: eq,
    answers,
    reliable: (p) => p === SELF,
    authoritative: (p) => p === SELF,
    sample: 0.99,
    checkFraction: 0.1,
    maxExtraRuns: 3,
    ...o
  }
}

describe('decideSpot (pure)', () => {
  test('a kind that is not deterministic is never compared: the first valid answer wins', () => {
    const v = decideSpot(input([ans('a', 1)], { deterministic: false }))
    assert.deepEqual(v.decision, { action: 'accept', value: 1 })
    assert.deepEqual(v.outcomes, [])
  })

  test('a new peer\'s answer is run again elsewhere (any peer); a reliable one\'s is accepted unchecked unless sampled', () => {
    assert.deepEqual(decideSpot(input([ans('a', 1)])).decision, { action: 'rerun', exclude: ['a'] })
    const reliable = (p: string): boolean => p === 'a' || p === SELF
    assert.deepEqual(decideSpot(input([ans('a', 1)], { reliable })).decision, { action: 'accept', value: 1, checked: false })
    assert.deepEqual(decideSpot(input([ans('a', 1)], { reliable, sample: 0.05 })).decision, { action: 'rerun', exclude: ['a'] })
    // The coordinator's own answer is never sampled: it trusts itself.
    assert.deepEqual(decideSpot(input([ans(SELF, 1)], { sample: 0 })).decision, { action: 'accept', value: 1, checked: false })
  })

  test('two agreeing runs: accepted as checked, both peers agreed', () => {
    const v = decideSpot(input([ans('a', 7), ans('b', 7)]))
    assert.deepEqual(v.decision, { action: 'accept', value: 7, checked: true, peer: 'a' })
    assert.deepEqual(v.agreed, ['a', 'b'])
    assert.deepEqual(v.caught, [])
    assert.deepEqual(v.outcomes, ['agree'])
  })

  test('two runs that differ: a third on a trusted peer that gave neither', () => {
    const v = decideSpot(input([ans('a', 7), ans('b', 8)]))
    assert.deepEqual(v.decision, { action: 'rerun', exclude: ['a', 'b'], trustedOnly: true })
    assert.deepEqual(v.outcomes, ['mismatch'])
    assert.deepEqual(v.caught, [])
  })

  test('the coordinator\'s own run settles a difference at once', () => {
    const v = decideSpot(input([ans('a', 8), ans(SELF, 7)]))
    assert.deepEqual(v.decision, { action: 'accept', value: 7, checked: true, peer: SELF })
    assert.deepEqual(v.caught, ['a'])
    assert.deepEqual(v.outcomes, ['mismatch', 'settled'])
  })

  test('a trusted third run settles: the agreed value is used and the odd one out caught', () => {
    const reliable = (p: string): boolean => p === 't'
    const v = decideSpot(input([ans('a', 7), ans('b', 8), ans('t', 7)], { reliable }))
    assert.deepEqual(v.decision, { action: 'accept', value: 7, checked: true, peer: 'a' })
    assert.deepEqual(v.agreed, ['a', 't'])
    assert.deepEqual(v.caught, ['b'])
    assert.deepEqual(v.outcomes, ['settled'])
  })

  test('no value two peers (one trusted) agree on: more trusted runs up to the bound, then the job fails', () => {
    const reliable = (p: string): boolean => p === 't'
    const three = [ans('a', 7), ans('b', 8), ans('t', 9)]
    assert.deepEqual(decideSpot(input(three, { reliable })).decision, { action: 'rerun', exclude: ['a', 'b', 't'], trustedOnly: true })
    const v = decideSpot(input(three, { reliable, maxExtraRuns: 2 }))
    assert.equal(v.decision.action, 'reject')
    assert.match((v.decision as { reason: string }).reason, /3 runs on a, b, t .*at most 2 extra runs/)
    // Two untrusted peers agreeing against a trusted one do not win.
    assert.equal(decideSpot(input([ans('a', 7), ans('t', 8), ans('b', 7)], { reliable })).decision.action, 'rerun')
  })

  test('a peer answering twice (an earlier dispatch) counts once', () => {
    const v = decideSpot(input([ans('a', 7), ans('a', 7)]))
    assert.deepEqual(v.decision, { action: 'rerun', exclude: ['a'] })
  })
})

describe('sampling and options', () => {
  test('spotSample is deterministic per (seed, job, index), in [0, 1), and about uniform', () => {
    assert.equal(spotSample(1, 'job', 3), spotSample(1, 'job', 3))
    assert.notEqual(spotSample(1, 'job', 3), spotSample(2, 'job', 3))
    let below = 0
    for (let i = 0; i < 10_000; i++) {
      const s = spotSample(0, 'j' + String(i % 97), i)
      assert.ok(s >= 0 && s < 1)
      if (s < 0.1) below++
    }
    assert.ok(below > 800 && below < 1200, `${below} of 10000 below 0.1`)
  })

  test('options are validated with errors naming the field', () => {
    assert.deepEqual(resolveSpotOptions(undefined), { trustAfter: 10, checkFraction: 0.1, maxExtraRuns: 3, seed: 0, maxPeers: 4096 })
    for (const [field, value] of [['trustAfter', 0], ['checkFraction', 1.5], ['maxExtraRuns', 1], ['seed', -1], ['checkFraction', Number.NaN]] as const) {
      assert.throws(() => resolveSpotOptions({ [field]: value }), (err: any) => err.code === 'ERR_INVALID_OPTION' && err.field === field && err.message.includes(`options.${field}`))
    }
  })
})

/** The context the scheduler gives a policy for segment `index` of job `job`. */
function ctx (kind: JobKind<any, any>, job: string, index: number, answer: Answer, earlier: Answer[] = []): AnswerContext {
  return { kind, jobId: job, index, answer, earlier }
}

describe('createSpotCheck (state, trust, metrics)', () => {
  test('a peer earns trust after N agreeing results, then only a sample is checked; a mismatch resets it, reports it, and tells listeners', async () => {
    const registry = new Registry()
    const mismatches: string[] = []
    const distrusted = new Set<string>()
    const caught: string[] = []
    // Sample: segments with index 0 mod 4 are checked (checkFraction 0.25).
    const spot = createSpotCheck({
      selfId: SELF,
      registry,
      trust: { isTrusted: (p) => !distrusted.has(p), reportMismatch: (p) => { mismatches.push(p); distrusted.add(p) } },
      options: { trustAfter: 3, checkFraction: 0.25 },
      sample: (_job, index) => index % 4 === 0 ? 0 : 0.5
    })
    spot.onCaught?.((p) => caught.push(p))
    const metric = async (): Promise<Record<string, number>> => Object.fromEntries(((await registry.getSingleMetric('voike_spot_checks_total')?.get())?.values ?? []).map(v => [v.labels.status, v.value]))
    assert.deepEqual(await metric(), { agree: 0, mismatch: 0, settled: 0 }, 'every outcome starts at 0')

    // New: every answer of `a` is run again; b agrees each time.
    for (let i = 1; i <= 3; i++) {
      assert.equal(spot.decide(ctx(kindOf, 'j', i, ans('a', i))).action, 'rerun')
      assert.equal(spot.decide(ctx(kindOf, 'j', i, ans('b', i), [ans('a', i)])).action, 'accept')
    }
    assert.equal(spot.streak('a'), 3)
    assert.ok(spot.isReliable('a'))
    assert.ok(spot.isTrustedRunner?.('a'))
    // Reliable now: unsampled segments are accepted unchecked, sampled ones still run again.
    assert.deepEqual(spot.decide(ctx(kindOf, 'j', 5, ans('a', 5))), { action: 'accept', value: 5, checked: false })
    assert.deepEqual(spot.decide(ctx(kindOf, 'j', 8, ans('a', 8))), { action: 'rerun', exclude: ['a'] })
    // a lies on a sampled segment; b differs; the coordinator settles.
    assert.deepEqual(spot.decide(ctx(kindOf, 'j', 8, ans('b', 8), [ans('a', 99)])), { action: 'rerun', exclude: ['a', 'b'], trustedOnly: true })
    assert.deepEqual(spot.decide(ctx(kindOf, 'j', 8, ans(SELF, 8), [ans('a', 99), ans('b', 8)])), { action: 'accept', value: 8, checked: true, peer: 'b' })
    assert.deepEqual(mismatches, ['a'])
    assert.deepEqual(caught, ['a'])
    assert.equal(spot.streak('a'), 0)
    assert.equal(spot.isReliable('a'), false)
    assert.deepEqual(await metric(), { agree: 3, mismatch: 1, settled: 1 })
    // Caught: every answer is checked again.
    assert.equal(spot.decide(ctx(kindOf, 'j', 9, ans('a', 9))).action, 'rerun')
    spot.close()
    assert.equal(registry.getSingleMetric('voike_spot_checks_total'), undefined)
  })

  test('a peer the PTA distrusts is not reliable even with a streak', () => {
    let trusted = true
    const spot = createSpotCheck({ selfId: SELF, trust: { isTrusted: () => trusted, reportMismatch: () => {} }, options: { trustAfter: 1 } })
    spot.decide(ctx(kindOf, 'j', 0, ans('b', 1), [ans('a', 1)]))
    assert.ok(spot.isReliable('a'))
    trusted = false
    assert.equal(spot.isReliable('a'), false)
    assert.ok(spot.isReliable(SELF), 'the coordinator always is')
  })
})

describe('placement rules of a re-run', () => {
  test('placementRule: never an excluded peer; trustedOnly asks the policy', () => {
    const policy = { name: 'p', decide: () => ({ action: 'rerun' as const }), isTrustedRunner: (p: string) => p !== 'new' }
    assert.equal(placementRule({ action: 'rerun' }, policy), null)
    const rule = placementRule({ action: 'rerun', exclude: ['a'], trustedOnly: true }, policy)
    assert.ok(rule !== null)
    assert.equal(rule('a'), false)
    assert.equal(rule('new'), false)
    assert.equal(rule('t'), true)
  })

  test('placeTasks: a request no allowed peer has room for gets -1 and the next ones are still placed', () => {
    const peers = [{ peerId: 'a', credits: 2, inFlight: 0 }, { peerId: 'b', credits: 2, inFlight: 2 }]
    const onlyB = (p: string): boolean => p === 'b'
    const { chosen } = placeTasks(peers, [null, null], 0, [onlyB, null])
    assert.deepEqual(chosen, [-1, 0])
    const notA = (p: string): boolean => p !== 'a'
    assert.deepEqual(placeTasks([{ peerId: 'a', credits: 4, inFlight: 0 }, { peerId: 'b', credits: 4, inFlight: 3 }], [null], 0, [notA]).chosen, [1], 'the rule wins over load')
  })
})

describe('verification (pure)', () => {
  const kind = { name: 'fib', deterministic: true }
  const seg = (index: number, node: string | null, checked: boolean, status = 'done'): { index: number, status: string, node: string | null, checked: boolean } => ({ index, status, node, checked })

  test('verified when every segment was compared or run by the coordinator; unverified lists who vouched alone', () => {
    const v = verificationOf(kind, 'c', [seg(0, 'a', true), seg(1, 'c', false)])
    assert.equal(v.status, 'verified')
    assert.equal(v.checkedSegments, 1)
    const u = verificationOf(kind, 'c', [seg(0, 'a', true), seg(1, 'b', false), seg(2, 'b', false), seg(3, null, false, 'pending')])
    assert.equal(u.status, 'unverified')
    assert.deepEqual(u.uncheckedBy, { b: [1, 2] })
    assert.match(u.reason, /2 of 4 segments accepted on one peer's word .*: b/)
    assert.match(verificationOf({ name: 'x', deterministic: false }, 'c', [seg(0, 'a', false)]).reason, /not deterministic/)
  })

  test('markCaught: the caught peer\'s unchecked segments become suspect; other peers change nothing', () => {
    const u = verificationOf(kind, 'c', [seg(0, 'a', false), seg(1, 'b', false), seg(2, 'a', true)])
    assert.equal(markCaught(u, 'z'), undefined)
    const s = markCaught(u, 'a')
    assert.ok(s !== undefined)
    assert.equal(s.status, 'suspect')
    assert.deepEqual(s.suspectSegments, [0])
    assert.deepEqual(s.caughtPeers, ['a'])
    assert.match(s.reason, /segments 0 were accepted unchecked from a/)
    assert.equal(markCaught(s, 'a'), undefined, 'marked once')
    const both = markCaught(s, 'b')
    assert.deepEqual(both?.suspectSegments, [0, 1])
    assert.deepEqual(parseVerification(JSON.parse(JSON.stringify(both))), both)
    assert.equal(parseVerification({ status: 'fine' }), undefined)
  })
})
