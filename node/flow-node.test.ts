/**
 * FLOW on real nodes: `voike flow run` against a node's gRPC API, the HTTP /flow/* routes, the
 * watched `--flows DIR` (hot reload), the store-backed cache and resume across processes, and
 * Ctrl-C cancelling a run's grid jobs.
 */
import './polyfill.js'
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { writeFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { credentials, Metadata, status as Status, type Client, type ServiceError } from '@grpc/grpc-js'
import { CLI_PATH, Cluster, dropSchema, getJson, postJson, runCli, storeVariants, waitFor, type NodeProc } from './testkit.js'
import { loadFlowProto } from './grpc-flow.js'

const KEY = 'flow-test-key-0123'
const AUTH = { 'x-voike-api-key': KEY }
const ENV = { VOIKE_API_KEY: KEY }

/** A data flow with quoting, filters, computed fields, groups and a grid job: nothing like the examples. */
const ORDERS_FLOW = `FLOW "Regional fib report"

INPUTS
  file orders
  number minQty
END INPUTS

STEP rows =
  LOAD CSV FROM orders
STEP kept =
  FILTER rows WHERE qty >= $minQty AND NOT (region IN ["test", "void"]) AND note IS NOT NULL
STEP priced =
  MAP kept SET value = qty * price, tag = region + "/" + sku
STEP byRegion =
  GROUP priced BY region
  AGG sum(value) AS revenue
  AGG count(*) AS lines
  AGG max(qty) AS biggest
STEP ranked =
  SORT byRegion BY revenue DESC, region ASC
STEP fib =
  RUN JOB "fib" WITH { n: 5000, segments: 3 }
STEP out1 =
  OUTPUT ranked AS "regions"
STEP out2 =
  OUTPUT fib.result AS "fib"
STEP line =
  OUTPUT_TEXT "top=\${ranked.0.region} lines=\${ranked.0.lines} digits=\${fib.result.digits}"
END FLOW
`
const ORDERS_CSV = 'region,sku,qty,price,note\r\n' +
  'north,A-1,3,2.5,"first, with comma"\r\n' +
  'south,B-2,10,1,ok\r\n' +
  'north,C-3,1,100,too small\r\n' +
  'test,A-1,50,1,ignored region\r\n' +
  'south,A-1,4,0.25,"multi\nline"\r\n' +
  'east,Z-9,7,3,\r\n' +
  'north,B-2,2,8,"quote ""inside"""\r\n'

async function flowRun (args: string[], node: NodeProc): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return await runCli(['flow', ...args, '--api', node.ready.api], ENV, 60_000)
}

