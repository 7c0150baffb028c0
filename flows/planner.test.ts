import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { planSource, planJson } from './planner.js'
import { FlowErrors } from './errors.js'
import { CORE, EXAMPLES } from './fakes.js'

function planErrors (src: string): FlowErrors {
  try { planSource(src) } catch (e) { if (e instanceof FlowErrors) return e; throw e }
  assert.fail('expected plan errors')
}

test('core flow plan: nodes, edges, versions, order, fused streaming chain, hash', () => {
  const { plan } = planSource(CORE)
  assert.deepEqual(plan.nodes.map(n => [n.id, n.version, n.deps, n.inputs]), [
    ['load', 'LOAD_CSV@1.0', [], ['sales_csv']],
    ['paid', 'FILTER@1.0', ['load'], []],
    ['totals', 'GROUP@1.0', ['paid'], []],
    ['sorted', 'SORT@1.0', ['totals'], []],
    ['report', 'OUTPUT@1.0', ['sorted'], []]
  ])
  assert.deepEqual(plan.edges, [{ from: 'load', to: 'paid' }, { from: 'paid', to: 'totals' }, { from: 'totals', to: 'sorted' }, { from: 'sorted', to: 'report' }])
  assert.deepEqual(plan.order, ['load', 'paid', 'totals', 'sorted', 'report'])
  assert.deepEqual(plan.outputs, [{ label: 'TopCustomers', step: 'report' }])
  // LOAD CSV → FILTER → GROUP stream; SORT needs the whole table.
  assert.deepEqual(plan.nodes.map(n => n.fusedInto), ['paid', 'totals', null, null, null])
  assert.match(plan.hash, /^[0-9a-f]{64}$/)
  const json = JSON.parse(JSON.stringify(planJson(plan)))
  assert.equal(json.hash, plan.hash)
  assert.equal(json.nodes.length, 5)
})

test('plan hash: same for layout and comment changes, different for a parameter change', () => {
  const a = planSource(CORE).plan.hash
  const b = planSource('# a comment\n' + CORE.replace('STEP paid =\n  FILTER load', 'STEP paid =\n\n    FILTER   load')).plan.hash
  const c = planSource(CORE.replace('TAKE 2', 'TAKE 3')).plan.hash
  assert.equal(a, b)
  assert.notEqual(a, c)
})

test('references inside WITH payloads and ${} templates are edges', () => {
  const { plan } = planSource(readFileSync(EXAMPLES + 'parallel-jobs.flow', 'utf8'))
  assert.deepEqual(plan.edges, [{ from: 'small', to: 'both' }, { from: 'large', to: 'both' }])
  const p2 = planSource('FLOW "x"\nINPUTS\n  number n\nEND INPUTS\nSTEP a =\n  RUN JOB "fib" WITH { n: n, meta: { list: [1, "${b}"] } }\nSTEP b =\n  OUTPUT_TEXT "x"\nSTEP c =\n  FILTER t WHERE v > $a.result.n\nSTEP t =\n  LOAD JSON FROM n\nSTEP o =\n  OUTPUT c AS "c"\nEND FLOW\n').plan
  assert.deepEqual(p2.nodes.find(n => n.id === 'a')!.deps, ['b'])
  assert.deepEqual(p2.nodes.find(n => n.id === 'a')!.inputs, ['n'])
  assert.deepEqual(p2.nodes.find(n => n.id === 'c')!.deps, ['t', 'a'])
  // Source order is not execution order: b runs before a.
  assert.ok(p2.order.indexOf('b') < p2.order.indexOf('a'))
})

test('unknown references: every one reported, with a suggestion', () => {
  const e = planErrors('FLOW "x"\nINPUTS\n  file sales\nEND INPUTS\nSTEP load =\n  LOAD CSV FROM sale\nSTEP t =\n  OUTPUT_TEXT "${lod.x} ${nothing}"\nEND FLOW\n')
  assert.deepEqual(e.errors.map(x => `${x.line}:${x.col} ${x.code}`), ['6:17 ERR_UNKNOWN_REF', '8:18 ERR_UNKNOWN_REF', '8:27 ERR_UNKNOWN_REF'])
  assert.equal(e.errors[0]!.hint, 'did you mean sales?')
  assert.equal(e.errors[1]!.hint, 'did you mean load?')
  assert.equal(e.errors[0]!.step, 'load')
})

test('a cycle of three names every step and line', () => {
  const e = planErrors('FLOW "x"\nSTEP a =\n  TAKE 1 FROM c\nSTEP b =\n  TAKE 1 FROM a\nSTEP c =\n  RUN JOB "fib" WITH { n: b.0.n }\nSTEP o =\n  OUTPUT a AS "a"\nEND FLOW\n')
  assert.equal(e.errors.length, 1)
  assert.equal(e.first.code, 'ERR_CYCLE')
  assert.ok(e.first.message.includes('a (line 2) → c (line 6) → b (line 4) → a (line 2)'), e.first.message)
})

test('agent ops fail at plan time naming the line, never run', () => {
  const e = planErrors('FLOW "x"\nSTEP q =\n  ASK_AI "hello"\nSTEP r =\n  RUN AGENT "planner"\nSTEP o =\n  OUTPUT_TEXT "${q} ${r}"\nEND FLOW\n')
  assert.deepEqual(e.errors.map(x => [x.code, x.line]), [['ERR_NO_AGENT', 3], ['ERR_NO_AGENT', 5]])
  assert.ok(e.errors.every(x => x.message.includes('no agent backend configured')))
})
