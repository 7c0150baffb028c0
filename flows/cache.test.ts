import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync, copyFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { planSource } from './planner.js'
import { execute, explain, FlowRunError } from './executor.js'
import { MemoryRunStore, MemoryStepCache } from './cache.js'
import { FakeGrid, CORE, EXAMPLES } from './fakes.js'

const JOBS = `FLOW "jobs"
INPUTS
  number n
END INPUTS
STEP a =
  RUN JOB "fib" WITH { n: n }
STEP b =
  RUN JOB "echo" WITH { digits: a.result.digits }
STEP c =
  OUTPUT_TEXT "digits=\${b.result.digits}"
END FLOW
`

test('a re-run of an unchanged flow reuses every step; --no-cache runs them again', async () => {
  const cache = new MemoryStepCache()
  const grid = new FakeGrid()
  const p = planSource(JOBS)
  const first = await execute(p, { n: 100 }, { port: grid, cache })
  assert.equal(first.outputs.c, 'digits=21')
  assert.equal(grid.submitted.length, 2)
  const again = await execute(p, { n: 100 }, { port: grid, cache })
  assert.deepEqual(again.outputs, first.outputs)
  assert.equal(grid.submitted.length, 2, 'nothing submitted again')
  assert.equal(again.metrics.stepsRun, 0)
  // The output step is cached; the steps only it needed do not even load.
  assert.deepEqual(Object.values(again.metrics.steps).map(s => s.status), ['not-needed', 'not-needed', 'reused'])
  const forced = await execute(p, { n: 100 }, { port: grid, cache, noCache: true })
  assert.deepEqual(forced.outputs, first.outputs)
  assert.equal(grid.submitted.length, 4)
})

test('a changed input re-runs exactly the steps that depend on it', async () => {
  const cache = new MemoryStepCache()
  const grid = new FakeGrid()
  const src = JOBS.replace('STEP c =', 'STEP z =\n  RUN JOB "fib" WITH { n: 7 }\nSTEP y =\n  OUTPUT z.result.n AS "seven"\nSTEP c =')
  const p = planSource(src)
  await execute(p, { n: 100 }, { port: grid, cache })
  assert.equal(grid.submitted.length, 3)
  const r = await execute(p, { n: 200 }, { port: grid, cache })
  assert.equal(r.outputs.c, 'digits=42')
  assert.deepEqual(grid.submitted.slice(3).map(s => s.kind), ['fib', 'echo'])
  assert.equal(r.metrics.steps.y!.status, 'reused')
})