describe('FLOW on a node', { timeout: 300_000 }, () => {
  const cluster = new Cluster()
  let node: NodeProc
  let dir: string
  let flowsDir: string
  before(async () => {
    dir = await cluster.tempDir()
    flowsDir = await cluster.tempDir()
    await writeFile(join(flowsDir, 'greet.flow'), 'FLOW "greet"\nINPUTS\n  text who\nEND INPUTS\nSTEP t =\n  OUTPUT_TEXT "hello ${who} v1"\nEND FLOW\n')
    node = await cluster.start('genesis', { extraArgs: ['--flows', flowsDir, '--api-key', KEY] })
  })
  after(async () => { await cluster.stopAll() })

  test('an unseen flow with data ops and a RUN JOB gives exact outputs through voike flow run', { timeout: 60_000 }, async () => {
    await writeFile(join(dir, 'report.flow'), ORDERS_FLOW)
    await writeFile(join(dir, 'orders.csv'), ORDERS_CSV)
    const r = await flowRun(['run', join(dir, 'report.flow'), '--input', `orders=@${join(dir, 'orders.csv')}`, '--input', 'minQty=2', '--json'], node)
    assert.equal(r.code, 0, r.stderr)
    const { outputs, metrics } = JSON.parse(r.stdout)
    assert.deepEqual(outputs.regions, [
      { region: 'north', revenue: 23.5, lines: 2, biggest: 3 },
      { region: 'south', revenue: 11, lines: 2, biggest: 10 }
    ])
    // The contract's reference values for n = 5000.
    assert.deepEqual(outputs.fib, { n: 5000, digits: 1045, sha256: '8963142965b48df3507e33fcb48926fb4ee387da20f6932cc0e8abe5f1ae1bda', sumMod61: '1558601041103539' })
    assert.equal(outputs.line, 'top=north lines=2 digits=1045')
    assert.equal(metrics.steps.fib.status, 'succeeded')
    // The RUN JOB step's value is the finished job, as GET /grid/jobs/:id shows it.
    const jobId = metrics.steps.fib.jobIds[0] as string
    const job = await getJson<{ status: string, segments: unknown[] }>(node.ready.http, `/grid/jobs/${jobId}`, AUTH)
    assert.equal(job.body.status, 'succeeded')
    assert.equal(job.body.segments.length, 3)
    const run = await getJson<{ status: string, steps: Record<string, { value?: unknown }> }>(node.ready.http, `/flow/runs/${metrics.runId as string}`, AUTH)
    assert.equal(run.status, 200)
    assert.equal(run.body.status, 'succeeded')
    assert.deepEqual(run.body.steps.fib.value, job.body)
  })

  test('RUN VASM runs a program as a grid job, single and map forms, equal to a local run', { timeout: 60_000 }, async () => {
    // Sum of squares of [r1, r2): a program no example uses.
    const program = 'LOAD_CONST r0 0\nloop:\n  CMPLT r3 r1 r2\n  JIF r3 body\n  HALT\nbody:\n  MUL r4 r1 r1\n  ADD r0 r0 r4\n  INC r1\n  JMP loop\n'
    await writeFile(join(dir, 'squares.vasm'), program)
    await writeFile(join(dir, 'squares.flow'), [
      'FLOW "squares"',
      'STEP one =',
      '  RUN VASM "squares.vasm" WITH { args: [3, 1000] }',
      'STEP many =',
      '  RUN VASM "squares.vasm" WITH { range: "-50:2000", segments: 7, reduce: "sum" }',
      'STEP a =',
      '  OUTPUT one AS "one"',
      'STEP b =',
      '  OUTPUT many AS "many"',
      'END FLOW', ''
    ].join('\n'))
    const r = await flowRun(['run', join(dir, 'squares.flow'), '--json'], node)
    assert.equal(r.code, 0, r.stderr)
    const { outputs } = JSON.parse(r.stdout)
    const local = (s: bigint, e: bigint): bigint => { let t = 0n; for (let k = s; k < e; k++) t += k * k; return t }
    assert.equal(outputs.one.status, 'succeeded')
    assert.equal(outputs.one.result.value, String(local(3n, 1000n)))
    assert.equal(outputs.many.status, 'succeeded')
    assert.equal(outputs.many.result.value, String(local(-50n, 2000n)))
    assert.equal(outputs.many.segments.length, 7)
  })

  test('syntax errors, unknown references and cycles are rejected naming a line (CLI 2, HTTP 400, gRPC INVALID_ARGUMENT)', { timeout: 60_000 }, async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['syntax', 'FLOW "s"\nSTEP a =\n  FILTER WHERE x > 1\nEND FLOW\n', /\b3:\d+: /],
      ['unknown', 'FLOW "u"\nSTEP a =\n  OUTPUT_TEXT "x"\nSTEP b =\n  TAKE 2 FROM nowhere\nEND FLOW\n', /\b5:15: .*nowhere/],
      ['cycle', 'FLOW "c"\nSTEP a =\n  TAKE 1 FROM c\nSTEP b =\n  TAKE 1 FROM a\nSTEP c =\n  TAKE 1 FROM b\nEND FLOW\n', /a \(line 2\) → c \(line 6\) → b \(line 4\) → a \(line 2\)/]
    ]
    const Flow = loadFlowProto()
    const client = new Flow(node.ready.api, credentials.createInsecure()) as Client & Record<string, Function>
    const md = new Metadata()
    md.set('x-voike-api-key', KEY)
    try {
      for (const [name, source, re] of cases) {
        await writeFile(join(dir, `${name}.flow`), source)
        const r = await flowRun(['run', join(dir, `${name}.flow`)], node)
        assert.equal(r.code, 2, `${name}: ${r.stderr}`)
        assert.match(r.stderr, re, name)
        const h = await postJson<{ error: { errors: Array<{ line: number, message: string }> } }>(node.ready.http, '/flow/execute', { source }, AUTH)
        assert.equal(h.status, 400, name)
        assert.ok(h.body.error.errors.length >= 1 && h.body.error.errors.every(e => e.line >= 2), name)
        assert.match(h.body.error.errors.map(e => e.message).join('\n'), re, name)
        const g = await new Promise<ServiceError | null>((resolve) => { client.Plan({ source }, md, (err: ServiceError | null) => { resolve(err) }) })
        assert.equal(g?.code, Status.INVALID_ARGUMENT, name)
        assert.match(g.details, re, name)
      }
    } finally { client.close() }
    // The API key applies to FLOW too.
    assert.equal((await getJson(node.ready.http, '/flow/plans')).status, 401)
  })

  test('HTTP: ops, parse, plan, execute by name (JSON and NDJSON), run records, bounded and checked bodies', { timeout: 60_000 }, async () => {
    const ops = await getJson<Array<{ name: string, version: string }>>(node.ready.http, '/flow/ops', AUTH)
    assert.ok(ops.body.length >= 14)
    const parsed = await postJson<{ ok: boolean, steps: Array<{ name: string }> }>(node.ready.http, '/flow/parse', { source: ORDERS_FLOW }, AUTH)
    assert.equal(parsed.status, 200)
    assert.deepEqual(parsed.body.steps.map(x => x.name), ['rows', 'kept', 'priced', 'byRegion', 'ranked', 'fib', 'out1', 'out2', 'line'])
    const plan = await postJson<{ hash: string }>(node.ready.http, '/flow/plan', { source: ORDERS_FLOW }, AUTH)
    assert.match(plan.body.hash, /^[0-9a-f]{64}$/)
    assert.equal((await getJson<{ source: string }>(node.ready.http, `/flow/plans/${plan.body.hash}`, AUTH)).body.source, ORDERS_FLOW)
    // By content: file inputs need no file on the node.
    const ex = await postJson<{ runId: string, status: string, outputs: { regions: Array<{ region: string }> } }>(node.ready.http, '/flow/execute', { source: ORDERS_FLOW, inputs: { orders: { content: ORDERS_CSV }, minQty: 5 } }, AUTH)
    assert.equal(ex.status, 200, JSON.stringify(ex.body))
    assert.deepEqual(ex.body.outputs.regions.map(r => r.region), ['south'])
    // A path is read only from what the run sent (never the node's disk).
    const sneaky = await postJson<{ error: { message: string } }>(node.ready.http, '/flow/execute', { source: ORDERS_FLOW, inputs: { orders: '/etc/passwd', minQty: 1 }, noCache: true }, AUTH)
    assert.equal(sneaky.status, 400)
    assert.match(sneaky.body.error.message, /cannot read \/etc\/passwd: not sent with the run/)
    const res = await fetch(`http://${node.ready.http}/flow/execute`, { method: 'POST', headers: { ...AUTH, accept: 'application/x-ndjson', 'content-type': 'application/json' }, body: JSON.stringify({ name: 'greet', inputs: { who: 'bo' }, noCache: true }) })
    const lines = (await res.text()).trim().split('\n').map(l => JSON.parse(l))
    assert.deepEqual(lines.map(l => l.type), ['started', 'step-start', 'step-end', 'result'])
    assert.equal(lines[3].outputs.t, 'hello bo v1')
    assert.equal((await getJson<{ status: string }>(node.ready.http, `/flow/runs/${lines[0].runId as string}`, AUTH)).body.status, 'succeeded')
    const badBodies: Array<[unknown, number, RegExp]> = [
      [{}, 400, /exactly one of source/],
      [{ source: 'FLOW "x"\nSTEP a =\n  OUTPUT_TEXT "y"\nEND FLOW\n', name: 'greet' }, 400, /exactly one/],
      [{ name: '../etc' }, 400, /name must be/],
      [{ name: 'nope' }, 404, /no flow named nope/],
      [{ name: 'greet', inputs: [1] }, 400, /inputs must be an object/],
      [{ name: 'greet', inputs: { who: JSON.parse('['.repeat(40) + ']'.repeat(40)) } }, 400, /inputs nests deeper than 32/],
      [{ name: 'greet', inputs: { who: 'x' }, files: { '/abs': '' } }, 400, /files\.\/abs must be a relative path/],
      [{ name: 'greet', inputs: { who: 3 } }, 400, /input who \(text, line 3\) needs a string/],
      [{ name: 'greet', inputs: { who: 'x' }, resume: 'a b' }, 400, /resume must be a run id/]
    ]
    for (const [body, status, re] of badBodies) {
      const r = await postJson<{ error: { message: string } }>(node.ready.http, '/flow/execute', body, AUTH)
      assert.equal(r.status, status, JSON.stringify(body).slice(0, 80))
      assert.match(r.body.error.message, re)
    }
    assert.equal((await getJson(node.ready.http, '/flow/runs/no-such-run', AUTH)).status, 404)
  })

  test('--flows DIR: a good edit is picked up without a restart, a broken edit keeps the old version', { timeout: 60_000 }, async () => {
    const run = async (): Promise<string> => {
      const r = await flowRun(['run', 'greet', '--input', 'who=ann', '--json'], node)
      assert.equal(r.code, 0, r.stderr)
      return JSON.parse(r.stdout).outputs.t
    }
    assert.equal(await run(), 'hello ann v1')
    const plans = async (): Promise<Array<{ name: string, version: number, error: { message: string } | null }>> => (await getJson<Array<{ name: string, version: number, error: { message: string } | null }>>(node.ready.http, '/flow/plans', AUTH)).body
    // Editors replace files: write aside and rename over.
    const edit = async (text: string): Promise<void> => { await writeFile(join(flowsDir, 'greet.tmp'), text); await rename(join(flowsDir, 'greet.tmp'), join(flowsDir, 'greet.flow')) }
    await edit('FLOW "greet"\nINPUTS\n  text who\nEND INPUTS\nSTEP t =\n  OUTPUT_TEXT "hi ${who} v2"\nEND FLOW\n')
    await waitFor(async () => (await plans()).find(p => p.name === 'greet')?.version === 2, 'greet v2 loaded', 20_000)
    assert.equal(await run(), 'hi ann v2')
    await edit('FLOW "greet"\nINPUTS\n  text who\nEND INPUTS\nSTEP t =\n  OUTPUT_TEXT missing_step\nEND FLOW\n')
    const broken = await waitFor(async () => (await plans()).find(p => p.name === 'greet' && p.error !== null), 'greet error shown', 20_000)
    assert.equal(broken.version, 2)
    assert.match(broken.error!.message, /greet\.flow: 6:15: .*missing_step/)
    assert.equal(await run(), 'hi ann v2', 'the old version stays')
    const plan = await getJson<{ version: number, plan: { hash: string } }>(node.ready.http, '/flow/plans/greet', AUTH)
    assert.equal(plan.body.version, 2)
    assert.match(node.stderr(), /flow did not load; its previous version stays/)
  })

  test('Ctrl-C on voike flow run cancels the run and its grid jobs', { timeout: 90_000 }, async () => {
    await writeFile(join(dir, 'long.flow'), 'FLOW "long"\nSTEP slow =\n  RUN JOB "fib" WITH { n: 1500000, segments: 4 }\nSTEP out =\n  OUTPUT slow.result AS "r"\nEND FLOW\n')
    const p = spawn(process.execPath, [CLI_PATH, 'flow', 'run', join(dir, 'long.flow'), '--api', node.ready.api, '--no-cache'], { env: { ...process.env, ...ENV }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    p.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const exited = new Promise<number | null>(resolve => p.once('exit', (code) => { resolve(code) }))
    try {
      const job = await waitFor(async () => (await getJson<Array<{ id: string, params: { n: number } }>>(node.ready.http, '/grid/jobs?status=running', AUTH)).body.find(j => j.params.n === 1_500_000), 'the flow\'s job running', 30_000)
      p.kill('SIGINT')
      assert.equal(await exited, 1, stderr)
      assert.match(stderr, /run [0-9a-f-]{36} cancelled; resume with --resume/)
      await waitFor(async () => (await getJson<{ status: string }>(node.ready.http, `/grid/jobs/${job.id}`, AUTH)).body.status === 'cancelled', 'the job cancelled', 20_000)
      const runId = /run ([0-9a-f-]{36}) cancelled/.exec(stderr)![1]
      assert.equal((await getJson<{ status: string }>(node.ready.http, `/flow/runs/${runId}`, AUTH)).body.status, 'cancelled')
    } finally { if (p.exitCode === null) p.kill('SIGKILL') }
  })
})

