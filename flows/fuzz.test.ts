/**
 * Fuzzing: seeded mutations of the example flows (delete, duplicate, swap, insert tokens and
 * characters) never crash the parser or planner: every failure is a FlowError with a code and
 * a line:col inside the source. The seed is printed; FLOW_FUZZ_SEED reproduces a run.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { parseFlow } from './parser.js'
import { planFlow } from './planner.js'
import { FlowError, FlowErrors } from './errors.js'
import { rng, EXAMPLES, CORE, SEED } from './fakes.js'

const PIECES = ['STEP', 'END', 'FLOW', 'INPUTS', '=', '==', '(', ')', '{', '}', '[', ']', ',', ':', '"', '${', '}', '@', '@9', '$', '.', 'WITH', 'AGG', 'TAKE', 'FROM', 'WHERE', '\n', '\n  ', '#', '//', '\\', '-', '*', 'NOT', 'IN', 'IS', 'NULL', '123', '1e999', 'x', 'STEP a =', '\t', '\r', '\u00e9', "'", '!', '&']

function mutate (src: string, r: () => number): string {
  let s = src
  const n = 1 + Math.floor(r() * 4)
  for (let k = 0; k < n; k++) {
    const at = Math.floor(r() * (s.length + 1))
    const len = Math.floor(r() * 12)
    switch (Math.floor(r() * 5)) {
      case 0: s = s.slice(0, at) + s.slice(at + len); break
      case 1: s = s.slice(0, at) + PIECES[Math.floor(r() * PIECES.length)]! + s.slice(at); break
      case 2: s = s.slice(0, at) + s.slice(at, at + len) + s.slice(at); break
      case 3: { const b = Math.floor(r() * s.length); s = s.slice(0, at) + s.slice(b, b + len) + s.slice(at); break }
      default: s = s.slice(0, at) + String.fromCharCode(Math.floor(r() * 128)) + s.slice(at + 1)
    }
  }
  return s
}

test('mutated flows never crash the parser or planner', () => {
  const seed = Number(process.env.FLOW_FUZZ_SEED ?? Date.now() % 1_000_000)
  console.log(`fuzz seed ${seed} (FLOW_FUZZ_SEED=${seed} reproduces)`)
  const r = rng(seed)
  const corpus = [CORE, SEED, ...readdirSync(EXAMPLES).filter(f => f.endsWith('.flow')).map(f => readFileSync(EXAMPLES + f, 'utf8'))]
  let parsed = 0
  let rejected = 0
  for (let i = 0; i < 3000; i++) {
    const src = mutate(corpus[i % corpus.length]!, r)
    const lines = src.split('\n').length
    let res
    try { res = parseFlow(src) } catch (e) { assert.fail(`parser threw on case ${i} (seed ${seed}): ${(e as Error).stack}\n---\n${src}`) }
    if (res.flow === null) {
      rejected++
      assert.ok(res.errors.length > 0, `no flow and no errors (case ${i}, seed ${seed})`)
      for (const e of res.errors) {
        assert.ok(e instanceof FlowError && typeof e.code === 'string', `case ${i}`)
        assert.ok(e.line !== undefined && e.line >= 1 && e.line <= lines + 1, `case ${i} (seed ${seed}): line ${e.line} outside 1..${lines}: ${e.message}\n---\n${src}`)
        assert.ok(e.col !== undefined && e.col >= 1, `case ${i}: col ${e.col}`)
      }
      continue
    }
    parsed++
    try { planFlow(res.flow) } catch (e) {
      if (!(e instanceof FlowErrors) && !(e instanceof FlowError)) assert.fail(`planner threw ${String(e)} on case ${i} (seed ${seed})\n---\n${src}`)
    }
  }
  console.log(`fuzz: ${parsed} mutants parsed, ${rejected} rejected with errors`)
  assert.ok(rejected > 0 && parsed > 0)
})
