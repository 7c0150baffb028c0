/**
 * Bench harness: CLI flags, a registry of benchmarks, alternating repeats (A B C A B C ...) with
 * medians, ratios taken per round (paired) then the median, targets, the latest.json object and
 * the printed table.
 *
 * A benchmark compares systems (ours, `voike`, and its peers) on named metrics. Each system is
 * started once (`start` → a Session holding its peer processes and client), then measured once per
 * round, the systems alternating inside each round so that a noisy machine affects all alike.
 */
import os from 'node:os'
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BenchError } from './proc.js'

// ---- statistics --------------------------------------------------------------------------------

/** Nearest-rank percentile of an ascending array: the smallest value with ≥ p% of samples ≤ it. */
export function percentile (sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) throw new BenchError('ERR_NO_SAMPLES', 'percentile of no samples')
  if (!(p > 0 && p <= 100)) throw new BenchError('ERR_BAD_OPTION', `percentile must be in (0, 100], got ${p}`)
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!
}

/** Median (mean of the middle two for an even count). */
export function median (values: readonly number[]): number {
  if (values.length === 0) throw new BenchError('ERR_NO_SAMPLES', 'median of no values')
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** Median of the non-null values, or null when there are none. */
export function medianOrNull (values: ReadonlyArray<number | null>): number | null {
  const present = values.filter((v): v is number => v !== null && Number.isFinite(v))
  return present.length === 0 ? null : median(present)
}

// ---- CLI ---------------------------------------------------------------------------------------

export interface CliOptions {
  /** Fewer, shorter repeats: the whole run stays under 5 minutes on 2 cores. */
  quick: boolean
  /** Also write the results to `jsonPath`. */
  json: boolean
  jsonPath: string
  /** Run only these benchmarks (names as in latest.json); null = all. */
  only: string[] | null
  /** Overrides every benchmark's repeat count. */
  repeats: number | null
  /** Worker threads for the local-task pools (VOIKE's pool and bare Piscina); null = default. */
  threads: number | null
  help: boolean
}

export const DEFAULT_JSON_PATH = fileURLToPath(new URL('../../bench/results/latest.json', import.meta.url))

export const USAGE = `usage: npm run bench -- [--quick] [--json] [--only NAME,...] [--repeats N] [--threads N]
  --quick        fewer and shorter repeats (whole run < 5 min on 2 cores)
  --json         also write bench/results/latest.json
  --out PATH     write the JSON there instead (implies --json)
  --only LIST    comma-separated benchmark names (see below)
  --repeats N    repeats per benchmark (overrides the defaults)
  --threads N    worker threads for the local-task pools (default: available parallelism)`

function positiveInt (flag: string, raw: string | undefined): number {
  const n = Number(raw)
  if (raw === undefined || !Number.isInteger(n) || n < 1 || n > 1000) {
    throw new BenchError('ERR_USAGE', `${flag} needs an integer in 1..1000, got ${String(raw)}`)
  }
  return n
}

export function parseCli (argv: readonly string[]): CliOptions {
  const o: CliOptions = { quick: false, json: false, jsonPath: DEFAULT_JSON_PATH, only: null, repeats: null, threads: null, help: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    switch (a) {
      case '--quick': o.quick = true; break
      case '--json': o.json = true; break
      case '--help': case '-h': o.help = true; break
      case '--out': {
        const v = argv[++i]
        if (v === undefined || v.startsWith('--')) throw new BenchError('ERR_USAGE', '--out needs a path')
        o.jsonPath = v
        o.json = true
        break
      }
      case '--only': {
        const v = argv[++i]
        if (v === undefined || v.startsWith('--')) throw new BenchError('ERR_USAGE', '--only needs a comma-separated list of benchmark names')
        o.only = v.split(',').map((s) => s.trim()).filter((s) => s.length > 0)
        if (o.only.length === 0) throw new BenchError('ERR_USAGE', '--only needs at least one benchmark name')
        break
      }
      case '--repeats': o.repeats = positiveInt('--repeats', argv[++i]); break
      case '--threads': o.threads = positiveInt('--threads', argv[++i]); break
      default: throw new BenchError('ERR_USAGE', `unknown flag ${a}`)
    }
  }
  return o
}

// ---- definitions -------------------------------------------------------------------------------

export type Op = '>=' | '<='

export interface Target {
  op: Op
  value: number
}

export interface MetricSpec {
  /** Short description for the table, e.g. 'throughput, 64 in flight'. */
  label: string
  /** Unit for the table, e.g. 'msg/s', 'µs', 'ms', 'MB'. The metric's name carries it too. */
  unit: string
}

/** What a measured system gets each round. */
export interface RoundContext {
  /** 0-based round number; negative for warm-up rounds, whose values are discarded. */
  round: number
  repeats: number
  options: CliOptions
}

/** A started system: its peer processes and client live until `close`. */
export interface Session {
  /** One measurement: metric name → value (the metrics the system declared). */
  measure: (ctx: RoundContext) => Promise<Record<string, number>>
  /** Extra facts for latest.json (versions, settings, a checked result...). */
  info?: () => Record<string, unknown>
  /** Stops everything `start` started (peers, clients, pools). Must not throw. */
  close: () => Promise<void>
}

export interface SystemSpec {
  /** Human name for the table, e.g. 'Moleculer 0.15 TCP'. */
  label: string
  /** Metrics this system reports; the JSON keys are `<system><Metric>`, e.g. moleculerRttP50Us. */
  metrics: readonly string[]
  /** Starts the system; absent when `pending`. */
  start?: (options: CliOptions) => Promise<Session>
  /** Why it is not measured yet (e.g. 'pending integration'); its figures are null. */
  pending?: string
}

/** A ratio of ours to a peer on one metric, taken per round, reported as the median. */
export interface RatioSpec {
  /** JSON key, e.g. 'ratioVsMoleculer64InFlight'. */
  key: string
  metric: string
  /** The peer system. */
  vs: string
  /** peer / ours instead of ours / peer (e.g. speedup from times). */
  invert?: boolean
  target?: Target
}

/** A figure computed from one round's values (e.g. parallel efficiency). */
export interface DerivedSpec {
  key: string
  label: string
  unit: string
  compute: (get: (system: string, metric: string) => number | null) => number | null
  target?: Target
}

export interface BenchDefinition {
  /** Key in latest.json and name for --only, e.g. 'remoteTasks'. */
  name: string
  title: string
  /** What is measured and how, for the README and latest.json. */
  description: string
  /** Our system's name among `systems` (default 'voike'). */
  ours?: string
  /** Systems in alternation order. */
  systems: Record<string, SystemSpec>
  metrics: Record<string, MetricSpec>
  ratios?: RatioSpec[]
  derived?: DerivedSpec[]
  /** Absolute targets on our figures, by metric. */
  targets?: Record<string, Target>
  repeats: number
  quickRepeats: number
  /**
   * Unrecorded rounds run first (JIT, connection and pool warm-up), alternating like the others.
   * Default 0.
   */
  warmupRounds?: number
  /** Longest one measurement may take before the system is marked failed. */
  measureTimeoutMs?: number
  /** Settings echoed into latest.json (payload size, durations, n...). */
  config?: Record<string, unknown> | ((options: CliOptions) => Record<string, unknown>)
}

const registry: BenchDefinition[] = []
const NAME_RE = /^[a-z][A-Za-z0-9]*$/

/** Registers a benchmark (run in registration order) after checking it is consistent. */
export function defineBench (def: BenchDefinition): BenchDefinition {
  const fail = (msg: string): never => { throw new BenchError('ERR_BAD_BENCH', `bench ${def.name}: ${msg}`) }
  if (!NAME_RE.test(def.name)) fail('name must be camelCase')
  if (registry.some((d) => d.name === def.name)) fail('defined twice')
  const ours = def.ours ?? 'voike'
  if (def.systems[ours] === undefined) fail(`no system named ${ours} (ours)`)
  for (const [name, s] of Object.entries(def.systems)) {
    if (!NAME_RE.test(name)) fail(`system name ${name} must be camelCase`)
    if ((s.start === undefined) === (s.pending === undefined)) fail(`system ${name} needs exactly one of start, pending`)
    for (const m of s.metrics) if (def.metrics[m] === undefined) fail(`system ${name} reports undeclared metric ${m}`)
  }
  for (const r of def.ratios ?? []) {
    if (def.metrics[r.metric] === undefined) fail(`ratio ${r.key} on undeclared metric ${r.metric}`)
    if (def.systems[r.vs] === undefined) fail(`ratio ${r.key} against unknown system ${r.vs}`)
  }
  for (const m of Object.keys(def.targets ?? {})) if (def.metrics[m] === undefined) fail(`target on undeclared metric ${m}`)
  for (const n of [def.repeats, def.quickRepeats]) if (!Number.isInteger(n) || n < 1) fail('repeats must be integers ≥ 1')
  const w = def.warmupRounds ?? 0
  if (!Number.isInteger(w) || w < 0 || w > 10) fail('warmupRounds must be an integer in 0..10')
  registry.push(def)
  return def
}

export function registeredBenches (): readonly BenchDefinition[] {
  return registry
}

/** A system not measured yet: its figures appear as null, marked with `reason`. */
export function pending (label: string, metrics: readonly string[], reason = 'pending integration'): SystemSpec {
  return { label, metrics, pending: reason }
}

// ---- running -----------------------------------------------------------------------------------

/** `moleculer` + `rttP50Us` → `moleculerRttP50Us`. */
export function figureKey (system: string, metric: string): string {
  return system + metric[0]!.toUpperCase() + metric.slice(1)
}

export interface TargetResult extends Target {
  /** null while the figure is not measured. */
  met: boolean | null
}

/** One benchmark's part of latest.json. Figures are medians; `repeats` keeps every round. */
export type BenchSection = Record<string, unknown> & {
  title: string
  description: string
  systems: Record<string, { label: string, status: string, info?: Record<string, unknown> }>
  targets: Record<string, TargetResult>
  repeats: Record<string, Array<number | null>>
  errors?: Record<string, string>
}

export interface BenchReport {
  meta: Record<string, unknown>
  sections: Record<string, BenchSection>
  /** Definitions that ran, for the table. */
  definitions: BenchDefinition[]
  /** True when some system that should have been measured failed. */
  failed: boolean
}

/** Figures keep 3 decimals: more is noise, and latest.json stays readable. */
function roundFigure (v: number | null): number | null {
  return v === null ? null : Math.round(v * 1000) / 1000
}

function checkTarget (value: number | null, target: Target): TargetResult {
  const met = value === null ? null : target.op === '>=' ? value >= target.value : value <= target.value
  return { ...target, met }
}

function errorMessage (err: unknown): string {
  return err instanceof Error ? `${(err as { code?: string }).code ?? err.name}: ${err.message}` : String(err)
}

async function withTimeout<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new BenchError('ERR_MEASURE_TIMEOUT', `${what} took over ${ms} ms`)) }, ms)
  })
  try {
    return await Promise.race([p, timeout])
  } finally {
    clearTimeout(timer)
  }
}

