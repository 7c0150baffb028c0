import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadProgram, run, VasmError, type RunOptions } from './index.js'
import { outcome } from './testing.js'

/** Runs on both engines, asserts they agree, returns the interpreter's result (or throws its error). */
function both (src: string, opts: RunOptions = {}): { value: bigint, fuelUsed: number } {
  const p = loadProgram(src)
  const a = outcome(() => run(p, { ...opts, engine: 'interp' }))
  const b = outcome(() => run(p, { ...opts, engine: 'compiled' }))
  assert.equal(b, a, `engines differ on:\n${src}`)
  return run(p, { ...opts, engine: 'interp' })
}

const value = (src: string, args: bigint[] = [], opts: RunOptions = {}): bigint => both(src, { ...opts, args }).value

function failsWith (src: string, opts: RunOptions, code: string, message: string): VasmError {
  outcome(() => both(src, opts)) // asserts that the engines agree, errors included
  try {
    run(loadProgram(src), { ...opts, engine: 'compiled' })
  } catch (err) {
    assert.ok(err instanceof VasmError)
    assert.equal(err.code, code)
    assert.equal(err.message, message)
    return err
  }
  assert.fail('expected an error')
}

const binop = (op: string, a: bigint, b: bigint): bigint => value(`${op} r0, r1, r2`, [a, b])

test('arithmetic on small and big integers', () => {
  assert.equal(binop('ADD', 2n, 3n), 5n)
  assert.equal(binop('ADD', 2n ** 53n - 1n, 1n), 2n ** 53n)
  assert.equal(binop('ADD', -(2n ** 53n) + 1n, -1n), -(2n ** 53n))
  assert.equal(binop('SUB', 2n, 3n), -1n)
  assert.equal(binop('SUB', 2n ** 64n, 2n ** 64n - 5n), 5n)
  assert.equal(binop('MUL', 123456789n, 987654321n), 123456789n * 987654321n)
  assert.equal(binop('MUL', 2n ** 40n, 2n ** 40n), 2n ** 80n)
  assert.equal(binop('MUL', -3n, 0n), 0n)
  assert.equal(binop('MUL', 10n ** 40n, -(10n ** 40n)), -(10n ** 80n))
  assert.equal(value('LOAD_CONST r0, -123456789012345678901234567890'), -123456789012345678901234567890n)
  assert.equal(value('LOAD_CONST r5, 7\nMOV r0, r5'), 7n)
  assert.equal(value('INC r0\nINC r0\nDEC r1\nADD r0, r0, r1'), 1n)
  assert.equal(value('INC r1\nMOV r0, r1', [2n ** 53n - 1n]), 2n ** 53n)
  assert.equal(value('DEC r1\nMOV r0, r1', [-(2n ** 53n) + 1n]), -(2n ** 53n))
})

test('DIV truncates toward zero and MOD takes the dividend\'s sign', () => {
  const cases: Array<[bigint, bigint]> = [[7n, 2n], [-7n, 2n], [7n, -2n], [-7n, -2n], [6n, 3n], [-6n, 3n], [0n, -5n],
    [2n ** 70n + 1n, 3n], [-(2n ** 70n) - 1n, 3n], [5n, 2n ** 70n], [-(2n ** 90n), -(2n ** 45n) - 7n], [9007199254740991n, 2n]]
  for (const [a, b] of cases) {
    assert.equal(binop('DIV', a, b), a / b, `${a} / ${b}`)
    assert.equal(binop('MOD', a, b), a % b, `${a} % ${b}`)
  }
  assert.equal(binop('DIV', -7n, 2n), -3n)
  assert.equal(binop('MOD', -7n, 2n), -1n)
  assert.equal(binop('MOD', 7n, -2n), 1n)
})

test('comparisons and logic give 1 or 0; non-zero is true', () => {
  const pairs: Array<[bigint, bigint]> = [[1n, 2n], [2n, 1n], [2n, 2n], [-(2n ** 80n), 5n], [2n ** 80n, 2n ** 80n], [2n ** 53n, 2n ** 53n - 1n]]
  for (const [a, b] of pairs) {
    assert.equal(binop('CMPLT', a, b), a < b ? 1n : 0n)
    assert.equal(binop('CMPLE', a, b), a <= b ? 1n : 0n)
    assert.equal(binop('CMPEQ', a, b), a === b ? 1n : 0n)
    assert.equal(binop('CMPNE', a, b), a !== b ? 1n : 0n)
    assert.equal(binop('CMPGT', a, b), a > b ? 1n : 0n)
    assert.equal(binop('CMPGE', a, b), a >= b ? 1n : 0n)
  }
  assert.equal(binop('AND', 5n, -3n), 1n)
  assert.equal(binop('AND', 5n, 0n), 0n)
  assert.equal(binop('OR', 0n, 0n), 0n)
  assert.equal(binop('OR', 0n, 2n ** 100n), 1n)
  assert.equal(value('NOT r0, r1', [0n]), 1n)
  assert.equal(value('NOT r0, r1', [-9n]), 0n)
})

