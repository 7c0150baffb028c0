import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { assignPieces, owners, placeStripe, rank, weight } from './rendezvous.js'
import { BlobErrorCode } from './errors.js'
import { createRng, testSeed } from './seeded-rng.js'

const key = (i: number): string => createHash('sha256').update(`chunk ${i}`).digest('hex')
const members = (n: number, prefix = 'peer'): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}`)

test('weights are SHA-256 based, stable across runs and nodes', { timeout: 60_000 }, () => {
  // The first 6 bytes of SHA-256("k\0m"), computed independently.
  const expected = createHash('sha256').update(Buffer.from('k\u0000m')).digest().readUIntBE(0, 6)
  assert.equal(weight('k', 'm'), expected)
  assert.equal(weight('k', 'm'), 0xa782b3d3de1, 'a pinned value: changing the weight function moves every piece')
  assert.notEqual(weight('k', 'm'), weight('k', 'n'))
})

test('owners are deterministic, distinct and independent of the member list order', { timeout: 60_000 }, (t) => {
  const seed = testSeed()
  t.diagnostic(`seed ${seed}`)
  const rng = createRng(seed)
  const list = members(9)
  for (let i = 0; i < 200; i++) {
    const shuffled = list.slice().sort(() => rng.next() - 0.5)
    const a = owners(key(i), list, 4)
    assert.deepEqual(owners(key(i), shuffled, 4), a, `seed ${seed} key ${i}`)
    assert.equal(new Set(a).size, 4)
  }
  assert.deepEqual(owners(key(1), list, 20).length, 9, 'never more owners than members')
  assert.deepEqual(owners(key(1), [], 3), [])
  assert.deepEqual(owners(key(1), list, 0), [])
  assert.deepEqual(owners(key(1), list, 3), rank(key(1), list).slice(0, 3))
})

test('removing a member moves only the keys it owned, each by one owner', { timeout: 60_000 }, (t) => {
  const seed = testSeed()
  t.diagnostic(`seed ${seed}`)
  const rng = createRng(seed)
  const list = members(12)
  const hostOf = (m: string): string => `host-${Number(m.split('-')[1]) % 4}`
  for (const opts of [{}, { hostOf }]) {
    const gone = list[rng.int(list.length)]
    const after = list.filter((m) => m !== gone)
    let moved = 0
    for (let i = 0; i < 2000; i++) {
      const before = owners(key(i), list, 3, opts)
      const now = owners(key(i), after, 3, opts)
      if (!before.includes(gone)) {
        assert.deepEqual(now, before, `seed ${seed}: key ${i} did not include ${gone} but moved`)
      } else {
        moved++
        const kept = before.filter((m) => m !== gone)
        for (const m of kept) assert.ok(now.includes(m), `seed ${seed}: key ${i} lost ${m} too`)
        assert.equal(now.length, 3)
      }
    }
    // Each member owns about 3/12 of the keys.
    assert.ok(moved > 2000 * 3 / 12 * 0.7 && moved < 2000 * 3 / 12 * 1.3, `moved ${moved}`)
  }
})

test('adding a member moves only the keys it now owns', { timeout: 60_000 }, (t) => {
  const seed = testSeed()
  t.diagnostic(`seed ${seed}`)
  const list = members(8)
  const hostOf = (m: string): string => m === 'new' ? 'host-new' : `host-${Number(m.split('-')[1]) % 3}`
  for (const opts of [{}, { hostOf }]) {
    const grown = [...list, 'new']
    for (let i = 0; i < 2000; i++) {
      const before = owners(key(i), list, 4, opts)
      const now = owners(key(i), grown, 4, opts)
      if (!now.includes('new')) assert.deepEqual(now, before, `key ${i}`)
      else assert.equal(before.filter((m) => !now.includes(m)).length, 1, `key ${i}: exactly one owner replaced`)
    }
  }
})

test('owners spread over distinct hosts first, then evenly', { timeout: 60_000 }, () => {
  const list = members(9)
  const hostOf = (m: string): string => `host-${Number(m.split('-')[1]) % 3}`
  for (let i = 0; i < 500; i++) {
    const three = owners(key(i), list, 3, { hostOf })
    assert.equal(new Set(three.map(hostOf)).size, 3, `key ${i}: ${three.join(',')}`)
    const six = owners(key(i), list, 6, { hostOf })
    const perHost = new Map<string, number>()
    for (const m of six) perHost.set(hostOf(m), (perHost.get(hostOf(m)) ?? 0) + 1)
    assert.deepEqual([...perHost.values()], [2, 2, 2], `key ${i}`)
    assert.deepEqual(six.slice(0, 3), three, 'a longer owner list extends the shorter one')
  }
  // Uneven hosts: 2 hosts, one with 1 member; 4 owners → the lone member is always chosen.
  const uneven = ['a', 'b1', 'b2', 'b3', 'b4']
  const hostB = (m: string): string => m === 'a' ? 'A' : 'B'
  for (let i = 0; i < 200; i++) {
    const o = owners(key(i), uneven, 2, { hostOf: hostB })
    assert.ok(o.includes('a'))
    assert.equal(new Set(owners(key(i), uneven, 4, { hostOf: hostB })).size, 4)
  }
  // Without hostOf (or an empty host) each member is its own host.
  assert.deepEqual(owners(key(3), list, 5, { hostOf: () => '' }), owners(key(3), list, 5))
})

test('load is balanced within 15% over many keys', { timeout: 60_000 }, () => {
  const list = members(10)
  for (const count of [1, 3]) {
    const load = new Map<string, number>(list.map((m) => [m, 0]))
    const keys = 20000
    for (let i = 0; i < keys; i++) for (const m of owners(key(i), list, count)) load.set(m, (load.get(m) as number) + 1)
    const mean = keys * count / list.length
    for (const [m, n] of load) assert.ok(Math.abs(n - mean) < mean * 0.15, `${m} owns ${n}, mean ${mean}`)
  }
})

test('placeStripe: distinct owners when members suffice, else wrapped evenly', { timeout: 60_000 }, () => {
  assert.deepEqual(placeStripe(key(1), members(8), 6), owners(key(1), members(8), 6))
  const few = placeStripe(key(1), members(4), 6)
  assert.equal(few.length, 6)
  const counts = new Map<string, number>()
  for (const m of few) counts.set(m, (counts.get(m) ?? 0) + 1)
  assert.equal(counts.size, 4)
  assert.ok([...counts.values()].every((n) => n === 1 || n === 2))
  assert.deepEqual(placeStripe(key(1), [], 6), [])
})

test('assignPieces keeps surviving pieces in place and fills the rest in target order', { timeout: 60_000 }, () => {
  assert.deepEqual(assignPieces(['a', 'b', 'dead', 'c'], ['c', 'x', 'a', 'b']), ['a', 'b', 'x', 'c'])
  assert.deepEqual(assignPieces([undefined, undefined], ['p', 'q']), ['p', 'q'])
  // Two pieces on one member while the mesh was small: one moves to a new member.
  assert.deepEqual(assignPieces(['a', 'a', 'b'], ['a', 'b', 'c']), ['a', 'c', 'b'])
  // A target that repeats a member (stripe wider than the mesh).
  assert.deepEqual(assignPieces(['a', 'a', 'gone'], ['a', 'b', 'a']), ['a', 'a', 'b'])
  assert.throws(() => assignPieces(['a'], ['a', 'b']), (e: any) => e.code === BlobErrorCode.INVALID_OPTION)
})

test('bad input is refused with a precise error', { timeout: 60_000 }, () => {
  assert.throws(() => owners('', ['a'], 1), /key must be a string of 1\.\.1024 characters, got 0 characters/)
  assert.throws(() => owners('k', ['a', 'a'], 1), /members\[1\] is a duplicate of "a"/)
  assert.throws(() => owners('k', ['a', ''], 1), /members\[1\] must be a non-empty string/)
  assert.throws(() => owners('k', ['a'], -1), /count must be an integer in 0\.\.256, got -1/)
  assert.throws(() => placeStripe('k', ['a'], 1.5), /pieces must be an integer/)
})