function stderrLog (line: string): void {
  process.stderr.write(line + '\n')
}

/** Runs one benchmark: start systems, alternate them over the rounds, close them, summarize. */
export async function runBench (def: BenchDefinition, options: CliOptions,
  log: (line: string) => void = stderrLog): Promise<{ section: BenchSection, failed: boolean }> {
  const ours = def.ours ?? 'voike'
  const repeats = options.repeats ?? (options.quick ? def.quickRepeats : def.repeats)
  const warmupRounds = def.warmupRounds ?? 0
  const timeoutMs = def.measureTimeoutMs ?? 180_000
  const systemNames = Object.keys(def.systems)
  const values = new Map<string, Map<string, Array<number | null>>>()
  const status: Record<string, string> = {}
  const errors: Record<string, string> = {}
  const sessions = new Map<string, Session>()
  const infos: Record<string, Record<string, unknown>> = {}

  for (const name of systemNames) {
    const per = new Map<string, Array<number | null>>()
    for (const m of def.systems[name]!.metrics) per.set(m, new Array<number | null>(repeats).fill(null))
    values.set(name, per)
  }

  try {
    for (const name of systemNames) {
      const spec = def.systems[name]!
      if (spec.start === undefined) { status[name] = spec.pending!; continue }
      log(`[${def.name}] starting ${name}`)
      try {
        sessions.set(name, await withTimeout(spec.start(options), timeoutMs, `${name} start`))
        status[name] = 'measured'
      } catch (err) {
        status[name] = 'failed'
        errors[name] = errorMessage(err)
        log(`[${def.name}] ${name} failed to start: ${errors[name]}`)
      }
    }
    for (let round = -warmupRounds; round < repeats; round++) {
      for (const name of systemNames) {
        const session = sessions.get(name)
        if (session === undefined) continue
        try {
          const got = await withTimeout(session.measure({ round, repeats, options }), timeoutMs, `${name} measure`)
          const per = values.get(name)!
          for (const [m, v] of Object.entries(got)) {
            const arr = per.get(m)
            if (arr === undefined) throw new BenchError('ERR_BAD_BENCH', `${name} reported undeclared metric ${m}`)
            if (round >= 0) arr[round] = Number.isFinite(v) ? v : null
          }
          log(`[${def.name}] ${round < 0 ? 'warm-up' : `round ${round + 1}/${repeats}`} ${name}: ` +
            Object.entries(got).map(([m, v]) => `${m}=${formatNumber(v)}`).join(' '))
        } catch (err) {
          status[name] = 'failed'
          errors[name] = errorMessage(err)
          log(`[${def.name}] ${name} failed: ${errors[name]}`)
          sessions.delete(name)
          infos[name] = session.info?.() ?? {}
          await session.close()
        }
      }
    }
  } finally {
    for (const [name, session] of sessions) {
      infos[name] = session.info?.() ?? {}
      await session.close()
    }
  }

  const get = (round: number) => (system: string, metric: string): number | null =>
    values.get(system)?.get(metric)?.[round] ?? null

  // Key order in latest.json: what it is, our status, figures (ours, peers, ratios, derived),
  // targets, then the detail (systems, per-round values, errors, settings).
  const figures: Record<string, number | null> = {}
  const perRound: Record<string, Array<number | null>> = {}
  for (const name of systemNames) {
    for (const [m, arr] of values.get(name)!) {
      const key = figureKey(name, m)
      figures[key] = roundFigure(medianOrNull(arr))
      perRound[key] = arr.map(roundFigure)
    }
  }
  const rounds = Array.from({ length: repeats }, (_, r) => r)
  const targets: Record<string, TargetResult> = {}
  for (const r of def.ratios ?? []) {
    const ratios = rounds.map((round) => {
      const a = get(round)(ours, r.metric)
      const b = get(round)(r.vs, r.metric)
      if (a === null || b === null) return null
      const num = r.invert === true ? b : a
      const den = r.invert === true ? a : b
      return den > 0 ? num / den : null
    })
    figures[r.key] = roundFigure(medianOrNull(ratios))
    perRound[r.key] = ratios.map(roundFigure)
    if (r.target !== undefined) targets[r.key] = checkTarget(figures[r.key]!, r.target)
  }
  for (const d of def.derived ?? []) {
    const derived = rounds.map((round) => d.compute(get(round)))
    figures[d.key] = roundFigure(medianOrNull(derived))
    perRound[d.key] = derived.map(roundFigure)
    if (d.target !== undefined) targets[d.key] = checkTarget(figures[d.key]!, d.target)
  }
  for (const [m, t] of Object.entries(def.targets ?? {})) {
    const key = figureKey(ours, m)
    targets[key] = checkTarget(figures[key] ?? null, t)
  }
  const systems: BenchSection['systems'] = {}
  for (const name of systemNames) {
    const info = infos[name]
    systems[name] = { label: def.systems[name]!.label, status: status[name]!, ...(info !== undefined && Object.keys(info).length > 0 ? { info } : {}) }
  }
  const section: BenchSection = {
    title: def.title,
    description: def.description,
    ...(def.systems[ours]!.pending !== undefined ? { [ours]: def.systems[ours]!.pending } : {}),
    ...figures,
    targets,
    systems,
    repeats: perRound,
    ...(Object.keys(errors).length > 0 ? { errors } : {}),
    config: { repeats, warmupRounds, ...(typeof def.config === 'function' ? def.config(options) : def.config ?? {}) }
  }
  return { section, failed: Object.keys(errors).length > 0 }
}

