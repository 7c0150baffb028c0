import '../../config/polyfill.js'
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { silentLogger } from '../../config/logger.js'
import type { JobPatch, JobRecord, JobStore, MemberRecord, SegmentRecord, SegmentUpdate, WriteCondition } from '../../store/types.js'
import { fibKind } from '../kinds/fib/job.js'
import { MemberTable } from '../membership/table.js'
import { checkTaskKinds, createKindRegistry, valuesEqual, type JobKind } from './kinds.js'
import { InFlightLedger } from './ledger.js'
import { LIMITS, resolveLimits } from './limits.js'
import { WriteBehind } from './persistence.js'
import { firstValidWins } from './policy.js'
import { loadJob } from './resume.js'
import { newJobState, newSegState, pickPending, type InFlight, type JobState } from './state.js'
import { Takeover } from './takeover.js'
import { isJobView, viewFromStore, viewOf } from './views.js'

function record (id: string, over: Partial<JobRecord> = {}): JobRecord {
  return { id, kind: 'fib', status: 'running', params: { n: 100, segments: 4 }, result: null, error: null, coordinator: 'self', createdAtMs: 1, updatedAtMs: 1, finishedAtMs: null, ...over }
}

function member (peerId: string, over: Partial<MemberRecord> = {}): MemberRecord {
  return { peerId, addrs: [], cores: 1, memoryBytes: 1, version: 't', startedAtMs: 0, status: 'alive', lastSeenMs: 0, leftAtMs: null, isGenesis: false, host: '', ...over }
}

/** A fib job of `n` in `segments`, with its segment states built (as activate does). */
function activeJob (id: string, n = 100, segments = 4): JobState {
  const params = { n, segments }
  const job = newJobState(record(id, { params }), fibKind, params, segments)
  job.segs = fibKind.split(params).map((d, i) => newSegState(i, d))
  job.queue.push(...job.segs)
  return job
}

describe('limits', () => {
  test('defaults come from the one table; bad and unknown limits name limits.<name>', { timeout: 60_000 }, () => {
    const l = resolveLimits(undefined)
    for (const [k, r] of Object.entries(LIMITS)) assert.equal(l[k as keyof typeof l], r.default, k)
    assert.equal(resolveLimits({ maxAttempts: 7 }).maxAttempts, 7)
    assert.throws(() => resolveLimits({ maxAttempts: 0 }), (e: { code?: string, field?: string, message: string }) => e.code === 'ERR_INVALID_OPTION' && e.field === 'limits.maxAttempts' && /1\.\.100/.test(e.message))
    assert.throws(() => resolveLimits({ nope: 1 } as never), /limits\.nope is not a known option/)
    assert.throws(() => resolveLimits(5 as never), /limits must be an object/)
  })
})

describe('state', () => {
  test('pickPending takes one segment of each active job in turn, then goes round again', { timeout: 60_000 }, () => {
    const a = activeJob('a')
    const b = activeJob('b')
    const { picks, nextRr } = pickPending([a, b], 1, 5)
    assert.deepEqual(picks.map(p => `${p.job.id}${p.seg.index}`), ['b0', 'a0', 'b1', 'a1', 'b2'])
    assert.equal(nextRr, 0)
    // Running segments are skipped; a drained queue gives nothing.
    const c = activeJob('c', 10, 2)
    const all = pickPending([c], 0, 10).picks
    assert.equal(all.length, 2)
    assert.equal(pickPending([c], 0, 10).picks.length, 0)
  })
})

describe('views', () => {
  test('a segment prints index, the kind\'s fields, then status, node, attempts, lost, ms (the contract\'s order)', { timeout: 60_000 }, () => {
    const job = activeJob('j', 100, 2)
    const v = viewOf(job)
    assert.deepEqual(Object.keys(v.segments[0]), ['index', 'start', 'end', 'status', 'node', 'attempts', 'lost', 'ms'])
    assert.deepEqual(v.segments.map(s => [s.start, s.end]), fibKind.split({ n: 100, segments: 2 }).map(d => [d.start, d.end]))
    assert.ok(isJobView(v, 'j'))
    assert.ok(!isJobView({ ...v, status: 'bogus' }, 'j'))
    assert.ok(!isJobView(v, 'other'))
  })

  test('a stored job of a kind this node does not know shows its descriptor\'s own fields', { timeout: 60_000 }, () => {
    const segs: SegmentRecord[] = [{ jobId: 'x', index: 0, descriptor: { from: 'a', to: 'b' }, status: 'done', node: 'p', attempts: 1, seq: 1, ms: 2, result: null },
      { jobId: 'x', index: 1, descriptor: 7, status: 'pending', node: null, attempts: 0, seq: 0, ms: null, result: null }]
    const v = viewFromStore(createKindRegistry([fibKind]), record('x', { kind: 'elsewhere' }), segs)
    assert.deepEqual(v.segments[0], { index: 0, from: 'a', to: 'b', status: 'done', node: 'p', attempts: 1, lost: 0, ms: 2 })
    assert.deepEqual(v.segments[1], { index: 1, descriptor: 7, status: 'pending', node: null, attempts: 0, lost: 0, ms: null })
    assert.equal(v.segmentsDone, 1)
  })
})

