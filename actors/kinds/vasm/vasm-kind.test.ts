import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { Registry } from 'prom-client'
import { loadProgram, runSegment } from '../../../vasm/index.js'
import { createActorSystem, createLoopbackTransports, type ActorSystem } from '../../runtime/index.js'
import { createWorkerPool } from '../../worker/pool.js'
import { fatalReason } from '../../scheduler/kinds.js'
import { waitFor } from '../../testing/rig.js'
import { FIB_REFERENCE } from '../fib/reference.js'
import { createVasmActor, VASM_ACTOR_NAME } from './actor.js'
import { createVasmKind, vasmParams } from './job.js'
import { reduceValues, splitVasm, validateVasmParams, MAX_PROGRAM_BYTES, type VasmParams } from './params.js'
import { createProgramStore, sha256Hex } from './programs.js'
import vasmTasks, { runVasmTask, VASM_TASK_KIND } from './task.js'

const FIB_SEGMENT = readFileSync(new URL('../../../../vasm/examples/fib-segment.vasm', import.meta.url), 'utf8')
const SUM = 'loop: CMPLT r3, r1, r2\n JZ r3, done\n ADD r0, r0, r1\n INC r1\n JMP loop\ndone: HALT\n'

function invalidField (fn: () => unknown, field: string, message?: RegExp): void {
  assert.throws(fn, (err: Error & { code?: string, field?: string }) => {
    assert.equal(err.code, 'ERR_INVALID_ARGUMENT', err.message)
    assert.equal(err.field, field, err.message)
    if (message !== undefined) assert.match(err.message, message)
    return true
  })
}

test('params: forms, normalization (idempotent), and every field checked by name', () => {
  const single = validateVasmParams(vasmParams('LOAD_CONST r0, 42\nHALT\n', { args: ['-5', 7] }))
  assert.deepEqual(single.args, ['-5', '7'])
  assert.equal(single.fuel, 10_000_000)
  assert.equal(single.range, undefined)
  assert.equal(single.hash, sha256Hex(Buffer.from(single.program, 'base64')))
  // The normalized form is accepted as it is (resume validates it again).
  assert.deepEqual(validateVasmParams(single), single)
  const map = validateVasmParams(vasmParams(SUM, { range: { start: '-10', end: 90 }, segments: 7, reduce: 'summod:1000' }))
  assert.deepEqual(map.range, { start: -10, end: 90 })
  assert.equal(map.reduce, 'summod:1000')
  assert.deepEqual(validateVasmParams(map), map)

  invalidField(() => validateVasmParams(null), 'params')
  invalidField(() => validateVasmParams({ program: '' }), 'program')
  invalidField(() => validateVasmParams({ program: '!!!!' }), 'program', /base64/)
  invalidField(() => validateVasmParams(vasmParams('  ADD r0, r1\n')), 'program', /^program: 1:13: /)
  invalidField(() => validateVasmParams(vasmParams('JMP nowhere\n')), 'program', /1:\d+/)
  invalidField(() => validateVasmParams(vasmParams(new Uint8Array([0x56, 0x41, 0x53, 0x4d, 1, 0, 3, 0xff]))), 'program', /byte/)
  invalidField(() => validateVasmParams({ program: 'A'.repeat(Math.ceil(MAX_PROGRAM_BYTES / 3) * 4 + 4) }), 'program', /larger/)
  invalidField(() => validateVasmParams({ ...vasmParams(SUM), bogus: 1 }), 'bogus')
  invalidField(() => validateVasmParams({ ...vasmParams(SUM), hash: 'ab'.repeat(32) }), 'hash')
  invalidField(() => validateVasmParams(vasmParams(SUM, { args: new Array(16).fill('1') })), 'args')
  invalidField(() => validateVasmParams(vasmParams(SUM, { args: new Array(14).fill('1'), range: { start: 0, end: 9 }, segments: 1, reduce: 'sum' })), 'args')
  invalidField(() => validateVasmParams(vasmParams(SUM, { args: ['1.5'] })), 'args[0]')
  invalidField(() => validateVasmParams(vasmParams(SUM, { fuel: -1 })), 'fuel')
  invalidField(() => validateVasmParams(vasmParams(SUM, { fuel: 1e11 })), 'fuel')
  invalidField(() => validateVasmParams(vasmParams(SUM, { segments: 2 })), 'segments')
  invalidField(() => validateVasmParams(vasmParams(SUM, { range: { start: 5, end: 4 }, segments: 1, reduce: 'sum' })), 'range')
  invalidField(() => validateVasmParams(vasmParams(SUM, { range: { start: 0, end: '9007199254740993' }, segments: 1, reduce: 'sum' })), 'range.end')
  invalidField(() => validateVasmParams(vasmParams(SUM, { range: { start: 0, end: 10 }, segments: 11, reduce: 'sum' })), 'segments')
  invalidField(() => validateVasmParams(vasmParams(SUM, { range: { start: 0, end: 10000 }, segments: 4097, reduce: 'sum' })), 'segments')
  invalidField(() => validateVasmParams(vasmParams(SUM, { range: { start: 0, end: 10 }, segments: 2, reduce: 'avg' })), 'reduce')
  invalidField(() => validateVasmParams(vasmParams(SUM, { range: { start: 0, end: 10 }, segments: 2, reduce: 'summod:0' })), 'reduce')
})

