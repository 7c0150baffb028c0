/**
 * Fuzzer: hostile input must only ever produce a VasmError with a code, never a crash, a hang,
 * unbounded memory or a difference between the engines.
 *
 *   node dist/vasm/fuzz.js [--cases N] [--seed S]
 *
 * Each case runs four attacks: random and mutated bytes to the decoder (with and without a
 * fixed-up checksum), mutated source to the assembler, random (often invalid) instruction
 * objects to the verifier, and random verified programs to both engines under small limits.
 * Decoded programs must re-encode to the same bytes; assembled ones must round-trip.
 */
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import assert from 'node:assert/strict'
import { crc32, decode, disassemble, encode, loadProgram, run, verify, assemble, VasmError } from './index.js'
import { Gen, mutateBytes, mutateSource, outcome, randomProgram, randomRawProgram, randomRunOptions } from './testing.js'

const SEEDS_TEXT = [
  'LOAD_CONST r1, 5\nloop: JZ r1, end\nDEC r1\nMUL r2, r2, r1\nJMP loop\nend: HALT',
  'CALL f\nHALT\nf: PUSH r1\nPOP r2\nRET',
  'LOAD_CONST r0, -123456789012345678901234567890\nSHL r0, r0, r1\nDIV r0, r0, r2'
]

function fixCrc (b: Uint8Array): void {
  const c = crc32(b, b.length - 4)
  for (let i = 0; i < 4; i++) b[b.length - 4 + i] = (c >>> (8 * i)) & 0xff
}

function clean (what: string, f: () => void): 'ok' | 'error' {
  try {
    f()
    return 'ok'
  } catch (err) {
    if (err instanceof VasmError && typeof err.code === 'string' && err.code.startsWith('ERR_VASM_')) return 'error'
    throw new Error(`${what}: not a clean VasmError: ${String((err as Error)?.stack ?? err)}`)
  }
}

export interface FuzzStats { cases: number, decodedOk: number, assembledOk: number, verifiedOk: number, ran: number }

export function fuzz (opts: { cases: number, seed: number }): FuzzStats {
  const g = new Gen(opts.seed)
  const stats: FuzzStats = { cases: opts.cases, decodedOk: 0, assembledOk: 0, verifiedOk: 0, ran: 0 }
  const samples = SEEDS_TEXT.map(t => loadProgram(t).bytes)
  for (let i = 0; i < opts.cases; i++) {
    const where = `case ${i} (seed ${opts.seed})`
    // 1. Decoder.
    const bytes = mutateBytes(g, g.pick(samples), fixCrc)
    if (clean(`${where} decode`, () => {
      const p = decode(bytes)
      assert.deepEqual(encode(p), bytes, `${where}: decode/encode is not the identity`)
      clean(`${where} verify decoded`, () => { run(verify(p), { fuel: 10_000, maxBits: 4096 }) })
    }) === 'ok') stats.decodedOk++
    // 2. Assembler.
    const src = mutateSource(g, g.pick(SEEDS_TEXT))
    if (clean(`${where} assemble`, () => {
      const p = assemble(src)
      assert.equal(disassemble(assemble(disassemble(p))), disassemble(p))
    }) === 'ok') stats.assembledOk++
    // 3. Verifier on raw, often invalid, instruction objects.
    if (clean(`${where} verify raw`, () => { verify(randomRawProgram(g)) }) === 'ok') stats.verifiedOk++
    // 4. Engines on a random verified program.
    const p = randomProgram(g, 60)
    clean(`${where} engines`, () => {
      const vp = verify(p)
      const o = randomRunOptions(g)
      const a = outcome(() => run(vp, { ...o, engine: 'interp' }))
      const b = outcome(() => run(vp, { ...o, engine: 'compiled' }))
      assert.equal(b, a, `${where}: engines differ\n${disassemble(p)}`)
      stats.ran++
    })
  }
  return stats
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { cases: { type: 'string', default: '100000' }, seed: { type: 'string', default: String(Date.now() % 1e9) } } })
  const cases = Number(values.cases)
  const seed = Number(values.seed)
  if (!Number.isSafeInteger(cases) || cases < 1 || !Number.isSafeInteger(seed)) {
    process.stderr.write('usage: node dist/vasm/fuzz.js [--cases N] [--seed S]\n')
    process.exit(2)
  }
  console.log(`vasm fuzz: ${cases} cases, seed ${seed}`)
  const t0 = performance.now()
  console.log(JSON.stringify({ ...fuzz({ cases, seed }), ms: Math.round(performance.now() - t0) }))
}
