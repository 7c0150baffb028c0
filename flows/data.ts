/**
 * The row ops: LOAD CSV (streamed through csv-parse), LOAD JSON, FILTER, MAP, GROUP, SORT, TAKE,
 * JOIN. A table is an array of row objects; a RowStream is the same rows handed on in batches,
 * used when the planner fuses a producer into its only consumer, so a large CSV never sits in
 * memory as a whole (LOAD CSV → FILTER → GROUP holds one batch and the groups).
 */
import { parse as csvParse } from 'csv-parse'
import { FlowError } from './errors.js'
import type { Agg, Pos, SortKey } from './ast.js'
import { canonical, compareValues, equalValues, getPath, type Compiled, type Row } from './values.js'

export interface RowStream {
  readonly kind: 'row-stream'
  /** May be iterated once. */
  batches: () => AsyncIterable<Row[]>
}

export function isRowStream (v: unknown): v is RowStream {
  return typeof v === 'object' && v !== null && (v as RowStream).kind === 'row-stream'
}

function runtime (at: Pos, detail: string, hint?: string): FlowError {
  return new FlowError('ERR_RUNTIME', detail, { line: at.line, col: at.col, hint })
}

const BATCH_ROWS = 4096

/** The rows of a table or stream, in batches; anything else is a clear error. */
export async function * batchesOf (v: unknown, at: Pos, what: string): AsyncIterable<Row[]> {
  if (isRowStream(v)) { yield * v.batches(); return }
  if (!Array.isArray(v)) throw runtime(at, `${what} is not a table (got ${describeType(v)})`, 'a table is an array of objects, e.g. from LOAD CSV')
  for (let i = 0; i < v.length; i += BATCH_ROWS) {
    const b = v.slice(i, i + BATCH_ROWS)
    for (const r of b) if (typeof r !== 'object' || r === null || Array.isArray(r)) throw runtime(at, `${what} has a row that is not an object: ${JSON.stringify(r)?.slice(0, 60) ?? 'null'}`)
    yield b
  }
}

