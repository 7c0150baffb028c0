import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { planSource } from './planner.js'
import { execute, FlowRunError, type ExecuteOptions, type FlowResult } from './executor.js'
import { FlowError } from './errors.js'
import { FakeGrid, waitFor, CORE, EXAMPLES } from './fakes.js'

const example = (f: string): string => readFileSync(EXAMPLES + f, 'utf8')
const run = async (src: string, inputs: Record<string, unknown> = {}, o: ExecuteOptions = {}): Promise<FlowResult> =>
  await execute(planSource(src), inputs, { baseDir: EXAMPLES, ...o })
async function runFail (src: string, inputs: Record<string, unknown> = {}, o: ExecuteOptions = {}): Promise<FlowRunError> {
  try { await run(src, inputs, o) } catch (e) { if (e instanceof FlowRunError) return e; throw e }
  assert.fail('expected the run to fail')
}
const flow = (body: string, inputs = ''): string => `FLOW "t"\n${inputs === '' ? '' : `INPUTS\n${inputs}\nEND INPUTS\n`}${body}\nEND FLOW\n`

test('golden: the contract core flow on the sample CSV', async () => {
  const r = await run(CORE, { sales_csv: EXAMPLES + 'sales.csv' })
  assert.deepEqual(r.outputs, { TopCustomers: [{ customer_id: 'C003', total_amount: 310, orders: 2 }, { customer_id: 'C005', total_amount: 299.99, orders: 1 }] })
  const m = r.metrics.steps
  assert.equal(m.load!.rowsOut, 10)
  assert.equal(m.paid!.rowsOut, 7)
  assert.equal(m.totals!.rowsIn, 7)
  assert.equal(m.totals!.rowsOut, 4)
  assert.equal(m.sorted!.rowsOut, 2)
  assert.ok(m.load!.fused && m.paid!.fused && !m.totals!.fused)
  for (const s of Object.values(m)) { assert.equal(s.status, 'succeeded'); assert.ok(s.ms !== null && s.ms >= 0) }
  assert.equal(JSON.parse(JSON.stringify(r.outputs)).TopCustomers.length, 2)
})

test('golden: revenue by region (LEFT JOIN, MAP, IN, NOT, IS NULL, two-key GROUP, multi-key SORT)', async () => {
  const r = await run(example('revenue.flow'), { orders_csv: EXAMPLES + 'sales.csv', customers_csv: EXAMPLES + 'customers.csv' })
  assert.deepEqual(r.outputs.Revenue, [
    { region: 'EU', status: 'paid', orders: 3, gross: 720.75, biggest: 300, net: 480.5 },
    { region: null, status: 'paid', orders: 1, gross: 449.985, biggest: 299.99, net: 299.99 },
    { region: 'US', status: 'paid', orders: 2, gross: 187.875, biggest: 80, net: 125.25 },
    { region: 'EU', status: 'pending', orders: 1, gross: 148.5, biggest: 99, net: 99 }
  ])
  assert.deepEqual(r.outputs['Unknown customers'], [{ order_id: 9, customer_id: 'C005', status: 'paid', amount: 299.99, note: null, name: null, region: null, gross: 449.985, label: ' (C005)' }])
})

test('CSV: BOM, quotes, embedded newlines, doubled quotes, number rules, empty cells', async () => {
  const csv = '\ufeffid,name,v,code,big,neg\r\n1,"a, b",1.5,007,12345678901234567890,-3\r\n2,"line1\nline2",1e3,,x,-0.5\r\n3,"say ""hi""",,10,9007199254740991,\r\n'
  const r = await run(flow('STEP a =\n  LOAD CSV FROM t\nSTEP o =\n  OUTPUT a AS "rows"', '  text t'), { t: csv })
  assert.deepEqual(r.outputs.rows, [
    { id: 1, name: 'a, b', v: 1.5, code: '007', big: '12345678901234567890', neg: -3 },
    { id: 2, name: 'line1\nline2', v: 1000, code: null, big: 'x', neg: -0.5 },
    { id: 3, name: 'say "hi"', v: null, code: 10, big: 9007199254740991, neg: null }
  ])
})

test('CSV: odd header names are plain fields (quotes, spaces, __proto__)', async () => {
  const r = await run(flow('STEP a =\n  LOAD CSV FROM t\nSTEP o =\n  OUTPUT a AS "rows"', '  text t'), { t: '"a""b",c d,__proto__,`x`\n1,2,3,4\n' })
  const row = (r.outputs.rows as Array<Record<string, unknown>>)[0]!
  assert.deepEqual(Object.keys(row), ['a"b', 'c d', '__proto__', '`x`'])
  assert.equal(Object.getPrototypeOf(row), Object.prototype)
  assert.equal(row.__proto__ === 3 || Object.getOwnPropertyDescriptor(row, '__proto__')?.value === 3, true)
})

