import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { vasmCommand, type VasmIo } from './vasm-cli.js'

const EXAMPLES = fileURLToPath(new URL('../../vasm/examples/', import.meta.url))

/** In-memory files plus captured output. */
function harness (files: Record<string, string | Uint8Array>): { io: VasmIo, out: () => string, err: () => string, files: Map<string, Uint8Array> } {
  const fs = new Map<string, Uint8Array>(Object.entries(files).map(([k, v]) => [k, typeof v === 'string' ? new TextEncoder().encode(v) : v]))
  let out = ''
  let err = ''
  return {
    io: {
      stdout: (t) => { out += t },
      stderr: (t) => { err += t },
      readFile: async (p) => {
        const f = fs.get(p)
        if (f === undefined) throw new Error(`ENOENT: no such file '${p}'`)
        return f
      },
      writeFile: async (p, b) => { fs.set(p, b) }
    },
    out: () => out,
    err: () => err,
    files: fs
  }
}

async function cli (argv: string[], files: Record<string, string | Uint8Array>): Promise<{ code: number, out: string, err: string, files: Map<string, Uint8Array> }> {
  const h = harness(files)
  const code = await vasmCommand(argv, h.io)
  return { code, out: h.out(), err: h.err(), files: h.files }
}

const fact = readFileSync(EXAMPLES + 'factorial.vasm', 'utf8')

test('vasm run prints r0, or JSON with --json; both engines; negative --arg values', { timeout: 120_000 }, async () => {
  const r = await cli(['run', 'f.vasm', '--arg', '20'], { 'f.vasm': fact })
  assert.deepEqual([r.code, r.out, r.err], [0, '2432902008176640000\n', ''])
  const j = await cli(['run', 'f.vasm', '--arg', '25', '--json', '--engine', 'interp'], { 'f.vasm': fact })
  assert.equal(j.code, 0)
  assert.deepEqual(JSON.parse(j.out), { result: '15511210043330985984000000', fuelUsed: 251 }) // 2 + 24 levels × 10 + 5 for n = 1 + 4 two-word MULs (21! > 2^64)
  const neg = await cli(['run', 'g.vasm', '--arg', '-5', '--arg=-7', '--engine=compiled'], { 'g.vasm': 'ADD r0, r1, r2' })
  assert.equal(neg.out, '-12\n')
})

test('vasm run: runtime errors exit 1 naming the error and the source line', { timeout: 120_000 }, async () => {
  const loop = await cli(['run', 'l.vasm', '--fuel', '500'], { 'l.vasm': '; spin\nloop:\n  JMP loop\n' })
  assert.equal(loop.code, 1)
  assert.equal(loop.err, 'voike vasm: l.vasm: runtime error: fuel exhausted at 3:3 (JMP loop), fuel used 500\n')
  const div = await cli(['run', 'd.vasm', '--arg', '1'], { 'd.vasm': 'DIV r0, r1, r2' })
  assert.equal(div.code, 1)
  assert.match(div.err, /division by zero at 1:1 \(DIV r0, r1, r2\)/)
})

test('vasm: assembly and verification errors exit 2 naming line:col', { timeout: 120_000 }, async () => {
  const bad = await cli(['run', 'b.vasm'], { 'b.vasm': 'HALT\nADD r0, r1, r16\n' })
  assert.equal(bad.code, 2)
  assert.equal(bad.err, 'voike vasm: b.vasm:2:13: expected a register r0-r15, found "r16"\n')
  const ver = await cli(['verify', 'v.vasm'], { 'v.vasm': 'INC r1\n  POP r0' })
  assert.equal(ver.code, 2)
  assert.equal(ver.err, 'voike vasm: v.vasm:2:3: POP from an empty value stack (on every path here)\n')
  const junk = await cli(['run', 'x.bin'], { 'x.bin': Uint8Array.of(0x56, 0x41, 0x53, 0x4d, 1, 0, 0, 0, 1, 2, 3, 4) })
  assert.equal(junk.code, 2)
  assert.match(junk.err, /^voike vasm: x\.bin: byte 8: checksum mismatch/)
})

test('vasm: usage errors exit 2', { timeout: 120_000 }, async () => {
  for (const argv of [[], ['frob'], ['run'], ['run', 'a', 'b'], ['run', 'f.vasm', '--fuel', '-1'], ['run', 'f.vasm', '--arg', '1.5'],
    ['run', 'f.vasm', '--engine', 'jit'], ['run', 'f.vasm', '--bogus'], ['asm', 'f.vasm'], ['run', 'missing.vasm']]) {
    const r = await cli(argv, { 'f.vasm': fact })
    assert.equal(r.code, 2, argv.join(' '))
    assert.match(r.err, /usage|voike vasm/, argv.join(' '))
  }
})

test('vasm asm, disasm, verify: binary round trip and binary accepted by run', { timeout: 120_000 }, async () => {
  const a = await cli(['asm', 'f.vasm', '-o', 'f.bin'], { 'f.vasm': fact })
  assert.equal(a.code, 0)
  const bin = a.files.get('f.bin') as Uint8Array
  assert.equal(new TextDecoder().decode(bin.slice(0, 4)), 'VASM')
  const d = await cli(['disasm', 'f.bin'], { 'f.bin': bin })
  assert.equal(d.code, 0)
  const d2 = await cli(['disasm', 'g.vasm'], { 'g.vasm': d.out })
  assert.equal(d2.out, d.out)
  const r = await cli(['run', 'f.bin', '--arg', '10'], { 'f.bin': bin })
  assert.equal(r.out, '3628800\n')
  const v = await cli(['verify', 'f.bin'], { 'f.bin': bin })
  assert.match(v.out, /^ok: 12 instructions, sha256 [0-9a-f]{64}\n$/)
  // Runtime errors from a binary still name the source line (debug section).
  const e = await cli(['run', 'f.bin', '--arg', '10', '--fuel', '5'], { 'f.bin': bin })
  assert.equal(e.code, 1)
  assert.match(e.err, /fuel exhausted at \d+:\d+ \(/)
})
