/**
 * A catalogue of malformed flows, each with the exact line:col (and error code) it must report.
 * Flows are written with `|` marking the left margin so the columns are easy to count.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseFlow } from './parser.js'
import { planSource } from './planner.js'
import { FlowErrors } from './errors.js'

const src = (s: string): string => s.split('\n').map(l => l.replace(/^\s*\|/, '')).join('\n').replace(/^\n/, '')

interface Case { name: string, source: string, at: string, code: string, includes?: string }

// Line 1 is always `FLOW "t"` unless the case is about the header.
const CASES: Case[] = [
  { name: 'missing FROM after LOAD CSV', at: '3:12', code: 'ERR_SYNTAX', includes: 'expected FROM after LOAD CSV, found "sales"', source: src(`
    |FLOW "t"
    |STEP a =
    |  LOAD CSV sales
    |END FLOW`) },
  { name: 'LOAD without CSV/JSON', at: '3:8', code: 'ERR_SYNTAX', includes: 'expected CSV or JSON after LOAD', source: src(`
    |FLOW "t"
    |STEP a =
    |  LOAD XML FROM x
    |END FLOW`) },
  { name: 'no FLOW header', at: '1:1', code: 'ERR_SYNTAX', includes: 'expected FLOW', source: src(`
    |STEP a =
    |  OUTPUT_TEXT "x"
    |END FLOW`) },
  { name: 'FLOW without name', at: '1:5', code: 'ERR_SYNTAX', includes: 'found end of line', source: src(`
    |FLOW
    |STEP a =
    |  OUTPUT_TEXT "x"
    |END FLOW`) },
  { name: 'FLOW name not a string', at: '1:6', code: 'ERR_SYNTAX', source: src(`
    |FLOW top
    |STEP a =
    |  OUTPUT_TEXT "x"
    |END FLOW`) },
  { name: 'missing END FLOW', at: '3:18', code: 'ERR_SYNTAX', includes: 'expected END FLOW', source: 'FLOW "t"\nSTEP a =\n  OUTPUT_TEXT "x"' },
  { name: 'END without FLOW', at: '4:5', code: 'ERR_SYNTAX', includes: 'expected FLOW after END', source: src(`
    |FLOW "t"
    |STEP a =
    |  OUTPUT_TEXT "x"
    |END STEP`) },
  { name: 'text after END FLOW', at: '5:1', code: 'ERR_SYNTAX', source: src(`
    |FLOW "t"
    |STEP a =
    |  OUTPUT_TEXT "x"
    |END FLOW
    |junk`) },
  { name: 'STEP without =', at: '2:7', code: 'ERR_SYNTAX', includes: 'expected = after STEP a', source: src(`
    |FLOW "t"
    |STEP a
    |  OUTPUT_TEXT "x"
    |END FLOW`) },
  { name: 'STEP without name', at: '2:6', code: 'ERR_SYNTAX', includes: 'expected a step name', source: src(`
    |FLOW "t"
    |STEP = 
    |  OUTPUT_TEXT "x"
    |END FLOW`) },
  { name: 'empty step body', at: '3:1', code: 'ERR_SYNTAX', includes: 'expected an op after STEP a =', source: src(`
    |FLOW "t"
    |STEP a =
    |STEP b =
    |  OUTPUT_TEXT "x"
    |END FLOW`) },
  { name: 'body not indented', at: '3:1', code: 'ERR_SYNTAX', includes: 'indented', source: src(`
    |FLOW "t"
    |STEP a =
    |OUTPUT_TEXT "x"
    |END FLOW`) },
  { name: 'unknown op', at: '3:3', code: 'ERR_UNKNOWN_OP', includes: 'unknown op "APX_EXEC"', source: src(`
    |FLOW "t"
    |STEP a =
    |  APX_EXEC "source.readFile"
    |END FLOW`) },
  { name: 'unknown input type', at: '3:3', code: 'ERR_SYNTAX', includes: 'expected an input type', source: src(`
    |FLOW "t"
    |INPUTS
    |  string name
    |END INPUTS
    |STEP a =
    |  OUTPUT name AS "n"
    |END FLOW`) },
  { name: 'input without name', at: '3:9', code: 'ERR_SYNTAX', includes: 'expected an input name after number', source: src(`
    |FLOW "t"
    |INPUTS
    |  number
    |END INPUTS
    |STEP a =
    |  OUTPUT_TEXT "x"
    |END FLOW`) },
  { name: 'junk after input', at: '3:16', code: 'ERR_SYNTAX', source: src(`
    |FLOW "t"
    |INPUTS
    |  number limit required
    |END INPUTS
    |STEP a =
    |  OUTPUT limit AS "x"
    |END FLOW`) },
  { name: 'INPUTS not closed', at: '4:1', code: 'ERR_SYNTAX', includes: 'expected END INPUTS', source: src(`
    |FLOW "t"
    |INPUTS
    |  number limit
    |STEP a =
    |  OUTPUT limit AS "x"
    |END FLOW`) },
  { name: 'duplicate step', at: '4:1', code: 'ERR_DUPLICATE', includes: 'already declared on line 2', source: src(`
    |FLOW "t"
    |STEP a =
    |  OUTPUT_TEXT "x"
    |STEP a =
    |  OUTPUT_TEXT "y"
    |END FLOW`) },
  { name: 'duplicate input', at: '4:10', code: 'ERR_DUPLICATE', source: src(`
    |FLOW "t"
    |INPUTS
    |  number n
    |  number n
    |END INPUTS
    |STEP a =
    |  OUTPUT n AS "x"
    |END FLOW`) },
  { name: 'FILTER without WHERE', at: '3:12', code: 'ERR_SYNTAX', includes: 'expected WHERE after FILTER x', source: src(`
    |FLOW "t"
    |STEP a =
    |  FILTER x amount > 1
    |END FLOW`) },
  { name: 'single = in condition', at: '3:25', code: 'ERR_SYNTAX', includes: 'expected a comparison', source: src(`
    |FLOW "t"
    |STEP a =
    |  FILTER x WHERE status = "paid"
    |END FLOW`) },
  { name: 'unclosed parenthesis', at: '3:29', code: 'ERR_SYNTAX', includes: 'found end of step', source: src(`
    |FLOW "t"
    |STEP a =
    |  FILTER x WHERE (amount > 1
    |STEP b =
    |  OUTPUT_TEXT "x"
    |END FLOW`) },
  { name: 'IN without list', at: '3:28', code: 'ERR_SYNTAX', includes: 'expected [ after IN', source: src(`
    |FLOW "t"
    |STEP a =
    |  FILTER x WHERE status IN "paid"
    |END FLOW`) },
  { name: 'IS without NULL', at: '3:26', code: 'ERR_SYNTAX', includes: 'expected NULL after IS', source: src(`
    |FLOW "t"
    |STEP a =
    |  FILTER x WHERE note IS empty
    |END FLOW`) },
  { name: 'single-quoted string', at: '3:28', code: 'ERR_LEX', includes: 'unexpected character', source: src(`
    |FLOW "t"
    |STEP a =
    |  FILTER x WHERE status == 'paid'
    |END FLOW`) },
  { name: 'unterminated string', at: '3:15', code: 'ERR_LEX', includes: 'unterminated string', source: src(`
    |FLOW "t"
    |STEP a =
    |  OUTPUT_TEXT "oops
    |END FLOW`) },
  { name: 'bad escape', at: '3:17', code: 'ERR_LEX', includes: 'bad escape', source: src(`
    |FLOW "t"
    |STEP a =
    |  OUTPUT_TEXT "a\\q"
    |END FLOW`) },
  { name: 'bad template', at: '3:20', code: 'ERR_LEX', includes: 'bad template reference', source: src(`
    |FLOW "t"
    |STEP a =
    |  OUTPUT_TEXT "n=\${1x}"
    |END FLOW`) },
  { name: 'unknown aggregate', at: '5:7', code: 'ERR_SYNTAX', includes: 'unknown aggregate "median"', source: src(`
    |FLOW "t"
    |STEP a =
    |  GROUP x BY k
    |  AGG median(v) AS m
    |END FLOW`).replace('  AGG median', '  AGG median').replace('GROUP x BY k\n', 'GROUP x BY k\n\n') },
  { name: 'sum(*)', at: '4:11', code: 'ERR_SYNTAX', includes: 'only count takes *', source: src(`
    |FLOW "t"
    |STEP a =
    |  GROUP x BY k
    |  AGG sum(*) AS s
    |END FLOW`) },
  { name: 'AGG without AS', at: '4:19', code: 'ERR_SYNTAX', includes: 'expected AS after AGG sum(amount)', source: src(`
    |FLOW "t"
    |STEP a =
    |  GROUP x BY k
    |  AGG sum(amount) total
    |END FLOW`) },
  { name: 'SORT without BY', at: '3:10', code: 'ERR_SYNTAX', includes: 'expected BY after SORT x', source: src(`
    |FLOW "t"
    |STEP a =
    |  SORT x total DESC
    |END FLOW`) },
  { name: 'TAKE not a number', at: '4:8', code: 'ERR_SYNTAX', includes: 'expected a whole number after TAKE', source: src(`
    |FLOW "t"
    |STEP a =
    |  SORT x BY total DESC
    |  TAKE two
    |END FLOW`) },
  { name: 'TAKE n without FROM', at: '3:10', code: 'ERR_SYNTAX', includes: 'expected FROM after TAKE n', source: src(`
    |FLOW "t"
    |STEP a =
    |  TAKE 3 x
    |END FLOW`) },
  { name: 'JOIN without ON', at: '3:17', code: 'ERR_SYNTAX', includes: 'expected ON after JOIN a WITH b', source: src(`
    |FLOW "t"
    |STEP j =
    |  JOIN a WITH b USING id
    |END FLOW`) },
  { name: 'RUN JOB kind not a string', at: '3:11', code: 'ERR_SYNTAX', includes: 'expected a job kind as a string', source: src(`
    |FLOW "t"
    |STEP f =
    |  RUN JOB fib WITH { n: 10 }
    |END FLOW`) },
  { name: 'WITH without braces', at: '3:22', code: 'ERR_SYNTAX', includes: 'expected { after RUN JOB ... WITH', source: src(`
    |FLOW "t"
    |STEP f =
    |  RUN JOB "fib" WITH n: 10
    |END FLOW`) },
  { name: 'missing comma in payload', at: '3:30', code: 'ERR_SYNTAX', includes: 'expected , or }', source: src(`
    |FLOW "t"
    |STEP f =
    |  RUN JOB "fib" WITH { n: 10 segments: 2 }
    |END FLOW`) },
  { name: 'duplicate payload key', at: '3:31', code: 'ERR_DUPLICATE', includes: 'key "n" appears twice', source: src(`
    |FLOW "t"
    |STEP f =
    |  RUN JOB "fib" WITH { n: 10, n: 2 }
    |END FLOW`) },
  { name: 'unclosed payload', at: '4:16', code: 'ERR_SYNTAX', includes: 'found end of step', source: src(`
    |FLOW "t"
    |STEP f =
    |  RUN JOB "fib" WITH { n: 10,
    |    segments: 2
    |STEP g =
    |  OUTPUT_TEXT "x"
    |END FLOW`) },
  { name: 'OUTPUT without AS', at: '3:12', code: 'ERR_SYNTAX', includes: 'expected AS after OUTPUT x', source: src(`
    |FLOW "t"
    |STEP o =
    |  OUTPUT x "label"
    |END FLOW`) },
  { name: 'two ops in one step', at: '4:3', code: 'ERR_SYNTAX', includes: 'one op per step', source: src(`
    |FLOW "t"
    |STEP o =
    |  OUTPUT_TEXT "a"
    |  OUTPUT_TEXT "b"
    |END FLOW`) },
  { name: 'bad version pin', at: '3:9', code: 'ERR_OP_VERSION', includes: 'no version of FILTER matches @2', source: src(`
    |FLOW "t"
    |STEP a =
    |  FILTER@2 x WHERE a == 1
    |END FLOW`) },
  { name: 'pin without number', at: '3:10', code: 'ERR_SYNTAX', includes: 'expected a version', source: src(`
    |FLOW "t"
    |STEP a =
    |  FILTER@x x WHERE a == 1
    |END FLOW`) },
  { name: 'MAP without SET', at: '3:9', code: 'ERR_SYNTAX', includes: 'expected SET after MAP x', source: src(`
    |FLOW "t"
    |STEP m =
    |  MAP x total = a * b
    |END FLOW`) },
  { name: 'MAP field without =', at: '3:19', code: 'ERR_SYNTAX', includes: 'expected = after field total', source: src(`
    |FLOW "t"
    |STEP m =
    |  MAP x SET total a * b
    |END FLOW`) },
  { name: 'dangling operator', at: '3:20', code: 'ERR_SYNTAX', includes: 'expected a value or a field name', source: src(`
    |FLOW "t"
    |STEP m =
    |  MAP x SET t = a *
    |END FLOW`) },
  { name: 'stray character', at: '3:24', code: 'ERR_LEX', includes: 'unexpected character "&"', source: src(`
    |FLOW "t"
    |STEP a =
    |  FILTER x WHERE a > 1 && b < 2
    |END FLOW`) },
  { name: 'END FLOW indented into the last step', at: '4:3', code: 'ERR_SYNTAX', includes: 'END lines start in column 1', source: src(`
    |FLOW "t"
    |STEP a =
    |  OUTPUT_TEXT "x"
    |  END FLOW`) },
  { name: 'no steps at all', at: '2:1', code: 'ERR_SYNTAX', includes: 'at least one STEP', source: 'FLOW "t"\nEND FLOW\n' },
  { name: 'RUN without kind word', at: '3:7', code: 'ERR_SYNTAX', includes: 'expected JOB or VASM or AGENT after RUN', source: src(`
    |FLOW "t"
    |STEP a =
    |  RUN TASK "x"
    |END FLOW`) },
  { name: 'RUN_JOB spelled with underscore', at: '3:3', code: 'ERR_UNKNOWN_OP', includes: 'write RUN JOB', source: src(`
    |FLOW "t"
    |STEP a =
    |  RUN_JOB "fib"
    |END FLOW`) }
]

/** Errors found only by the planner (the source parses). */
const PLAN_CASES: Case[] = [
  { name: 'unknown reference', at: '3:17', code: 'ERR_UNKNOWN_REF', includes: 'step a refers to "sales"', source: src(`
    |FLOW "t"
    |STEP a =
    |  LOAD CSV FROM sales
    |END FLOW`) },
  { name: 'unknown reference in WITH', at: '3:27', code: 'ERR_UNKNOWN_REF', includes: '"nn"', source: src(`
    |FLOW "t"
    |STEP f =
    |  RUN JOB "fib" WITH { n: nn }
    |END FLOW`) },
  { name: 'unknown reference in a template', at: '3:21', code: 'ERR_UNKNOWN_REF', includes: '"fibb"', source: src(`
    |FLOW "t"
    |STEP t =
    |  OUTPUT_TEXT "n: \${fibb.result.n}"
    |END FLOW`) },
  { name: 'cycle', at: '2:1', code: 'ERR_CYCLE', includes: 'a (line 2) → b (line 4) → a (line 2)', source: src(`
    |FLOW "t"
    |STEP a =
    |  TAKE 1 FROM b
    |STEP b =
    |  TAKE 1 FROM a
    |STEP o =
    |  OUTPUT a AS "x"
    |END FLOW`) },
  { name: 'self reference', at: '2:1', code: 'ERR_CYCLE', source: src(`
    |FLOW "t"
    |STEP a =
    |  RUN JOB "fib" WITH { n: a.result.n }
    |END FLOW`) },
  { name: 'agent op', at: '3:3', code: 'ERR_NO_AGENT', includes: 'no agent backend configured', source: src(`
    |FLOW "t"
    |STEP a =
    |  RUN AGENT "planner" WITH { q: "hi" }
    |END FLOW`) },
  { name: 'ASK_AI', at: '3:3', code: 'ERR_NO_AGENT', includes: 'no agent backend configured', source: src(`
    |FLOW "t"
    |STEP a =
    |  ASK_AI "what is 2 + 2?"
    |END FLOW`) },
  { name: 'duplicate output label', at: '5:3', code: 'ERR_DUPLICATE', includes: 'already published on line 2', source: src(`
    |FLOW "t"
    |STEP a =
    |  OUTPUT_TEXT "x"
    |STEP b =
    |  OUTPUT a AS "a"
    |END FLOW`) }
]

