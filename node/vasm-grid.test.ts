/**
 * VASM on a real 3-process grid: the `vasm` job kind (single and map forms) through the CLI, HTTP
 * and gRPC; VASM fib equal to the contract's sumMod61 and to the built-in fib job; hostile
 * programs rejected or failed cleanly while every node stays healthy and keeps running jobs.
 */
import './polyfill.js'
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Cluster, getJson, postJson, runCli, waitFor, type NodeProc } from './testkit.js'
import { createClient } from './client.js'
import { FIB_REFERENCE } from '../actors/kinds/fib/reference.js'
import { vasmParams, type VasmParamsInput } from '../actors/kinds/vasm/job.js'
import { loadProgram, run } from '../vasm/index.js'
import type { JobView } from '../actors/scheduler/api.js'

const FIB_SEGMENT_PATH = new URL('../../vasm/examples/fib-segment.vasm', import.meta.url)
const FIB_SEGMENT = readFileSync(FIB_SEGMENT_PATH, 'utf8')
const P61 = '2305843009213693951'

let c: Cluster
let nodes: NodeProc[]
let dir: string

before(async () => {
  c = new Cluster()
  const g = await c.start('genesis')
  const a = await c.start('node')
  const b = await c.start('node')
  nodes = [g, a, b]
  for (const n of nodes) await c.waitAlive(n, 3)
  dir = await c.tempDir()
}, { timeout: 120_000 })

after(async () => { await c?.stopAll() })

async function jobOf (node: NodeProc, id: string): Promise<JobView> {
  const res = await getJson<JobView>(node.ready.http, `/grid/jobs/${id}`)
  assert.equal(res.status, 200, JSON.stringify(res.body))
  return res.body
}

/** Submits over HTTP and waits for the end. */
async function runHttp (node: NodeProc, params: Record<string, unknown>, timeoutMs = 120_000): Promise<JobView> {
  const submitted = await postJson<JobView & { error?: { message: string } }>(node.ready.http, '/grid/jobs', { kind: 'vasm', params })
  assert.equal(submitted.status, 201, JSON.stringify(submitted.body).slice(0, 500))
  return await waitFor(async () => {
    const j = await jobOf(node, submitted.body.id)
    return j.status === 'succeeded' || j.status === 'failed' || j.status === 'cancelled' ? j : undefined
  }, `vasm job ${submitted.body.id} end`, timeoutMs, 20)
}

async function fetchCount (node: NodeProc): Promise<number> {
  const m = await getJson<string>(node.ready.http, '/metrics')
  return Number(/^voike_vasm_program_fetches_total\{status="ok"\} (\d+)/m.exec(m.body)?.[1] ?? '0')
}

async function allHealthy (): Promise<void> {
  for (const n of nodes) {
    const h = await getJson<{ status: string }>(n.ready.http, '/health')
    assert.equal(h.status, 200)
    assert.equal(h.body.status, 'ok')
  }
}

test('VASM fib map job equals the contract\'s sumMod61 and the built-in fib job; each worker fetches the program once', { timeout: 300_000 }, async () => {
  const [, a] = nodes
  const before = await Promise.all(nodes.map(fetchCount))
  for (const n of [10, 5000, 100000]) {
    const ref = FIB_REFERENCE.find(r => r.n === n)!
    const segments = Math.min(24, n)
    const r = await runCli(['job', 'submit', 'vasm', '--program', FIB_SEGMENT_PATH.pathname, '--range', `0:${n}`, '--segments', String(segments),
      '--reduce', `summod:${P61}`, '--wait', '--json', '--api', a.ready.api])
    assert.equal(r.code, 0, r.stderr)
    const job = JSON.parse(r.stdout) as JobView
    assert.equal(job.kind, 'vasm')
    assert.equal(job.status, 'succeeded', job.error ?? '')
    const result = job.result as { value: string, fuelUsed: number }
    assert.equal(result.value, ref.sumMod61, `n = ${n}`)
    assert.ok(Number.isSafeInteger(result.fuelUsed) && result.fuelUsed > n, JSON.stringify(result))
    assert.equal(job.segments.length, segments)
    assert.equal(job.segments[0].start, 0)
    assert.equal(job.segments[segments - 1].end, n)
    if (n === 100000) {
      assert.ok(new Set(job.segments.map(s => s.node)).size >= 2, 'segments ran on at least two nodes')
      const fib = await runCli(['job', 'submit', 'fib', '--n', String(n), '--segments', String(segments), '--wait', '--json', '--api', a.ready.api])
      assert.equal(fib.code, 0, fib.stderr)
      assert.equal((JSON.parse(fib.stdout) as { result: { sumMod61: string } }).result.sumMod61, result.value)
    }
  }
  // One program, 3 jobs, 58 segments: the bytes crossed the wire at most once per node.
  const afterCounts = await Promise.all(nodes.map(fetchCount))
  const fetched = afterCounts.map((x, i) => x - before[i])
  assert.ok(fetched.every(f => f <= 1), `fetches per node: ${fetched.join(', ')}`)
  assert.ok(fetched.some(f => f === 1), `some worker fetched the program: ${fetched.join(', ')}`)
})

