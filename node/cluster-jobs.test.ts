/**
 * The cluster's jobs from any node (issue 9, items 10 and 12): `voike job list`, gRPC ListJobs and
 * GET /grid/jobs list every member's jobs (partial results marked when a member does not answer),
 * and a job whose coordinator is down is "unavailable" (503 / UNAVAILABLE naming it), not "not found".
 */
import './polyfill.js'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { Cluster, getJson, postJson, runCli, waitFor, type NodeProc } from './testkit.js'
import { createClient } from './client.js'
import type { JobView } from '../actors/scheduler/api.js'

async function submit (node: NodeProc, n: number, segments: number): Promise<string> {
  const r = await postJson<JobView>(node.ready.http, '/grid/jobs', { kind: 'fib', n, segments })
  assert.equal(r.status, 201, JSON.stringify(r.body))
  return r.body.id
}

async function finished (node: NodeProc, id: string): Promise<JobView> {
  return await waitFor(async () => {
    const r = await getJson<JobView>(node.ready.http, `/grid/jobs/${id}`)
    return r.status === 200 && r.body.status === 'succeeded' ? r.body : undefined
  }, `job ${id} succeeded`, 60_000, 50)
}

describe('the cluster\'s jobs from any node (embedded stores)', { timeout: 600_000 }, () => {
  const c = new Cluster()
  let g: NodeProc
  let a: NodeProc
  let b: NodeProc
  const ids: Record<string, string[]> = {}

  before(async () => {
    g = await c.start('genesis')
    a = await c.start('node', { name: 'node-a' })
    b = await c.start('node', { name: 'node-b' })
    for (const n of [g, a, b]) await c.waitAlive(n, 3)
    ids.a = [await submit(a, 1000, 2), await submit(a, 2000, 2)]
    ids.b = [await submit(b, 3000, 3)]
    for (const id of ids.a) await finished(a, id)
    for (const id of ids.b) await finished(b, id)
  }, { timeout: 180_000 })
  after(async () => { await c.stopAll() }, { timeout: 60_000 })

  it('12: job list on a node that coordinates nothing lists every member\'s jobs, with a header and aligned columns', { timeout: 120_000 }, async () => {
    const all = [...ids.a, ...ids.b]
    const r = await runCli(['job', 'list', '--api', g.ready.api])
    assert.equal(r.code, 0, r.stderr)
    const lines = r.stdout.trimEnd().split('\n')
    assert.match(lines[0], /^ID\s+KIND\s+STATUS\s+SEGMENTS\s+CREATED\s+COORDINATOR\s*$/)
    for (const id of all) assert.ok(lines.some(l => l.startsWith(id + ' ')), `${id} listed:\n${r.stdout}`)
    // Aligned: every column starts at the same offset in every row.
    const col = lines[0].indexOf('STATUS')
    for (const l of lines.slice(1)) assert.match(l.slice(col), /^(succeeded|running|queued|failed|cancelled)\b/, l)
    const coordCol = lines[0].indexOf('COORDINATOR')
    const row = lines.find(l => l.startsWith(ids.b[0]))!
    assert.ok(row.slice(coordCol).startsWith(`node-b (…${b.ready.peerId.slice(-8)})`), row)

    const json = JSON.parse((await runCli(['job', 'list', '--json', '--api', g.ready.api])).stdout) as JobView[]
    assert.deepEqual(new Set(json.map(j => j.id)), new Set(all))
    const http = await getJson<JobView[]>(g.ready.http, '/grid/jobs')
    assert.equal(http.status, 200)
    assert.deepEqual(new Set(http.body.map(j => j.id)), new Set(all))
    // Newest first, whoever coordinates.
    const created = http.body.map(j => j.createdAtMs)
    assert.deepEqual(created, [...created].sort((x, y) => y - x))
    const client = createClient({ address: g.ready.api })
    try {
      assert.deepEqual(new Set((await client.listJobs()).map(j => j.id)), new Set(all))
      const limited = await client.listJobs({ limit: 2 })
      assert.equal(limited.length, 2)
    } finally { client.close() }

    const one = await runCli(['job', 'list', '--limit', '1', '--status', 'succeeded', '--api', a.ready.api])
    assert.equal(one.code, 0, one.stderr)
    assert.equal(one.stdout.trimEnd().split('\n').length, 2, one.stdout)
    const none = await runCli(['job', 'list', '--status', 'failed', '--api', a.ready.api])
    assert.equal(none.code, 0)
    assert.doesNotMatch(none.stdout, new RegExp(ids.a[0]))
    const help = await runCli(['help'])
    assert.match(help.stdout, /job list .*--status .*--limit/)
  })

  it('10, 12: with a coordinator down, its job is unavailable (503 / UNAVAILABLE naming it) and lists are marked partial', { timeout: 180_000 }, async () => {
    const job = ids.b[0]
    // Seen a moment before from another node.
    assert.equal((await getJson(g.ready.http, `/grid/jobs/${job}`)).status, 200)
    await c.kill(b, 'SIGKILL')

    const http = await getJson<{ error: { code: string, message: string } }>(g.ready.http, `/grid/jobs/${job}`)
    assert.equal(http.status, 503, JSON.stringify(http.body))
    assert.equal(http.body.error.code, 'ERR_UNAVAILABLE')
    assert.ok(http.body.error.message.includes(b.ready.peerId), http.body.error.message)
    assert.match(http.body.error.message, /node-b/)
    const client = createClient({ address: a.ready.api })
    try {
      await assert.rejects(client.getJob(job), (err: { code: number, details: string }) => err.code === 14 && err.details.includes(b.ready.peerId))
    } finally { client.close() }
    const cli = await runCli(['job', 'get', job, '--api', a.ready.api])
    assert.equal(cli.code, 1, cli.stderr)
    assert.match(cli.stderr, /unavailable|not reachable|did not answer|down/)
    assert.ok(cli.stderr.includes(b.ready.peerId.slice(-8)), cli.stderr)
    // An id nobody ever issued is still "not found".
    assert.equal((await getJson(g.ready.http, '/grid/jobs/never-issued')).status, 404)
    const cancel = await runCli(['job', 'cancel', job, '--api', g.ready.api])
    assert.equal(cancel.code, 1, cancel.stderr)
    assert.doesNotMatch(cancel.stderr, /no job/)

    // The list still has the live members' jobs and says whose are missing.
    const list = await runCli(['job', 'list', '--api', g.ready.api])
    assert.equal(list.code, 0, list.stderr)
    for (const id of ids.a) assert.match(list.stdout, new RegExp(id))
    assert.match(list.stderr, /partial/)
    assert.ok(list.stderr.includes(`node-b (…${b.ready.peerId.slice(-8)})`), list.stderr)
    const listed = await getJson<JobView[]>(g.ready.http, '/grid/jobs')
    assert.equal(listed.status, 200)
    const res = await fetch(`http://${g.ready.http}/grid/jobs`)
    assert.equal(res.headers.get('x-voike-partial'), 'true')
    assert.ok((res.headers.get('x-voike-missing') ?? '').includes(b.ready.peerId))
    await res.text()
    const gc = createClient({ address: g.ready.api })
    try {
      const page = await gc.listJobsPage()
      assert.equal(page.partial, true)
      assert.ok(page.missing.some(m => m.peerId === b.ready.peerId))
    } finally { gc.close() }
  })
})
