/**
 * The bounds behind node/api-bounds.test.ts, in process: the JSON text check finds the path of a
 * value nested too deep without recursion, and describing a bad value never recurses into it.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { checkJsonText } from './input-bounds.js'
import { describeValue } from '../config/describe.js'
import { fibKind } from '../actors/kinds/fib/job.js'

const LEVELS = 100_000

function deepText (levels: number): string {
  return '['.repeat(levels) + ']'.repeat(levels)
}

/** The nesting as a value, built iteratively. */
function deepValue (levels: number): unknown {
  let v: unknown = 1
  for (let i = 0; i < levels; i++) v = [v]
  return v
}

describe('bounded descriptions and checks (unit)', () => {
  it('checkJsonText finds the path of the first value nested too deep, without recursion', () => {
    assert.doesNotThrow(() => { checkJsonText('{"a":[1,2,{"b":"[[[["}]}', { field: 'body' }) })
    assert.throws(() => { checkJsonText(`{"a":{"b":${deepText(LEVELS)}}}`, { field: 'body' }) }, (err: { field: string, code: string }) => err.field === 'a.b' && err.code === 'ERR_INVALID_ARGUMENT')
    assert.throws(() => { checkJsonText(`[${deepText(LEVELS)}]`, { field: 'params' }) }, (err: { field: string }) => err.field === 'params')
    assert.throws(() => { checkJsonText(`{"k\\"e}y":${deepText(100)}}`, { field: 'body' }) }, (err: { field: string }) => err.field === 'k"e}y')
    assert.throws(() => { checkJsonText('[' + '1,'.repeat(200_000) + '1]', { field: 'params', maxValues: 100_000 }) }, /values/)
  })

  it('describing a bad value never recurses into it', () => {
    const deep = deepValue(LEVELS)
    assert.match(describeValue(deep), /array/)
    assert.equal(describeValue('x'.repeat(1000)).length < 80, true)
    assert.equal(describeValue(-1), '-1')
    assert.throws(() => fibKind.validate({ n: deep, segments: 1 }), (err: { code: string, field: string }) => err.code === 'ERR_INVALID_ARGUMENT' && err.field === 'n')
    assert.throws(() => fibKind.validate({ n: 5, segments: deep }), (err: { code: string, field: string }) => err.code === 'ERR_INVALID_ARGUMENT' && err.field === 'segments')
  })
})