/** Programs the library's tests do not use: subroutines, big integers, deep recursion, loops. */
const UNSEEN: Array<{ name: string, src: string, args: string[] }> = [
  {
    name: 'sum of squares with a subroutine',
    src: `
      MOV r5, r1            ; n
      LOAD_CONST r6, 0      ; acc
      LOAD_CONST r7, 1      ; i
    loop: CMPGT r8, r7, r5
      JIF r8, done
      MOV r1, r7
      CALL square
      ADD r6, r6, r0
      INC r7
      JMP loop
    done: MOV r0, r6
      HALT
    square: MUL r0, r1, r1
      RET`,
    args: ['300']
  },
  {
    name: 'big factorial, then minus an argument',
    src: `
      LOAD_CONST r0, 1
    f: JZ r1, out
      MUL r0, r0, r1
      DEC r1
      JMP f
    out: SUB r0, r0, r2
      HALT`,
    args: ['250', '-123456789012345678901234567890']
  },
  {
    name: 'deep recursion: sum 1..n by CALL with the value stack',
    src: `
      CALL sum
      HALT
    sum: JZ r1, base
      PUSH r1
      DEC r1
      CALL sum
      POP r1
      ADD r0, r0, r1
      RET
    base: LOAD_CONST r0, 0
      RET`,
    args: ['5000']
  },
  {
    name: 'collatz steps with DIV and MOD on a negative-free loop',
    src: `
      LOAD_CONST r2, 2
      LOAD_CONST r3, 3
      LOAD_CONST r0, 0
    top: LOAD_CONST r4, 1
      CMPLE r5, r1, r4
      JIF r5, end
      MOD r6, r1, r2
      JZ r6, even
      MUL r1, r1, r3
      INC r1
      JMP count
    even: DIV r1, r1, r2
    count: INC r0
      JMP top
    end: HALT`,
    args: ['837799']
  }
]

test('programs not seen before give exact results as grid jobs (HTTP and CLI), equal to a local run', { timeout: 240_000 }, async () => {
  const [g, a, b] = nodes
  for (const [i, p] of UNSEEN.entries()) {
    const expected = run(loadProgram(p.src), { args: p.args.map(BigInt) })
    const job = await runHttp(nodes[i % 3], vasmParams(p.src, { args: p.args }))
    assert.equal(job.status, 'succeeded', `${p.name}: ${job.error ?? ''}`)
    assert.deepEqual(job.result, { value: expected.value.toString(), fuelUsed: expected.fuelUsed }, p.name)
  }
  // The CLI, a binary program and a negative --arg (parsed as a value, not a flag).
  const bin = join(dir, 'fact.bin')
  await writeFile(bin, loadProgram(UNSEEN[1].src).bytes)
  const r = await runCli(['job', 'submit', 'vasm', '--program', bin, '--arg', '30', '--arg', '-5', '--fuel', '100000', '--wait', '--json', '--api', b.ready.api])
  assert.equal(r.code, 0, r.stderr)
  const expected = run(loadProgram(UNSEEN[1].src), { args: [30n, -5n] })
  assert.deepEqual((JSON.parse(r.stdout) as JobView).result, { value: expected.value.toString(), fuelUsed: expected.fuelUsed })
  // Map form, list / min / max, a range with negative numbers, extra arguments after r1, r2.
  const seg = 'SUB r0, r2, r1\nMUL r0, r0, r3\nADD r0, r0, r1\n'
  const list = await runHttp(g, vasmParams(seg, { range: { start: -10, end: 10 }, segments: 4, reduce: 'list', args: ['3'] }))
  assert.equal(list.status, 'succeeded', list.error ?? '')
  assert.deepEqual((list.result as { value: string[] }).value, ['5', '10', '15', '20'])
  const cli = await runCli(['job', 'submit', 'vasm', '--program', join(dir, 'seg.vasm'), '--range', '-10:10', '--segments', '4', '--reduce', 'max', '--arg', '-3', '--wait', '--json', '--api', a.ready.api], {}, 60_000)
  assert.equal(cli.code, 2, 'a missing file is bad input')
  assert.match(cli.stderr, /--program/)
  await writeFile(join(dir, 'seg.vasm'), seg)
  const max = await runCli(['job', 'submit', 'vasm', '--program', join(dir, 'seg.vasm'), '--range', '-10:10', '--segments', '4', '--reduce', 'min', '--arg', '-3', '--wait', '--json', '--api', a.ready.api])
  assert.equal(max.code, 0, max.stderr)
  assert.equal((JSON.parse(max.stdout) as { result: { value: string } }).result.value, '-25')
})