test('file inputs are keyed by content: same path, new content → LOAD CSV runs again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flow-cache-'))
  try {
    const file = join(dir, 'sales.csv')
    copyFileSync(EXAMPLES + 'sales.csv', file)
    const cache = new MemoryStepCache()
    const p = planSource(CORE)
    const one = await execute(p, { sales_csv: file }, { cache })
    const two = await execute(p, { sales_csv: file }, { cache })
    assert.equal(two.metrics.stepsRun, 0)
    assert.deepEqual(two.outputs, one.outputs)
    writeFileSync(file, 'order_id,customer_id,status,amount\n1,Z9,paid,5\n')
    const three = await execute(p, { sales_csv: file }, { cache })
    assert.deepEqual(three.outputs, { TopCustomers: [{ customer_id: 'Z9', total_amount: 5, orders: 1 }] })
    assert.equal(three.metrics.steps.load!.status, 'succeeded')
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('explain says which steps would run and which be reused, and why', async () => {
  const cache = new MemoryStepCache()
  const grid = new FakeGrid()
  const p = planSource(JOBS)
  const before = await explain(p, { n: 100 }, { cache })
  assert.deepEqual(before.map(s => [s.step, s.action]), [['a', 'run'], ['b', 'run'], ['c', 'run']])
  assert.match(before[0]!.why, /no cached result for key [0-9a-f]{12}/)
  await execute(p, { n: 100 }, { port: grid, cache })
  const after = await explain(p, { n: 100 }, { cache })
  assert.deepEqual(after.map(s => [s.step, s.action]), [['a', 'skip'], ['b', 'skip'], ['c', 'reuse']])
  assert.match(after[2]!.why, /cached result for key/)
  assert.match(after[0]!.why, /not needed: every step reading it \(b\) is reused/)
  const changed = await explain(p, { n: 101 }, { cache })
  assert.deepEqual(changed.map(s => s.action), ['run', 'run', 'run'])
  const nocache = await explain(p, { n: 100 }, { cache, noCache: true })
  assert.equal(nocache[0]!.why, 'cache disabled (--no-cache)')
  assert.equal(grid.submitted.length, 2, 'explain runs nothing')
})

test('resume: a failed run continues from the failed step, reusing what finished', async () => {
  const runs = new MemoryRunStore()
  const grid = new FakeGrid()
  grid.failOnce.add('echo')
  const p = planSource(JOBS)
  const failed = await execute(p, { n: 100 }, { port: grid, runs }).then(() => null, (e: unknown) => e)
  assert.ok(failed instanceof FlowRunError)
  const runId = failed.result.run.runId
  assert.deepEqual(Object.values(failed.result.run.steps).map(s => s.status), ['succeeded', 'failed', 'skipped'])
  const plan = await explain(p, { n: 100 }, { runs, resume: runId })
  assert.deepEqual(plan.map(s => s.action), ['reuse', 'run', 'run'])
  assert.match(plan[0]!.why, new RegExp(`finished in run ${runId}`))
  const resumed = await execute(p, { n: 100 }, { port: grid, runs, resume: runId })
  assert.equal(resumed.outputs.c, 'digits=21')
  assert.deepEqual(grid.submitted.map(s => s.kind), ['fib', 'echo', 'echo'], 'fib was not run again')
  assert.equal(resumed.run.resumedFrom, runId)
  assert.equal(resumed.metrics.steps.a!.source, 'resume')
  // A run of another plan cannot be resumed.
  const other = planSource(JOBS.replace('digits=', 'd='))
  await assert.rejects(execute(other, { n: 100 }, { port: grid, runs, resume: runId }), /ERR_RESUME|ran plan/)
  await assert.rejects(execute(p, { n: 100 }, { port: grid, runs, resume: 'nope' }), /no run nope/)
})

test('the memory cache is bounded by entries and bytes', async () => {
  const c = new MemoryStepCache({ maxEntries: 2, maxBytes: 100, maxEntryBytes: 60 })
  const e = (n: number): { value: number, op: string, rowsOut: null, sizeBytes: number, createdAtMs: number } => ({ value: n, op: 'X@1.0', rowsOut: null, sizeBytes: n, createdAtMs: 0 })
  await c.put('a', e(10))
  await c.put('b', e(10))
  await c.put('c', e(10))
  assert.equal(c.size, 2)
  assert.equal(await c.get('a'), undefined)
  await c.put('big', e(61))
  assert.equal(await c.get('big'), undefined)
  await c.put('d', e(50))
  await c.put('f', e(50))
  assert.equal(c.size, 2)
  assert.throws(() => new MemoryStepCache({ maxEntries: 0 }), /maxEntries must be a positive integer/)
})

test('a RUN VASM step key covers the program file: editing the program re-runs the step', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flow-vasm-'))
  try {
    writeFileSync(join(dir, 'p.vasm'), 'LOAD_CONST r0 7\nHALT\n')
    const src = 'FLOW "v"\nSTEP v =\n  RUN VASM "p.vasm"\nSTEP o =\n  OUTPUT v.result.value AS "value"\nEND FLOW\n'
    const p = planSource(src)
    const cache = new MemoryStepCache()
    const grid = new FakeGrid()
    assert.equal((await execute(p, {}, { port: grid, cache, baseDir: dir })).outputs.value, '7')
    assert.equal((await execute(p, {}, { port: grid, cache, baseDir: dir })).metrics.stepsRun, 0)
    writeFileSync(join(dir, 'p.vasm'), 'LOAD_CONST r0 8\nHALT\n')
    const why = await explain(p, {}, { cache, baseDir: dir })
    assert.deepEqual(why.map(s => s.action), ['run', 'run'])
    assert.equal((await execute(p, {}, { port: grid, cache, baseDir: dir })).outputs.value, '8')
    assert.equal(grid.submitted.length, 2)
  } finally { rmSync(dir, { recursive: true, force: true }) }
})
