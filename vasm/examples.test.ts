import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { loadProgram, run, runSegment, type Engine } from './index.js'

const load = (name: string): ReturnType<typeof loadProgram> =>
  loadProgram(readFileSync(fileURLToPath(new URL(`../../vasm/examples/${name}`, import.meta.url)), 'utf8'))
const P61 = (1n << 61n) - 1n
const ENGINES: Engine[] = ['interp', 'compiled']

/** Sum of the segment results over [0, n) cut into `segments` pieces, mod p. */
function sumMod61 (n: number, segments: number, engine: Engine): bigint {
  const prog = load('fib-segment.vasm')
  let sum = 0n
  for (let i = 0; i < segments; i++) {
    const start = Math.floor(n * Math.sqrt(i / segments))
    const end = Math.floor(n * Math.sqrt((i + 1) / segments))
    sum = (sum + runSegment(prog, { start, end, engine }).value) % P61
  }
  return sum
}

test('fib-segment: segment sums mod 2^61-1 match the contract\'s sumMod61', () => {
  for (const engine of ENGINES) {
    assert.equal(sumMod61(0, 1, engine), 0n)
    assert.equal(sumMod61(1, 1, engine), 0n)
    assert.equal(sumMod61(10, 3, engine), 88n)
    assert.equal(sumMod61(5000, 7, engine), 1558601041103539n)
    assert.equal(sumMod61(100000, 16, engine), 1493263235092005186n)
  }
  // One segment against a direct computation, at an odd start.
  let a = 0n; let b = 1n; let s = 0n
  for (let k = 0; k < 1300; k++) { if (k >= 1234) s += a; [a, b] = [b, a + b] }
  assert.equal(runSegment(load('fib-segment.vasm'), { start: 1234, end: 1300 }).value, s % P61)
})

test('examples: loop sum, recursive factorial, gcd', () => {
  for (const engine of ENGINES) {
    assert.equal(run(load('sum-loop.vasm'), { args: [100_000n], engine }).value, 4_999_950_000n)
    let f = 1n
    for (let i = 2n; i <= 200n; i++) f *= i
    assert.equal(run(load('factorial.vasm'), { args: [200n], engine }).value, f)
    assert.equal(run(load('gcd.vasm'), { args: [2n ** 200n * 3n ** 5n, -(6n ** 40n)], engine }).value, 2n ** 40n * 3n ** 5n)
  }
  // Deep recursion within the limits, and past them.
  assert.equal(run(load('factorial.vasm'), { args: [3000n] }).value > 0n, true)
  assert.throws(() => run(load('factorial.vasm'), { args: [3000n], maxCallDepth: 1000 }), { code: 'ERR_VASM_CALL_STACK_OVERFLOW' })
})