/** Runs the selected benchmarks in registration order. */
export async function runAll (options: CliOptions, meta: Record<string, unknown> = {}): Promise<BenchReport> {
  const names = registry.map((d) => d.name)
  for (const n of options.only ?? []) {
    if (!names.includes(n)) throw new BenchError('ERR_USAGE', `--only: no benchmark named ${n} (have ${names.join(', ')})`)
  }
  const selected = registry.filter((d) => options.only === null || options.only.includes(d.name))
  const t0 = performance.now()
  // Other work on the machine skews absolute figures (ratios less so): record how busy it was.
  const loadStart = os.loadavg()[0]!
  const report: BenchReport = { meta: {}, sections: {}, definitions: selected, failed: false }
  for (const def of selected) {
    const { section, failed } = await runBench(def, options)
    report.sections[def.name] = section
    report.failed ||= failed
  }
  report.meta = {
    generatedAt: new Date().toISOString(),
    quick: options.quick,
    only: options.only,
    durationMs: Math.round(performance.now() - t0),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    totalMemoryMb: Math.round(os.totalmem() / 2 ** 20),
    loadAverage1m: { start: roundFigure(loadStart), end: roundFigure(os.loadavg()[0]!) },
    ...meta
  }
  return report
}

/** The latest.json object: meta first, then one key per benchmark. */
export function reportJson (report: BenchReport): Record<string, unknown> {
  return { meta: report.meta, ...report.sections }
}

