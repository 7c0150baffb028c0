/**
 * FLOW benchmarks: executor overhead per trivial step, and LOAD CSV + FILTER + GROUP over a
 * generated CSV (throughput on one core, and the process's peak RSS: the fused chain streams,
 * so memory stays near one batch plus the groups whatever the file size).
 *
 *   node dist/bench/flow.js [--quick] [--mb N] [--json]
 *
 * Targets (issue 12): overhead ≤ 1 ms per step; CSV ≥ 50 MB/s.
 */
import '../node/polyfill.js'
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { parse as csvParse } from 'csv-parse'
import { createReadStream } from 'node:fs'
import { planSource, execute, type GridPort } from '../flows/index.js'

export interface FlowBenchOptions {
  quick: boolean
  /** Size of the generated CSV in MB (default 100, 20 with quick). */
  csvMb: number
  repeats: number
}

export interface FlowBenchResult {
  overhead: { steps: number, independentMsPerStep: number, chainedMsPerStep: number, planMs: number, targetMsPerStep: number }
  csv: { sizeBytes: number, rows: number, flowMBps: number, csvParseOnlyMBps: number, peakRssMB: number, baselineRssMB: number, targetMBps: number, groups: number }
}

function median (xs: number[]): number { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2 }

async function overhead (steps: number, repeats: number): Promise<FlowBenchResult['overhead']> {
  // Independent trivial steps, and a chain where each step reads the previous one.
  const indep = 'FLOW "o"\n' + Array.from({ length: steps }, (_, i) => `STEP s${i} =\n  OUTPUT_TEXT "x${i}"\n`).join('') + 'END FLOW\n'
  const chain = 'FLOW "c"\nSTEP s0 =\n  OUTPUT_TEXT "x"\n' + Array.from({ length: steps - 1 }, (_, i) => `STEP s${i + 1} =\n  OUTPUT_TEXT "\${s${i}}"\n`).join('') + 'END FLOW\n'
  let t = performance.now()
  const pi = planSource(indep)
  const planMs = performance.now() - t
  const pc = planSource(chain)
  const a: number[] = []
  const b: number[] = []
  for (let r = 0; r < repeats + 1; r++) {
    t = performance.now(); await execute(pi, {}); const x = performance.now() - t
    t = performance.now(); await execute(pc, {}); const y = performance.now() - t
    if (r > 0) { a.push(x / steps); b.push(y / steps) } // the first round warms up
  }
  return { steps, independentMsPerStep: median(a), chainedMsPerStep: median(b), planMs, targetMsPerStep: 1 }
}

async function writeCsv (path: string, bytes: number): Promise<number> {
  const ws = createWriteStream(path)
  const statuses = ['paid', 'paid', 'paid', 'refunded', 'pending']
  ws.write('order_id,customer_id,status,amount,note\n')
  let written = 0
  let rows = 0
  while (written < bytes) {
    const lines: string[] = []
    for (let i = 0; i < 10_000; i++, rows++) lines.push(`${rows},C${(rows * 7919) % 50_000},${statuses[rows % 5]!},${((rows * 31) % 100_000) / 100},"note ${rows % 97}, with a comma"`)
    const chunk = lines.join('\n') + '\n'
    written += chunk.length
    if (!ws.write(chunk)) await once(ws, 'drain')
  }
  ws.end()
  await once(ws, 'finish')
  return rows
}

async function csvBench (mb: number, repeats: number): Promise<FlowBenchResult['csv']> {
  const dir = mkdtempSync(join(tmpdir(), 'flow-bench-'))
  try {
    const file = join(dir, 'orders.csv')
    const rows = await writeCsv(file, mb * 1e6)
    const sizeBytes = statSync(file).size
    const src = `FLOW "csv"
INPUTS
  file orders
END INPUTS
STEP load =
  LOAD CSV FROM orders
STEP paid =
  FILTER load WHERE status == "paid" AND amount >= 10
STEP totals =
  GROUP paid BY customer_id
  AGG sum(amount) AS total
  AGG count(*) AS n
STEP out =
  OUTPUT totals AS "totals"
END FLOW
`
    const planned = planSource(src)
    global.gc?.()
    const baselineRss = process.memoryUsage().rss
    let peak = baselineRss
    const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 20)
    const speeds: number[] = []
    let groups = 0
    for (let r = 0; r < repeats; r++) {
      const t = performance.now()
      const res = await execute(planned, { orders: file }, { limits: { maxRows: 10_000_000 } })
      speeds.push(sizeBytes / 1e6 / ((performance.now() - t) / 1000))
      groups = (res.outputs.totals as unknown[]).length
    }
    clearInterval(sampler)
    // csv-parse alone on the same file: the ceiling for LOAD CSV.
    const t = performance.now()
    const parser = csvParse({ bom: true })
    let n = 0
    parser.on('data', () => { n++ })
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) parser.write(chunk)
    parser.end()
    await once(parser, 'end')
    const parseOnly = sizeBytes / 1e6 / ((performance.now() - t) / 1000)
    if (n !== rows + 1) throw new Error(`csv-parse saw ${n} records, expected ${rows + 1}`)
    return { sizeBytes, rows, flowMBps: median(speeds), csvParseOnlyMBps: parseOnly, peakRssMB: peak / 1e6, baselineRssMB: baselineRss / 1e6, targetMBps: 50, groups }
  } finally { rmSync(dir, { recursive: true, force: true }) }
}