for (const c of CASES) {
  test(`malformed: ${c.name} → ${c.at}`, () => {
    const r = parseFlow(c.source)
    assert.equal(r.flow, null, 'must not parse')
    const e = r.errors[0]!
    assert.equal(`${e.line}:${e.col}`, c.at, `reported ${e.message}`)
    assert.equal(e.code, c.code, e.message)
    assert.ok(e.message.startsWith(`${c.at}: `), e.message)
    if (c.includes !== undefined) assert.ok(e.message.includes(c.includes), `"${e.message}" lacks "${c.includes}"`)
  })
}

for (const c of PLAN_CASES) {
  test(`plan error: ${c.name} → ${c.at}`, () => {
    assert.ok(parseFlow(c.source).flow !== null, 'parses')
    const err = (() => { try { planSource(c.source); return null } catch (e) { return e } })()
    assert.ok(err instanceof FlowErrors, 'plan must fail with FlowErrors')
    const e = err.first
    assert.equal(`${e.line}:${e.col}`, c.at, `reported ${e.message}`)
    assert.equal(e.code, c.code, e.message)
    if (c.includes !== undefined) assert.ok(e.message.includes(c.includes), `"${e.message}" lacks "${c.includes}"`)
  })
}

test('the catalogue has at least 30 syntax cases', () => {
  assert.ok(CASES.length >= 30, `only ${CASES.length}`)
})

test('several errors are collected in one pass (recovery at the next STEP)', () => {
  const r = parseFlow(src(`
    |FLOW "t"
    |STEP a =
    |  LOAD CSV sales
    |STEP b =
    |  FILTER a WHERE (x > 1
    |STEP c =
    |  SORT b total
    |STEP d =
    |  OUTPUT c AS "ok"
    |END FLOW`))
  assert.deepEqual(r.errors.map(e => `${e.line}:${e.col}`), ['3:12', '5:24', '7:10'])
})
