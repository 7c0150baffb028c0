/**
 * The metrics a Prometheus user scrapes from real nodes (3 processes): conventions that
 * `promtool check metrics` and the built-in lint enforce, the families the README lists, and
 * which node counts what (jobs where they are coordinated, tasks where they run).
 */
import './polyfill.js'
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Cluster, getJson, postJson, waitFor, type NodeProc } from './testkit.js'
import { checkExposition, findPromtool } from './metrics-check.js'
import { parseSamples } from './metrics-lint.js'
import type { JobView } from '../actors/scheduler/api.js'

type Samples = ReturnType<typeof parseSamples>

async function scrape (node: NodeProc): Promise<{ text: string, samples: Samples }> {
  const res = await getJson<string>(node.ready.http, '/metrics')
  assert.equal(res.status, 200)
  return { text: res.body, samples: parseSamples(res.body) }
}

/** The value of the one sample with exactly these labels, or undefined. */
function value (samples: Samples, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels)
  const hits = samples.filter(s => s.name === name && Object.keys(s.labels).length === want.length && want.every(([k, v]) => s.labels[k] === v))
  assert.ok(hits.length <= 1, `${name} ${JSON.stringify(labels)} appears ${hits.length} times`)
  return hits[0]?.value
}

function must (samples: Samples, name: string, labels: Record<string, string> = {}): number {
  const v = value(samples, name, labels)
  assert.notEqual(v, undefined, `no sample ${name}${JSON.stringify(labels)}; have: ${samples.filter(s => s.name.startsWith(name)).map(s => JSON.stringify(s)).join(' ') || 'none'}`)
  return v as number
}

async function submit (node: NodeProc, params: Record<string, number>): Promise<string> {
  const res = await postJson<JobView>(node.ready.http, '/grid/jobs', { kind: 'fib', params })
  assert.equal(res.status, 201, JSON.stringify(res.body))
  return res.body.id
}

async function ended (node: NodeProc, id: string): Promise<JobView> {
  return await waitFor(async () => {
    const j = (await getJson<JobView>(node.ready.http, `/grid/jobs/${id}`)).body
    return j.status === 'succeeded' || j.status === 'failed' || j.status === 'cancelled' ? j : undefined
  }, `job ${id} ended`, 120_000, 50)
}

const FINAL = ['succeeded', 'failed', 'cancelled']
const TASK_OUTCOMES = ['ok', 'error', 'timeout', 'busy', 'lost', 'ignored']