test('CSV: a ragged row fails the step naming the file line, not the process', async () => {
  const e = await runFail(flow('STEP a =\n  LOAD CSV FROM t\nSTEP o =\n  OUTPUT a AS "rows"', '  file t'), { t: { content: 'a,b\n1,2\n3\n', name: 'bad.csv' } })
  assert.equal(e.code, 'ERR_RUNTIME')
  assert.match(e.message, /step a \(line 5\).*bad\.csv line 3/)
  assert.equal(e.result.metrics.steps.o!.status, 'skipped')
})

test('FILTER / MAP / SORT / TAKE / JOIN / GROUP semantics', async () => {
  const rows = [
    { k: 'b', v: 2, s: 'x', n: null },
    { k: 'a', v: 10, s: 'y', n: 1 },
    { k: 'b', v: 7, s: 'x', n: 3 },
    { k: 'c', v: null, s: 'z', n: 2 },
    { k: 'a', v: 1, s: 'y', n: null }
  ]
  const src = flow(`STEP f =
  FILTER rows WHERE (v >= 2 OR v IS NULL) AND s != "q" AND NOT k IN ["zz"]
STEP m =
  MAP f SET w = v * 2 + 1, half = w / 2, mod = v % 4, tag = k + "-" + s
STEP s1 =
  SORT rows BY k ASC, v DESC
STEP s2 =
  SORT rows BY n
STEP t =
  TAKE 2 FROM s1
STEP g =
  GROUP rows BY k
  AGG count(*) AS c
  AGG count(n) AS cn
  AGG sum(v) AS sv
  AGG avg(v) AS av
  AGG min(v) AS lo
  AGG max(s) AS hi
  AGG n AS sn
STEP o1 =
  OUTPUT m AS "map"
STEP o2 =
  OUTPUT s1 AS "sorted"
STEP o3 =
  OUTPUT s2 AS "nulls last, stable"
STEP o4 =
  OUTPUT t AS "take"
STEP o5 =
  OUTPUT g AS "group"`, '  table rows')
  const r = await run(src, { rows })
  assert.deepEqual(r.outputs.map, [
    { k: 'b', v: 2, s: 'x', n: null, w: 5, half: 2.5, mod: 2, tag: 'b-x' },
    { k: 'a', v: 10, s: 'y', n: 1, w: 21, half: 10.5, mod: 2, tag: 'a-y' },
    { k: 'b', v: 7, s: 'x', n: 3, w: 15, half: 7.5, mod: 3, tag: 'b-x' },
    { k: 'c', v: null, s: 'z', n: 2, w: null, half: null, mod: null, tag: 'c-z' }
  ])
  assert.deepEqual((r.outputs.sorted as Array<{ k: string, v: number }>).map(x => `${x.k}${x.v}`), ['a10', 'a1', 'b7', 'b2', 'cnull'])
  assert.deepEqual((r.outputs['nulls last, stable'] as Array<{ k: string, v: number }>).map(x => `${x.k}${x.v}`), ['a10', 'c' + 'null', 'b7', 'b2', 'a1'])
  assert.deepEqual((r.outputs.take as unknown[]).length, 2)
  assert.deepEqual(r.outputs.group, [
    { k: 'b', c: 2, cn: 1, sv: 9, av: 4.5, lo: 2, hi: 'x', sn: 3 },
    { k: 'a', c: 2, cn: 1, sv: 11, av: 5.5, lo: 1, hi: 'y', sn: 1 },
    { k: 'c', c: 1, cn: 1, sv: 0, av: null, lo: null, hi: 'z', sn: 2 }
  ])
})

test('JOIN inner and left, with differently named keys and clashing fields', async () => {
  const a = [{ id: 1, name: 'x' }, { id: 2, name: 'y' }, { id: null, name: 'z' }]
  const b = [{ ref: 1, name: 'first', qty: 5 }, { ref: 1, name: 'again', qty: 6 }, { ref: 3, name: 'other', qty: 7 }]
  const src = flow('STEP i =\n  JOIN a WITH b ON id = ref\nSTEP l =\n  JOIN a WITH b ON id = ref LEFT\nSTEP o1 =\n  OUTPUT i AS "inner"\nSTEP o2 =\n  OUTPUT l AS "left"', '  table a\n  table b')
  const r = await run(src, { a, b })
  assert.deepEqual(r.outputs.inner, [
    { id: 1, name: 'x', ref: 1, b_name: 'first', qty: 5 },
    { id: 1, name: 'x', ref: 1, b_name: 'again', qty: 6 }
  ])
  assert.deepEqual(r.outputs.left, [
    { id: 1, name: 'x', ref: 1, b_name: 'first', qty: 5 },
    { id: 1, name: 'x', ref: 1, b_name: 'again', qty: 6 },
    { id: 2, name: 'y', ref: null, b_name: null, qty: null },
    { id: null, name: 'z', ref: null, b_name: null, qty: null }
  ])
})

