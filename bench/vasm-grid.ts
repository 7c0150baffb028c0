/**
 * The `vasm` sections of `npm run bench` (issue 10 "Bench"), registered when run.ts imports this:
 *
 * - `vasm`: instructions/s of the interpreter and the compiled path on a tight integer loop and
 *   on a big-integer Fibonacci, against hand-written JavaScript (bench/vasm.ts). Targets:
 *   compiled ≥ 0.5× JS on both loops; interpreter within 10× of compiled.
 * - `vasmFib`: the VASM fib map job (vasm/examples/fib-segment.vasm over [0, n), summod:2^61-1)
 *   against the built-in `fib` job, same n and segments, on the same 3-node grid, alternating
 *   which runs first each round. Target: VASM job time ≤ 1.3× the fib job's. Both results are
 *   checked against each other (the fib job's sumMod61).
 */
import { readFileSync } from 'node:fs'
import { defineBench, type CliOptions, type Session, type SystemSpec } from './harness.js'
import { BenchError } from './proc.js'
import { FIB_N } from './params.js'
import { benchVasm } from './vasm.js'
import { Resources, threeNodeGrid } from './voike.js'
import { vasmParams } from '../actors/kinds/vasm/job.js'
import type { JobView } from '../actors/scheduler/api.js'

const VASM_METRICS = ['intLoopCompiledMips', 'intLoopInterpMips', 'intLoopJsMips', 'bigFibCompiledMips', 'bigFibInterpMips', 'bigFibJsMips',
  'intLoopCompiledVsJs', 'bigFibCompiledVsJs', 'intLoopCompiledOverInterp', 'bigFibCompiledOverInterp'] as const

const engines: SystemSpec = {
  label: 'VASM engines (one thread, in-process)',
  metrics: VASM_METRICS,
  start: async (options: CliOptions): Promise<Session> => ({
    measure: async () => {
      const r = await benchVasm({ quick: options.quick, rounds: options.quick ? 3 : 7 })
      const m = (x: number): number => Math.round(x / 1e4) / 100
      return {
        intLoopCompiledMips: m(r.intLoop.compiledInstrPerSec),
        intLoopInterpMips: m(r.intLoop.interpInstrPerSec),
        intLoopJsMips: m(r.intLoop.jsInstrPerSec),
        bigFibCompiledMips: m(r.bigFib.compiledInstrPerSec),
        bigFibInterpMips: m(r.bigFib.interpInstrPerSec),
        bigFibJsMips: m(r.bigFib.jsInstrPerSec),
        intLoopCompiledVsJs: r.intLoop.compiledVsJs,
        bigFibCompiledVsJs: r.bigFib.compiledVsJs,
        intLoopCompiledOverInterp: r.intLoop.compiledOverInterp,
        bigFibCompiledOverInterp: r.bigFib.compiledOverInterp
      }
    },
    close: async () => {}
  })
}

defineBench({
  name: 'vasm',
  title: 'VASM engines',
  description: 'Instructions per second (millions) of the VASM interpreter and compiled path on a tight integer loop ' +
    '(5M trips) and a big-integer Fibonacci (30k steps), against hand-written JavaScript doing the same work and ' +
    'credited with the same instruction count (best of the repeats inside each round).',
  systems: { voike: engines },
  metrics: {
    intLoopCompiledMips: { label: 'int loop, compiled', unit: 'M instr/s' },
    intLoopInterpMips: { label: 'int loop, interpreter', unit: 'M instr/s' },
    intLoopJsMips: { label: 'int loop, hand-written JS', unit: 'M instr/s' },
    bigFibCompiledMips: { label: 'big-int fib, compiled', unit: 'M instr/s' },
    bigFibInterpMips: { label: 'big-int fib, interpreter', unit: 'M instr/s' },
    bigFibJsMips: { label: 'big-int fib, hand-written JS', unit: 'M instr/s' },
    intLoopCompiledVsJs: { label: 'int loop: compiled / JS speed', unit: '×' },
    bigFibCompiledVsJs: { label: 'big-int fib: compiled / JS speed', unit: '×' },
    intLoopCompiledOverInterp: { label: 'int loop: compiled / interpreter speed', unit: '×' },
    bigFibCompiledOverInterp: { label: 'big-int fib: compiled / interpreter speed', unit: '×' }
  },
  targets: {
    intLoopCompiledVsJs: { op: '>=', value: 0.5 },
    bigFibCompiledVsJs: { op: '>=', value: 0.5 },
    intLoopCompiledOverInterp: { op: '<=', value: 10 },
    bigFibCompiledOverInterp: { op: '<=', value: 10 }
  },
  repeats: 3,
  quickRepeats: 1,
  config: (o) => ({ intLoopTrips: o.quick ? 200_000 : 5_000_000, bigFibSteps: o.quick ? 5_000 : 30_000 })
})

