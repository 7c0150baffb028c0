/**
 * A lint of the Prometheus text exposition format with the rules of `promtool check metrics`
 * (Prometheus 2.x promlint) plus this project's conventions. The metrics tests run `promtool`
 * when it is installed and this lint in any case, so a machine without Prometheus still checks:
 *
 * - every family has `# TYPE` (counter|gauge|histogram|summary|untyped) and a non-empty `# HELP`,
 *   once; no family is declared twice and no sample appears twice (same name and labels);
 * - names are `[a-zA-Z_][a-zA-Z0-9_]*` in snake_case (no colons: those are for recording
 *   rules); label names the same, not starting with `__`, not repeated in one sample;
 * - counters end in `_total`, nothing else does; only histograms and summaries have
 *   `_bucket`/`_count`/`_sum` series; `le` only on histogram buckets, `quantile` only on
 *   summaries; no type name inside a metric name (`_counter`, `_gauge`, ...);
 * - base units (seconds, bytes): no `_milliseconds`, `_ms`, `_kilobytes`, `_minutes`, ...;
 *   ratios end in `_ratio` (a name saying `utilization`, `ratio`, `fraction` or `percent`
 *   anywhere else is flagged);
 * - values parse; counters are not negative; a histogram's buckets are cumulative, end in
 *   `+Inf` equal to its `_count`, and it has a `_sum`.
 *
 * Pure text in, problems out: usable on any node's `/metrics`, no registry needed.
 */

export interface LintProblem {
  /** The family (or the sample name when no family could be found). */
  metric: string
  /** 1-based line of the text where the problem shows, 0 when it is about a whole family. */
  line: number
  message: string
}

type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped'
const TYPES: ReadonlySet<string> = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped'])

interface Family {
  name: string
  type: MetricType | undefined
  help: string | undefined
  line: number
}

interface Sample {
  name: string
  labels: Array<[string, string]>
  value: number
  line: number
}

/** Longest text linted: a scrape larger than this is a problem in itself. */
export const MAX_LINT_BYTES = 16 * 1024 * 1024

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/
/** promlint's non-base units, as name parts (`_ms_`, `_ms` at the end). */
const NON_BASE_UNITS: ReadonlyMap<string, string> = new Map([
  ['milliseconds', 'seconds'], ['millisecond', 'seconds'], ['ms', 'seconds'], ['microseconds', 'seconds'], ['us', 'seconds'],
  ['nanoseconds', 'seconds'], ['ns', 'seconds'], ['minutes', 'seconds'], ['minute', 'seconds'], ['hours', 'seconds'],
  ['hour', 'seconds'], ['days', 'seconds'], ['sec', 'seconds'], ['secs', 'seconds'], ['kilobytes', 'bytes'],
  ['megabytes', 'bytes'], ['gigabytes', 'bytes'], ['kb', 'bytes'], ['mb', 'bytes'], ['gb', 'bytes'], ['kib', 'bytes'],
  ['mib', 'bytes'], ['gib', 'bytes'], ['bits', 'bytes'], ['percent', 'ratio'], ['percentage', 'ratio'],
  // promlint's abbreviated units (name parts)
  ['s', 'seconds'], ['m', 'seconds'], ['h', 'seconds'], ['d', 'seconds'], ['b', 'bytes'], ['tb', 'bytes'], ['pb', 'bytes']
])
/** Words that make a metric a ratio: it must then end in `_ratio`. */
const RATIO_WORDS = ['utilization', 'utilisation', 'ratio', 'fraction', 'percent']
const TYPE_WORDS = ['counter', 'gauge', 'histogram', 'summary', 'untyped']

export function lintMetrics (text: string): LintProblem[] {
  const problems: LintProblem[] = []
  if (text.length > MAX_LINT_BYTES) return [{ metric: '', line: 0, message: `exposition of ${text.length} bytes exceeds ${MAX_LINT_BYTES}` }]
  const families = new Map<string, Family>()
  const samples: Sample[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    const no = i + 1
    if (line.trim() === '') continue
    if (line.startsWith('#')) { readComment(line, no, families, problems); continue }
    const s = parseSample(line, no, problems)
    if (s !== undefined) samples.push(s)
  }
  for (const f of families.values()) checkFamily(f, problems)
  checkSamples(samples, families, problems)
  return problems
}