test('LOAD JSON, $input in a condition, TAKE $input, OUTPUT_TEXT of a value', async () => {
  const src = flow('STEP j =\n  LOAD JSON FROM doc\nSTEP f =\n  FILTER j.items WHERE price > $min\nSTEP t =\n  TAKE $limit FROM f\nSTEP o =\n  OUTPUT t AS "items"\nSTEP txt =\n  OUTPUT_TEXT j.meta', '  text doc\n  number min\n  number limit')
  const r = await run(src, { doc: '{"meta":{"v":1},"items":[{"price":1},{"price":5},{"price":9},{"price":7}]}', min: 2, limit: 2 })
  assert.deepEqual(r.outputs, { items: [{ price: 5 }, { price: 9 }], txt: '{"v":1}' })
})

test('runtime errors name the step, its line and the op position', async () => {
  const e = await runFail(flow('STEP m =\n  MAP rows SET x = s * 2\nSTEP o =\n  OUTPUT m AS "m"', '  table rows'), { rows: [{ s: 'text' }] })
  assert.equal(e.code, 'ERR_RUNTIME')
  assert.equal(e.first.step, 'm')
  assert.match(e.message, /^6:22: step m \(line 5\): \* needs numbers, got "text"/)
  const d = await runFail(flow('STEP m =\n  MAP rows SET x = 1 / z\nSTEP o =\n  OUTPUT m AS "m"', '  table rows'), { rows: [{ z: 0 }] })
  assert.match(d.message, /division by zero/)
})

test('inputs are checked: missing, mistyped, unknown', async () => {
  await assert.rejects(run(CORE, {}), (e: FlowError) => e.code === 'ERR_INPUT' && /missing input sales_csv/.test(e.message))
  await assert.rejects(run(CORE, { sales_csv: EXAMPLES + 'sales.csv', limit: 'ten' }), (e: FlowError) => e.code === 'ERR_INPUT' && /input limit \(number, line 5\)/.test(e.message))
  await assert.rejects(run(CORE, { sales_csv: EXAMPLES + 'sales.csv', extra: 1 }), (e: FlowError) => e.code === 'ERR_INPUT' && /unknown input "extra"/.test(e.message))
})

test('limits: maxRows stops a table with a clear error', async () => {
  const rows = Array.from({ length: 50 }, (_, i) => ({ i }))
  const e = await runFail(flow('STEP s =\n  SORT rows BY i\nSTEP o =\n  OUTPUT s AS "s"', '  table rows'), { rows }, { limits: { maxRows: 10 } })
  assert.equal(e.code, 'ERR_LIMIT')
  assert.match(e.message, /maxRows \(10\)/)
})

test('split Fibonacci through RUN JOB: the contract reference values', async () => {
  const grid = new FakeGrid()
  const r = await run(example('fib-split.flow'), { n: 5000 }, { port: grid })
  assert.deepEqual(r.outputs.fib, { n: 5000, digits: 1045, sha256: '8963142965b48df3507e33fcb48926fb4ee387da20f6932cc0e8abe5f1ae1bda', sumMod61: '1558601041103539' })
  assert.equal(r.outputs.summary, 'F(5000) has 1045 digits, sha256 8963142965b48df3507e33fcb48926fb4ee387da20f6932cc0e8abe5f1ae1bda')
  assert.deepEqual(grid.submitted, [{ kind: 'fib', params: { n: 5000, segments: 4 } }])
  assert.equal(r.metrics.steps.fib!.jobIds.length, 1)
})

test('RUN VASM: program read from the flow folder, args and map form', async () => {
  const grid = new FakeGrid()
  const r = await run(example('vasm-sum.flow'), { upto: 101 }, { port: grid })
  assert.equal(r.outputs.report, 'sum [1, 101) = 5050; sum [0, 1000) = 499500')
  assert.deepEqual(grid.submitted.map(s => s.kind), ['vasm', 'vasm'])
  const mapped = grid.submitted.find(s => s.params.range !== undefined)!.params
  assert.deepEqual({ ...mapped, program: undefined }, { program: undefined, args: [], range: { start: 0, end: 1000 }, segments: 4, reduce: 'sum' })
  assert.equal(mapped.program, readFileSync(EXAMPLES + 'sum.vasm').toString('base64'))
})

