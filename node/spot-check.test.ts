import './polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FIB_REFERENCE } from '../actors/kinds/fib/reference.js'
import type { JobView } from '../actors/scheduler/api.js'
import { Cluster, getJson, postJson, runCli, waitFor, type NodeProc } from './testkit.js'

const REF = Object.fromEntries(FIB_REFERENCE.map(r => [r.n, r]))
const FIB_SEGMENT_PATH = new URL('../../vasm/examples/fib-segment.vasm', import.meta.url)
const P61 = '2305843009213693951'

interface TrustPeer { peerId: string, trust: number, trusted: boolean, mismatches: number }

async function trustOf (at: NodeProc, peerId: string): Promise<TrustPeer | undefined> {
  const res = await getJson<{ peers: TrustPeer[] }>(at.ready.http, '/trust/status')
  return res.status === 200 ? res.body.peers.find(p => p.peerId === peerId) : undefined
}

function isExact (job: JobView): boolean {
  const params = job.params as { n: number }
  const ref = REF[params.n]
  return job.status === 'succeeded' && JSON.stringify(job.result) === JSON.stringify({ n: ref.n, digits: ref.digits, sha256: ref.sha256, sumMod61: ref.sumMod61 })
}

/** Submits over HTTP and waits (polling the job) until it ends. */
async function runJob (at: NodeProc, n: number, segments: number): Promise<JobView> {
  const sub = await postJson<JobView>(at.ready.http, '/grid/jobs', { kind: 'fib', params: { n, segments } })
  assert.equal(sub.status, 201, JSON.stringify(sub.body))
  return await waitFor(async () => {
    const res = await getJson<JobView>(at.ready.http, `/grid/jobs/${sub.body.id}`)
    return res.status === 200 && ['succeeded', 'failed', 'cancelled'].includes(res.body.status) ? res.body : false
  }, `job ${sub.body.id} ends`, 60_000, 50)
}

async function spotCounts (at: NodeProc): Promise<Record<string, number>> {
  const m = await getJson<string>(at.ready.http, '/metrics')
  const out: Record<string, number> = {}
  for (const [, outcome, value] of m.body.matchAll(/^voike_spot_checks_total\{status="(\w+)"\} (\d+)$/gm)) out[outcome] = Number(value)
  return out
}

test('four nodes, one corrupting every result: every fib job exact, that node\'s trust below 0.65, verification shown by HTTP, gRPC and the CLI', { timeout: 240_000 }, async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const g = await c.start('genesis')
  const a = await c.start('node')
  const b = await c.start('node')
  const liar = await c.start('node', { name: 'liar', env: { VOIKE_CHAOS_CORRUPT_RESULTS: '1' } })
  await c.waitAlive(g, 4)
  assert.deepEqual(await spotCounts(g), { agree: 0, mismatch: 0, settled: 0 }, 'the outcomes start at 0')

  // First, while the liar is new and gets work: VASM (deterministic too): the fib-segment program mapped over a range, reduced mod 2^61 − 1.
  const vasm = await runCli(['job', 'submit', 'vasm', '--program', FIB_SEGMENT_PATH.pathname, '--range', '0:100000', '--segments', '8',
    '--reduce', `summod:${P61}`, '--wait', '--json', '--api', g.ready.api])
  assert.equal(vasm.code, 0, vasm.stderr)
  const vjob = JSON.parse(vasm.stdout) as JobView
  assert.equal((vjob.result as { value: string }).value, REF[100000].sumMod61, 'the VASM job is exact')
  assert.equal(vjob.verification?.uncheckedBy[liar.ready.peerId], undefined)
  const jobs: JobView[] = []
  for (const [n, segments] of [[100000, 8], [5000, 4], [100000, 12], [5000, 6]] as const) {
    const job = await runJob(g, n, segments)
    assert.ok(isExact(job), `job ${job.id} (n=${n}) exact: ${JSON.stringify(job.result)} ${String(job.error)}`)
    assert.ok(job.verification !== undefined, 'the job shows its verification')
    assert.notEqual(job.verification.status, 'suspect')
    assert.equal(job.verification.uncheckedBy[liar.ready.peerId], undefined, 'nothing taken on the liar\'s word')
    jobs.push(job)
  }
  const lt = await waitFor(async () => { const p = await trustOf(g, liar.ready.peerId); return p !== undefined && p.trust < 0.65 ? p : false }, 'the liar distrusted', 30_000, 100)
  assert.equal(lt.trusted, false)
  assert.ok(lt.mismatches > 0)
  for (const honest of [a, b]) {
    const p = await trustOf(g, honest.ready.peerId)
    assert.ok(p === undefined || p.trusted, `${honest.name} still trusted (${JSON.stringify(p)})`)
  }
  const counts = await spotCounts(g)
  assert.ok(counts.mismatch >= 1 && counts.settled >= 1, JSON.stringify(counts))

  // The CLI (gRPC) shows the verification too, in JSON and in text.
  const got = await runCli(['job', 'get', jobs[0].id, '--json', '--api', g.ready.api])
  assert.equal(got.code, 0, got.stderr)
  const cliJob = JSON.parse(got.stdout) as JobView
  assert.deepEqual(cliJob.verification, jobs[0].verification)
  const text = await runCli(['job', 'get', jobs[0].id, '--api', g.ready.api])
  assert.match(text.stdout, /^verification: (verified|unverified) \(/m)
})

