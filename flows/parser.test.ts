import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { parse, parseFlow } from './parser.js'
import { lex } from './lexer.js'
import { listOps, CONTRACTS } from './ops.js'
import { CORE, SEED, EXAMPLES } from './fakes.js'

test('the contract core flow parses to the expected tree', () => {
  const { flow, warnings } = parse(CORE)
  assert.equal(flow.name, 'Top customers')
  assert.deepEqual(flow.inputs.map(i => [i.name, i.type, i.optional]), [['sales_csv', 'file', false], ['limit', 'number', true]])
  assert.deepEqual(flow.steps.map(s => [s.name, s.op.op, s.line]), [['load', 'LOAD_CSV', 8], ['paid', 'FILTER', 11], ['totals', 'GROUP', 14], ['sorted', 'SORT', 19], ['report', 'OUTPUT', 23]])
  const g = flow.steps[2]!.op
  assert.ok(g.op === 'GROUP')
  assert.deepEqual(g.by, [['customer_id']])
  assert.deepEqual(g.aggs.map(a => [a.fn, a.field, a.as]), [['sum', ['amount'], 'total_amount'], ['count', null, 'orders']])
  const s = flow.steps[3]!.op
  assert.ok(s.op === 'SORT')
  assert.deepEqual(s.keys.map(k => [k.field, k.desc]), [[['total_amount'], true]])
  assert.deepEqual(s.take, { kind: 'lit', value: 2 })
  // `limit` is declared and never used: a warning, not an error.
  assert.deepEqual(warnings.map(w => [w.code, w.line, w.col]), [['WARN_UNUSED_INPUT', 5, 10]])
})

test('the seed README example parses (multi-line WITH, quoted keys, dotted OUTPUT_TEXT)', () => {
  const { flow } = parse(SEED)
  const call = flow.steps[0]!.op
  assert.ok(call.op === 'CALL_FLOW')
  assert.equal(call.path, 'flows/lib/ai/agents.flow')
  assert.ok(call.with?.kind === 'object')
  assert.deepEqual(call.with.entries.map(([k, v]) => [k, v.kind]), [['question', 'ref']])
  const out = flow.steps[1]!.op
  assert.ok(out.op === 'OUTPUT_TEXT')
  assert.deepEqual(out.source?.path, ['ask_agent', 'answer'])
})

test('every example flow parses without errors', () => {
  const files = readdirSync(EXAMPLES).filter(f => f.endsWith('.flow'))
  assert.ok(files.length >= 6)
  for (const f of files) {
    const r = parseFlow(readFileSync(EXAMPLES + f, 'utf8'))
    assert.deepEqual(r.errors.map(e => e.message), [], f)
  }
})

test('comments (# and //), BOM, CRLF and lower-case keywords', () => {
  const source = '\ufeff// header comment\r\nflow "x" # trailing\r\nstep a =\r\n  output_text "a # not a comment // either"\r\nend flow\r\n'
  const { flow } = parse(source)
  const op = flow.steps[0]!.op
  assert.ok(op.op === 'OUTPUT_TEXT')
  assert.deepEqual(op.template, ['a # not a comment // either'])
})

test('expressions: precedence, IN, NOT IN, IS NOT NULL, $refs, dotted fields, negative numbers', () => {
  const { flow } = parse(`FLOW "x"
INPUTS
  number min
END INPUTS
STEP a =
  FILTER min WHERE a.b > -1 AND NOT c IN [1, "x", null] OR d IS NOT NULL AND e NOT IN [true] AND f >= $min
END FLOW
`)
  const op = flow.steps[0]!.op
  assert.ok(op.op === 'FILTER')
  const w = op.where
  // OR binds loosest: (a.b > -1 AND NOT (c IN [...])) OR (d IS NOT NULL AND e NOT IN [...] AND f >= $min)
  assert.ok(w.kind === 'binary' && w.op === 'OR')
  assert.ok(w.left.kind === 'binary' && w.left.op === 'AND')
  assert.ok(w.left.left.kind === 'binary' && w.left.left.op === '>' && w.left.left.left.kind === 'field')
  assert.deepEqual(w.left.left.left.path, ['a', 'b'])
  assert.ok(w.left.left.right.kind === 'lit' && w.left.left.right.value === -1)
  assert.ok(w.left.right.kind === 'unary' && w.left.right.op === 'NOT' && w.left.right.arg.kind === 'in')
  assert.ok(w.right.kind === 'binary' && w.right.op === 'AND' && w.right.right.kind === 'binary' && w.right.right.right.kind === 'ref')
})

