/**
 * Interpreter vs compiled code on thousands of seeded random verified programs (loops, calls,
 * big integers, small limits so every runtime error appears): results, fuel and errors must be
 * identical. Each random program also round-trips through text and binary. Set VASM_SEED to
 * replay a run.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { assemble, decode, disassemble, encode, run, verify, VasmError } from './index.js'
import { Gen, outcome, randomProgram, randomRunOptions } from './testing.js'

const SEED = Number(process.env.VASM_SEED ?? 20240611)
const CASES = 3000

test(`engines agree on ${CASES} random programs (seed ${SEED})`, () => {
  console.log(`differential seed ${SEED}`)
  const g = new Gen(SEED)
  const tally = new Map<string, number>()
  let verified = 0
  for (let i = 0; i < CASES; i++) {
    const p = randomProgram(g)
    let vp
    try {
      vp = verify(p)
    } catch (err) {
      assert.ok(err instanceof VasmError && err.kind === 'verify', String(err))
      continue
    }
    verified++
    for (let r = 0; r < 2; r++) {
      const opts = randomRunOptions(g)
      const a = outcome(() => run(vp, { ...opts, engine: 'interp' }))
      const b = outcome(() => run(vp, { ...opts, engine: 'compiled' }))
      if (a !== b) {
        assert.fail(`case ${i} (seed ${SEED}) differs\ninterp:   ${a}\ncompiled: ${b}\noptions: ${JSON.stringify(opts, (_, v) => typeof v === 'bigint' ? v.toString() : v)}\n${disassemble(p)}`)
      }
      const kind = a.startsWith('ok') ? 'ok' : a.split(' ')[1]
      tally.set(kind, (tally.get(kind) ?? 0) + 1)
    }
    // Round trips: text (generated labels) and binary give back the same instructions.
    const text = disassemble(p)
    assert.deepEqual(assemble(text).instrs, p.instrs)
    assert.equal(disassemble(assemble(text)), text)
    assert.deepEqual(decode(encode(p)).instrs, p.instrs)
  }
  console.log(`verified ${verified}/${CASES}; outcomes ${JSON.stringify(Object.fromEntries(tally))}`)
  // The generator must exercise every outcome, or the comparison proves little.
  for (const k of ['ok', 'ERR_VASM_FUEL_EXHAUSTED', 'ERR_VASM_DIVISION_BY_ZERO', 'ERR_VASM_STACK_OVERFLOW',
    'ERR_VASM_STACK_UNDERFLOW', 'ERR_VASM_CALL_STACK_OVERFLOW', 'ERR_VASM_INTEGER_TOO_LARGE']) {
    assert.ok((tally.get(k) ?? 0) > 0, `no ${k} outcome in ${CASES} cases`)
  }
  assert.ok(verified > CASES / 2)
})

test('engines agree on big-integer loops across every fuel budget', () => {
  const src = `
    LOAD_CONST r2, 1
    LOAD_CONST r3, 1
  loop:
    JZ r1, done
    MUL r4, r2, r3
    ADD r2, r3, r4
    MOV r3, r4
    DEC r1
    JMP loop
  done:
    MOV r0, r2`
  const vp = verify(assemble(src))
  const full = run(vp, { args: [12n], maxBits: 100_000 })
  for (let fuel = 0; fuel <= full.fuelUsed + 1; fuel += 1) {
    const opts = { args: [12n], fuel, maxBits: 100_000 }
    assert.equal(outcome(() => run(vp, { ...opts, engine: 'compiled' })), outcome(() => run(vp, { ...opts, engine: 'interp' })), `fuel ${fuel}`)
  }
})

/**
 * Self-looping blocks of register-only instructions get a number-only kernel in the compiled
 * engine (compile.ts typedLoop): trips are transactions that abort on anything inexact. These
 * programs aim at that path: values near 2^53 and 2^31 so trips abort part-way (ADD/MUL/INC
 * overflow, bitwise operands beyond int32, division by zero), conditional exits mid-block, and
 * fuel budgets that run out inside the loop.
 */
test('engines agree on random typed loops (seed printed)', () => {
  const seed = Number(process.env.VASM_SEED ?? 777)
  console.log(`typed-loop seed ${seed}`)
  const g = new Gen(seed)
  const ops = ['ADD', 'SUB', 'MUL', 'DIV', 'MOD', 'INC', 'DEC', 'CMPLT', 'CMPLE', 'CMPEQ', 'CMPNE', 'CMPGT', 'CMPGE',
    'AND', 'OR', 'NOT', 'NEG', 'ABS', 'BAND', 'BOR', 'BXOR', 'MOV', 'LOAD_CONST', 'NOP', 'JZ', 'JIF']
  const near = (): string => String(g.pick([0, 1, 2, 3, -1, 7, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 26, 2 ** 52, 2 ** 53 - 2, -(2 ** 53) + 2]) + g.int(-2, 2))
  const reg = (): string => `r${g.int(0, 5)}`
  let typedTrips = 0
  for (let c = 0; c < 300; c++) {
    const lines: string[] = []
    for (let r = 0; r < 6; r++) if (g.chance(0.7)) lines.push(`LOAD_CONST r${r}, ${g.chance(0.1) ? '18446744073709551616' : near()}`)
    lines.push('loop:')
    const len = g.int(1, 8)
    for (let i = 0; i < len; i++) {
      const op = g.pick(ops)
      if (op === 'JZ' || op === 'JIF') lines.push(`${op} ${reg()}, ${g.pick(['done', 'loop', 'mid', 'done'])}`)
      else if (op === 'INC' || op === 'DEC') lines.push(`${op} ${reg()}`)
      else if (op === 'MOV' || op === 'NOT' || op === 'NEG' || op === 'ABS') lines.push(`${op} ${reg()}, ${reg()}`)
      else if (op === 'LOAD_CONST') lines.push(`LOAD_CONST ${reg()}, ${near()}`)
      else if (op === 'NOP') lines.push('NOP')
      else lines.push(`${op} ${reg()}, ${reg()}, ${reg()}`)
    }
    // A counter so most loops end: r6 counts down from a small number.
    lines.push('DEC r6', 'JZ r6, done', 'JMP loop', 'mid:', 'ADD r0, r0, r1', 'JMP loop', 'done:', 'HALT')
    const src = `LOAD_CONST r6, ${g.int(1, 60)}\n` + lines.join('\n')
    const vp = verify(assemble(src))
    const full = outcome(() => run(vp, { engine: 'interp', fuel: 20_000, maxBits: 256 }))
    if (full.startsWith('ok')) typedTrips++
    const fuels = [0, 1, 5, 17, 20_000, ...Array.from({ length: 12 }, () => g.int(0, 800))]
    for (const fuel of fuels) {
      const opts = { fuel, maxBits: g.pick([64, 256]) }
      const a = outcome(() => run(vp, { ...opts, engine: 'interp' }))
      const b = outcome(() => run(vp, { ...opts, engine: 'compiled' }))
      assert.equal(b, a, `typed-loop case ${c} (seed ${seed}) fuel ${fuel}\n${src}`)
    }
  }
  console.log(`typed-loop programs that finished: ${typedTrips}/300`)
  assert.ok(typedTrips > 50)
})