describe('kinds', () => {
  test('the registry rejects malformed kinds; the startup check names task kinds the workers lack', { timeout: 60_000 }, () => {
    assert.throws(() => createKindRegistry([]), /non-empty/)
    assert.throws(() => createKindRegistry([fibKind, fibKind]), /registered twice/)
    assert.throws(() => createKindRegistry([{ ...fibKind, taskKinds: [] }]), /taskKinds/)
    assert.throws(() => createKindRegistry([{ ...fibKind, describe: undefined } as unknown as JobKind]), /describe must be a function/)
    assert.throws(() => createKindRegistry([{ ...fibKind, deterministic: 'yes' } as unknown as JobKind]), /deterministic/)
    checkTaskKinds([fibKind], ['noop', 'fib-segment'])
    assert.throws(() => checkTaskKinds([fibKind], ['noop']), /fib → fib-segment/)
  })

  test('fib checks stored descriptors, and compares values with equal', { timeout: 60_000 }, () => {
    assert.deepEqual(fibKind.checkDescriptor({ start: 3, end: 9, extra: 1 }), { start: 3, end: 9 })
    for (const bad of [null, {}, { start: 5, end: 4 }, { start: -1, end: 2 }, { start: 0, end: 1.5 }]) assert.throws(() => fibKind.checkDescriptor(bad), /descriptor/)
    assert.ok(valuesEqual(fibKind, { sumMod61: '1' }, { sumMod61: '1' }))
    assert.ok(!valuesEqual(fibKind, { sumMod61: '1', digits: 2, sha256: 'a' }, { sumMod61: '1', digits: 3, sha256: 'a' }))
    assert.ok(valuesEqual({ ...fibKind, equal: undefined }, { a: [1] }, { a: [1] }), 'JSON equality without equal')
    assert.equal(fibKind.deterministic, true)
  })

  test('the default result policy accepts the first valid answer', { timeout: 60_000 }, () => {
    const d = firstValidWins.decide({ kind: fibKind, jobId: 'j', index: 0, answer: { peer: 'p', value: 42 }, earlier: [] })
    assert.deepEqual(d, { action: 'accept', value: 42 })
  })
})

describe('resume', () => {
  test('loadJob keeps done segments with a usable value and resets the others', { timeout: 60_000 }, () => {
    const params = { n: 10, segments: 2 }
    const d = fibKind.split(params)
    const segs: SegmentRecord[] = [
      { jobId: 'r', index: 0, descriptor: d[0], status: 'done', node: 'p', attempts: 1, seq: 3, ms: 1, result: { sumMod61: '7' } },
      { jobId: 'r', index: 1, descriptor: d[1], status: 'running', node: 'q', attempts: 2, seq: 5, ms: null, result: null }
    ]
    const { job, resets } = loadJob(createKindRegistry([fibKind]), record('r', { params }), segs, silentLogger)
    assert.equal(job.done, 1)
    assert.deepEqual(resets, [1])
    assert.equal(job.segs?.[1].attempts, 2)
    assert.ok((job.segs?.[1].seq ?? 0) > 5, 'seq continues above the stored one')
    // A stored value the kind rejects runs again; a bad descriptor makes the job unresumable.
    const broken = segs.map(s => ({ ...s, result: s.index === 0 ? { sumMod61: 'x' } : null }))
    assert.deepEqual(loadJob(createKindRegistry([fibKind]), record('r', { params }), broken, silentLogger).resets, [0, 1])
    const badDescriptor = segs.map(s => ({ ...s, descriptor: { start: 9, end: 1 } }))
    assert.throws(() => loadJob(createKindRegistry([fibKind]), record('r', { params }), badDescriptor, silentLogger), /segment 0: fib segment descriptor/)
  })
})

describe('ledger', () => {
  test('members on one machine share its cores; a peer on hold gets nothing new; idle peers are forgotten', { timeout: 60_000 }, () => {
    const table = new MemberTable('self')
    table.put(member('self', { cores: 4, host: 'h' }))
    table.put(member('b', { cores: 4, host: 'h' }))
    table.put(member('c', { cores: 2, status: 'suspect' }))
    const ledger = new InFlightLedger('self', { creditsPerCore: 2, maxCreditsPerPeer: 64 })
    const loads = ledger.loads(table, 1000)
    assert.deepEqual(loads.map(l => [l.peerId, l.host, l.hostCap]), [['self', 'h', 4], ['b', 'h', 4]])
    ledger.state('b').busy.holdUntilMs = 2000
    assert.deepEqual(ledger.loads(table, 1000).map(l => l.peerId), ['self'])
    const job = activeJob('j')
    const seg = job.segs?.[0]
    assert.ok(seg !== undefined)
    const f: InFlight = { taskId: 'j/0/1', peer: 'b', target: 'worker', timeoutMs: 10, deadlineMs: 1500, job, seg }
    seg.current = f
    ledger.add(f)
    assert.deepEqual(ledger.counts(), { inFlight: 1, inFlightByPeer: { b: 1 } })
    assert.deepEqual(ledger.sweep(1400, () => false), [])
    assert.deepEqual(ledger.sweep(1500, () => false), [f])
    ledger.detach(f)
    assert.equal(seg.current, null)
    ledger.sweep(3000, () => false)
    assert.equal(ledger.has('b'), false, 'idle and no longer held: forgotten')
  })
})