test('split: contiguous, non-empty, covering the range; flat and linear cost', () => {
  const base = validateVasmParams(vasmParams(SUM, { range: { start: -7, end: 1000 }, segments: 13, reduce: 'sum' }))
  for (const p of [base, { ...base, cost: 'linear' as const }, { ...base, range: { start: 3, end: 16 } }]) {
    const segs = splitVasm(p)
    assert.equal(segs.length, 13)
    assert.equal(segs[0].start, p.range!.start)
    assert.equal(segs[12].end, p.range!.end)
    for (let i = 0; i < segs.length; i++) {
      assert.ok((segs[i].end as number) > (segs[i].start as number), JSON.stringify(segs))
      if (i > 0) assert.equal(segs[i].start, segs[i - 1].end)
    }
  }
  const empty = splitVasm({ ...base, range: { start: 5, end: 5 }, segments: 1 })
  assert.deepEqual(empty, [{ start: 5, end: 5 }])
  assert.deepEqual(splitVasm(validateVasmParams(vasmParams(SUM))), [{ start: null, end: null }])
})

test('reducers: sum, min, max, list, summod (non-negative residue); fuel adds up', () => {
  const p = validateVasmParams(vasmParams(SUM, { range: { start: 0, end: 3 }, segments: 3, reduce: 'sum' }))
  const vals = [{ value: '-7', fuelUsed: 1 }, { value: '123456789012345678901234567890', fuelUsed: 2 }, { value: '5', fuelUsed: 3 }]
  assert.deepEqual(reduceValues(p, vals), { value: '123456789012345678901234567888', fuelUsed: 6 })
  assert.equal(reduceValues({ ...p, reduce: 'min' }, vals).value, '-7')
  assert.equal(reduceValues({ ...p, reduce: 'max' }, vals).value, '123456789012345678901234567890')
  assert.deepEqual(reduceValues({ ...p, reduce: 'list' }, vals).value, ['-7', '123456789012345678901234567890', '5'])
  assert.equal(reduceValues({ ...p, reduce: 'summod:10' }, vals).value, String(((123456789012345678901234567888n % 10n) + 10n) % 10n))
  assert.equal(reduceValues({ ...p, reduce: 'summod:10' }, [{ value: '-7', fuelUsed: 0 }]).value, '3')
})

test('the fib-segment program reduced with summod:p equals the contract\'s sumMod61 (in-process)', () => {
  const prog = loadProgram(FIB_SEGMENT)
  for (const ref of FIB_REFERENCE.filter(r => r.n <= 5000)) {
    const p = validateVasmParams(vasmParams(FIB_SEGMENT, { range: { start: 0, end: ref.n }, segments: Math.min(7, Math.max(ref.n, 1)), reduce: 'summod:2305843009213693951' })) as VasmParams
    const vals = splitVasm(p).map(s => { const r = runSegment(prog, { start: s.start as number, end: s.end as number }); return { value: r.value.toString(), fuelUsed: r.fuelUsed } })
    assert.equal(reduceValues(p, vals).value, ref.sumMod61, `n = ${ref.n}`)
  }
})

