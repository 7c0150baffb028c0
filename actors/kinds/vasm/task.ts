/**
 * The worker side of the `vasm` job, inside a Piscina thread: the `vasm-run` task kind. Untrusted
 * code runs only here, never on a node's main thread.
 *
 * Payload (built by actor.ts from the scheduler's task and the program bytes it holds):
 * `{ hash, program: Uint8Array, args: string[], fuel, start?, end? }`. The thread never trusts
 * the bytes: it loads them (decode + verify) itself and checks that their hash is the one the task
 * names (a mismatch is ERR_VASM_PROGRAM_MISMATCH). Verified programs are kept per thread by hash
 * (LRU bounded by bytes), so each thread verifies a program once.
 *
 * Result `{ value: "<decimal>", fuelUsed }`. VASM runtime errors (fuel exhausted, division by zero,
 * ...) are thrown with their ERR_VASM_* code and message (naming the instruction, its source line
 * and the fuel used); the job side treats them as deterministic failures (job.ts).
 */
import { loadProgram, run, runSegment, type VerifiedProgram } from '../../../vasm/index.js'
import { invalidArgument, WorkerError } from '../../worker/errors.js'
import type { TaskModule } from '../../worker/task-kinds.js'

export const VASM_TASK_KIND = 'vasm-run'

/** The worker's copy of a program does not hash to what the task names. */
export const ERR_PROGRAM_MISMATCH = 'ERR_VASM_PROGRAM_MISMATCH'

/** Verified programs kept per thread, bounded by the bytes of their encodings (and by count). */
const THREAD_CACHE_BYTES = 16 * 1024 * 1024
const THREAD_CACHE_ENTRIES = 64
/** Largest run-time integer, in bits (the library's default; the job validates args against it). */
const MAX_BITS = 1_000_000
const MAX_FUEL = 10_000_000_000
const HASH_RE = /^[0-9a-f]{64}$/
const DECIMAL_RE = /^-?[0-9]+$/

const cache = new Map<string, VerifiedProgram>()
let cachedBytes = 0

function programFor (hash: string, bytes: unknown): VerifiedProgram {
  const hit = cache.get(hash)
  if (hit !== undefined) {
    // Most recently used last.
    cache.delete(hash)
    cache.set(hash, hit)
    return hit
  }
  if (!(bytes instanceof Uint8Array)) throw invalidArgument('program', 'the task carries no program bytes')
  const prog = loadProgram(bytes)
  if (prog.hash !== hash) {
    throw new WorkerError(ERR_PROGRAM_MISMATCH, `program: the bytes received hash to ${prog.hash}, the task names ${hash}`)
  }
  cache.set(hash, prog)
  cachedBytes += prog.bytes.length
  for (const [h, p] of cache) {
    if (cachedBytes <= THREAD_CACHE_BYTES && cache.size <= THREAD_CACHE_ENTRIES) break
    if (h === hash) continue
    cache.delete(h)
    cachedBytes -= p.bytes.length
  }
  return prog
}

function bound (v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw invalidArgument(field, 'must be a safe integer')
  return v
}

/** Runs one task; exported for tests (the pool calls it through the module's kinds). */
export function runVasmTask (payload: unknown): { value: string, fuelUsed: number } {
  if (typeof payload !== 'object' || payload === null) throw invalidArgument('payload', 'must be an object')
  const p = payload as Record<string, unknown>
  if (typeof p.hash !== 'string' || !HASH_RE.test(p.hash)) throw invalidArgument('hash', 'must be 64 hex digits')
  if (!Array.isArray(p.args) || p.args.length > 15 || !p.args.every(a => typeof a === 'string' && a.length <= 400_000 && DECIMAL_RE.test(a))) {
    throw invalidArgument('args', 'must be at most 15 decimal strings')
  }
  const fuel = p.fuel
  if (typeof fuel !== 'number' || !Number.isSafeInteger(fuel) || fuel < 0 || fuel > MAX_FUEL) throw invalidArgument('fuel', `must be an integer from 0 to ${MAX_FUEL}`)
  const prog = programFor(p.hash, p.program)
  const args = (p.args as string[]).map(a => BigInt(a))
  const opts = { args, fuel, maxBits: MAX_BITS, engine: 'compiled' as const }
  const r = p.start === undefined || p.start === null
    ? run(prog, opts)
    : runSegment(prog, { ...opts, start: bound(p.start, 'start'), end: bound(p.end, 'end') })
  return { value: r.value.toString(), fuelUsed: r.fuelUsed }
}

const vasmTasks: TaskModule = {
  url: import.meta.url,
  // Heavy: one per Piscina task, so a task past its deadline is stopped by terminating its thread.
  kinds: [{ name: VASM_TASK_KIND, batchable: false, run: runVasmTask }]
}
export default vasmTasks
