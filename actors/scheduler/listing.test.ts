/**
 * The pure parts of cluster-wide reads: job ids that name their coordinator (job-id.ts) and the
 * merge, cap and check of members' job lists (listing.ts).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { coordinatorOfJobId, coordinatorTag, JOB_ID_RE, newJobId, tagOfJobId } from './job-id.js'
import { capReply, ListMerger, mergeJobLists, parseListReply } from './listing.js'
import type { JobView } from './api.js'

const A = '12D3KooWHgK3YkmHoeDsujVgSyHnSCcQParUdDk2b9tn2Cbf1Nwn'
const B = '12D3KooWQmx1vR9y8mz1Ug4gzkhnQ3D6t4ZgZEoJqFqYyWAbCdEf'

function view (id: string, over: Partial<JobView> = {}): JobView {
  return { id, kind: 'fib', status: 'succeeded', error: null, result: null, params: {}, coordinator: A, createdAtMs: 1000, finishedAtMs: 2000, segmentsDone: 1, segmentsTotal: 1, segments: [], ...over }
}

describe('job ids', () => {
  it('carry the coordinator\'s short id and stay valid ids', () => {
    for (let i = 0; i < 200; i++) {
      const id = newJobId(A)
      assert.match(id, JOB_ID_RE)
      assert.ok(id.startsWith('2Cbf1Nwn-'), id)
      assert.equal(tagOfJobId(id), '2Cbf1Nwn')
      assert.notEqual(id[0], '-', 'never starts like a flag')
    }
    assert.notEqual(newJobId(A), newJobId(A))
    // Test peer ids with other characters still give URL-safe ids.
    assert.match(newJobId('peer:1.x'), JOB_ID_RE)
    assert.equal(coordinatorTag('peer:1.x'), 'peer_1_x')
  })

  it('name their coordinator only when exactly one member has the tag', () => {
    const members = [{ peerId: A }, { peerId: B }]
    assert.equal(coordinatorOfJobId(newJobId(B), members)?.peerId, B)
    assert.equal(coordinatorOfJobId(newJobId('12D3KooWsomeoneElse1234'), members), undefined)
    // Older ids (22 characters, no tag) and made-up ones name nobody.
    assert.equal(coordinatorOfJobId('iaztVZjs9ti2fOCo-AuNew', members), undefined)
    assert.equal(coordinatorOfJobId('no-such-job', members), undefined)
    const twins = [{ peerId: 'x' + A.slice(1) }, { peerId: A }]
    assert.equal(coordinatorOfJobId(newJobId(A), twins), undefined)
  })
})

describe('cluster job lists', () => {
  it('merge: each job once, the coordinator\'s copy first, else the one furthest along; newest first; limited', () => {
    const stale = view('j1', { status: 'running', segmentsDone: 1, segmentsTotal: 4, coordinator: B, createdAtMs: 5 })
    const fresh = view('j1', { status: 'running', segmentsDone: 3, segmentsTotal: 4, coordinator: B, createdAtMs: 5 })
    const merged = mergeJobLists([
      { from: A, jobs: [view('j2', { createdAtMs: 9 }), stale] },
      { from: B, jobs: [fresh, view('j3', { createdAtMs: 7, coordinator: B })] }
    ], 10)
    assert.deepEqual(merged.map(j => j.id), ['j2', 'j3', 'j1'])
    assert.equal(merged[2].segmentsDone, 3)
    // A copy from a non-coordinator never replaces the coordinator's, even if it looks further along.
    const own = mergeJobLists([{ from: B, jobs: [stale] }, { from: A, jobs: [view('j1', { status: 'succeeded', coordinator: B, createdAtMs: 5 })] }], 10)
    assert.equal(own[0].status, 'running')
    // Ties in time: id descending, as the stores order them.
    assert.deepEqual(mergeJobLists([{ from: A, jobs: [view('a'), view('c'), view('b')] }], 2).map(j => j.id), ['c', 'b'])
  })

  it('merging as replies arrive keeps only `limit` jobs and gives the same list as merging all at once', (t) => {
    // Seeded: 20 members with 30 jobs each, created at pseudo-random times.
    const SEED = 9
    t.diagnostic(`seed ${SEED}`)
    let seed = SEED
    const rnd = (): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed }
    const lists = Array.from({ length: 20 }, (_, m) => ({ from: `p${m}`, jobs: Array.from({ length: 30 }, (_, i) => view(`m${m}j${i}`, { coordinator: `p${m}`, createdAtMs: rnd() % 5000 })) }))
    const merger = new ListMerger(25)
    for (const l of lists) {
      merger.add(l.from, l.jobs)
      assert.ok(merger.result().length <= 25)
    }
    const all = lists.flatMap(l => l.jobs).sort((a, b) => b.createdAtMs - a.createdAtMs || (a.id < b.id ? 1 : -1)).slice(0, 25)
    assert.deepEqual(merger.result().map(j => j.id), all.map(j => j.id))
    assert.deepEqual(mergeJobLists(lists, 25).map(j => j.id), all.map(j => j.id))
  })

  it('replies are cut to a byte budget and marked truncated', () => {
    const jobs = Array.from({ length: 50 }, (_, i) => view(`j${i}`, { result: 'x'.repeat(1000) }))
    const r = capReply(jobs, 10_000)
    assert.ok(r.truncated)
    assert.ok(r.jobs.length > 0 && r.jobs.length < 50)
    assert.deepEqual(capReply(jobs.slice(0, 2), 10_000), { jobs: jobs.slice(0, 2), truncated: false })
  })

  it('replies from the wire are checked', () => {
    assert.deepEqual(parseListReply({ jobs: [view('j1')], truncated: false }), { jobs: [view('j1')], truncated: false })
    for (const bad of [null, 1, {}, { jobs: 'x', truncated: false }, { jobs: [view('j1')] }, { jobs: [{ id: 'j1' }], truncated: false }, { jobs: [view('bad id!')], truncated: false }, { jobs: Array.from({ length: 1001 }, (_, i) => view(`j${i}`)), truncated: false }]) {
      assert.equal(parseListReply(bad), null, JSON.stringify(bad)?.slice(0, 80))
    }
  })
})
