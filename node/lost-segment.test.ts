/**
 * A segment lost with its node (SIGKILL) shows the lost dispatch in the job: JSON and the CLI's
 * table (attempts + lost = dispatches), while voike_tasks_total{status="lost"} counts it too.
 */
import './polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Cluster, getJson, postJson, runCli, waitFor } from './testkit.js'
import type { JobView } from '../actors/scheduler/api.js'

test('a segment lost with its node shows in the job\'s attempts and lost counts, JSON and table', { timeout: 240_000 }, async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const g = await c.start('genesis')
  const b = await c.start('node')
  await c.waitAlive(g, 2)
  const submitted = await postJson<JobView>(g.ready.http, '/grid/jobs', { kind: 'fib', n: 300_000, segments: 24 })
  assert.ok(submitted.status < 300, JSON.stringify(submitted.body))
  const id = submitted.body.id
  // Caught with segments in flight on b.
  const onB = await waitFor(async () => {
    const v = (await getJson<JobView>(g.ready.http, `/grid/jobs/${id}`)).body
    const running = v.segments.filter(s => s.status === 'running' && s.node === b.ready.peerId).map(s => s.index)
    return running.length > 0 ? running : undefined
  }, 'segments running on node b', 60_000, 10)
  await c.kill(b, 'SIGKILL')
  const watched = await runCli(['job', 'watch', id, '--json', '--api', g.ready.api], {}, 180_000)
  assert.equal(watched.code, 0, watched.stderr)
  // NDJSON: progress objects, then the job.
  const job = JSON.parse(watched.stdout.trim().split('\n').at(-1) ?? '') as JobView
  assert.equal(job.status, 'succeeded')
  for (const i of onB) {
    const s = job.segments[i]
    // Lost on b, unless b answered just before it died.
    if (s.node === b.ready.peerId) continue
    assert.ok(s.attempts + (s.lost as number) >= 2, `segment ${i} ran on b, then elsewhere: ${JSON.stringify(s)}`)
  }
  const lost = job.segments.reduce((n, s) => n + (s.lost as number), 0)
  const table = await runCli(['job', 'get', id, '--api', g.ready.api])
  assert.equal(table.code, 0, table.stderr)
  assert.match(table.stdout, /segment\s+range\s+node\s+attempts\s+lost\s+ms/)
  const shown = table.stdout.split('\n').filter(l => /^\s+\d+\s+\[/.test(l)).map(l => Number(l.trim().split(/\s+/).at(-2)))
  assert.equal(shown.reduce((a, x) => a + x, 0), lost, table.stdout)
  // The metric counts lost dispatches too.
  const metrics = (await getJson<string>(g.ready.http, '/metrics')).body
  const m = /voike_tasks_total\{[^}]*status="lost"[^}]*\} (\d+)/.exec(metrics)
  assert.ok(m !== null && Number(m[1]) >= 1, 'voike_tasks_total{status="lost"}')
})