export async function writeReport (report: BenchReport, path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  await writeFile(path, JSON.stringify(reportJson(report), null, 2) + '\n')
}

// ---- table -------------------------------------------------------------------------------------

/** Compact number: 40532 → 40.5k, 145.3 → 145, 3.14159 → 3.14. */
export function formatNumber (v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—'
  const a = Math.abs(v)
  if (a >= 100_000) return `${(v / 1000).toFixed(0)}k`
  if (a >= 10_000) return `${(v / 1000).toFixed(1)}k`
  if (a >= 100) return v.toFixed(0)
  if (a >= 10) return v.toFixed(1)
  return v.toFixed(2)
}

function formatTarget (t: Target, unit: string): string {
  return `${t.op === '>=' ? '≥' : '≤'} ${t.value}${unit}`
}

function metText (t: TargetResult | undefined): string {
  if (t === undefined) return ''
  return t.met === null ? 'pending' : t.met ? 'yes' : 'NO'
}

/** Rows of the results table: figure, ours, peers, ratio, target, met?. */
export function tableRows (report: BenchReport): string[][] {
  const rows: string[][] = []
  for (const def of report.definitions) {
    const s = report.sections[def.name]!
    const ours = def.ours ?? 'voike'
    const value = (system: string, metric: string): string => {
      const spec = def.systems[system]!
      if (!spec.metrics.includes(metric)) return ''
      const v = s[figureKey(system, metric)] as number | null
      if (v === null && spec.pending !== undefined) return 'pending'
      if (v === null && s.systems[system]?.status === 'failed') return 'failed'
      return formatNumber(v)
    }
    for (const [m, spec] of Object.entries(def.metrics)) {
      const peers = Object.keys(def.systems).filter((n) => n !== ours && def.systems[n]!.metrics.includes(m))
        .map((n) => `${def.systems[n]!.label} ${value(n, m)}`)
      const ratios = (def.ratios ?? []).filter((r) => r.metric === m)
      const ratioText = ratios.map((r) => `×${formatNumber(s[r.key] as number | null)} ${r.invert === true ? 'speedup over' : 'vs'} ${def.systems[r.vs]!.label}`)
      const targets: string[] = []
      const met: string[] = []
      for (const r of ratios) {
        if (r.target === undefined) continue
        targets.push(`${formatTarget(r.target, '×')} ${def.systems[r.vs]!.label}`)
        met.push(metText(s.targets[r.key]))
      }
      const abs = def.targets?.[m]
      if (abs !== undefined) {
        targets.push(formatTarget(abs, ` ${spec.unit}`))
        met.push(metText(s.targets[figureKey(ours, m)]))
      }
      rows.push([`${def.title}: ${spec.label} (${spec.unit})`, value(ours, m), peers.join('; '),
        ratioText.join('; '), targets.join('; '), met.join('; ')])
    }
    for (const d of def.derived ?? []) {
      const v = s[d.key] as number | null
      const oursPending = def.systems[ours]!.pending !== undefined
      rows.push([`${def.title}: ${d.label} (${d.unit})`, v === null && oursPending ? 'pending' : formatNumber(v), '', '',
        d.target !== undefined ? formatTarget(d.target, d.unit === '×' ? '×' : ` ${d.unit}`) : '', metText(s.targets[d.key])])
    }
  }
  return rows
}

/** The results as a Markdown table (printed at the end and pasted into bench/README.md). */
export function formatTable (report: BenchReport): string {
  const head = ['figure', 'VOIKE', 'peers', 'ratio', 'target', 'met?']
  const rows = tableRows(report)
  const esc = (c: string): string => c.replace(/\|/g, '\\|')
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`]
  for (const r of rows) lines.push(`| ${r.map(esc).join(' | ')} |`)
  return lines.join('\n')
}