describe('metrics of a 3-node grid', { timeout: 300_000 }, () => {
  const c = new Cluster()
  let g: NodeProc, a: NodeProc, b: NodeProc
  before(async () => {
    g = await c.start('genesis')
    a = await c.start('node', { name: 'node-a' })
    b = await c.start('node', { name: 'node-b' })
    for (const n of [g, a, b]) await c.waitAlive(n, 3)
  })
  after(async () => { await c.stopAll() })

  test(`every node's /metrics passes ${findPromtool() !== undefined ? 'promtool check metrics and ' : ''}the built-in lint; known series start at 0; node and build info`, { timeout: 60_000 }, async () => {
    for (const [node, role] of [[g, 'genesis'], [a, 'node'], [b, 'node']] as const) {
      const { text, samples } = await scrape(node)
      assert.deepEqual(await checkExposition(text), [], `${node.name}'s /metrics`)
      // Counters with known labels exist at 0 before the first event, so rate() works at once.
      assert.equal(must(samples, 'voike_jobs_submitted_total', { kind: 'fib' }), 0)
      for (const status of FINAL) assert.equal(must(samples, 'voike_jobs_finished_total', { kind: 'fib', status }), 0)
      assert.equal(must(samples, 'voike_jobs_running', { kind: 'fib' }), 0)
      assert.equal(must(samples, 'voike_jobs_fenced_total', { kind: 'fib' }), 0)
      for (const status of TASK_OUTCOMES) assert.equal(must(samples, 'voike_tasks_total', { kind: 'fib-segment', status }), 0)
      for (const status of ['ok', 'error']) assert.equal(must(samples, 'voike_worker_tasks_total', { kind: 'fib-segment', status }), 0)
      assert.equal(must(samples, 'voike_task_duration_seconds_count', { kind: 'fib-segment' }), 0)
      assert.equal(must(samples, 'voike_actor_restarts_total', { actor: 'scheduler' }), 0)
      for (const direction of ['in', 'out']) assert.ok(value(samples, 'voike_p2p_frames_total', { direction }) !== undefined)
      // One series per node to join peer-labelled series with the scrape target.
      assert.equal(must(samples, 'voike_node_info', { peer_id: node.ready.peerId, name: node.name, role, version: '0.1.0' }), 1)
      assert.equal(must(samples, 'voike_build_info', { version: '0.1.0', node: process.version }), 1)
      assert.ok(samples.some(s => s.name === 'voike_worker_pool_utilization_ratio'))
      // One label name per idea: outcomes are `status` everywhere.
      for (const synonym of ['result', 'outcome']) {
        assert.ok(!samples.some(s => s.name.startsWith('voike_') && synonym in s.labels), `a voike_ series uses the label "${synonym}" (outcomes are "status")`)
      }
      assert.ok(!samples.some(s => s.name.startsWith('voike_') && 'peer' in s.labels), 'peers are labelled peer_id, as in voike_node_info')
      assert.ok(!samples.some(s => s.labels.status === 'submitted'), 'a series mixes "submitted" with final states')
    }
  })

  test('jobs: submitted and finished counted apart, a running gauge, histograms for tasks, asks and p2p bytes', { timeout: 180_000 }, async () => {
    const id = await submit(a, { n: 20000, segments: 6 })
    const job = await ended(a, id)
    assert.equal(job.status, 'succeeded', job.error ?? '')
    const { text, samples } = await scrape(a)
    assert.deepEqual(await checkExposition(text), [], "node-a's /metrics after a job")
    assert.equal(must(samples, 'voike_jobs_submitted_total', { kind: 'fib' }), 1)
    assert.equal(must(samples, 'voike_jobs_finished_total', { kind: 'fib', status: 'succeeded' }), 1)
    assert.equal(must(samples, 'voike_job_duration_seconds_count', { kind: 'fib' }), 1)
    assert.ok(must(samples, 'voike_tasks_total', { kind: 'fib-segment', status: 'ok' }) >= 6)
    assert.ok(!samples.some(s => s.labels.status === 'submitted'))
    // The asks of the join and the frames of the job are measured.
    assert.ok(samples.some(s => s.name === 'voike_actor_ask_duration_seconds_count' && s.value >= 1), 'ask latency histogram')
    for (const direction of ['in', 'out']) {
      assert.ok(must(samples, 'voike_p2p_frame_size_bytes_count', { direction }) >= 1, `frames ${direction}`)
      assert.ok(must(samples, 'voike_p2p_frame_size_bytes_sum', { direction }) > 0, `bytes ${direction}`)
    }
    const ran = await Promise.all([g, a, b].map(async n => value((await scrape(n)).samples, 'voike_task_duration_seconds_count', { kind: 'fib-segment' }) ?? 0))
    assert.ok(ran.reduce((x, y) => x + y, 0) >= 6, `task durations observed where the tasks ran: ${ran.join(', ')}`)

    // A long job shows in voike_jobs_running on its coordinator until it is cancelled.
    const long = await submit(g, { n: 3_000_000, segments: 2 })
    await waitFor(async () => value((await scrape(g)).samples, 'voike_jobs_running', { kind: 'fib' }) === 1, 'voike_jobs_running{kind="fib"} 1 on genesis', 30_000, 50)
    const cancel = await postJson<JobView>(g.ready.http, `/grid/jobs/${long}/cancel`, {})
    assert.equal(cancel.status, 200, JSON.stringify(cancel.body))
    await ended(g, long)
    const after = (await scrape(g)).samples
    assert.equal(must(after, 'voike_jobs_running', { kind: 'fib' }), 0)
    assert.equal(must(after, 'voike_jobs_finished_total', { kind: 'fib', status: 'cancelled' }), 1)
  })

  test('every node counts its own share: jobs where they are coordinated, tasks where they run', { timeout: 180_000 }, async () => {
    const before = new Map<NodeProc, Samples>()
    for (const n of [g, a, b]) before.set(n, (await scrape(n)).samples)
    const delta = (n: NodeProc, now: Samples, name: string, labels: Record<string, string>): number => must(now, name, labels) - (value(before.get(n)!, name, labels) ?? 0)
    // Genesis and node-a coordinate one job each; node-b coordinates none.
    const jobs = await Promise.all([submit(g, { n: 60000, segments: 12 }), submit(a, { n: 60000, segments: 12 })])
    const views = [await ended(g, jobs[0]), await ended(a, jobs[1])]
    for (const v of views) assert.equal(v.status, 'succeeded', v.error ?? '')
    let ranInAll = 0
    for (const [n, coordinated] of [[g, 1], [a, 1], [b, 0]] as const) {
      const now = (await scrape(n)).samples
      assert.equal(delta(n, now, 'voike_jobs_submitted_total', { kind: 'fib' }), coordinated, `${n.name}: jobs it coordinated`)
      assert.equal(delta(n, now, 'voike_jobs_finished_total', { kind: 'fib', status: 'succeeded' }), coordinated, `${n.name}: jobs it finished`)
      // Segments that ended on this node ran on its threads and were counted there.
      const finishedHere = views.flatMap(v => v.segments).filter(s => s.node === n.ready.peerId).length
      const ran = delta(n, now, 'voike_worker_tasks_total', { kind: 'fib-segment', status: 'ok' })
      assert.ok(ran >= finishedHere, `${n.name} finished ${finishedHere} segments but counts ${ran} tasks run`)
      assert.ok(delta(n, now, 'voike_task_duration_seconds_count', { kind: 'fib-segment' }) >= finishedHere, `${n.name}: task durations`)
      ranInAll += ran
    }
    assert.ok(ranInAll >= 24, `the three nodes ran ${ranInAll} of 24 segments`)
  })
})