async function expectRejected (params: Record<string, unknown>, field: string, message: RegExp): Promise<void> {
  const res = await postJson<{ error: { code: string, field: string, message: string } }>(nodes[1].ready.http, '/grid/jobs', { kind: 'vasm', params })
  assert.equal(res.status, 400, JSON.stringify(res.body).slice(0, 300))
  assert.equal(res.body.error.code, 'ERR_INVALID_ARGUMENT')
  assert.equal(res.body.error.field, field)
  assert.match(res.body.error.message, message)
}

async function expectFailed (src: string, reason: RegExp, extra: VasmParamsInput = {}): Promise<JobView> {
  const job = await runHttp(nodes[2], vasmParams(src, extra))
  assert.equal(job.status, 'failed', JSON.stringify(job.result))
  assert.match(job.error ?? '', reason)
  assert.match(job.error ?? '', /deterministic error \(not retried/)
  assert.ok(job.segments.every(s => s.attempts <= 1), 'a runtime error is not retried on other nodes')
  return job
}

test('hostile programs: clear errors at submit or a failed job; every node stays healthy and runs the next job exactly', { timeout: 300_000 }, async () => {
  const seed = Number(process.env.VASM_SEED ?? Date.now() % 1_000_000)
  process.stdout.write(`hostile program seed ${seed} (VASM_SEED=${seed} replays)\n`)
  // Seeded random bytes (a xorshift stream), with and without the binary magic.
  let x = seed | 1
  const rnd = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return x & 0xff })
  for (let i = 0; i < 8; i++) {
    const bytes = rnd(16 + i * 97)
    if (i % 2 === 1) bytes.set([0x56, 0x41, 0x53, 0x4d, 1, 0])
    await expectRejected(vasmParams(bytes), 'program', /^program: (\d+:\d+|byte \d+|instruction \d+): /)
  }
  await expectRejected(vasmParams('LOAD_CONST r0, 1\n  MUL r0, r0, r16\n'), 'program', /^program: 2:\d+: expected a register/)
  await expectRejected({ program: randomBytes(64).toString('hex') + '!' }, 'program', /base64/)
  // The CLI exits 2 naming line:col.
  await writeFile(join(dir, 'bad.vasm'), 'HALT\nJMP nowhere\n')
  const bad = await runCli(['job', 'submit', 'vasm', '--program', join(dir, 'bad.vasm'), '--wait', '--json', '--api', nodes[0].ready.api])
  assert.equal(bad.code, 2, bad.stderr)
  assert.match(bad.stderr, /program: 2:\d+/)

  // 10 MB: refused by the APIs' body limits (gRPC and HTTP) before anything parses it.
  const huge = Buffer.alloc(10 * 1024 * 1024, 0x4e).toString('base64')
  const client = createClient({ address: nodes[0].ready.api })
  try {
    await assert.rejects(client.submitJob('vasm', { program: huge }), (err: { code?: number, details?: string }) => {
      assert.equal(err.code, 8, String(err.details)) // RESOURCE_EXHAUSTED
      return true
    })
  } finally { client.close() }
  const hugeHttp = await fetch(`http://${nodes[0].ready.http}/grid/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'vasm', params: { program: huge } }), signal: AbortSignal.timeout(30_000) })
    .then(async r => ({ status: r.status, text: await r.text() }), (err: Error) => ({ status: 0, text: err.message }))
  assert.ok(hugeHttp.status === 413 || hugeHttp.status === 0, `${hugeHttp.status} ${hugeHttp.text.slice(0, 200)}`)
  if (hugeHttp.status === 413) assert.match(hugeHttp.text, /exceeds/)

  // Runtime: a CALL fork bomb, a MUL doubling loop, an infinite loop, division by zero.
  await expectFailed('bomb: CALL bomb\n CALL bomb\n', /call stack overflow at 1:7/)
  await expectFailed('LOAD_CONST r1, 3\nloop: MUL r1, r1, r1\n JMP loop\n', /integer too large at 2:7 \(MUL r1, r1, r1\)/)
  await expectFailed('loop: INC r0\n JMP loop\n', /fuel exhausted at \d+:\d+ .*fuel used/, { fuel: 1_000_000 })
  const div = await expectFailed('LOAD_CONST r1, 7\nDIV r0, r1, r3\n', /ERR_VASM_DIVISION_BY_ZERO: division by zero at 2:1 \(DIV r0, r1, r3\), fuel used 1/, { range: { start: 0, end: 6 }, segments: 3, reduce: 'sum' })
  assert.equal(div.segments.length, 3)

  await allHealthy()
  const ref = FIB_REFERENCE.find(r => r.n === 5000)!
  for (const n of nodes) {
    const fib = await runCli(['job', 'submit', 'fib', '--n', '5000', '--segments', '6', '--wait', '--json', '--api', n.ready.api])
    assert.equal(fib.code, 0, fib.stderr)
    assert.deepEqual((JSON.parse(fib.stdout) as JobView).result, ref)
  }
  const again = await runHttp(nodes[0], vasmParams(FIB_SEGMENT, { range: { start: 0, end: 5000 }, segments: 6, reduce: `summod:${P61}` }))
  assert.equal((again.result as { value: string }).value, ref.sumMod61)
})
