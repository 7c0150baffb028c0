/**
 * The CLI as a new user meets it (issue 9: items 1, 2, 13, 14, 15, 16, 18), against a real
 * two-node cluster of `voike` processes shared by the tests of this file.
 */
import './polyfill.js'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { Metadata, credentials } from '@grpc/grpc-js'
import { Cluster, CLI_PATH, getJson, postJson, runCli, waitFor, type NodeProc } from './testkit.js'
import { createClient } from './client.js'
import { loadVoikeProto } from './proto.js'
import type { JobView } from '../actors/scheduler/api.js'

/** A fib job that runs for seconds on one thread (cancelled by the tests that start it). */
const LONG_FIB = ['--n', '2000000', '--segments', '1']

/** Spawns the CLI; `onSpawn` may close its pipes. Resolves when it exits. */
async function runRaw (args: string[], opts: { onSpawn?: (p: ReturnType<typeof spawn>) => void, until?: (stderr: string) => boolean, signal?: NodeJS.Signals, timeoutMs?: number } = {}): Promise<{ code: number | null, signal: string | null, stdout: string, stderr: string }> {
  return await new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI_PATH, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let signalled = false
    p.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    p.stdout.on('error', () => {})
    p.stderr.on('error', () => {})
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
      if (!signalled && opts.until?.(stderr) === true && opts.signal !== undefined) { signalled = true; p.kill(opts.signal) }
    })
    opts.onSpawn?.(p)
    const t = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`voike ${args.join(' ')} did not finish; stderr: ${stderr}`)) }, opts.timeoutMs ?? 60_000)
    p.on('exit', (code, signal) => { clearTimeout(t); resolve({ code, signal, stdout, stderr }) })
  })
}

async function httpJob (node: NodeProc, id: string): Promise<JobView> {
  const res = await getJson<JobView>(node.ready.http, `/grid/jobs/${id}`)
  assert.equal(res.status, 200, JSON.stringify(res.body))
  return res.body
}

