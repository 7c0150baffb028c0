import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { assemble, decode, disassemble, encode, loadProgram, verify, crc32, run, type Program } from './index.js'

const EXAMPLES = fileURLToPath(new URL('../../vasm/examples/', import.meta.url))

function syntaxFails (src: string, message: string): void {
  assert.throws(() => assemble(src), (err: Error & { code?: string }) => {
    assert.equal(err.message, message)
    assert.ok(err.code === 'ERR_VASM_SYNTAX' || err.code === 'ERR_VASM_PROGRAM_TOO_LARGE')
    return true
  })
}

test('syntax errors name line:col and what was expected', () => {
  syntaxFails('HALT\n  ADD r0, r1, r16', '2:15: expected a register r0-r15, found "r16"')
  syntaxFails('ADD r0, r1', '1:11: expected operand 3 of ADD takes 3 operands (rd, ra, rb), found the end of the line')
  syntaxFails('  FOO r1', '1:3: unknown instruction "FOO"')
  syntaxFails('INC r1, r2', '1:9: expected the end of the line (INC takes 1 operand (rd)), found "r2"')
  syntaxFails('JMP nowhere', '1:5: undefined label "nowhere"')
  syntaxFails('a: HALT\na: HALT', '2:1: duplicate label "a" (first defined at 1:1)')
  syntaxFails('LOAD_CONST r0, 12x', '1:16: expected a decimal integer, found "12x"')
  syntaxFails('LOAD_CONST r0, 0x10', '1:16: expected a decimal integer, found "0x10"')
  syntaxFails('ADD r0,, r1, r2', '1:8: expected operand 2 of ADD takes 3 operands (rd, ra, rb), found ","')
  syntaxFails('ADD r0, r1, r2,', '1:16: expected an operand after ","')
  syntaxFails('1x: HALT', '1:1: expected a label name (a letter, _, . or $, then also digits), found "1x"')
  syntaxFails('HALT @', '1:6: expected the end of the line, found "@"')
  syntaxFails('JMP r1x!', '1:8: expected the end of the line, found "!"')
  syntaxFails('LOAD_CONST r0, ' + '9'.repeat(400_000), '1:16: integer constant larger than 1000000 bits')
  syntaxFails('HALT\n'.repeat(70_000), '65537:1: more than 65536 instructions')
  syntaxFails(' '.repeat(2 << 20), '1:1: program text is 2097152 bytes, above the limit of 1048576')
})

test('syntax: labels, comments, separators, case', () => {
  const p = assemble('; comment\nstart:  load_const R1, -5 # hi\n\tadd r0 r1,r1\r\nx: jmp end ; c\nend:\n')
  assert.equal(p.instrs.length, 3)
  assert.deepEqual(p.instrs[0], { op: 1, args: [1, -5n] })
  assert.deepEqual(p.instrs[1], { op: 3, args: [0, 1, 1] })
  assert.deepEqual(p.instrs[2], { op: 17, args: [3] })
  assert.deepEqual(p.debug, [{ line: 2, col: 9 }, { line: 3, col: 2 }, { line: 4, col: 4 }])
  assert.equal(run(verify(p)).value, -10n)
})

test('canonical text round-trips exactly through the binary format', () => {
  for (const file of readdirSync(EXAMPLES).filter(f => f.endsWith('.vasm'))) {
    const canonical = disassemble(assemble(readFileSync(EXAMPLES + file, 'utf8')))
    const again = disassemble(decode(encode(assemble(canonical))))
    assert.equal(again, canonical, file)
    const bytes = encode(assemble(canonical))
    assert.deepEqual(encode(decode(bytes)), bytes, file)
  }
  const text = 'start:\nalias:\n  LOAD_CONST r0, -340282366920938463463374607431768211457\n  JIF r0, end\n  CALL start\nend:\n'
  assert.equal(disassemble(decode(encode(assemble(text)))), text)
})