/** The samples of an exposition (comments skipped, malformed lines dropped): for tests and tools. */
export function parseSamples (text: string): Array<{ name: string, labels: Record<string, string>, value: number }> {
  const out: Array<{ name: string, labels: Record<string, string>, value: number }> = []
  const ignored: LintProblem[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() === '' || lines[i].startsWith('#')) continue
    const s = parseSample(lines[i], i + 1, ignored)
    if (s !== undefined) out.push({ name: s.name, labels: Object.fromEntries(s.labels), value: s.value })
  }
  return out
}

/** One line per problem, for assertion messages. */
export function formatProblems (problems: readonly LintProblem[]): string {
  return problems.map(p => `${p.line > 0 ? `line ${p.line}: ` : ''}${p.metric} ${p.message}`).join('\n')
}

function readComment (line: string, no: number, families: Map<string, Family>, problems: LintProblem[]): void {
  const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s+(.*))?$/.exec(line)
  if (m === null) return // a plain comment
  const [, what, name, rest = ''] = m
  let f = families.get(name)
  if (f === undefined) {
    f = { name, type: undefined, help: undefined, line: no }
    families.set(name, f)
  }
  if (what === 'HELP') {
    if (f.help !== undefined) problems.push({ metric: name, line: no, message: 'HELP given twice (duplicate family?)' })
    f.help = rest
  } else {
    if (f.type !== undefined) problems.push({ metric: name, line: no, message: 'TYPE given twice (duplicate family?)' })
    if (!TYPES.has(rest.trim())) problems.push({ metric: name, line: no, message: `unknown TYPE ${JSON.stringify(rest)}` })
    else f.type = rest.trim() as MetricType
  }
}

function parseSample (line: string, no: number, problems: LintProblem[]): Sample | undefined {
  const m = /^([^\s{]+)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?\s*$/.exec(line)
  if (m === null) { problems.push({ metric: line.slice(0, 64), line: no, message: 'unparsable sample line' }); return undefined }
  const [, name, , labelText, valueText] = m
  const labels = labelText === undefined ? [] : parseLabels(labelText, name, no, problems)
  if (labels === undefined) return undefined
  const value = parseValue(valueText)
  if (value === undefined) { problems.push({ metric: name, line: no, message: `value ${JSON.stringify(valueText)} is not a number` }); return undefined }
  return { name, labels, value, line: no }
}

function parseValue (text: string): number | undefined {
  if (text === '+Inf' || text === 'Inf') return Infinity
  if (text === '-Inf') return -Infinity
  if (text === 'NaN') return NaN
  const v = Number(text)
  return text !== '' && !Number.isNaN(v) ? v : undefined
}

/** `a="x",b="y\"z"` → pairs; undefined (with a problem) when malformed. */
function parseLabels (text: string, metric: string, no: number, problems: LintProblem[]): Array<[string, string]> | undefined {
  const out: Array<[string, string]> = []
  let i = 0
  while (i < text.length) {
    const eq = text.indexOf('=', i)
    if (eq < 0 || text[eq + 1] !== '"') { problems.push({ metric, line: no, message: `malformed labels {${text}}` }); return undefined }
    const name = text.slice(i, eq).trim()
    let j = eq + 2
    let value = ''
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === '\\') { j++; value += text[j] === 'n' ? '\n' : text[j] } else value += text[j]
    }
    if (j >= text.length) { problems.push({ metric, line: no, message: `unterminated label value in {${text}}` }); return undefined }
    out.push([name, value])
    i = j + 1
    while (i < text.length && (text[i] === ',' || text[i] === ' ')) i++
  }
  return out
}

function checkFamily (f: Family, problems: LintProblem[]): void {
  const add = (message: string): void => { problems.push({ metric: f.name, line: f.line, message }) }
  if (f.type === undefined) add('no TYPE')
  if (f.help === undefined || f.help.trim() === '') add('no HELP text')
  checkName(f.name, add)
  if (f.type === 'counter' && !f.name.endsWith('_total')) add('counter metrics should have "_total" suffix')
  if (f.type !== undefined && f.type !== 'counter' && f.name.endsWith('_total')) add('non-counter metrics should not have "_total" suffix')
  if (f.type !== 'histogram' && f.type !== 'summary' && /_(bucket|count|sum)$/.test(f.name)) {
    add('non-histogram and non-summary metrics should not have "_count", "_sum" or "_bucket" suffix')
  }
  const parts = f.name.split('_')
  for (const word of TYPE_WORDS) if (parts.includes(word)) add(`metric name should not include type '${word}'`)
  for (const part of parts) {
    const base = NON_BASE_UNITS.get(part.toLowerCase())
    if (base !== undefined && base !== part) add(`use base unit "${base}" instead of "${part}"`)
  }
  if (!f.name.endsWith('_ratio') && RATIO_WORDS.some(w => parts.includes(w))) add('a ratio should end in "_ratio" (values 0…1)')
}

