/**
 * VASM: a small, portable, sandboxed, fuel-metered VM (spec: vasm/README.md). Pure library:
 * no I/O, no clock, no randomness; the same program, arguments and limits always give the same
 * result, fuel and error, on either engine.
 *
 *   const prog = loadProgram(textOrBytes)          // assemble or decode, then verify
 *   const { value, fuelUsed } = run(prog, { args: [10n], fuel: 1e6, engine: 'compiled' })
 *
 * Failures throw VasmError with `code`, `kind` and, where they apply, `line`, `col`, `pc`,
 * `fuelUsed`.
 */
import { assemble } from './assembler.js'
import { decode, encode as encodeProgram, isBinary } from './binary.js'
import { runCompiled } from './compile.js'
import { VasmError, optionsError, syntaxError, VasmErrorCode } from './errors.js'
import { interpret, type Machine } from './interp.js'
import { bitLength, resolveProgramLimits, resolveRunLimits, type Program, type ProgramLimits, type RunLimits } from './program.js'
import { intLimit, toBig, toVal, type Val } from './values.js'
import { isVerified, verify, type VerifiedProgram } from './verifier.js'

export { assemble } from './assembler.js'
export { disassemble } from './disasm.js'
export { decode, isBinary, crc32, MAGIC, FORMAT_VERSION } from './binary.js'
export { verify, isVerified, type VerifiedProgram } from './verifier.js'
export { VasmError, VasmErrorCode, RUNTIME_REASONS, type VasmErrorKind } from './errors.js'
export { OPS, Op, opByName, REGISTER_COUNT, type OpInfo } from './isa.js'
export {
  DEFAULT_PROGRAM_LIMITS, DEFAULT_RUN_LIMITS, LIMIT_BOUNDS, formatInstr,
  type Instr, type Label, type Program, type ProgramLimits, type RunLimits, type SourcePos
} from './program.js'
export { compileCount, MAX_COMPILED_INSTRUCTIONS, COMPILE_CACHE_ENTRIES } from './compile.js'

/** Most arguments: they go to r1 … r15. */
export const MAX_ARGS = 15

export type Engine = 'interp' | 'compiled'

export interface RunOptions extends Partial<RunLimits> {
  /** Loaded into r1, r2, … in order (at most 15). Integers of any size up to maxBits. */
  args?: ReadonlyArray<bigint | number>
  /** `compiled` (default) or `interp`; both give identical results, fuel and errors. */
  engine?: Engine
}

export interface RunResult {
  /** r0 at HALT, at RET with an empty call stack, or when running off the end. */
  value: bigint
  /** Fuel used, including the final HALT or RET. */
  fuelUsed: number
}

/**
 * Assembles (text) or decodes (bytes starting with "VASM"; other bytes are read as UTF-8 text),
 * then verifies. Throws VasmError (kind syntax, decode or verify).
 */
export function loadProgram (input: string | Uint8Array, limitsIn?: Partial<ProgramLimits>): VerifiedProgram {
  const limits = resolveProgramLimits(limitsIn)
  let program: Program
  if (typeof input === 'string') {
    program = assemble(input, limits)
  } else if (input instanceof Uint8Array) {
    if (isBinary(input)) {
      program = decode(input, limits)
    } else {
      if (input.length > limits.maxSourceBytes) {
        throw syntaxError(1, 1, `program text is ${input.length} bytes, above the limit of ${limits.maxSourceBytes}`, VasmErrorCode.PROGRAM_TOO_LARGE)
      }
      let text: string
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(input)
      } catch {
        throw syntaxError(1, 1, 'expected VASM text (UTF-8) or a VASM binary (starting with "VASM"), found other bytes')
      }
      program = assemble(text, limits)
    }
  } else {
    throw optionsError('program', 'expected a string or a Uint8Array')
  }
  return verify(program, limits)
}

/** The canonical binary of a program (a VerifiedProgram's is cached in `bytes`). */
export function encode (p: Program | VerifiedProgram): Uint8Array {
  return isVerified(p) ? p.bytes.slice() : encodeProgram(p)
}

function checkArgs (args: ReadonlyArray<bigint | number> | undefined, maxBits: number): Val[] {
  if (args === undefined) return []
  if (!Array.isArray(args)) throw optionsError('args', 'expected an array of integers')
  if (args.length > MAX_ARGS) throw optionsError('args', `at most ${MAX_ARGS} arguments (r1-r15), got ${args.length}`)
  return args.map((a, i) => {
    if (typeof a === 'number' && !Number.isSafeInteger(a)) throw optionsError(`args[${i}]`, `expected an integer, got ${String(a)}`)
    if (typeof a !== 'number' && typeof a !== 'bigint') throw optionsError(`args[${i}]`, `expected an integer, got ${typeof a}`)
    const big = BigInt(a)
    if (bitLength(big) > maxBits) throw optionsError(`args[${i}]`, `integer of ${bitLength(big)} bits, above maxBits ${maxBits}`)
    return toVal(big)
  })
}

/** Runs a verified program. Throws VasmError: kind `options` for bad options, `runtime` for the run's errors. */
export function run (program: VerifiedProgram, options: RunOptions = {}): RunResult {
  if (!isVerified(program)) throw optionsError('program', 'expected a verified program (from loadProgram or verify)')
  const limits = resolveRunLimits(options)
  const engine = options.engine ?? 'compiled'
  if (engine !== 'compiled' && engine !== 'interp') throw optionsError('engine', `expected "interp" or "compiled", got ${JSON.stringify(engine)}`)
  const args = checkArgs(options.args, limits.maxBits)
  const regs: Val[] = new Array<Val>(16).fill(0)
  args.forEach((a, i) => { regs[i + 1] = a })
  const m: Machine = { regs, vs: [], cs: [], pc: 0, fuel: 0 }
  const env = { limits, L: intLimit(limits.maxBits) }
  const raw = engine === 'compiled' ? runCompiled(program, m, env) : interpret(program, m, env)
  return { value: toBig(raw.value), fuelUsed: raw.fuel }
}

export interface SegmentOptions extends RunOptions {
  /** First index of the segment: loaded into r1. */
  start: bigint | number
  /** End of the segment (exclusive): loaded into r2. */
  end: bigint | number
}

/** One map-form task: r1 = start, r2 = end, then `args` (so at most 13 of them). */
export function runSegment (program: VerifiedProgram, options: SegmentOptions): RunResult {
  const extra = options.args ?? []
  if (extra.length > MAX_ARGS - 2) throw optionsError('args', `at most ${MAX_ARGS - 2} arguments after start and end, got ${extra.length}`)
  return run(program, { ...options, args: [options.start, options.end, ...extra] })
}

/** True for errors thrown by this library. */
export function isVasmError (err: unknown): err is VasmError {
  return err instanceof VasmError
}

export { resolveProgramLimits, resolveRunLimits }