test('arithmetic precedence in MAP: * before +, parentheses, unary minus', () => {
  const { flow } = parse('FLOW "x"\nSTEP m =\n  MAP m0 SET t = 1 + 2 * 3, u = (1 + 2) * 3, v = -t % 4\nEND FLOW\n')
  const op = flow.steps[0]!.op
  assert.ok(op.op === 'MAP')
  const [t, u, v] = op.fields
  assert.ok(t!.expr.kind === 'binary' && t!.expr.op === '+' && t!.expr.right.kind === 'binary' && t!.expr.right.op === '*')
  assert.ok(u!.expr.kind === 'binary' && u!.expr.op === '*' && u!.expr.left.kind === 'binary' && u!.expr.left.op === '+')
  assert.ok(v!.expr.kind === 'binary' && v!.expr.op === '%' && v!.expr.left.kind === 'unary')
})

test('version pins: FILTER@1 and LOAD CSV@1.0 resolve; the plan records the served version', () => {
  const { flow } = parse('FLOW "x"\nINPUTS\n  text t\nEND INPUTS\nSTEP a =\n  LOAD CSV@1.0 FROM t\nSTEP b =\n  FILTER@1 a WHERE x == 1\nSTEP c =\n  OUTPUT b AS "o"\nEND FLOW\n')
  assert.deepEqual(flow.steps[0]!.op.pin, { major: 1, minor: 0, line: 6, col: 11 })
  assert.deepEqual(flow.steps[1]!.op.pin, { major: 1, minor: null, line: 8, col: 9 })
})

test('templates keep each reference with its position', () => {
  const { tokens, errors } = lex('  "a ${f.result.n} b \\${not} ${ x }"')
  assert.deepEqual(errors, [])
  assert.deepEqual(tokens[0]!.parts, ['a ', { path: ['f', 'result', 'n'], line: 1, col: 8 }, ' b ${not} ', { path: ['x'], line: 1, col: 33 }])
})

test('unused step warning names the step and line', () => {
  const { warnings } = parse('FLOW "x"\nSTEP a =\n  RUN JOB "fib" WITH { n: 1 }\nSTEP b =\n  OUTPUT_TEXT "hi"\nEND FLOW\n')
  assert.deepEqual(warnings.map(w => w.message), ['2:1: step a is never used and is not an output'])
})

test('listOps: every op has a versioned contract with inputs, output and params', () => {
  const ops = listOps()
  assert.equal(ops.length, CONTRACTS.length)
  for (const o of ops) {
    assert.match(o.version, /^[A-Z_]+@\d+\.\d+$/)
    assert.ok(o.syntax.length > 0 && o.summary.length > 0 && o.output.length > 0, o.name)
    assert.ok(Array.isArray(o.params) && Array.isArray(o.inputs) && Array.isArray(o.limits))
  }
  for (const name of ['LOAD_CSV', 'LOAD_JSON', 'FILTER', 'MAP', 'GROUP', 'SORT', 'TAKE', 'JOIN', 'RUN_JOB', 'RUN_VASM', 'CALL_FLOW', 'OUTPUT', 'OUTPUT_TEXT', 'RUN_AGENT', 'ASK_AI']) {
    assert.ok(ops.some(o => o.name === name), name)
  }
})

test('limits: too many steps and too deep nesting are ERR_LIMIT with a position', () => {
  const many = 'FLOW "x"\n' + Array.from({ length: 5 }, (_, i) => `STEP s${i} =\n  OUTPUT_TEXT "x"\n`).join('') + 'END FLOW\n'
  const r = parseFlow(many, { lex: { maxSourceBytes: 1 << 20, maxTokens: 10_000 }, maxSteps: 3, maxInputs: 10, maxDepth: 64 })
  assert.equal(r.errors[0]!.code, 'ERR_LIMIT')
  assert.equal(r.errors[0]!.line, 8)
  const deep = 'FLOW "x"\nSTEP a =\n  FILTER b WHERE ' + '('.repeat(100) + 'x' + ')'.repeat(100) + '\nEND FLOW\n'
  const d = parseFlow(deep)
  assert.equal(d.errors[0]!.code, 'ERR_LIMIT')
  assert.equal(d.errors[0]!.line, 3)
  const big = parseFlow('x'.repeat(2000), { lex: { maxSourceBytes: 1000, maxTokens: 10 }, maxSteps: 3, maxInputs: 10, maxDepth: 8 })
  assert.equal(big.errors[0]!.code, 'ERR_LIMIT')
})
