/**
 * Seeded randomness for the BlobGrid tests: a failing run prints its seed, and
 * `VOIKE_TEST_SEED=<n> node --test ...` replays it.
 */

/** mulberry32: small, fast, good enough to drive property tests. */
export function createRng (seed: number): { next: () => number, int: (maxExclusive: number) => number, bytes: (n: number) => Uint8Array } {
  let s = seed >>> 0
  function next (): number {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    int: (maxExclusive) => Math.floor(next() * maxExclusive),
    bytes (n) {
      const out = new Uint8Array(n)
      for (let i = 0; i < n; i++) out[i] = Math.floor(next() * 256)
      return out
    }
  }
}

/** The seed of this run: VOIKE_TEST_SEED when set, else a fresh one. Printed by the caller. */
export function testSeed (): number {
  const env = process.env.VOIKE_TEST_SEED
  if (env !== undefined && env !== '') {
    const n = Number(env)
    if (Number.isInteger(n)) return n >>> 0
  }
  return Math.floor(Math.random() * 2 ** 32) >>> 0
}