test('task: runs verified bytes, refuses bytes that do not hash to the named program, throws runtime errors with their code', () => {
  assert.equal(vasmTasks.kinds[0].name, VASM_TASK_KIND)
  const prog = loadProgram(SUM)
  const r = runVasmTask({ hash: prog.hash, program: prog.bytes, args: [], fuel: 1000, start: 3, end: 6 })
  assert.deepEqual(r, runSegment(prog, { start: 3, end: 6, fuel: 1000 }) && { value: '12', fuelUsed: runSegment(prog, { start: 3, end: 6 }).fuelUsed })
  const other = loadProgram('LOAD_CONST r0, 1\n')
  assert.throws(() => runVasmTask({ hash: 'ab'.repeat(32), program: other.bytes, args: [], fuel: 10 }), { code: 'ERR_VASM_PROGRAM_MISMATCH' })
  assert.throws(() => runVasmTask({ hash: 'cd'.repeat(32), args: [], fuel: 10 }), { code: 'ERR_INVALID_ARGUMENT' })
  assert.throws(() => runVasmTask({ hash: prog.hash, program: prog.bytes, args: [], fuel: 10, start: 0, end: 1000 }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_VASM_FUEL_EXHAUSTED')
    assert.match(err.message, /^fuel exhausted at \d+:\d+ \(/)
    return true
  })
  const div = loadProgram('LOAD_CONST r1, 1\nDIV r0, r1, r2\n')
  assert.throws(() => runVasmTask({ hash: div.hash, program: div.bytes, args: [], fuel: 10 }), { code: 'ERR_VASM_DIVISION_BY_ZERO' })
})

test('job side: tasks carry the hash only, the store serves the bytes, values are checked, runtime errors are fatal', () => {
  const programs = createProgramStore()
  const kind = createVasmKind({ programs })
  const params = kind.validate(vasmParams(SUM, { range: { start: 0, end: 10 }, segments: 2, reduce: 'sum' }))
  const descriptors = kind.split(params)
  const seg = { params, segments: 2, index: 0, descriptor: descriptors[0], isLast: false }
  const t = kind.task(seg)
  assert.deepEqual(t, { kind: VASM_TASK_KIND, payload: { hash: params.hash, args: [], fuel: params.fuel, start: 0, end: 5 } })
  assert.deepEqual(programs.get(params.hash), new Uint8Array(Buffer.from(params.program, 'base64')))
  assert.deepEqual(kind.checkValue(seg, { value: '-0010', fuelUsed: 3 }), { value: '-10', fuelUsed: 3 })
  assert.throws(() => kind.checkValue(seg, { value: '1e3', fuelUsed: 3 }))
  assert.throws(() => kind.checkValue(seg, { value: '1', fuelUsed: params.fuel + 1 }))
  assert.deepEqual(kind.describe(descriptors[1]), { start: 5, end: 10 })
  assert.match(fatalReason(kind, 'ERR_VASM_FUEL_EXHAUSTED') ?? '', /deterministic/)
  assert.equal(fatalReason(kind, 'ERR_TASK_TIMEOUT'), undefined)
  assert.equal(fatalReason(kind, 'ERR_VASM_PROGRAM_UNAVAILABLE'), undefined)
  assert.equal(kind.equal?.({ value: '1', fuelUsed: 2 }, { value: '1', fuelUsed: 2 }), true)
  assert.equal(kind.equal?.({ value: '1', fuelUsed: 2 }, { value: '1', fuelUsed: 3 }), false)
})

test('program store: keys computed from the bytes, LRU bounded by bytes', () => {
  const s = createProgramStore({ maxBytes: 2048 })
  const a = new Uint8Array(1000).fill(1)
  const b = new Uint8Array(1000).fill(2)
  const c = new Uint8Array(1000).fill(3)
  const ha = s.put(a)
  assert.equal(ha, sha256Hex(a))
  s.put(b)
  s.get(ha)
  s.put(c)
  assert.ok(s.has(ha) && !s.has(sha256Hex(b)) && s.has(sha256Hex(c)))
  assert.ok(s.stats().bytes <= 2048)
  s.put(new Uint8Array(4096))
  assert.ok(s.stats().bytes <= 2048)
})

test('vasm actor: a worker fetches a program once from the coordinator, then runs every task on its pool', { timeout: 60_000 }, async (t) => {
  const net = createLoopbackTransports()
  const mk = (peerId: string): { system: ActorSystem, programs: ReturnType<typeof createProgramStore> } => {
    const registry = new Registry()
    const system = createActorSystem({ peerId, transport: net.transport(peerId), registry })
    net.attach(system)
    const pool = createWorkerPool({ registry, tasks: [vasmTasks], threads: 1 })
    const programs = createProgramStore()
    system.spawn(VASM_ACTOR_NAME, () => createVasmActor({ programs, pool }), { mailboxCapacity: 1024 })
    t.after(async () => { await system.shutdown(); await pool.close() })
    return { system, programs }
  }
  const coord = mk('coord')
  const worker = mk('worker')
  const prog = loadProgram(FIB_SEGMENT)
  coord.programs.put(prog.bytes)
  // A collector on the coordinator plays the scheduler.
  const results: Array<{ id: string, ok: boolean, value?: { value: string }, error?: { code: string, message: string } }> = []
  coord.system.spawn('scheduler', () => ({ receive (m: { type: string, results: typeof results }) { if (m.type === 'results') results.push(...m.results) } }))
  let asks = 0
  const realAsk = worker.system.ask.bind(worker.system)
  worker.system.ask = (async (to, msg, opts) => { asks++; return await realAsk(to, msg, opts) }) as ActorSystem['ask']
  const tasks = [[0, 3000], [3000, 4000], [4000, 5000]].map(([s, e], i) => ({ id: `j/${i}/1`, kind: VASM_TASK_KIND, payload: { hash: prog.hash, args: [], fuel: 1e7, start: s, end: e }, timeoutMs: 30_000 }))
  coord.system.tell(coord.system.ref('worker', VASM_ACTOR_NAME), { type: 'run', tasks: tasks.slice(0, 2) }, 'scheduler')
  coord.system.tell(coord.system.ref('worker', VASM_ACTOR_NAME), { type: 'run', tasks: tasks.slice(2) }, 'scheduler')
  await waitFor(() => results.length === 3, 'three results')
  assert.ok(results.every(r => r.ok), JSON.stringify(results))
  const sum = results.reduce((a, r) => (a + BigInt(r.value!.value)) % 2305843009213693951n, 0n)
  assert.equal(sum.toString(), FIB_REFERENCE.find(r => r.n === 5000)!.sumMod61)
  assert.equal(asks, 1, 'one fetch for three tasks of one program')
  assert.ok(worker.programs.has(prog.hash))
  // An unknown program: a clear, retryable error.
  coord.system.tell(coord.system.ref('worker', VASM_ACTOR_NAME), { type: 'run', tasks: [{ ...tasks[0], id: 'j/9/1', payload: { ...tasks[0].payload, hash: 'ef'.repeat(32) } }] }, 'scheduler')
  await waitFor(() => results.length === 4, 'the unknown program answered')
  assert.equal(results[3].ok, false)
  assert.equal(results[3].error?.code, 'ERR_VASM_PROGRAM_UNAVAILABLE')
  assert.match(results[3].error?.message ?? '', /not held/)
  // The wall-clock deadline: a task running past its timeoutMs is answered ERR_TASK_TIMEOUT and
  // its thread terminated (fuel alone would allow minutes here); the next task runs normally.
  const spin = loadProgram('loop: INC r0\n JMP loop\n')
  coord.programs.put(spin.bytes)
  const t0 = Date.now()
  coord.system.tell(coord.system.ref('worker', VASM_ACTOR_NAME), { type: 'run', tasks: [{ id: 'j/10/1', kind: VASM_TASK_KIND, payload: { hash: spin.hash, args: [], fuel: 1e10 }, timeoutMs: 300 }] }, 'scheduler')
  await waitFor(() => results.length === 5, 'the spinning task stopped at its deadline')
  assert.equal(results[4].error?.code, 'ERR_TASK_TIMEOUT')
  assert.ok(Date.now() - t0 < 10_000)
  coord.system.tell(coord.system.ref('worker', VASM_ACTOR_NAME), { type: 'run', tasks: [{ ...tasks[1], id: 'j/11/1' }] }, 'scheduler')
  await waitFor(() => results.length === 6, 'a task after the terminated thread')
  assert.equal(results[5].ok, true, JSON.stringify(results[5]))
})