/**
 * 8 independent RUN JOB "fib" steps run concurrently vs one at a time (the same flow with
 * concurrency 1), on whatever grid `port` reaches; node/ calls this with a port onto a local
 * 3-node grid (target: ratio ≤ 0.6). Needs a real grid, so the standalone bench does not run it.
 */
export async function parallelVsSequential (port: GridPort, o: { jobs?: number, n?: number, segments?: number, repeats?: number } = {}): Promise<{ parallelMs: number, sequentialMs: number, ratio: number }> {
  const jobs = o.jobs ?? 8
  const src = 'FLOW "parallel"\n' + Array.from({ length: jobs }, (_, i) => `STEP j${i} =\n  RUN JOB "fib" WITH { n: ${o.n ?? 20_000}, segments: ${o.segments ?? 2} }\nSTEP o${i} =\n  OUTPUT j${i}.result.digits AS "d${i}"\n`).join('') + 'END FLOW\n'
  const planned = planSource(src)
  const par: number[] = []
  const seq: number[] = []
  const ratios: number[] = []
  for (let r = 0; r < (o.repeats ?? 3); r++) {
    let t = performance.now()
    await execute(planned, {}, { port, concurrency: jobs })
    const p = performance.now() - t
    t = performance.now()
    await execute(planned, {}, { port, concurrency: 1 })
    const q = performance.now() - t
    par.push(p); seq.push(q); ratios.push(p / q)
  }
  return { parallelMs: median(par), sequentialMs: median(seq), ratio: median(ratios) }
}

export async function runFlowBench (o: FlowBenchOptions): Promise<FlowBenchResult> {
  const ov = await overhead(o.quick ? 200 : 500, o.repeats)
  const csv = await csvBench(o.csvMb, o.quick ? 1 : Math.max(1, Math.min(3, o.repeats)))
  return { overhead: ov, csv }
}

function table (r: FlowBenchResult): string {
  const ok = (b: boolean): string => b ? 'met' : 'NOT met'
  return [
    `executor overhead, ${r.overhead.steps} trivial steps: independent ${r.overhead.independentMsPerStep.toFixed(3)} ms/step, chained ${r.overhead.chainedMsPerStep.toFixed(3)} ms/step (target ≤ ${r.overhead.targetMsPerStep} ms: ${ok(Math.max(r.overhead.independentMsPerStep, r.overhead.chainedMsPerStep) <= 1)}); parse+plan ${r.overhead.planMs.toFixed(1)} ms`,
    `LOAD CSV + FILTER + GROUP, ${(r.csv.sizeBytes / 1e6).toFixed(1)} MB, ${r.csv.rows} rows → ${r.csv.groups} groups: ${r.csv.flowMBps.toFixed(1)} MB/s (target ≥ ${r.csv.targetMBps}: ${ok(r.csv.flowMBps >= r.csv.targetMBps)}); csv-parse alone ${r.csv.csvParseOnlyMBps.toFixed(1)} MB/s`,
    `memory: RSS ${r.csv.baselineRssMB.toFixed(0)} MB before, peak ${r.csv.peakRssMB.toFixed(0)} MB during the runs (file ${(r.csv.sizeBytes / 1e6).toFixed(0)} MB)`
  ].join('\n')
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2)
  const quick = args.includes('--quick')
  const mbAt = args.indexOf('--mb')
  const csvMb = mbAt >= 0 ? Number(args[mbAt + 1]) : quick ? 20 : 100
  if (!Number.isFinite(csvMb) || csvMb <= 0 || csvMb > 2000) { process.stderr.write('--mb needs a number in (0, 2000]\n'); process.exit(2) }
  const r = await runFlowBench({ quick, csvMb, repeats: quick ? 3 : 5 })
  process.stdout.write(args.includes('--json') ? JSON.stringify(r) + '\n' : table(r) + '\n')
}
