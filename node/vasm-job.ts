/**
 * `voike job submit vasm ...`: the flags of the `vasm` job kind turned into its parameters
 * (actors/kinds/vasm/params.ts). The node verifies the program again at submit; this only reads
 * the file and checks the flags' shapes so that mistakes exit 2 before any network call.
 *
 *   voike job submit vasm --program FILE [--arg INT]... [--fuel N] --wait --json
 *   voike job submit vasm --program FILE --range START:END --segments S
 *     --reduce sum|min|max|list|summod:M [--cost flat|linear] [--arg INT]... [--fuel N] --wait --json
 */
import { readFile } from 'node:fs/promises'
import { MAX_PROGRAM_BYTES } from '../actors/kinds/vasm/params.js'

/** The options `job submit` parses for `vasm` (node:util parseArgs shapes). */
export const VASM_SUBMIT_OPTIONS = {
  program: { type: 'string' as const },
  arg: { type: 'string' as const, multiple: true },
  fuel: { type: 'string' as const },
  range: { type: 'string' as const },
  reduce: { type: 'string' as const },
  cost: { type: 'string' as const }
}

/** Flags whose value may start with '-' (a negative number). */
const SIGNED_FLAGS = new Set(['--arg', '--range'])
const SIGNED_VALUE_RE = /^-[0-9]/

/**
 * parseArgs reads `--arg -5` as a flag without its value; this joins such pairs into `--arg=-5`
 * (only for flags that take numbers, and only when the next word is a negative number).
 */
export function joinSignedValues (args: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < args.length; i++) {
    if (SIGNED_FLAGS.has(args[i]) && i + 1 < args.length && SIGNED_VALUE_RE.test(args[i + 1])) {
      out.push(`${args[i]}=${args[i + 1]}`)
      i++
    } else out.push(args[i])
  }
  return out
}

const INT_RE = /^[+-]?[0-9]+$/
const RANGE_RE = /^([+-]?[0-9]+):([+-]?[0-9]+)$/
/** Digits of the largest argument (1,000,000 bits). */
const MAX_ARG_DIGITS = 301_030

/** The `vasm` job's params from the parsed flags; throws Error naming the flag. */
export async function vasmSubmitParams (values: Record<string, unknown>): Promise<Record<string, unknown>> {
  const file = values.program
  if (typeof file !== 'string') throw new Error('--program FILE is required (a VASM text or binary program)')
  let bytes: Buffer
  try {
    bytes = await readFile(file)
  } catch (err) {
    throw new Error(`--program: cannot read ${file}: ${(err as Error).message}`)
  }
  if (bytes.length > MAX_PROGRAM_BYTES) throw new Error(`--program: ${file} is ${bytes.length} bytes, above the limit of ${MAX_PROGRAM_BYTES}`)
  const args = ((values.arg as string[] | undefined) ?? []).map((a, i) => {
    if (!INT_RE.test(a) || a.length > MAX_ARG_DIGITS + 1) throw new Error(`--arg ${i + 1}: expected a decimal integer, got ${JSON.stringify(a.slice(0, 40))}`)
    return a.replace(/^\+/, '')
  })
  const params: Record<string, unknown> = { program: bytes.toString('base64'), args }
  if (values.fuel !== undefined) {
    if (typeof values.fuel !== 'string' || !/^[0-9]{1,16}$/.test(values.fuel)) throw new Error(`--fuel: expected a non-negative integer, got ${JSON.stringify(values.fuel)}`)
    params.fuel = Number(values.fuel)
  }
  if (values.range === undefined) {
    for (const f of ['segments', 'reduce', 'cost']) if (values[f] !== undefined) throw new Error(`--${f} needs --range START:END (the map form)`)
    return params
  }
  const m = RANGE_RE.exec(String(values.range))
  if (m === null) throw new Error(`--range: expected START:END (integers), got ${JSON.stringify(values.range)}`)
  params.range = { start: m[1].replace(/^\+/, ''), end: m[2].replace(/^\+/, '') }
  if (typeof values.segments !== 'string' || !/^[0-9]{1,9}$/.test(values.segments)) throw new Error('--segments S is required with --range (an integer from 1 to 4096)')
  params.segments = Number(values.segments)
  if (typeof values.reduce !== 'string') throw new Error('--reduce sum|min|max|list|summod:M is required with --range')
  params.reduce = values.reduce
  if (values.cost !== undefined) params.cost = values.cost
  return params
}
