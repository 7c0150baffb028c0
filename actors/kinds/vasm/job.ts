/**
 * The job side of the `vasm` kind: runs a VASM program (vasm/README.md) on the grid, once (single
 * form) or once per segment of a range (map form), and folds the values (params.ts).
 *
 * The program is verified at submit (errors name `line:col`, field `program`) and kept in the job's
 * parameters as its canonical binary. A task names it by hash only; the node's ProgramStore holds
 * the bytes of every task dispatched from here, and the workers' `vasm` actors fetch each program
 * once (actor.ts), then verify it again in the thread before running it (task.ts).
 *
 * Deterministic: a segment's value depends only on the program, its arguments and the fuel, so a
 * result policy may re-run and compare (`equal`), and a VASM runtime error (fuel exhausted,
 * division by zero, ...) fails the job at once (`isFatalError`): every node would fail the same way.
 */
import type { JobKind } from '../../scheduler/kinds.js'
import { RUNTIME_REASONS } from '../../../vasm/index.js'
import {
  reduceValues, splitVasm, validateVasmParams,
  type VasmParams, type VasmResult, type VasmSegment, type VasmValue
} from './params.js'
import type { ProgramStore } from './programs.js'
import { VASM_ACTOR_NAME } from './actor.js'
import { VASM_TASK_KIND } from './task.js'

export { VASM_TASK_KIND }

/**
 * The fuel → time bound used for a segment's deadline. The slowest fuel rates measured on this
 * project's 2-core machines (Node 20, one thread) are about 3.5 million fuel/s (SHL/SHR of 64-bit
 * values on the interpreter) and 6 million/s (MUL/MOD/DIV or ADD/SUB of values just under 2^64,
 * charged 1 fuel each); the estimate assumes 2 million/s. The scheduler sets a task's deadline
 * to max(limits.segmentTimeoutMs, 10 × estimate) (kinds.ts): with the defaults a task is stopped
 * (its thread terminated, worker-actor.ts) after 10 min, or after 10 × fuel / 2e6 ms for larger
 * budgets, capped by limits.maxSegmentTimeoutMs (6 h). Fuel stops almost every program first:
 * the default 10^7 is at most ~3 s of one thread, the largest 10^10 at most ~50 min.
 */
export const ESTIMATE_FUEL_PER_MS = 2000

/** Largest decimal value accepted back from a worker: 1,000,000 bits is 301,030 digits. */
const MAX_VALUE_CHARS = 301_032
const VALUE_RE = /^-?[0-9]+$/

/** VASM runtime errors: deterministic, so the job fails at once instead of retrying elsewhere. */
const FATAL_CODES: ReadonlySet<string> = new Set(Object.keys(RUNTIME_REASONS))

export interface VasmKindOptions {
  /** The node's program store: every program a task names is put there before the task leaves. */
  programs: ProgramStore
}

function isStart (v: unknown): v is number | null {
  return v === null || (typeof v === 'number' && Number.isSafeInteger(v))
}

export function createVasmKind (options: VasmKindOptions): JobKind<VasmParams, VasmSegment> {
  const { programs } = options
  return {
    name: 'vasm',
    taskKinds: [VASM_TASK_KIND],
    target: VASM_ACTOR_NAME,
    deterministic: true,

    validate: validateVasmParams,

    split: splitVasm,

    checkDescriptor (raw: unknown): VasmSegment {
      const d = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>
      if (!isStart(d.start) || !isStart(d.end) || (d.start === null) !== (d.end === null) || (d.start !== null && d.end !== null && d.end < d.start)) {
        throw new Error(`vasm segment descriptor: needs safe integers start ≤ end (or both null), got ${JSON.stringify(raw)?.slice(0, 80)}`)
      }
      return { start: d.start, end: d.end }
    },

    describe (d: VasmSegment) {
      return d.start === null ? {} : { start: d.start, end: d.end }
    },

    label (d: VasmSegment): string {
      return d.start === null ? '(single run)' : `[${d.start}, ${d.end})`
    },

    task (seg) {
      const p = seg.params
      // This node serves the bytes of every hash its tasks name (actor.ts). The params were
      // verified at submit (or resume), so their bytes hash to p.hash.
      if (!programs.has(p.hash)) programs.put(new Uint8Array(Buffer.from(p.program, 'base64')))
      const d = seg.descriptor
      return {
        kind: VASM_TASK_KIND,
        payload: d.start === null ? { hash: p.hash, args: p.args, fuel: p.fuel } : { hash: p.hash, args: p.args, fuel: p.fuel, start: d.start, end: d.end }
      }
    },

    checkValue (seg, value: unknown): VasmValue {
      const v = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>
      if (typeof v.value !== 'string' || v.value.length > MAX_VALUE_CHARS || !VALUE_RE.test(v.value)) throw new Error('vasm segment value: value must be a decimal string')
      if (typeof v.fuelUsed !== 'number' || !Number.isSafeInteger(v.fuelUsed) || v.fuelUsed < 0 || v.fuelUsed > seg.params.fuel) {
        throw new Error(`vasm segment value: fuelUsed must be an integer from 0 to ${seg.params.fuel}`)
      }
      // Canonical decimal (no "-0", no leading zeros), so equal values compare equal as text.
      return { value: BigInt(v.value).toString(), fuelUsed: v.fuelUsed }
    },

    combine (job, values: unknown[]): VasmResult {
      return reduceValues(job.params, values as VasmValue[])
    },

    estimateMs (seg): number {
      return seg.params.fuel / ESTIMATE_FUEL_PER_MS
    },

    equal (a: unknown, b: unknown): boolean {
      const x = a as VasmValue
      const y = b as VasmValue
      return x.value === y.value && x.fuelUsed === y.fuelUsed
    },

    isFatalError: (code: string) => FATAL_CODES.has(code)
  }
}

export interface VasmParamsInput {
  args?: Array<string | number>
  fuel?: number
  range?: { start: number | string, end: number | string }
  segments?: number
  reduce?: string
  cost?: string
}

/** Params of a vasm job from program bytes or text (for tools and tests): `{ program: base64, ... }`. */
export function vasmParams (program: Uint8Array | string, rest: VasmParamsInput = {}): Record<string, unknown> {
  const bytes = typeof program === 'string' ? new TextEncoder().encode(program) : program
  return { program: Buffer.from(bytes).toString('base64'), ...rest }
}