const FIB_SEGMENT = readFileSync(new URL('../../vasm/examples/fib-segment.vasm', import.meta.url))
const P61 = '2305843009213693951'
const SEGMENTS = 24

async function timed (run: () => Promise<JobView>): Promise<{ ms: number, job: JobView }> {
  const t0 = performance.now()
  const job = await run()
  const ms = performance.now() - t0
  if (job.status !== 'succeeded') throw new BenchError('ERR_JOB', `${job.kind} job ${job.status}: ${job.error ?? ''}`)
  return { ms, job }
}

const fibPair: SystemSpec = {
  label: 'VOIKE 3-node grid',
  metrics: ['fibJobMs', 'vasmFibJobMs', 'vasmOverFib'],
  start: async (): Promise<Session> => {
    const res = new Resources()
    try {
      const { client } = await threeNodeGrid(res)
      let round = 0
      const fib = async (): Promise<{ ms: number, job: JobView }> => await timed(async () => await client.watchJob((await client.submitJob('fib', { n: FIB_N, segments: SEGMENTS })).id))
      const vasm = async (): Promise<{ ms: number, job: JobView }> => await timed(async () => await client.watchJob((await client.submitJob('vasm',
        vasmParams(FIB_SEGMENT, { range: { start: 0, end: FIB_N }, segments: SEGMENTS, reduce: `summod:${P61}` }))).id))
      return {
        measure: async () => {
          // Alternate the order so neither job always runs on a warmer grid.
          const first = round++ % 2 === 0
          const a = first ? await fib() : await vasm()
          const b = first ? await vasm() : await fib()
          const [f, v] = first ? [a, b] : [b, a]
          const sum = (f.job.result as { sumMod61: string }).sumMod61
          if ((v.job.result as { value: string }).value !== sum) throw new BenchError('ERR_JOB', 'the VASM fib job and the fib job disagree')
          return { fibJobMs: f.ms, vasmFibJobMs: v.ms, vasmOverFib: v.ms / f.ms }
        },
        info: () => ({ n: FIB_N, segments: SEGMENTS }),
        close: async () => { client.close(); await res.close() }
      }
    } catch (err) {
      await res.close()
      throw err
    }
  }
}

defineBench({
  name: 'vasmFib',
  title: 'VASM fib map job vs the fib job',
  description: `The VASM fib map job (vasm/examples/fib-segment.vasm over [0, ${FIB_N}), ${SEGMENTS} segments, ` +
    `summod:2^61-1) and the built-in fib job (n=${FIB_N}, ${SEGMENTS} segments) on the same 3-node local grid, ` +
    'submit to result, alternating which goes first; the results are checked equal (sumMod61). The VASM program ' +
    'computes only the partial sums mod 2^61-1, the fib job also F(n) itself (big integers).',
  systems: { voike: fibPair },
  metrics: {
    fibJobMs: { label: `fib job n=${FIB_N}`, unit: 'ms' },
    vasmFibJobMs: { label: `VASM fib map job n=${FIB_N}`, unit: 'ms' },
    vasmOverFib: { label: 'VASM job time / fib job time', unit: '×' }
  },
  targets: { vasmOverFib: { op: '<=', value: 1.3 } },
  repeats: 5,
  quickRepeats: 3,
  warmupRounds: 1,
  config: { n: FIB_N, segments: SEGMENTS }
})