for (const variant of storeVariants()) {
  describe(`FLOW cache and resume across node processes (${variant.name} store)`, { timeout: 240_000 }, () => {
    const cluster = new Cluster()
    const env = variant.env()
    after(async () => { await cluster.stopAll(); await dropSchema(env) })

    test('a re-run reuses results after a restart; a failed run resumes from its failed step', { timeout: 200_000 }, async () => {
      const dir = await cluster.tempDir()
      const dataDir = await cluster.tempDir()
      let node = await cluster.start('genesis', { dataDir, env })
      const file = join(dir, 'two.flow')
      await writeFile(file, 'FLOW "two"\nINPUTS\n  number k\nEND INPUTS\nSTEP big =\n  RUN JOB "fib" WITH { n: 4000, segments: 2 }\nSTEP small =\n  RUN JOB "fib" WITH { n: k, segments: 1 }\nSTEP a =\n  OUTPUT big.result.digits AS "big"\nSTEP b =\n  OUTPUT small.result.sumMod61 AS "small"\nEND FLOW\n')
      const run = async (args: string[]): Promise<{ code: number | null, out: any, stderr: string }> => {
        const r = await runCli(['flow', 'run', file, '--api', node.ready.api, '--json', ...args], {}, 60_000)
        return { code: r.code, out: r.stdout === '' ? null : JSON.parse(r.stdout), stderr: r.stderr }
      }
      const first = await run(['--input', 'k=10'])
      assert.equal(first.code, 0, first.stderr)
      assert.deepEqual(first.out.outputs, { big: 836, small: '88' })
      assert.equal(first.out.metrics.stepsRun, 4)
      // Another process on the same store: every step is reused, no job submitted.
      await cluster.kill(node, 'SIGTERM')
      node = await cluster.start('genesis', { dataDir, env })
      const second = await run(['--input', 'k=10'])
      assert.equal(second.code, 0, second.stderr)
      assert.deepEqual(second.out.outputs, first.out.outputs)
      assert.equal(second.out.metrics.stepsRun, 0)
      assert.equal(second.out.metrics.stepsReused, 2)
      assert.equal(second.out.metrics.steps.a.source, 'cache')
      assert.equal(second.out.metrics.steps.big.status, 'not-needed', 'nothing reads big but a cached output')
      const forced = await run(['--input', 'k=10', '--no-cache'])
      assert.equal(forced.out.metrics.stepsReused, 0)

      // k = -1: the grid refuses the job, the step fails, its output is skipped, big still finishes.
      const failed = await run(['--input', 'k=-1', '--no-cache'])
      assert.equal(failed.code, 1)
      assert.equal(failed.out.metrics.steps.small.status, 'failed')
      assert.equal(failed.out.metrics.steps.b.status, 'skipped')
      assert.equal(failed.out.outputs.big, 836)
      assert.match(failed.out.error.message, /^8:3: step small: the grid refused job "fib": n: must be an integer/)
      const runId = failed.out.metrics.runId as string
      assert.match(failed.stderr, new RegExp(`resume with --resume ${runId}`))
      // Resume (cache off, so reuse can only come from the run record): big is not run again.
      const resumed = await run(['--input', 'k=10', '--no-cache', '--resume', runId])
      assert.equal(resumed.code, 0, resumed.stderr)
      assert.deepEqual(resumed.out.outputs, { big: 836, small: '88' })
      assert.equal(resumed.out.metrics.steps.a.source, 'resume')
      assert.equal(resumed.out.metrics.steps.big.status, 'not-needed')
      assert.equal(resumed.out.metrics.steps.small.status, 'succeeded')
      assert.equal(resumed.out.metrics.stepsRun, 2)
      const bad = await run(['--input', 'k=10', '--resume', 'no-such-run'])
      assert.equal(bad.code, 2)
      assert.match(bad.stderr, /no run no-such-run to resume/)
    })
  })
}
