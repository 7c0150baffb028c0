/**
 * `voike vasm …`: assemble, disassemble, verify and run VASM programs (vasm/README.md; contract
 * "VASM core"). In-process and I/O-injected so it is testable without spawning; node/cli.ts
 * routes `voike vasm ...` here. Imports nothing from actors/.
 *
 *   voike vasm asm FILE -o OUT
 *   voike vasm disasm FILE
 *   voike vasm verify FILE
 *   voike vasm run FILE [--arg INT]... [--fuel N] [--engine interp|compiled] [--max-bits N] [--json]
 *
 * Exit status: 0 ok; 1 a runtime error (named, with its source line); 2 usage, assembly,
 * decoding or verification errors (naming line:col).
 */
import { readFile as fsReadFile, writeFile as fsWriteFile } from 'node:fs/promises'
import {
  disassemble, loadProgram, run, DEFAULT_RUN_LIMITS, LIMIT_BOUNDS, MAX_ARGS, VasmError, type Engine, type VerifiedProgram
} from '../vasm/index.js'

type Out = ((text: string) => void) | { write: (text: string) => unknown }

export interface VasmIo {
  stdout: Out
  stderr: Out
  readFile: (path: string) => Promise<Uint8Array>
  /** Defaults to node:fs/promises writeFile. */
  writeFile?: (path: string, bytes: Uint8Array) => Promise<void>
}

export const VASM_USAGE = `usage:
  voike vasm asm FILE -o OUT          assemble (text or binary) to a binary program
  voike vasm disasm FILE              print canonical text
  voike vasm verify FILE              check a program without running it
  voike vasm run FILE [--arg INT]... [--fuel N] [--engine interp|compiled] [--max-bits N] [--json]
`

class UsageError extends Error {}

/** Largest decimal argument accepted on the command line (digits), before BigInt parses it. */
const MAX_ARG_DIGITS = 400_000

interface Parsed { positionals: string[], values: Map<string, string[]>, flags: Set<string> }

/** A small option parser: `--name value`, `--name=value`, and values may start with '-' (`--arg -5`). */
function parse (argv: string[], valued: string[], flags: string[]): Parsed {
  const out: Parsed = { positionals: [], values: new Map(), flags: new Set() }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('-') || a === '-' || /^-[0-9]/.test(a)) { out.positionals.push(a); continue }
    const eq = a.indexOf('=')
    const name = eq >= 0 ? a.slice(0, eq) : a
    if (flags.includes(name)) {
      if (eq >= 0) throw new UsageError(`${name} takes no value`)
      out.flags.add(name)
    } else if (valued.includes(name)) {
      let v: string
      if (eq >= 0) v = a.slice(eq + 1)
      else {
        if (i + 1 >= argv.length) throw new UsageError(`${name} needs a value`)
        v = argv[++i]
      }
      out.values.set(name, [...(out.values.get(name) ?? []), v])
    } else {
      throw new UsageError(`unknown option ${name}`)
    }
  }
  return out
}

function single (p: Parsed, name: string): string | undefined {
  const v = p.values.get(name)
  if (v !== undefined && v.length > 1) throw new UsageError(`${name} given more than once`)
  return v?.[0]
}

function intOption (p: Parsed, name: string, lo: number, hi: number): number | undefined {
  const v = single(p, name)
  if (v === undefined) return undefined
  if (!/^[0-9]+$/.test(v) || Number(v) < lo || Number(v) > hi) throw new UsageError(`${name}: expected an integer from ${lo} to ${hi}, got ${JSON.stringify(v)}`)
  return Number(v)
}

function parseArg (text: string, index: number): bigint {
  if (!/^[+-]?[0-9]+$/.test(text)) throw new UsageError(`--arg ${index + 1}: expected a decimal integer, got ${JSON.stringify(text.slice(0, 40))}`)
  if (text.length > MAX_ARG_DIGITS) throw new UsageError(`--arg ${index + 1}: more than ${MAX_ARG_DIGITS} digits`)
  return BigInt(text)
}