/** A JobStore that records writes and fences the jobs in `fenced`; `failures` writes fail first. */
function fakeStore (fenced: Set<string>, failures = 0): JobStore & { log: string[] } {
  const log: string[] = []
  let fail = failures
  const no = async (): Promise<never> => { throw new Error('not used') }
  return {
    log,
    createJob: no, getJob: no, listJobs: no, listUnfinishedJobs: async () => [], claimJobs: async () => [], pruneJobs: no,
    async updateSegments (updates: SegmentUpdate[], opts?: WriteCondition) {
      if (fail-- > 0) throw new Error('store down')
      assert.equal(opts?.coordinator, 'self')
      for (const u of updates) if (!fenced.has(u.jobId)) log.push(`seg ${u.jobId}/${u.index} ${JSON.stringify(u.patch)}`)
      return [...new Set(updates.map(u => u.jobId))].filter(id => fenced.has(id)).sort()
    },
    async updateJob (id: string, patch: JobPatch) {
      if (fenced.has(id)) return false
      log.push(`job ${id} ${String(patch.status)}`)
      return true
    }
  }
}

describe('write-behind', () => {
  test('changes are coalesced per segment, segments are written before jobs, fenced jobs are handed over', { timeout: 60_000 }, async () => {
    const fenced = new Set(['gone'])
    const store = fakeStore(fenced)
    const deposed: string[] = []
    const w = new WriteBehind({ store, selfId: 'self', flushMs: 10_000, log: silentLogger, onFenced: (id) => { deposed.push(id) }, isClosed: () => false })
    w.queueJob('j', { status: 'succeeded' })
    w.queueSegment('j', 0, { status: 'running', attempts: 1 })
    w.queueSegment('j', 0, { status: 'done', ms: 3 })
    w.queueSegment('gone', 0, { status: 'done' })
    w.queueJob('gone', { status: 'failed' })
    assert.equal(w.pendingSegments(), 2)
    assert.equal(await w.flushNow(), true)
    assert.deepEqual(store.log, ['seg j/0 {"status":"done","attempts":1,"ms":3}', 'job j succeeded'])
    assert.deepEqual(deposed, ['gone'])
    assert.equal(w.pendingSegments(), 0)
  })

  test('a failed write is put back under newer changes and retried', { timeout: 60_000 }, async () => {
    const store = fakeStore(new Set(), 1)
    const w = new WriteBehind({ store, selfId: 'self', flushMs: 10_000, log: silentLogger, onFenced: () => {}, isClosed: () => true })
    w.queueSegment('j', 0, { status: 'running', node: 'a' })
    assert.equal(await w.flushNow(), false)
    w.queueSegment('j', 0, { node: 'b' })
    assert.equal(await w.flushNow(), true)
    assert.deepEqual(store.log, ['seg j/0 {"status":"running","node":"b"}'])
  })
})

describe('takeover', () => {
  test('only the lowest alive member claims, and only members gone for good', { timeout: 60_000 }, async () => {
    const claimed: string[] = []
    const loaded: string[] = []
    const table = new MemberTable('b')
    for (const id of ['b', 'c']) table.put(member(id))
    table.put(member('a', { status: 'dead', leftAtMs: 5 }))
    table.put(member('d', { status: 'dead' }))
    const store = { ...fakeStore(new Set()), claimJobs: async (from: string, to: string) => { claimed.push(`${from}->${to}`); return [record(`${from}-job`, { coordinator: to })] } }
    const t = new Takeover({
      store, table, selfId: 'b', takeoverAfterMs: 60_000, log: silentLogger, isClosed: () => false, resuming: () => undefined,
      load: async (records) => { loaded.push(...records.map(r => r.id)); return { rebuilt: records.length, failed: 0 } },
      isLoaded: () => false
    })
    assert.equal(t.deadTracked(), 2)
    t.maybeTakeOver(Date.now())
    await t.wait()
    // a left (gone for good); d is dead but not for takeoverAfterMs yet.
    assert.deepEqual(claimed, ['a->b'])
    assert.deepEqual(loaded, ['a-job'])
    t.maybeTakeOver(Date.now() + 60_000)
    await t.wait()
    assert.deepEqual(claimed, ['a->b', 'd->b'], 'a is not claimed twice')
    // An alive member with a lower id is the claimer: this node claims nothing.
    table.put(member('a'))
    t.onMemberChange('a', 'alive')
    table.put(member('e', { status: 'dead', leftAtMs: 1 }))
    t.onMemberChange('e', 'dead')
    t.maybeTakeOver(Date.now())
    await t.wait()
    assert.equal(claimed.length, 2)
  })
})