test('binary programs are accepted wherever text is, with source lines kept', () => {
  const src = 'LOAD_CONST r1, 4\nLOAD_CONST r2, 0\n\n   DIV r0, r1, r2\n'
  const bin = loadProgram(src).bytes
  assert.deepEqual([...bin.slice(0, 5)], [0x56, 0x41, 0x53, 0x4d, 1])
  const fromBin = loadProgram(bin)
  assert.equal(fromBin.hash, loadProgram(src).hash)
  assert.throws(() => run(fromBin), { message: 'division by zero at 4:4 (DIV r0, r1, r2), fuel used 2' })
  // Without a debug section errors name the instruction index.
  const bare: Program = { ...assemble(src), debug: undefined }
  assert.throws(() => run(loadProgram(encode(bare))), { message: 'division by zero at instruction 2 (DIV r0, r1, r2), fuel used 2' })
  // UTF-8 text as bytes works too.
  assert.equal(run(loadProgram(new TextEncoder().encode('LOAD_CONST r0, 5'))).value, 5n)
})

test('decoder rejects damaged binaries with the byte offset', () => {
  const good = loadProgram('top: INC r0\nJMP top').bytes
  const flipped = good.slice(); flipped[7] ^= 1
  assert.throws(() => decode(flipped), { code: 'ERR_VASM_DECODE', message: /^byte 21: checksum mismatch/ })
  assert.throws(() => decode(good.slice(0, 8)), { code: 'ERR_VASM_DECODE', message: 'byte 8: unexpected end of program, expected at least 12 bytes' })
  const badVersion = good.slice(); badVersion[4] = 9
  fixCrc(badVersion)
  assert.throws(() => decode(badVersion), { message: 'byte 4: unsupported format version 9, expected 1' })
  const badOp = good.slice(); badOp[7] = 200
  fixCrc(badOp)
  assert.throws(() => decode(badOp), { message: 'byte 7: instruction 0: unknown opcode 200' })
  assert.throws(() => loadProgram(Uint8Array.of(0xff, 0xfe, 0x00)), { code: 'ERR_VASM_SYNTAX' })
})

export function fixCrc (b: Uint8Array): void {
  const c = crc32(b, b.length - 4)
  for (let i = 0; i < 4; i++) b[b.length - 4 + i] = (c >>> (8 * i)) & 0xff
}

test('the verifier rejects invalid programs, naming line:col or the instruction', () => {
  const bad = (p: Program, message: string): void => {
    assert.throws(() => verify(p), (err: Error & { code?: string }) => {
      assert.equal(err.message, message)
      assert.equal(err.code?.startsWith('ERR_VASM_'), true)
      return true
    })
  }
  bad({ instrs: [{ op: 3, args: [0, 1, 16] }], labels: [], debug: [{ line: 3, col: 12 }] },
    '3:12: ADD operand rb: expected a register r0-r15, found 16')
  bad({ instrs: [{ op: 17, args: [5] }], labels: [], debug: undefined }, 'instruction 0: JMP: expected a jump target 0-1, found 5')
  bad({ instrs: [{ op: 99, args: [] }], labels: [], debug: undefined }, 'instruction 0: expected an opcode 0-33, found 99')
  bad({ instrs: [{ op: 2, args: [0] }], labels: [], debug: undefined }, 'instruction 0: MOV takes 2 operands, found 1')
  bad(assemble('INC r0\nPOP r0'), '2:1: POP from an empty value stack (on every path here)')
  assert.throws(() => verify(assemble('f0: CALL f1\nRET\nf1: CALL f2\nRET\nf2: CALL f3\nRET\nf3: RET'), { maxCallDepth: 2 }),
    { message: '1:5: calls nest 3 deep, above the call depth limit of 2' })
  // A POP that one path reaches with a value on the stack is fine statically.
  verify(assemble('JZ r1, skip\nPUSH r1\nskip: JZ r1, end\nPOP r2\nend: HALT'))
  // Recursion is bounded at run time, not rejected.
  assert.equal(verify(assemble('f: CALL f')).staticCallDepth, undefined)
})