export function describeType (v: unknown): string {
  if (v === null || v === undefined) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (isRowStream(v)) return 'a row stream'
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`
}

export async function materialize (v: unknown, at: Pos, what: string, maxRows: number): Promise<Row[]> {
  if (Array.isArray(v) && !isRowStream(v)) {
    if (v.length > maxRows) throw limitRows(at, maxRows)
    for await (const _ of batchesOf(v, at, what)) { /* validates rows */ }
    return v as Row[]
  }
  const out: Row[] = []
  for await (const b of batchesOf(v, at, what)) {
    if (out.length + b.length > maxRows) throw limitRows(at, maxRows)
    for (const r of b) out.push(r)
  }
  return out
}

function limitRows (at: Pos, maxRows: number): FlowError {
  return new FlowError('ERR_LIMIT', `table has more than maxRows (${maxRows}) rows`, { line: at.line, col: at.col, hint: 'filter or group earlier, or raise maxRows' })
}

export function stream (batches: () => AsyncIterable<Row[]>): RowStream {
  let used = false
  return {
    kind: 'row-stream',
    batches: () => {
      if (used) throw new FlowError('ERR_RUNTIME', 'a row stream was read twice (planner fused a step with two consumers)')
      used = true
      return batches()
    }
  }
}

// ---- CSV ---------------------------------------------------------------------------------------

const NUMERIC = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/

/**
 * A cell as a value: empty → null; a plain decimal (no leading zeros, so ids like 007 stay text;
 * integers only while exact) → number; anything else the text.
 */
export function csvCell (s: string): unknown {
  if (s === '') return null
  const c = s.charCodeAt(0)
  if ((c >= 48 && c <= 57) || c === 45) {
    if (NUMERIC.test(s)) {
      const n = Number(s)
      if (Number.isFinite(n) && (!Number.isInteger(n) || Number.isSafeInteger(n) || /[.eE]/.test(s))) return n
    }
  }
  return s
}

export interface CsvOptions {
  /** Where the CSV comes from, for messages ("sales.csv"). */
  name: string
  at: Pos
  /** A record longer than this is an error (csv-parse max_record_size). */
  maxRecordBytes: number
  signal?: AbortSignal
}

/** Parses CSV chunks into row batches: header row, RFC 4180 quoting, embedded newlines, BOM. */
export function csvRows (chunks: () => AsyncIterable<Uint8Array | string>, o: CsvOptions): RowStream {
  return stream(async function * () {
    const parser = csvParse({ bom: true, skip_empty_lines: true, max_record_size: o.maxRecordBytes })
    const records: string[][] = []
    let failure: unknown = null
    parser.on('data', (r: string[]) => { records.push(r) })
    parser.on('error', (e: unknown) => { failure = e })
    let header: string[] | null = null
    let maker: RowMaker | null = null
    const rows = function * (): Generator<Row[]> {
      if (failure !== null) throw csvError(o, failure)
      if (records.length === 0) return
      let recs = records.splice(0)
      if (header === null) {
        header = recs[0]!.map(h => h.trim())
        checkHeader(header, o)
        recs = recs.slice(1)
      }
      const make = maker ??= rowMaker(header)
      const batch: Row[] = new Array(recs.length)
      for (let i = 0; i < recs.length; i++) batch[i] = make(recs[i]!, csvCell)
      yield batch
    }
    try {
      for await (const chunk of chunks()) {
        o.signal?.throwIfAborted()
        parser.write(chunk)
        yield * rows()
      }
      await new Promise<void>((resolve) => { parser.once('end', resolve); parser.once('error', () => resolve()); parser.end() })
      yield * rows()
    } finally {
      parser.destroy()
    }
  })
}

type RowMaker = (rec: string[], cell: (s: string) => unknown) => Row

/**
 * Builds rows with one object literal per header: every row gets the same hidden class at once,
 * which is several times faster than adding fields one by one (LOAD CSV's hot loop). Field names are
 * emitted through JSON.stringify, so a header is only ever a string key, never code.
 */
function rowMaker (header: readonly string[]): RowMaker {
  // Computed keys define own properties, so even a `__proto__` column is just a field.
  const fields = header.map((h, j) => `[${JSON.stringify(h)}]: cell(r[${j}])`).join(', ')
  // eslint-disable-next-line no-new-func
  return new Function('r', 'cell', `return { ${fields} }`) as RowMaker
}

function checkHeader (h: string[], o: CsvOptions): void {
  const seen = new Set<string>()
  h.forEach((name, i) => {
    if (name === '') throw runtime(o.at, `${o.name}: header column ${i + 1} is empty`, 'the first row names the columns')
    if (seen.has(name)) throw runtime(o.at, `${o.name}: header names column ${JSON.stringify(name)} twice`)
    seen.add(name)
  })
}

function csvError (o: CsvOptions, e: unknown): FlowError {
  const err = e as { message?: string, lines?: number, code?: string }
  const where = err.lines !== undefined ? ` line ${err.lines}` : ''
  return runtime(o.at, `${o.name}${where}: ${err.message ?? String(e)}`, err.code === 'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH' ? 'every row needs as many cells as the header' : undefined)
}

// ---- row ops -----------------------------------------------------------------------------------

export function filterRows (src: unknown, at: Pos, what: string, cond: Compiled): RowStream {
  return stream(async function * () {
    for await (const b of batchesOf(src, at, what)) {
      const out: Row[] = []
      for (const r of b) if (truthyCond(cond(r))) out.push(r)
      if (out.length > 0) yield out
    }
  })
}

function truthyCond (v: unknown): boolean { return v !== null && v !== undefined && v !== false && v !== 0 && v !== '' }

export function mapRows (src: unknown, at: Pos, what: string, fields: Array<{ name: string, fn: Compiled }>): RowStream {
  return stream(async function * () {
    for await (const b of batchesOf(src, at, what)) {
      yield b.map(r => {
        const o: Row = { ...r }
        for (const f of fields) o[f.name] = f.fn(o)
        return o
      })
    }
  })
}

export function takeRows (src: unknown, at: Pos, what: string, n: number): RowStream {
  return stream(async function * () {
    let left = n
    if (left <= 0) return
    for await (const b of batchesOf(src, at, what)) {
      if (b.length >= left) { yield b.slice(0, left); return }
      left -= b.length
      yield b
    }
  })
}

interface AggState { count: number, sum: number, min: unknown, max: unknown }

export async function groupRows (src: unknown, at: Pos, what: string, by: string[][], aggs: Agg[], maxGroups: number): Promise<Row[]> {
  const groups = new Map<string, { keys: unknown[], states: AggState[] }>()
  const names = by.map(p => p.join('.'))
  // One plain field is the common case: key it without building an array per row. The prefixes
  // (s, n, [) keep strings, numbers and other values apart.
  const single = by.length === 1 && by[0]!.length === 1 ? by[0]![0]! : null
  for await (const b of batchesOf(src, at, what)) {
    for (const r of b) {
      let k: string
      let keys: unknown[] | null = null
      if (single !== null) {
        const v = nz(r[single])
        k = typeof v === 'string' ? 's' + v : typeof v === 'number' ? 'n' + String(v) : canonical(keys = [v])
      } else {
        keys = by.map(p => getPath(r, p))
        k = canonical(keys)
      }
      let g = groups.get(k)
      if (g === undefined) {
        keys ??= [nz(r[single!])]
        if (groups.size >= maxGroups) throw new FlowError('ERR_LIMIT', `GROUP has more than maxGroups (${maxGroups}) groups`, { line: at.line, col: at.col })
        g = { keys, states: aggs.map(() => ({ count: 0, sum: 0, min: null, max: null })) }
        groups.set(k, g)
      }
      for (let i = 0; i < aggs.length; i++) step(aggs[i]!, g.states[i]!, r)
    }
  }
  const out: Row[] = []
  for (const g of groups.values()) {
    const row: Row = {}
    names.forEach((n, i) => { row[n] = g.keys[i] })
    aggs.forEach((a, i) => { row[a.as] = finish(a, g.states[i]!) })
    out.push(row)
  }
  return out
}

function nz (v: unknown): unknown { return v === undefined ? null : v }

function step (a: Agg, s: AggState, r: Row): void {
  if (a.field === null) { s.count++; return }
  const v = a.field.length === 1 ? nz(r[a.field[0]!]) : getPath(r, a.field)
  if (v === null) return
  s.count++
  if (a.fn === 'sum' || a.fn === 'avg') {
    if (typeof v !== 'number') throw runtime(a, `${a.fn}(${a.field.join('.')}) needs numbers, got ${JSON.stringify(v)}`)
    s.sum += v
  } else if (a.fn === 'min' || a.fn === 'max') {
    if (s.min === null || compareValues(v, s.min) < 0) s.min = v
    if (s.max === null || compareValues(v, s.max) > 0) s.max = v
  }
}

function finish (a: Agg, s: AggState): unknown {
  switch (a.fn) {
    case 'count': return s.count
    case 'sum': return s.sum
    case 'avg': return s.count === 0 ? null : s.sum / s.count
    case 'min': return s.min
    case 'max': return s.max
  }
}

/** Stable multi-key sort; nulls last in both directions. */
export function sortRows (rows: Row[], keys: SortKey[]): Row[] {
  const get = keys.map(k => k.field.length === 1 ? (r: Row) => nz(r[k.field[0]!]) : (r: Row) => getPath(r, k.field))
  return rows.map((r, i) => ({ r, i, v: get.map(g => g(r)) })).sort((x, y) => {
    for (let j = 0; j < keys.length; j++) {
      const a = x.v[j]
      const b = y.v[j]
      if (a === null && b === null) continue
      if (a === null) return 1
      if (b === null) return -1
      const c = compareValues(a, b)
      if (c !== 0) return keys[j]!.desc ? -c : c
    }
    return x.i - y.i
  }).map(x => x.r)
}

/**
 * Rows of `left` merged with each matching row of `right` (equal keys; null keys never match),
 * in left order then right order. Right fields that clash with left ones (other than the key when
 * both keys have one name) are renamed `${rightName}_${field}`. LEFT keeps unmatched left rows
 * with every right field null.
 */
export function joinRows (left: Row[], right: Row[], o: { leftKey: string[], rightKey: string[], mode: 'inner' | 'left', rightName: string, at: Pos, maxRows: number }): Row[] {
  const index = new Map<string, Row[]>()
  const rightFields: string[] = []
  const seenField = new Set<string>()
  for (const r of right) {
    for (const f of Object.keys(r)) if (!seenField.has(f)) { seenField.add(f); rightFields.push(f) }
    const k = getPath(r, o.rightKey)
    if (k === null) continue
    const ck = canonical(k)
    const list = index.get(ck)
    if (list === undefined) index.set(ck, [r]); else list.push(r)
  }
  const sameKey = o.leftKey.length === 1 && o.rightKey.length === 1 && o.leftKey[0] === o.rightKey[0] ? o.leftKey[0]! : null
  const out: Row[] = []
  const merge = (l: Row, r: Row | null): Row => {
    const m: Row = { ...l }
    for (const f of rightFields) {
      if (f === sameKey) continue
      const name = Object.prototype.hasOwnProperty.call(l, f) ? `${o.rightName}_${f}` : f
      m[name] = r === null ? null : nz(r[f])
    }
    return m
  }
  for (const l of left) {
    const k = getPath(l, o.leftKey)
    const hits = k === null ? undefined : index.get(canonical(k))
    if (hits === undefined) {
      if (o.mode === 'left') out.push(merge(l, null))
    } else {
      for (const r of hits) out.push(merge(l, r))
    }
    if (out.length > o.maxRows) throw limitRows(o.at, o.maxRows)
  }
  return out
}

export { equalValues }