test('CALL FLOW: the called flow\'s outputs are the value; recursion is bounded', async () => {
  const r = await run(example('call-flow.flow'), { n: 10 }, { port: new FakeGrid() })
  assert.deepEqual(r.outputs, { digits: 2, text: 'F(10) has 2 digits, sha256 02d20bbd7e394ad5999a4cebabac9619732c343a4cac99470c03e23ba2bdc2bc' })
  const self = flow('STEP again =\n  CALL FLOW "self.flow"\nSTEP o =\n  OUTPUT again AS "x"')
  const e = await runFail(self, {}, { loadFlow: async () => self, limits: { maxCallDepth: 3 } })
  assert.equal(e.code, 'ERR_LIMIT')
  assert.match(e.message, /maxCallDepth \(3\)/)
})

test('independent steps run concurrently (the grid sees both jobs in flight at once)', async () => {
  const grid = new FakeGrid()
  grid.hold = true
  const p = run(example('parallel-jobs.flow'), {}, { port: grid })
  await waitFor(() => grid.inFlight === 2, 'both jobs in flight')
  grid.release()
  const r = await p
  assert.equal(grid.maxInFlight, 2)
  assert.ok(r.metrics.maxConcurrent >= 2)
  assert.equal(r.outputs.both, 'F(5000): 1045 digits; F(20000): 4180 digits')
})

test('dependent steps run in order; concurrency is bounded', async () => {
  const grid = new FakeGrid()
  const chain = flow('STEP a =\n  RUN JOB "fib" WITH { n: 10 }\nSTEP b =\n  RUN JOB "fib" WITH { n: a.result.digits }\nSTEP o =\n  OUTPUT b.result.n AS "n"')
  const r = await run(chain, {}, { port: grid })
  assert.equal(r.outputs.n, 2)
  assert.equal(grid.maxInFlight, 1)
  const many = flow(Array.from({ length: 6 }, (_, i) => `STEP j${i} =\n  RUN JOB "fib" WITH { n: ${i} }`).join('\n') + '\nSTEP o =\n  OUTPUT_TEXT "' + Array.from({ length: 6 }, (_, i) => `\${j${i}.result.n}`).join(',') + '"')
  const g2 = new FakeGrid()
  g2.hold = true
  const p = run(many, {}, { port: g2, concurrency: 2 })
  let released = 0
  while (released < 6) {
    await waitFor(() => g2.inFlight === Math.min(2, 6 - released), 'jobs in flight')
    released += g2.inFlight
    g2.release()
  }
  const r2 = await p
  assert.equal(r2.outputs.o, '0,1,2,3,4,5')
  assert.equal(g2.maxInFlight, 2)
})

test('a failing step stops its dependents, not the independent steps', async () => {
  const src = flow('STEP bad =\n  RUN JOB "fail" WITH { message: "boom" }\nSTEP after =\n  OUTPUT bad.result AS "after"\nSTEP good =\n  RUN JOB "fib" WITH { n: 10 }\nSTEP out =\n  OUTPUT good.result.digits AS "digits"')
  const e = await runFail(src, {}, { port: new FakeGrid() })
  assert.equal(e.code, 'ERR_JOB_FAILED')
  assert.match(e.message, /^3:3: step bad: job job-\d+ \(fail\) failed: boom/)
  const s = e.result.metrics.steps
  assert.equal(s.bad!.status, 'failed')
  assert.equal(s.after!.status, 'skipped')
  assert.match(s.after!.error!, /step bad \(line 2\) failed/)
  assert.equal(s.good!.status, 'succeeded')
  assert.deepEqual(e.result.outputs, { digits: 2 })
  assert.equal(e.result.run.status, 'failed')
})

test('cancellation: aborting the run cancels its grid jobs and leaves a resumable record', async () => {
  const grid = new FakeGrid()
  grid.hold = true
  const ac = new AbortController()
  const p = run(example('parallel-jobs.flow'), {}, { port: grid, signal: ac.signal })
  await waitFor(() => grid.inFlight === 2, 'jobs in flight')
  ac.abort()
  const e = await p.then(() => null, (x: unknown) => x)
  assert.ok(e instanceof FlowRunError)
  assert.equal(e.code, 'ERR_CANCELLED')
  assert.deepEqual(grid.cancelled.sort(), ['job-1', 'job-2'])
  assert.equal(e.result.run.status, 'cancelled')
  assert.deepEqual(Object.values(e.result.run.steps).map(s => s.status), ['cancelled', 'cancelled', 'cancelled'])
})

test('RUN JOB without a grid port is a clear error', async () => {
  const e = await runFail(example('parallel-jobs.flow'))
  assert.match(e.message, /RUN JOB needs a grid/)
})