test('extensions: NEG, ABS, bitwise, shifts', () => {
  assert.equal(value('NEG r0, r1', [5n]), -5n)
  assert.equal(value('NEG r0, r1', [-(2n ** 53n)]), 2n ** 53n)
  assert.equal(value('ABS r0, r1', [-(2n ** 99n)]), 2n ** 99n)
  assert.equal(binop('BAND', 12n, 10n), 8n)
  assert.equal(binop('BOR', 12n, 10n), 14n)
  assert.equal(binop('BXOR', -12n, 10n), -12n ^ 10n)
  assert.equal(binop('BAND', 2n ** 70n + 5n, -1n), 2n ** 70n + 5n)
  assert.equal(binop('SHL', 3n, 100n), 3n << 100n)
  assert.equal(binop('SHL', -3n, 2n), -12n)
  assert.equal(binop('SHR', -5n, 1n), -3n)
  assert.equal(binop('SHR', 2n ** 100n, 98n), 4n)
  assert.equal(binop('SHR', -(2n ** 100n), 5000n), -1n)
  assert.equal(binop('SHL', 1n, -3n), 0n)
  assert.equal(binop('SHR', 1n, -3n), 8n)
  assert.equal(binop('SHL', 0n, 10n ** 30n), 0n)
})

test('control flow: JMP, JIF, JZ, CALL/RET, PUSH/POP, HALT, running off the end', () => {
  assert.equal(value('LOAD_CONST r0, 1\nJMP end\nLOAD_CONST r0, 2\nend:'), 1n)
  assert.equal(value('JIF r1, yes\nLOAD_CONST r0, 10\nHALT\nyes: LOAD_CONST r0, 20', [-1n]), 20n)
  assert.equal(value('JIF r1, yes\nLOAD_CONST r0, 10\nHALT\nyes: LOAD_CONST r0, 20', [0n]), 10n)
  assert.equal(value('JZ r1, yes\nLOAD_CONST r0, 10\nHALT\nyes: LOAD_CONST r0, 20', [0n]), 20n)
  assert.equal(value('CALL f\nINC r0\nHALT\nf: LOAD_CONST r0, 41\nRET'), 42n)
  assert.equal(value('LOAD_CONST r0, 3\nRET\nLOAD_CONST r0, 4'), 3n) // RET with an empty call stack ends
  assert.equal(value('PUSH r1\nPUSH r2\nPOP r0\nPOP r3\nSUB r0, r0, r3', [10n, 3n]), -7n)
  assert.equal(value('HALT\nLOAD_CONST r0, 9'), 0n)
  assert.equal(value(''), 0n)
  assert.equal(value('MOV r0, r15', Array.from({ length: 15 }, (_, i) => BigInt(i + 1))), 15n)
})

test('fuel: 1 per instruction, exhausted at the exact instruction', () => {
  assert.equal(both('INC r0\nINC r0\nHALT').fuelUsed, 3)
  assert.equal(both('INC r0\nINC r0').fuelUsed, 2) // running off the end costs nothing
  assert.equal(both('INC r0\nRET').fuelUsed, 2)
  assert.equal(both('INC r0\nINC r0\nHALT', { fuel: 3 }).fuelUsed, 3)
  failsWith('INC r0\nINC r0\nHALT', { fuel: 2 }, 'ERR_VASM_FUEL_EXHAUSTED', 'fuel exhausted at 3:1 (HALT), fuel used 2')
  failsWith('loop:\n  JMP loop', { fuel: 1000 }, 'ERR_VASM_FUEL_EXHAUSTED', 'fuel exhausted at 2:3 (JMP loop), fuel used 1000')
  failsWith('loop: JMP loop', { fuel: 0 }, 'ERR_VASM_FUEL_EXHAUSTED', 'fuel exhausted at 1:7 (JMP loop), fuel used 0')
  // Every budget stops the same loop at the same point on both engines.
  const loop = 'LOAD_CONST r1, 0\ntop: INC r1\nCMPLT r2, r1, r3\nJIF r2, top\nMOV r0, r1'
  for (let fuel = 0; fuel < 40; fuel++) outcome(() => both(loop, { fuel, args: [0n, 0n, 10n] }))
  // The default budget is 10,000,000.
  const e = failsWith('loop: JMP loop', {}, 'ERR_VASM_FUEL_EXHAUSTED', 'fuel exhausted at 1:7 (JMP loop), fuel used 10000000')
  assert.equal(e.fuelUsed, 10_000_000)
})

