import './polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { flowCommand, localRunner, type FlowIo } from './flow-cli.js'
import { MemoryRunStore, MemoryStepCache } from '../flows/index.js'
import { FakeGrid, EXAMPLES } from '../flows/fakes.js'

interface Captured { io: FlowIo, out: () => string, err: () => string }
function capture (files: Record<string, string> = {}, signal?: AbortSignal): Captured {
  let out = ''
  let err = ''
  return {
    io: {
      stdout: (t) => { out += t },
      stderr: (t) => { err += t },
      signal,
      readFile: async (p) => files[p] ?? readFileSync(p, 'utf8')
    },
    out: () => out,
    err: () => err
  }
}

test('flow parse: ok, warnings on stderr; a syntax error exits 2 naming FILE:line:col', async () => {
  const c = capture()
  assert.equal(await flowCommand(['parse', EXAMPLES + 'top-customers.flow'], c.io), 0)
  assert.match(c.out(), /^ok: FLOW "Top customers": 5 steps, 2 inputs/)
  assert.match(c.err(), /top-customers\.flow:5:10: warning: input limit is never used/)
  const bad = capture({ 'bad.flow': 'FLOW "x"\nSTEP a =\n  LOAD CSV sales\nEND FLOW\n' })
  assert.equal(await flowCommand(['parse', 'bad.flow'], bad.io), 2)
  assert.equal(bad.err(), 'bad.flow:3:12: expected FROM after LOAD CSV, found "sales" (hint: LOAD CSV FROM input_name)\n')
  const j = capture({ 'bad.flow': 'FLOW "x"\nSTEP a =\n  LOAD CSV sales\nEND FLOW\n' })
  assert.equal(await flowCommand(['parse', 'bad.flow', '--json'], j.io), 2)
  assert.equal(JSON.parse(j.out()).errors[0].line, 3)
})

test('flow plan --json: nodes, edges, versions, hash; plan errors exit 2 with line', async () => {
  const c = capture()
  assert.equal(await flowCommand(['plan', EXAMPLES + 'parallel-jobs.flow', '--json'], c.io), 0)
  const p = JSON.parse(c.out())
  assert.match(p.hash, /^[0-9a-f]{64}$/)
  assert.deepEqual(p.nodes.map((n: { id: string, version: string }) => [n.id, n.version]), [['small', 'RUN_JOB@1.0'], ['large', 'RUN_JOB@1.0'], ['both', 'OUTPUT_TEXT@1.0']])
  assert.equal(p.edges.length, 2)
  const text = capture()
  assert.equal(await flowCommand(['plan', EXAMPLES + 'top-customers.flow'], text.io), 0)
  assert.match(text.out(), /load +LOAD_CSV@1\.0 +line 8 +← input sales_csv  \(streams into paid\)/)
  const cyc = capture({ 'c.flow': 'FLOW "x"\nSTEP a =\n  TAKE 1 FROM b\nSTEP b =\n  TAKE 1 FROM a\nEND FLOW\n' })
  assert.equal(await flowCommand(['plan', 'c.flow'], cyc.io), 2)
  assert.match(cyc.err(), /^c\.flow:2:1: steps depend on each other: a \(line 2\) → b \(line 4\) → a/)
})

test('flow run --json on the core flow prints {outputs, metrics}', async () => {
  const c = capture()
  const code = await flowCommand(['run', EXAMPLES + 'top-customers.flow', '--input', `sales_csv=@${EXAMPLES}sales.csv`, '--input', 'limit=2', '--json'], c.io)
  assert.equal(code, 0, c.err())
  const r = JSON.parse(c.out())
  assert.deepEqual(Object.keys(r), ['outputs', 'metrics'])
  assert.deepEqual(r.outputs.TopCustomers.map((x: { customer_id: string }) => x.customer_id), ['C003', 'C005'])
  assert.equal(r.metrics.steps.totals.rowsOut, 4)
})

