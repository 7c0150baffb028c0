/**
 * VASM engine figures (issue 10 "Bench"): instructions per second of the interpreter and of the
 * compiled path on a tight integer loop and on a big-integer Fibonacci loop, each against
 * hand-written JavaScript doing the same work. Targets: compiled ≥ 0.5× hand-written JS on both
 * loops; interpreter within 10× of compiled.
 *
 *   node dist/bench/vasm.js [--quick]     prints one JSON object
 *
 * "Instructions" are the VASM instructions the program executes (counted analytically from the
 * loop shape and checked against the fuel where fuel = instructions); the JavaScript baseline is
 * credited with the same count, so the ratios are time ratios. The hand-written JavaScript runs
 * the same loop (same trip count, same comparisons, the same BigInt additions for Fibonacci) and
 * its result is checked, so it cannot be optimised away. After a warm-up, each round times the
 * three systems one after the other (JS, compiled, interpreter), so load from other processes on
 * a shared machine hits all three alike; each figure is the median over the rounds. Times are the
 * process's CPU time (user + system, `process.cpuUsage`): on a shared machine, wall time mostly
 * measures the other processes (it swung 2-3× between runs at a load of 10 on 2 cores, CPU time
 * far less); the wall-clock ratios are reported too (`wall`).
 */
import { fileURLToPath } from 'node:url'
import { loadProgram, run, type Engine, type VerifiedProgram } from '../vasm/index.js'

export interface BenchVasmOptions {
  /** Smaller loop sizes (a fast smoke run). */
  quick?: boolean
  /** Timed rounds (each times all three systems once; medians kept). Default 7, 3 with quick. */
  rounds?: number
}

export interface LoopFigures {
  /** Loop trip count. */
  n: number
  /** VASM instructions executed per run. */
  instructions: number
  /** Median CPU milliseconds per run. */
  jsMs: number
  compiledMs: number
  interpMs: number
  /** Instructions per second. */
  jsInstrPerSec: number
  compiledInstrPerSec: number
  interpInstrPerSec: number
  /** Compiled speed / hand-written JS speed (target ≥ 0.5). */
  compiledVsJs: number
  /** Compiled speed / interpreter speed (target ≤ 10). */
  compiledOverInterp: number
  /** The same two ratios from median wall-clock times. */
  wall: { jsMs: number, compiledMs: number, interpMs: number, compiledVsJs: number, compiledOverInterp: number }
}

export interface VasmBenchResult {
  intLoop: LoopFigures
  bigFib: LoopFigures
  targets: { compiledVsJsIntLoop: boolean, compiledVsJsBigFib: boolean, interpWithin10xIntLoop: boolean, interpWithin10xBigFib: boolean }
}

const INT_LOOP = `
        LOAD_CONST r0, 0
        LOAD_CONST r2, 0
loop:   CMPLT r3, r2, r1
        JZ r3, done
        ADD r0, r0, r2
        INC r2
        JMP loop
done:   HALT`

const BIG_FIB = `
        LOAD_CONST r2, 0
        LOAD_CONST r3, 1
loop:   JZ r1, done
        ADD r4, r2, r3
        MOV r2, r3
        MOV r3, r4
        DEC r1
        JMP loop
done:   MOV r0, r2
        HALT`

function jsIntLoop (n: number): bigint {
  let sum = 0
  for (let i = 0; i < n; i++) sum += i
  return BigInt(sum)
}

function jsBigFib (n: number): bigint {
  let a = 0n
  let b = 1n
  for (let i = 0; i < n; i++) {
    const t = a + b
    a = b
    b = t
  }
  return a
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** One run: [CPU ms, wall ms]. */
function timed (f: () => bigint, expect: bigint): [number, number] {
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  const v = f()
  const wall = performance.now() - t0
  const c = process.cpuUsage(c0)
  if (v !== expect) throw new Error(`bench: wrong result ${v}, expected ${expect}`)
  return [(c.user + c.system) / 1000, wall]
}

/** Warm-up runs per system before timing (the engines' code is optimised by then). */
const WARMUP = 5

function measure (prog: VerifiedProgram, n: number, instructions: number, js: (n: number) => bigint, rounds: number): LoopFigures {
  const expect = js(n)
  const vasm = (engine: Engine) => () => run(prog, { args: [BigInt(n)], engine, fuel: 1e12, maxBits: 1 << 24 }).value
  const systems = [() => js(n), vasm('compiled'), vasm('interp')]
  for (const f of systems) for (let i = 0; i < WARMUP; i++) timed(f, expect)
  const cpu: number[][] = [[], [], []]
  const wall: number[][] = [[], [], []]
  for (let r = 0; r < rounds; r++) {
    systems.forEach((f, k) => {
      const [c, w] = timed(f, expect)
      cpu[k].push(c)
      wall[k].push(w)
    })
  }
  const [jsMs, compiledMs, interpMs] = cpu.map(median)
  const [jsW, compiledW, interpW] = wall.map(median)
  const perSec = (t: number): number => Math.round(instructions / (t / 1000))
  const r2 = (x: number): number => Math.round(x * 100) / 100
  return {
    n,
    instructions,
    jsMs: r2(jsMs),
    compiledMs: r2(compiledMs),
    interpMs: r2(interpMs),
    jsInstrPerSec: perSec(jsMs),
    compiledInstrPerSec: perSec(compiledMs),
    interpInstrPerSec: perSec(interpMs),
    compiledVsJs: r2(jsMs / compiledMs),
    compiledOverInterp: r2(interpMs / compiledMs),
    wall: { jsMs: r2(jsW), compiledMs: r2(compiledW), interpMs: r2(interpW), compiledVsJs: r2(jsW / compiledW), compiledOverInterp: r2(interpW / compiledW) }
  }
}

export async function benchVasm (opts: BenchVasmOptions = {}): Promise<VasmBenchResult> {
  const rounds = opts.rounds ?? (opts.quick === true ? 3 : 7)
  const intN = opts.quick === true ? 200_000 : 5_000_000
  const fibN = opts.quick === true ? 5_000 : 30_000
  const intProg = loadProgram(INT_LOOP)
  const fibProg = loadProgram(BIG_FIB)
  // int loop: 2 setup + 5 per trip + CMPLT, JZ at exit + HALT; fib: 2 + 6 per trip + JZ + MOV + HALT.
  const intInstr = 2 + 5 * intN + 3
  const fibInstr = 2 + 6 * fibN + 3
  const check = run(intProg, { args: [BigInt(intN)], fuel: 1e12 })
  if (check.fuelUsed !== intInstr) throw new Error(`bench: int loop ran ${check.fuelUsed} instructions, expected ${intInstr}`)
  const intLoop = measure(intProg, intN, intInstr, jsIntLoop, rounds)
  const bigFib = measure(fibProg, fibN, fibInstr, jsBigFib, rounds)
  return {
    intLoop,
    bigFib,
    targets: {
      compiledVsJsIntLoop: intLoop.compiledVsJs >= 0.5,
      compiledVsJsBigFib: bigFib.compiledVsJs >= 0.5,
      interpWithin10xIntLoop: intLoop.compiledOverInterp <= 10,
      interpWithin10xBigFib: bigFib.compiledOverInterp <= 10
    }
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  benchVasm({ quick: process.argv.includes('--quick') }).then(
    r => { process.stdout.write(JSON.stringify(r, null, 2) + '\n') },
    err => { process.stderr.write(String((err as Error).stack ?? err) + '\n'); process.exit(1) }
  )
}