test('fuel grows with operand size for big-integer arithmetic', () => {
  const cost = (src: string, args: bigint[]): number => both(src, { args }).fuelUsed - 1
  assert.equal(cost('ADD r0, r1, r2\nHALT', [2n ** 60n, 1n]), 1) // one 64-bit word
  assert.equal(cost('ADD r0, r1, r2\nHALT', [2n ** 100n, 1n]), 2) // two words
  assert.equal(cost('ADD r0, r1, r2\nHALT', [1n, 2n ** 1000n]), 16) // 16 words
  assert.equal(cost('MUL r0, r1, r2\nHALT', [2n ** 1000n, 2n ** 1000n]), 81) // 3^4
  assert.equal(cost('MUL r0, r1, r2\nHALT', [2n ** 1000n, 3n]), 16) // 2^4 · 3^0
  assert.equal(cost('DIV r0, r1, r2\nHALT', [2n ** 1000n, 2n ** 100n]), 8 * 3) // 2^(4-1) · 3^1
  assert.equal(cost('SHL r0, r1, r2\nHALT', [1n, 640n]), 1 + 10)
  assert.equal(cost('CMPEQ r0, r1, r2\nHALT', [2n ** 5000n, 2n ** 5000n]), 128)
  assert.equal(cost('MOV r0, r1\nHALT', [2n ** 5000n]), 1) // values are shared, not copied
  failsWith('MUL r0, r1, r1', { args: [2n ** 1000n], fuel: 80 }, 'ERR_VASM_FUEL_EXHAUSTED',
    'fuel exhausted at 1:1 (MUL r0, r1, r1), fuel used 0')
})

test('runtime errors name the error, the instruction, its line and the fuel used', () => {
  failsWith('LOAD_CONST r1, 5\n  DIV r0, r1, r2', {}, 'ERR_VASM_DIVISION_BY_ZERO', 'division by zero at 2:3 (DIV r0, r1, r2), fuel used 1')
  failsWith('MOD r0, r1, r2', { args: [2n ** 100n, 0n] }, 'ERR_VASM_DIVISION_BY_ZERO', 'division by zero at 1:1 (MOD r0, r1, r2), fuel used 0')
  // (In the entry routine a POP at a known height 0 is rejected by the verifier; in a subroutine it is a run-time error.)
  failsWith('CALL f\nHALT\nf: POP r1\nRET', {}, 'ERR_VASM_STACK_UNDERFLOW', 'stack underflow at 3:4 (POP r1), fuel used 1')
  failsWith('top: PUSH r0\nJMP top', { maxStack: 5 }, 'ERR_VASM_STACK_OVERFLOW', 'stack overflow at 1:6 (PUSH r0), fuel used 10')
  failsWith('f: CALL f', { maxCallDepth: 100 }, 'ERR_VASM_CALL_STACK_OVERFLOW', 'call stack overflow at 1:4 (CALL f), fuel used 100')
  // A MUL doubling loop stops at the bit limit instead of eating the heap.
  const e = failsWith('LOAD_CONST r0, 3\ntop: MUL r0, r0, r0\nJMP top', { maxBits: 4096 }, 'ERR_VASM_INTEGER_TOO_LARGE',
    // 1 (LOAD_CONST) + 11 JMPs + squarings of 3^(2^k), k = 0..10: six of 1 word, then 3, 9, 27, 81, 243 (3^class).
    'integer too large at 2:6 (MUL r0, r0, r0), fuel used 381')
  assert.equal(e.line, 2)
  failsWith('SHL r0, r1, r2', { args: [1n, 10n ** 20n] }, 'ERR_VASM_INTEGER_TOO_LARGE', 'integer too large at 1:1 (SHL r0, r1, r2), fuel used 0')
  failsWith('LOAD_CONST r0, ' + (2n ** 100n).toString(), { maxBits: 64 }, 'ERR_VASM_INTEGER_TOO_LARGE',
    'integer too large at 1:1 (LOAD_CONST r0, 1267650600228229401496703205376), fuel used 0')
})

test('options are validated', () => {
  const p = loadProgram('HALT')
  assert.throws(() => run(p, { fuel: -1 }), { code: 'ERR_VASM_OPTIONS', message: 'fuel: must be an integer from 0 to 1000000000000, got -1' })
  assert.throws(() => run(p, { args: Array.from({ length: 16 }, () => 1n) }), { code: 'ERR_VASM_OPTIONS' })
  assert.throws(() => run(p, { args: [2n ** 100n], maxBits: 64 }), { code: 'ERR_VASM_OPTIONS', field: 'args[0]' })
  assert.throws(() => run(p, { engine: 'jit' as 'interp' }), { code: 'ERR_VASM_OPTIONS', field: 'engine' })
  assert.throws(() => run({ ...p }, {}), { code: 'ERR_VASM_OPTIONS', field: 'program' })
})

test('hostile programs stop cleanly under the default limits', () => {
  failsWith('LOAD_CONST r0, 3\ntop: MUL r0, r0, r0\nJMP top', {}, 'ERR_VASM_INTEGER_TOO_LARGE',
    'integer too large at 2:6 (MUL r0, r0, r0), fuel used 2391509')
  failsWith('f: PUSH r0\nCALL f\nCALL f', {}, 'ERR_VASM_CALL_STACK_OVERFLOW', 'call stack overflow at 2:1 (CALL f), fuel used 20001')
  assert.throws(() => loadProgram('HALT\n'.repeat(2_000_000)), { code: 'ERR_VASM_PROGRAM_TOO_LARGE' })
  assert.throws(() => loadProgram(new Uint8Array(10_000_000)), { code: 'ERR_VASM_PROGRAM_TOO_LARGE' })
})
