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
 * credited with the same count, so the ratios are time ratios. Each figure is the best of
 * `repeats` runs after a warm-up (the best is the least disturbed by other load on the machine).
 */
import { fileURLToPath } from 'node:url'
import { loadProgram, run, type Engine, type VerifiedProgram } from '../vasm/index.js'

export interface BenchVasmOptions {
  /** Smaller loop sizes (a fast smoke run). */
  quick?: boolean
  /** Timed runs per figure (best kept). Default 5. */
  repeats?: number
}

export interface LoopFigures {
  /** Loop trip count. */
  n: number
  /** VASM instructions executed per run. */
  instructions: number
  /** Instructions per second. */
  jsInstrPerSec: number
  compiledInstrPerSec: number
  interpInstrPerSec: number
  /** Compiled speed / hand-written JS speed (target ≥ 0.5). */
  compiledVsJs: number
  /** Compiled speed / interpreter speed (target ≤ 10). */
  compiledOverInterp: number
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

function best (repeats: number, f: () => bigint, expect: bigint): number {
  if (f() !== expect) throw new Error('bench: wrong result in warm-up')
  let ms = Infinity
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now()
    const v = f()
    const dt = performance.now() - t0
    if (v !== expect) throw new Error('bench: wrong result')
    ms = Math.min(ms, dt)
  }
  return ms
}

function measure (prog: VerifiedProgram, n: number, instructions: number, js: (n: number) => bigint, repeats: number): LoopFigures {
  const expect = js(n)
  const vasm = (engine: Engine) => () => run(prog, { args: [BigInt(n)], engine, fuel: 1e12, maxBits: 1 << 24 }).value
  const jsMs = best(repeats, () => js(n), expect)
  const compiledMs = best(repeats, vasm('compiled'), expect)
  const interpMs = best(repeats, vasm('interp'), expect)
  const perSec = (ms: number): number => Math.round(instructions / (ms / 1000))
  const r2 = (x: number): number => Math.round(x * 100) / 100
  return {
    n,
    instructions,
    jsInstrPerSec: perSec(jsMs),
    compiledInstrPerSec: perSec(compiledMs),
    interpInstrPerSec: perSec(interpMs),
    compiledVsJs: r2(jsMs / compiledMs),
    compiledOverInterp: r2(interpMs / compiledMs)
  }
}

export async function benchVasm (opts: BenchVasmOptions = {}): Promise<VasmBenchResult> {
  const repeats = opts.repeats ?? 5
  const intN = opts.quick === true ? 200_000 : 5_000_000
  const fibN = opts.quick === true ? 5_000 : 30_000
  const intProg = loadProgram(INT_LOOP)
  const fibProg = loadProgram(BIG_FIB)
  // int loop: 2 setup + 5 per trip + CMPLT, JZ at exit + HALT; fib: 2 + 6 per trip + JZ + MOV + HALT.
  const intInstr = 2 + 5 * intN + 3
  const fibInstr = 2 + 6 * fibN + 3
  const check = run(intProg, { args: [BigInt(intN)], fuel: 1e12 })
  if (check.fuelUsed !== intInstr) throw new Error(`bench: int loop ran ${check.fuelUsed} instructions, expected ${intInstr}`)
  const intLoop = measure(intProg, intN, intInstr, jsIntLoop, repeats)
  const bigFib = measure(fibProg, fibN, fibInstr, jsBigFib, repeats)
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