describe('CLI first hour (issue 9)', { timeout: 600_000 }, () => {
  const c = new Cluster()
  let g: NodeProc
  let a: NodeProc
  const long: string[] = []

  before(async () => {
    g = await c.start('genesis')
    a = await c.start('node', { name: 'node-1' })
    await c.waitAlive(g, 2)
    await c.waitAlive(a, 2)
  }, { timeout: 120_000 })
  after(async () => {
    // Long jobs left by a failed assertion would keep a thread busy until the nodes are killed.
    for (const id of long) await postJson(g.ready.http, `/grid/jobs/${id}/cancel`, {}).catch(() => {})
    await c.stopAll()
  }, { timeout: 60_000 })

  async function submitLong (node: NodeProc): Promise<string> {
    const r = await postJson<JobView>(node.ready.http, '/grid/jobs', { kind: 'fib', n: 2_000_000, segments: 1 })
    assert.equal(r.status, 201, JSON.stringify(r.body))
    long.push(r.body.id)
    return r.body.id
  }

  it('1: `job watch` of an unknown id exits 2 at once; gRPC WatchJob answers NOT_FOUND', { timeout: 90_000 }, async () => {
    const t0 = Date.now()
    const r = await runCli(['job', 'watch', 'no-such-job', '--api', a.ready.api], {}, 30_000)
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /no job no-such-job/)
    assert.ok(Date.now() - t0 < 20_000, `took ${Date.now() - t0} ms`)

    const { Grid } = loadVoikeProto()
    const grid = new Grid(g.ready.api, credentials.createInsecure()) as unknown as { WatchJob: (req: unknown, md: Metadata, o: unknown) => NodeJS.EventEmitter, close: () => void }
    try {
      const t1 = Date.now()
      const err = await new Promise<{ code: number, details: string }>((resolve) => {
        const s = grid.WatchJob({ id: 'no-such-job' }, new Metadata(), { deadline: Date.now() + 30_000 })
        s.on('data', () => {})
        s.on('error', resolve)
        s.on('end', () => { resolve({ code: 0, details: 'ended without an error' }) })
      })
      assert.equal(err.code, 5, `${err.code} ${err.details}`) // NOT_FOUND, not DEADLINE_EXCEEDED
      assert.ok(Date.now() - t1 < 20_000)
    } finally { grid.close() }
  })

  it('2: a command whose reader goes away (EPIPE on stdout, stderr) ends quietly', { timeout: 120_000 }, async () => {
    for (let i = 0; i < 3; i++) assert.equal((await postJson(g.ready.http, '/grid/jobs', { kind: 'fib', n: 10, segments: 1 })).status, 201)
    // The reader closes before the command writes anything: every write fails with EPIPE.
    const list = await runRaw(['job', 'list', '--api', g.ready.api], { onSpawn: p => { p.stdout?.destroy() } })
    assert.equal(list.code, 0, `exit ${list.code} ${list.signal}; stderr: ${list.stderr}`)
    assert.doesNotMatch(list.stderr, /EPIPE|\n\s+at /)
    const both = await runRaw(['job', 'list', '--api', g.ready.api], { onSpawn: p => { p.stdout?.destroy(); p.stderr?.destroy() } })
    assert.equal(both.code, 0, `exit ${both.code} ${both.signal}`)
    const err = await runRaw(['job', 'get', 'no-such-job', '--api', g.ready.api], { onSpawn: p => { p.stderr?.destroy() } })
    assert.equal(err.code, 2, `exit ${err.code} ${err.signal}`)
    const usage = await runRaw(['help'], { onSpawn: p => { p.stdout?.destroy() } })
    assert.equal(usage.code, 0, `exit ${usage.code}; ${usage.stderr}`)
    assert.doesNotMatch(usage.stderr, /EPIPE|\n\s+at /)
  })

  it('13: `job submit --wait` prints the job id first; Ctrl-C leaves the job running and says how to cancel it (exit 130)', { timeout: 120_000 }, async () => {
    const quick = await runCli(['job', 'submit', 'fib', '--n', '1000', '--segments', '4', '--wait', '--api', a.ready.api])
    assert.equal(quick.code, 0, quick.stderr)
    const first = /^job (\S+) submitted$/m.exec(quick.stderr.split('\n')[0])
    assert.ok(first !== null, `first stderr line: ${quick.stderr}`)
    assert.match(quick.stdout, new RegExp(`job ${first[1]} `))

    const r = await runRaw(['job', 'submit', 'fib', ...LONG_FIB, '--wait', '--api', a.ready.api], { until: s => /submitted/.test(s), signal: 'SIGINT' })
    const id = /^job (\S+) submitted$/m.exec(r.stderr)?.[1]
    assert.ok(id !== undefined, r.stderr)
    long.push(id)
    assert.equal(r.code, 130, `exit ${r.code} ${r.signal}; ${r.stderr}`)
    assert.ok(r.stderr.includes(`job ${id} keeps running; \`voike job cancel ${id}\``), r.stderr)
    const j = await httpJob(a, id)
    assert.ok(j.status === 'running' || j.status === 'queued', j.status)
    assert.equal((await runCli(['job', 'cancel', id, '--api', a.ready.api])).code, 0)
  })

  it('13: `job watch --json` streams NDJSON: progress objects, then the job', { timeout: 120_000 }, async () => {
    const sub = await postJson<JobView>(a.ready.http, '/grid/jobs', { kind: 'fib', n: 400_000, segments: 12 })
    assert.equal(sub.status, 201)
    const r = await runCli(['job', 'watch', sub.body.id, '--json', '--api', g.ready.api])
    assert.equal(r.code, 0, r.stderr)
    const lines = r.stdout.trim().split('\n').map(l => JSON.parse(l) as Record<string, unknown>)
    assert.ok(lines.length >= 2, r.stdout)
    const last = lines.at(-1) as unknown as JobView
    assert.equal(last.status, 'succeeded')
    assert.equal(last.segments.length, 12)
    const progress = lines.slice(0, -1)
    let prev = -1
    for (const p of progress) {
      assert.equal(p.id, sub.body.id)
      assert.equal(typeof p.status, 'string')
      assert.equal(p.segmentsTotal, 12)
      assert.ok((p.segmentsDone as number) >= prev, 'progress never goes back')
      prev = p.segmentsDone as number
      assert.equal(p.segments, undefined)
    }
    // One object per change: no two consecutive progress lines are the same.
    for (let i = 1; i < progress.length; i++) assert.notDeepEqual(progress[i], progress[i - 1])
    assert.equal(progress.at(-1)?.status, 'succeeded')
  })

  it('13: on a terminal the progress bar shows elapsed time and an estimate', { timeout: 120_000 }, async (t) => {
    if (spawnSync('script', ['--version']).status !== 0) { t.skip('util-linux `script` (a pseudo-terminal) is not installed'); return }
    const cmd = [process.execPath, CLI_PATH, 'job', 'submit', 'fib', '--n', '600000', '--segments', '16', '--wait', '--api', a.ready.api].map(s => `'${s}'`).join(' ')
    const out = await new Promise<{ code: number | null, text: string }>((resolve) => {
      const p = spawn('script', ['-qefc', cmd, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] })
      let text = ''
      p.stdout.on('data', (d: Buffer) => { text += d.toString() })
      p.on('exit', (code) => { resolve({ code, text }) })
    })
    assert.equal(out.code, 0, out.text)
    assert.match(out.text, /job \S+ submitted/)
    assert.match(out.text, /\d+\/16 segments .*elapsed \d+\.\d ms/)
    assert.match(out.text, /~\d+\.\d ms left/)
  })

  it('14: `job cancel` exits 0 when the job is or already was cancelled, 1 when it had already ended otherwise', { timeout: 120_000 }, async () => {
    const id = await submitLong(a)
    const first = await runCli(['job', 'cancel', id, '--api', g.ready.api])
    assert.equal(first.code, 0, first.stderr)
    assert.match(first.stderr, new RegExp(`job ${id} cancelled`))
    const again = await runCli(['job', 'cancel', id, '--json', '--api', a.ready.api])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stderr, /already cancelled/)
    assert.equal((JSON.parse(again.stdout) as JobView).status, 'cancelled')

    const done = await runCli(['job', 'submit', 'fib', '--n', '100', '--segments', '2', '--wait', '--json', '--api', a.ready.api])
    assert.equal(done.code, 0, done.stderr)
    const doneId = (JSON.parse(done.stdout) as JobView).id
    const late = await runCli(['job', 'cancel', doneId, '--api', g.ready.api])
    assert.equal(late.code, 1, late.stderr)
    assert.match(late.stderr, /already succeeded/)
    assert.equal((await httpJob(g, doneId)).status, 'succeeded')
  })

  it('15: negative numbers parse as values and get the field\'s own message', { timeout: 60_000 }, async () => {
    for (const [flag, field] of [['--n', 'n'], ['--segments', 'segments']]) {
      const args = flag === '--n' ? ['--n', '-1', '--segments', '1'] : ['--n', '10', '--segments', '-3']
      const r = await runCli(['job', 'submit', 'fib', ...args, '--api', g.ready.api])
      assert.equal(r.code, 2, r.stderr)
      assert.match(r.stderr, new RegExp(`^voike: ${field}: `, 'm'))
      assert.doesNotMatch(r.stderr, /ambiguous|Nodes:/)
    }
    const eq = await runCli(['job', 'submit', 'fib', '--n=-5', '--segments', '1', '--api', g.ready.api])
    assert.equal(eq.code, 2)
    assert.match(eq.stderr, /^voike: n: /m)
  })

  it('16: nodes are named the same way everywhere (name and short peer id); ms have one decimal', { timeout: 120_000 }, async () => {
    const label = (n: NodeProc): string => `${n.name} (…${n.ready.peerId.slice(-8)})`
    const mesh = await runCli(['mesh', 'nodes', '--api', a.ready.api])
    assert.equal(mesh.code, 0, mesh.stderr)
    assert.ok(mesh.stdout.includes(label(g)) && mesh.stdout.includes(label(a)), mesh.stdout)
    const meshJson = JSON.parse((await runCli(['mesh', 'nodes', '--json', '--api', a.ready.api])).stdout) as Array<{ peerId: string, name: string }>
    assert.deepEqual(new Map(meshJson.map(m => [m.peerId, m.name])), new Map([[g.ready.peerId, 'genesis'], [a.ready.peerId, 'node-1']]))

    const sub = await runCli(['job', 'submit', 'fib', '--n', '200000', '--segments', '16', '--wait', '--api', g.ready.api])
    assert.equal(sub.code, 0, sub.stderr)
    const rows = sub.stdout.split('\n').filter(l => /^\s+\d+\s+\[/.test(l))
    assert.equal(rows.length, 16, sub.stdout)
    for (const row of rows) {
      assert.ok(row.includes(label(g)) || row.includes(label(a)), row)
      assert.match(row, /\s\d+\.\d$/)
    }
    const id = /^job (\S+) /m.exec(sub.stdout)?.[1]
    assert.ok(id !== undefined)
    const get = await runCli(['job', 'get', id, '--api', a.ready.api])
    assert.deepEqual(get.stdout.split('\n').filter(l => /^\s+\d+\s+\[/.test(l)), rows)
    for (const s of (await httpJob(a, id)).segments) {
      assert.equal(typeof s.ms, 'number')
      assert.equal(Math.round((s.ms as number) * 10) / 10, s.ms, `ms ${String(s.ms)} has one decimal`)
    }
  })

  it('18: `job get --json` prints the same job object as HTTP; unknown parameters are rejected naming the field', { timeout: 120_000 }, async () => {
    const sub = await runCli(['job', 'submit', 'fib', '--n', '5000', '--segments', '3', '--wait', '--json', '--api', a.ready.api])
    assert.equal(sub.code, 0, sub.stderr)
    const id = (JSON.parse(sub.stdout) as JobView).id
    for (const node of [g, a]) {
      const cli = await runCli(['job', 'get', id, '--json', '--api', node.ready.api])
      assert.equal(cli.code, 0, cli.stderr)
      const viaCli = JSON.parse(cli.stdout) as JobView
      assert.deepEqual(viaCli, await httpJob(node, id))
      for (const k of ['createdAtMs', 'finishedAtMs', 'params', 'coordinator', 'id', 'kind', 'status', 'error', 'result', 'segments']) assert.ok(k in viaCli, k)
      assert.deepEqual(Object.keys(viaCli.segments[0]).slice(0, 3), ['index', 'start', 'end'])
    }

    const http = await postJson<{ error: { code: string, field: string, message: string } }>(g.ready.http, '/grid/jobs', { kind: 'fib', n: 10, segments: 1, segmnets: 2 })
    assert.equal(http.status, 400, JSON.stringify(http.body))
    assert.equal(http.body.error.field, 'segmnets')
    const wrapped = await postJson<{ error: { field: string } }>(g.ready.http, '/grid/jobs', { kind: 'fib', params: { n: 10, segments: 1, extra: true } })
    assert.equal(wrapped.status, 400)
    assert.equal(wrapped.body.error.field, 'extra')
    const cli = await runCli(['job', 'submit', 'fib', '--params', '{"n":10,"segments":1,"colour":"red"}', '--api', g.ready.api])
    assert.equal(cli.code, 2, cli.stderr)
    assert.match(cli.stderr, /colour/)
    const client = createClient({ address: a.ready.api })
    try {
      await assert.rejects(client.submitJob('fib', { n: 10, segments: 1, bogus: 1 }), (err: { code: number, details: string }) => err.code === 3 && /bogus/.test(err.details))
    } finally { client.close() }
    await waitFor(async () => (await getJson(g.ready.http, '/health')).status === 200, 'genesis still healthy')
  })
})