function checkName (name: string, add: (message: string) => void): void {
  if (!NAME_RE.test(name)) { add('invalid metric name'); return }
  if (name.includes(':')) add('metric names should not contain ":" (reserved for recording rules)')
  if (/[A-Z]/.test(name)) add('metric names should be written in snake_case, not camelCase')
}

/** The family a sample belongs to: its own name, or its histogram/summary base name. */
function familyOf (name: string, families: ReadonlyMap<string, Family>): { family: Family, suffix: string } | undefined {
  const own = families.get(name)
  if (own !== undefined) return { family: own, suffix: '' }
  const m = /^(.*)(_bucket|_count|_sum)$/.exec(name)
  if (m === null) return undefined
  const base = families.get(m[1])
  if (base === undefined || (base.type !== 'histogram' && base.type !== 'summary')) return undefined
  if (m[2] === '_bucket' && base.type !== 'histogram') return undefined
  return { family: base, suffix: m[2] }
}

interface HistogramSeries { buckets: Array<[number, number]>, count: number | undefined, sum: boolean, line: number }

function checkSamples (samples: readonly Sample[], families: ReadonlyMap<string, Family>, problems: LintProblem[]): void {
  const seen = new Set<string>()
  const histograms = new Map<string, HistogramSeries>()
  for (const s of samples) {
    const add = (message: string): void => { problems.push({ metric: s.name, line: s.line, message }) }
    const found = familyOf(s.name, families)
    if (found === undefined) { add('sample without a TYPE declaration'); continue }
    const { family, suffix } = found
    const names = new Set<string>()
    for (const [label] of s.labels) {
      if (!LABEL_RE.test(label)) add(`invalid label name "${label}"`)
      else if (label.startsWith('__')) add(`label name "${label}" is reserved (starts with "__")`)
      else if (/[A-Z]/.test(label)) add(`label names should be written in snake_case, not camelCase ("${label}")`)
      if (names.has(label)) add(`label "${label}" given twice`)
      names.add(label)
      if (label === 'le' && suffix !== '_bucket') add('label "le" is reserved for histogram buckets')
      if (label === 'quantile' && family.type !== 'summary') add('label "quantile" is reserved for summaries')
    }
    const key = `${s.name}{${[...s.labels].sort(([a], [b]) => a < b ? -1 : 1).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`
    if (seen.has(key)) add('duplicate sample (same name and labels)')
    seen.add(key)
    if (family.type === 'counter' && s.value < 0) add('counter value is negative')
    if (family.type === 'histogram') collectHistogram(s, family.name, suffix, histograms, add)
  }
  for (const [key, h] of histograms) checkHistogram(key, h, problems)
}

function collectHistogram (s: Sample, family: string, suffix: string, out: Map<string, HistogramSeries>, add: (message: string) => void): void {
  const rest = s.labels.filter(([k]) => k !== 'le').map(([k, v]) => `${k}=${JSON.stringify(v)}`).sort().join(',')
  const key = `${family}{${rest}}`
  let h = out.get(key)
  if (h === undefined) { h = { buckets: [], count: undefined, sum: false, line: s.line }; out.set(key, h) }
  if (suffix === '_bucket') {
    const le = s.labels.find(([k]) => k === 'le')?.[1]
    const bound = le === undefined ? undefined : parseValue(le)
    if (bound === undefined || Number.isNaN(bound)) add('histogram bucket without a numeric "le"')
    else h.buckets.push([bound, s.value])
  } else if (suffix === '_count') h.count = s.value
  else if (suffix === '_sum') h.sum = true
  else add('histogram sample without _bucket, _count or _sum suffix')
}

function checkHistogram (key: string, h: HistogramSeries, problems: LintProblem[]): void {
  const add = (message: string): void => { problems.push({ metric: key, line: h.line, message }) }
  const buckets = [...h.buckets].sort((a, b) => a[0] - b[0])
  for (let i = 1; i < buckets.length; i++) if (buckets[i][1] < buckets[i - 1][1]) add('histogram buckets are not cumulative')
  const inf = buckets.find(([le]) => le === Infinity)
  if (inf === undefined) add('histogram without a "+Inf" bucket')
  if (h.count === undefined) add('histogram without _count')
  else if (inf !== undefined && inf[1] !== h.count) add(`"+Inf" bucket (${inf[1]}) differs from _count (${h.count})`)
  if (!h.sum) add('histogram without _sum')
}
