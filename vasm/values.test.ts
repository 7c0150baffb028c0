/**
 * The size class W (vasm/README.md "Fuel") is searched from a hint (the class last found), so its
 * result must not depend on the order of the values asked: compared here with a definition by
 * bit length on values of every class up to 2^16 words, in a seeded random order (both signs,
 * both sides of every threshold).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { bitLength } from './program.js'
import { costLin, costMul, sizeClass, toVal, words } from './values.js'
import { Gen } from './testing.js'

function refClass (v: bigint): number {
  const bits = bitLength(v < 0n ? -v : v)
  let k = 0
  while (64 * 2 ** k < bits) k++
  return k
}

test('size classes are exact in any order (seed printed)', () => {
  const seed = Number(process.env.VASM_SEED ?? 4242)
  console.log(`size-class seed ${seed}`)
  const g = new Gen(seed)
  const values: bigint[] = [0n, 1n, -1n]
  for (let k = 0; k <= 10; k++) {
    const t = 1n << BigInt(64 * 2 ** k)
    for (const v of [t - 1n, t, t + 1n, t >> 1n, (t >> 1n) + 12345n]) values.push(v, -v)
  }
  for (let i = 0; i < 400; i++) {
    const v = (1n << BigInt(g.int(0, 20_000))) + BigInt(g.int(-5, 5))
    values.push(g.chance(0.5) ? v : -v)
  }
  for (let round = 0; round < 3; round++) {
    const order = values.map(v => [g.next(), v] as const).sort((a, b) => a[0] - b[0]).map(p => p[1])
    for (let i = 0; i < order.length; i++) {
      const v = toVal(order[i])
      const k = refClass(order[i])
      assert.equal(sizeClass(v), k, `class of ${order[i]}`)
      assert.equal(words(v), 2 ** k)
      const w = toVal(order[(i + 1) % order.length])
      const kw = refClass(order[(i + 1) % order.length])
      assert.equal(costLin(v, w), 2 ** Math.max(k, kw))
      const [hi, lo] = k >= kw ? [k, kw] : [kw, k]
      assert.equal(costMul(v, w), 2 ** (hi - lo) * 3 ** lo)
    }
  }
})