test('flow run with a grid port, then explain and run again reuse the cache', async () => {
  const grid = new FakeGrid()
  const deps = { port: grid, cache: new MemoryStepCache(), runs: new MemoryRunStore() }
  const a = capture()
  assert.equal(await flowCommand(['run', EXAMPLES + 'fib-split.flow', '--input', 'n=100000'], a.io, deps), 0, a.err())
  assert.match(a.out(), /summary:\nF\(100000\) has 20899 digits, sha256 9fe22f691a91170da9006226d479ad986b2f92021b7045ecfb0a5091b641b802/)
  assert.match(a.err(), /✓ fib succeeded/)
  const ex = capture()
  assert.equal(await flowCommand(['explain', EXAMPLES + 'fib-split.flow', '--input', 'n=100000'], ex.io, deps), 0)
  assert.match(ex.out(), /skip +fib/)
  assert.match(ex.out(), /reuse +summary +OUTPUT_TEXT@1\.0 +cached result/)
  const b = capture()
  assert.equal(await flowCommand(['run', EXAMPLES + 'fib-split.flow', '--input', 'n=100000', '--json'], b.io, deps), 0)
  assert.equal(grid.submitted.length, 1)
  const nc = capture()
  assert.equal(await flowCommand(['run', EXAMPLES + 'fib-split.flow', '--input', 'n=100000', '--json', '--no-cache'], nc.io, deps), 0)
  assert.equal(grid.submitted.length, 2)
})

test('a failed run exits 1 and names the run to resume; --resume finishes it', async () => {
  const grid = new FakeGrid()
  grid.failOnce.add('fib')
  const runs = new MemoryRunStore()
  const deps = { runner: () => localRunner({ port: grid, runs }) }
  const src = 'FLOW "x"\nSTEP a =\n  RUN JOB "echo" WITH { v: 1 }\nSTEP b =\n  RUN JOB "fib" WITH { n: a.result.v }\nSTEP o =\n  OUTPUT b.result.n AS "n"\nEND FLOW\n'
  const f = capture({ 'r.flow': src })
  assert.equal(await flowCommand(['run', 'r.flow'], f.io, deps), 1)
  const m = /resume with --resume (\S+)/.exec(f.err())
  assert.ok(m !== null, f.err())
  assert.match(f.err(), /5:3: step b: job job-2 \(fib\) failed: injected failure of fib/)
  const g = capture({ 'r.flow': src })
  assert.equal(await flowCommand(['run', 'r.flow', '--resume', m[1]!, '--json'], g.io, deps), 0, g.err())
  assert.equal(JSON.parse(g.out()).outputs.n, 1)
  assert.deepEqual(grid.submitted.map(s => s.kind), ['echo', 'fib', 'fib'])
})

test('Ctrl-C (the io signal) cancels the run and its grid jobs; exit 1', async () => {
  const grid = new FakeGrid()
  grid.hold = true
  const ac = new AbortController()
  const c = capture({}, ac.signal)
  const p = flowCommand(['run', EXAMPLES + 'parallel-jobs.flow'], c.io, { port: grid })
  while (grid.inFlight < 2) await new Promise(resolve => setTimeout(resolve, 5))
  ac.abort()
  assert.equal(await p, 1)
  assert.equal(grid.cancelled.length, 2)
  assert.match(c.err(), /cancelled/)
})

test('bad usage and inputs exit 2 with a message', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['frobnicate', 'x.flow'], /unknown flow command "frobnicate"/],
    [['run'], /missing FILE/],
    [['run', EXAMPLES + 'fib-split.flow', '--input', 'n'], /--input needs name=value/],
    [['run', EXAMPLES + 'fib-split.flow', '--input', 'n=ten'], /input n needs a number, got "ten"/],
    [['run', EXAMPLES + 'fib-split.flow', '--input', 'm=1'], /unknown input "m"/],
    [['run', EXAMPLES + 'fib-split.flow'], /missing input n/],
    [['plan', EXAMPLES + 'fib-split.flow', '--no-cache'], /are for run and explain/],
    [['parse', '/nonexistent/x.flow'], /cannot read \/nonexistent\/x\.flow: ENOENT/],
    [['run', EXAMPLES + 'fib-split.flow', '--bogus'], /Unknown option '--bogus'/]
  ]
  for (const [argv, re] of cases) {
    const c = capture()
    assert.equal(await flowCommand(argv, c.io), 2, argv.join(' '))
    assert.match(c.err(), re)
  }
})

test('a name that is no file runs the flow the runner knows by that name', async () => {
  const grid = new FakeGrid()
  const local = localRunner({ port: grid })
  const runner = { ...local, source: async (name: string) => name === 'fib' ? readFileSync(EXAMPLES + 'fib-split.flow', 'utf8') : null }
  const c = capture()
  assert.equal(await flowCommand(['run', 'fib', '--input', 'n=10', '--json'], c.io, { runner: () => runner }), 0, c.err())
  assert.equal(JSON.parse(c.out()).outputs.fib.digits, 2)
  const u = capture()
  assert.equal(await flowCommand(['run', 'nope', '--input', 'n=10'], u.io, { runner: () => runner }), 2)
  assert.match(u.err(), /cannot read nope: ENOENT/)
})