function write (out: Out, text: string): void {
  if (typeof out === 'function') out(text)
  else out.write(text)
}

async function load (io: VasmIo, file: string): Promise<VerifiedProgram> {
  let bytes: Uint8Array
  try {
    bytes = await io.readFile(file)
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`)
  }
  return loadProgram(bytes)
}

function oneFile (p: Parsed, command: string): string {
  if (p.positionals.length !== 1) throw new UsageError(`vasm ${command} takes one FILE, got ${p.positionals.length}`)
  return p.positionals[0]
}

export async function vasmCommand (argv: string[], io: VasmIo): Promise<number> {
  const [command, ...rest] = argv
  let file = ''
  try {
    switch (command) {
      case 'asm': {
        const p = parse(rest, ['-o', '--output'], [])
        file = oneFile(p, 'asm')
        const outPath = single(p, '-o') ?? single(p, '--output')
        if (outPath === undefined) throw new UsageError('vasm asm needs -o OUT')
        const prog = await load(io, file)
        await (io.writeFile ?? fsWriteFile)(outPath, prog.bytes)
        write(io.stdout, `${outPath}: ${prog.length} instructions, ${prog.bytes.length} bytes, sha256 ${prog.hash}\n`)
        return 0
      }
      case 'disasm': {
        file = oneFile(parse(rest, [], []), 'disasm')
        write(io.stdout, disassemble((await load(io, file)).program))
        return 0
      }
      case 'verify': {
        file = oneFile(parse(rest, [], []), 'verify')
        const prog = await load(io, file)
        write(io.stdout, `ok: ${prog.length} instructions, sha256 ${prog.hash}\n`)
        return 0
      }
      case 'run': {
        const p = parse(rest, ['--arg', '--fuel', '--engine', '--max-bits'], ['--json'])
        file = oneFile(p, 'run')
        const args = (p.values.get('--arg') ?? []).map(parseArg)
        if (args.length > MAX_ARGS) throw new UsageError(`at most ${MAX_ARGS} --arg values (r1-r15), got ${args.length}`)
        const fuel = intOption(p, '--fuel', LIMIT_BOUNDS.fuel[0], LIMIT_BOUNDS.fuel[1]) ?? DEFAULT_RUN_LIMITS.fuel
        const maxBits = intOption(p, '--max-bits', LIMIT_BOUNDS.maxBits[0], LIMIT_BOUNDS.maxBits[1])
        const engine = single(p, '--engine') ?? 'compiled'
        if (engine !== 'interp' && engine !== 'compiled') throw new UsageError(`--engine: expected interp or compiled, got ${JSON.stringify(engine)}`)
        const prog = await load(io, file)
        const r = run(prog, { args, fuel, maxBits, engine: engine as Engine })
        write(io.stdout, p.flags.has('--json')
          ? JSON.stringify({ result: r.value.toString(), fuelUsed: r.fuelUsed }) + '\n'
          : r.value.toString() + '\n')
        return 0
      }
      case undefined: case 'help': case '--help': case '-h':
        write(command === undefined ? io.stderr : io.stdout, VASM_USAGE)
        return command === undefined ? 2 : 0
      default:
        throw new UsageError(`unknown vasm command ${JSON.stringify(command)}`)
    }
  } catch (err) {
    if (err instanceof UsageError) {
      write(io.stderr, `voike vasm: ${err.message}\n${VASM_USAGE}`)
      return 2
    }
    if (err instanceof VasmError) {
      if (err.kind === 'runtime') {
        write(io.stderr, `voike vasm: ${file}: runtime error: ${err.message}\n`)
        return 1
      }
      // `FILE:LINE:COL: ...` like a compiler; other errors (`byte N: ...`, `instruction N: ...`) after `FILE: `.
      write(io.stderr, `voike vasm: ${file}${err.line !== undefined ? ':' : ': '}${err.message}\n`)
      return 2
    }
    throw err
  }
}

/** Default I/O: the process streams and the file system. */
export const processIo: VasmIo = {
  stdout: process.stdout,
  stderr: process.stderr,
  readFile: async (path) => await fsReadFile(path)
}