test('a node corrupting 30% of its results after earning trust is caught; every job it touched is exact or marked suspect', { timeout: 300_000 }, async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  // The coordinator: trust after 3 agreeing results, then 30% checked (fixed seed: the run repeats).
  const spot = { VOIKE_SPOT_TRUST_AFTER: '3', VOIKE_SPOT_CHECK_FRACTION: '0.3', VOIKE_SPOT_SEED: '11' }
  const g = await c.start('genesis', { env: spot })
  await c.start('node')
  await c.start('node')
  // Honest for its first 12 results, then 30% wrong.
  const liar = await c.start('node', { name: 'liar', env: { VOIKE_CHAOS_CORRUPT_RESULTS: '0.3', VOIKE_CHAOS_CORRUPT_AFTER: '12', VOIKE_CHAOS_SEED: '5' } })
  await c.waitAlive(g, 4)
  const L = liar.ready.peerId

  const jobs: JobView[] = []
  let caught = false
  let tookWord = false
  for (let k = 0; k < 40 && !caught; k++) {
    const job = await runJob(g, 100000, 16)
    assert.equal(job.status, 'succeeded', String(job.error))
    tookWord ||= (job.verification?.uncheckedBy[L]?.length ?? 0) > 0
    jobs.push(job)
    caught = (await trustOf(g, L))?.trusted === false
  }
  assert.ok(tookWord, 'the liar earned trust: some segments were taken on its word')
  assert.ok(caught, `the liar was caught within ${jobs.length} jobs`)
  const lt = await trustOf(g, L)
  assert.ok(lt !== undefined && lt.trust < 0.65, JSON.stringify(lt))

  // Every job: exact, or marked suspect naming the liar (never silently left as checked).
  let suspect = 0
  await waitFor(async () => {
    suspect = 0
    for (const j of jobs) {
      const res = await getJson<JobView>(g.ready.http, `/grid/jobs/${j.id}`)
      if (res.status !== 200) return false
      const v = res.body.verification
      if (v?.status === 'suspect') { if (!v.caughtPeers.includes(L)) return false; suspect++; continue }
      if (!isExact(res.body)) return false
      // A job that took the liar's word and is not marked would be left as if checked.
      if ((v?.uncheckedBy[L]?.length ?? 0) > 0) return false
    }
    return true
  }, 'every job exact or suspect', 30_000, 200)
  const counts = await spotCounts(g)
  console.log(`jobs ${jobs.length}, suspect ${suspect}, spot checks ${JSON.stringify(counts)}`)
  assert.ok(counts.settled >= 1, JSON.stringify(counts))
})
