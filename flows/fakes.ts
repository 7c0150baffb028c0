/**
 * Test-only helpers: a grid port that runs jobs in-process with reference implementations (fib
 * per the contract, a small VASM interpreter for the core), counts jobs in flight, can hold jobs
 * until released, and records cancellations. Not used by the library.
 */
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import type { GridJob, GridPort } from './grid-port.js'

const P61 = (1n << 61n) - 1n

/** The contract's fib result for n (F(0..n-1) sums to F(n+1) - 1). */
export function fibResult (n: number): Record<string, unknown> {
  let a = 0n
  let b = 1n
  for (let i = 0; i < n; i++) { const t = a + b; a = b; b = t }
  const s = a.toString()
  return { n, digits: s.length, sha256: createHash('sha256').update(s).digest('hex'), sumMod61: ((b - 1n) % P61).toString() }
}

/** Runs a core-VASM program (enough for the examples and tests). */
export function runVasm (program: string, args: bigint[], fuel = 10_000_000): { value: string, fuelUsed: number } {
  const lines = program.split('\n').map(l => l.replace(/[;#].*$/, '').trim())
  const labels = new Map<string, number>()
  const code: Array<{ op: string, a: string[] }> = []
  for (const l of lines) {
    let rest = l
    const m = /^([A-Za-z_][A-Za-z0-9_]*):\s*(.*)$/.exec(rest)
    if (m !== null) { labels.set(m[1]!, code.length); rest = m[2]! }
    if (rest === '') continue
    const parts = rest.split(/[\s,]+/).filter(x => x !== '')
    code.push({ op: parts[0]!.toUpperCase(), a: parts.slice(1) })
  }
  const r = new Array<bigint>(16).fill(0n)
  args.forEach((v, i) => { r[i + 1] = v })
  const reg = (s: string): number => Number(s.slice(1))
  const stack: bigint[] = []
  const calls: number[] = []
  let pc = 0
  let used = 0
  while (pc < code.length) {
    if (++used > fuel) throw new Error('fuel exhausted')
    const { op, a } = code[pc++]!
    const R = (i: number): bigint => r[reg(a[i]!)]!
    switch (op) {
      case 'LOAD_CONST': r[reg(a[0]!)] = BigInt(a[1]!); break
      case 'MOV': r[reg(a[0]!)] = R(1); break
      case 'ADD': r[reg(a[0]!)] = R(1) + R(2); break
      case 'SUB': r[reg(a[0]!)] = R(1) - R(2); break
      case 'MUL': r[reg(a[0]!)] = R(1) * R(2); break
      case 'DIV': if (R(2) === 0n) throw new Error('division by zero'); r[reg(a[0]!)] = R(1) / R(2); break
      case 'MOD': if (R(2) === 0n) throw new Error('division by zero'); r[reg(a[0]!)] = R(1) % R(2); break
      case 'INC': r[reg(a[0]!)]!++; break
      case 'DEC': r[reg(a[0]!)]!--; break
      case 'CMPLT': r[reg(a[0]!)] = R(1) < R(2) ? 1n : 0n; break
      case 'CMPLE': r[reg(a[0]!)] = R(1) <= R(2) ? 1n : 0n; break
      case 'CMPEQ': r[reg(a[0]!)] = R(1) === R(2) ? 1n : 0n; break
      case 'CMPNE': r[reg(a[0]!)] = R(1) !== R(2) ? 1n : 0n; break
      case 'AND': r[reg(a[0]!)] = R(1) !== 0n && R(2) !== 0n ? 1n : 0n; break
      case 'OR': r[reg(a[0]!)] = R(1) !== 0n || R(2) !== 0n ? 1n : 0n; break
      case 'NOT': r[reg(a[0]!)] = R(1) === 0n ? 1n : 0n; break
      case 'JMP': pc = labels.get(a[0]!)!; break
      case 'JIF': if (R(0) !== 0n) pc = labels.get(a[1]!)!; break
      case 'CALL': calls.push(pc); pc = labels.get(a[0]!)!; break
      case 'RET': if (calls.length === 0) pc = code.length; else pc = calls.pop()!; break
      case 'PUSH': stack.push(R(0)); break
      case 'POP': r[reg(a[0]!)] = stack.pop()!; break
      case 'HALT': pc = code.length; break
      default: throw new Error(`unknown instruction ${op}`)
    }
  }
  return { value: r[0]!.toString(), fuelUsed: used }
}

function vasmJob (params: Record<string, unknown>): unknown {
  const program = Buffer.from(params.program as string, 'base64').toString('utf8')
  const args = (params.args as string[]).map(BigInt)
  const fuel = params.fuel as number | undefined
  const range = params.range as { start: number, end: number } | undefined
  if (range === undefined) return runVasm(program, args, fuel)
  const segs = params.segments as number
  const values: bigint[] = []
  let fuelUsed = 0
  const len = range.end - range.start
  for (let i = 0; i < segs; i++) {
    const s = range.start + Math.floor(len * i / segs)
    const e = range.start + Math.floor(len * (i + 1) / segs)
    const r = runVasm(program, [BigInt(s), BigInt(e), ...args], fuel)
    values.push(BigInt(r.value))
    fuelUsed += r.fuelUsed
  }
  const reduce = params.reduce as string
  if (reduce === 'list') return { value: values.map(String), fuelUsed }
  const sum = values.reduce((a, b) => a + b, 0n)
  const v = reduce === 'sum' ? sum : reduce === 'min' ? values.reduce((a, b) => a < b ? a : b) : reduce === 'max' ? values.reduce((a, b) => a > b ? a : b) : sum % BigInt(reduce.split(':')[1]!)
  return { value: v.toString(), fuelUsed }
}

interface Held { job: GridJob, done: Promise<void>, finish: () => void, cancel: () => void }

export class FakeGrid implements GridPort {
  inFlight = 0
  maxInFlight = 0
  readonly submitted: Array<{ kind: string, params: Record<string, unknown> }> = []
  readonly cancelled: string[] = []
  /** When true, jobs wait for release() before computing. */
  hold = false
  /** The next job of each of these kinds fails (then the kind is removed). */
  readonly failOnce = new Set<string>()
  private readonly jobs = new Map<string, Held>()
  private readonly gates: Array<() => void> = []
  private seq = 0

  async submit (kind: string, params: Record<string, unknown>): Promise<GridJob> {
    if (!['fib', 'vasm', 'fail', 'echo'].includes(kind)) throw new Error(`unknown job kind ${kind}`)
    if (kind === 'fib' && (!Number.isInteger(params.n) || (params.n as number) < 0)) throw new Error('n must be an integer ≥ 0')
    this.submitted.push({ kind, params })
    const job: GridJob = { id: `job-${++this.seq}`, kind, status: 'queued', error: null, result: null, params }
    let finish!: () => void
    const done = new Promise<void>(resolve => { finish = resolve })
    const h: Held = { job, done, finish, cancel: () => {} }
    this.jobs.set(job.id, h)
    this.inFlight++
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
    void this.runJob(h, kind, params)
    return { ...job }
  }

  private async runJob (h: Held, kind: string, params: Record<string, unknown>): Promise<void> {
    h.job.status = 'running'
    if (this.hold) {
      await new Promise<void>(resolve => { this.gates.push(resolve); h.cancel = resolve })
    } else {
      await new Promise<void>(resolve => setImmediate(resolve))
    }
    if (h.job.status === 'running') {
      try {
        if (kind === 'fail') throw new Error(String(params.message ?? 'failed on purpose'))
        if (this.failOnce.delete(kind)) throw new Error(`injected failure of ${kind}`)
        h.job.result = kind === 'fib' ? fibResult(params.n as number) : kind === 'vasm' ? vasmJob(params) : params
        h.job.status = 'succeeded'
      } catch (e) {
        h.job.status = 'failed'
        h.job.error = (e as Error).message
      }
    }
    this.inFlight--
    h.finish()
  }

  /** Lets every held job go on. */
  release (): void { for (const g of this.gates.splice(0)) g() }

  async wait (jobId: string, o: { signal: AbortSignal }): Promise<GridJob> {
    const h = this.jobs.get(jobId)
    if (h === undefined) throw new Error(`no job ${jobId}`)
    o.signal.throwIfAborted()
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(o.signal.reason)
      o.signal.addEventListener('abort', onAbort, { once: true })
      void h.done.then(() => { o.signal.removeEventListener('abort', onAbort); resolve() })
    })
    return { ...h.job }
  }

  async cancel (jobId: string): Promise<void> {
    const h = this.jobs.get(jobId)
    if (h === undefined || h.job.status === 'succeeded' || h.job.status === 'failed' || h.job.status === 'cancelled') return
    this.cancelled.push(jobId)
    h.job.status = 'cancelled'
    h.cancel()
  }
}

/** Polls `cond` until true (no fixed sleeps in tests); rejects after `timeoutMs`. */
export async function waitFor (cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

/** A seeded PRNG (mulberry32). */
export function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

// ---- fixtures --------------------------------------------------------------------------------

export const EXAMPLES = fileURLToPath(new URL('../../flows/examples/', import.meta.url))

/** The contract's "FLOW core" flow, verbatim. */
export const CORE = `FLOW "Top customers"

INPUTS
  file sales_csv
  number limit optional
END INPUTS

STEP load =
  LOAD CSV FROM sales_csv

STEP paid =
  FILTER load WHERE status == "paid"

STEP totals =
  GROUP paid BY customer_id
  AGG sum(amount) AS total_amount
  AGG count(*) AS orders

STEP sorted =
  SORT totals BY total_amount DESC
  TAKE 2

STEP report =
  OUTPUT sorted AS "TopCustomers"

END FLOW
`

/** The seed README's example, verbatim. */
export const SEED = `FLOW "My First Flow"

INPUTS
  text question
END INPUTS

STEP ask_agent =
  CALL FLOW "flows/lib/ai/agents.flow"
    WITH {
      "question": question
    }

STEP output =
  OUTPUT_TEXT ask_agent.answer

END FLOW
`

