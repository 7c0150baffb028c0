/**
 * Value helpers shared by the planner and the executor: canonical JSON and hashes, paths into
 * values, templates, and compiling row expressions to closures (FILTER and MAP run them per row).
 */
import { createHash } from 'node:crypto'
import { FlowError } from './errors.js'
import type { StringPart } from './lexer.js'
import type { Expr, Pos } from './ast.js'

export type Row = Record<string, unknown>

/** JSON with object keys sorted, so equal values give equal text (and equal hashes). */
export function canonical (v: unknown): string {
  if (v === null || v === undefined) return 'null'
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : 'null'
  if (typeof v === 'string' || typeof v === 'boolean') return JSON.stringify(v)
  if (typeof v === 'bigint') return JSON.stringify(v.toString())
  if (Array.isArray(v)) return '[' + v.map(canonical).join(',') + ']'
  if (v instanceof Uint8Array) return JSON.stringify({ $bytes: sha256(v) })
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>
    const toJSON = (o as { toJSON?: () => unknown }).toJSON
    if (typeof toJSON === 'function') return canonical(toJSON.call(o))
    return '{' + Object.keys(o).filter(k => o[k] !== undefined).sort().map(k => JSON.stringify(k) + ':' + canonical(o[k])).join(',') + '}'
  }
  return 'null'
}

export function sha256 (data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

/** `value.a.b.0`: null when any step is missing. */
export function getPath (value: unknown, path: readonly string[], from = 0): unknown {
  let v = value
  for (let i = from; i < path.length; i++) {
    if (v === null || v === undefined || typeof v !== 'object') return null
    v = (v as Record<string, unknown>)[path[i]!]
  }
  return v === undefined ? null : v
}

/** How a value reads inside text: strings as they are, anything else as JSON. */
export function toText (v: unknown): string {
  if (typeof v === 'string') return v
  if (v === undefined) return 'null'
  if (typeof v === 'object' && v !== null && typeof (v as { toText?: unknown }).toText === 'function') return (v as { toText: () => string }).toText()
  return JSON.stringify(v) ?? 'null'
}

export type Resolve = (path: readonly string[], at: Pos) => unknown

export function renderTemplate (parts: readonly StringPart[], resolve: Resolve): string {
  let s = ''
  for (const p of parts) s += typeof p === 'string' ? p : toText(resolve(p.path, p))
  return s
}

// ---- comparisons -------------------------------------------------------------------------------

function typeRank (v: unknown): number {
  if (typeof v === 'number') return 0
  if (typeof v === 'string') return 1
  if (typeof v === 'boolean') return 2
  return 3
}

/** Sort order: numbers, then strings, then booleans, then the rest (by canonical JSON). Nulls are handled by the caller. */
export function compareValues (a: unknown, b: unknown): number {
  const ra = typeRank(a)
  const rb = typeRank(b)
  if (ra !== rb) return ra - rb
  if (ra === 0) return (a as number) - (b as number)
  if (ra === 1) return (a as string) < (b as string) ? -1 : (a as string) > (b as string) ? 1 : 0
  if (ra === 2) return Number(a) - Number(b)
  const ca = canonical(a)
  const cb = canonical(b)
  return ca < cb ? -1 : ca > cb ? 1 : 0
}

export function equalValues (a: unknown, b: unknown): boolean {
  if (a === undefined) a = null
  if (b === undefined) b = null
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  return canonical(a) === canonical(b)
}

function truthy (v: unknown): boolean {
  return v !== null && v !== undefined && v !== false && v !== 0 && v !== ''
}

// ---- expressions -------------------------------------------------------------------------------

export type Compiled = (row: Row) => unknown

function runtime (at: Pos, detail: string): FlowError {
  return new FlowError('ERR_RUNTIME', detail, { line: at.line, col: at.col })
}

function num (v: unknown, at: Pos, op: string): number {
  if (typeof v !== 'number') throw runtime(at, `${op} needs numbers, got ${JSON.stringify(v) ?? 'null'}`)
  return v
}

/**
 * Compiles a row expression. Semantics (documented in README): missing fields are null;
 * arithmetic with a null gives null; `+` joins when either side is a string; comparisons of
 * different types (or with null) are false, except == and !=, which compare exactly;
 * AND/OR/NOT take truthiness (null is false). `resolve` reads `$ref`s and templates (constant per step).
 */
export function compileExpr (e: Expr, resolve: Resolve): Compiled {
  switch (e.kind) {
    case 'lit': { const v = e.value; return () => v }
    case 'field': {
      const path = e.path
      if (path.length === 1) { const k = path[0]!; return (row) => { const v = row[k]; return v === undefined ? null : v } }
      return (row) => getPath(row, path)
    }
    case 'ref': { const v = resolve(e.ref.path, e.ref); return () => v }
    case 'template': { const s = renderTemplate(e.parts, resolve); return () => s }
    case 'unary': {
      const a = compileExpr(e.arg, resolve)
      if (e.op === 'NOT') return (row) => !truthy(a(row))
      return (row) => { const v = a(row); return v === null ? null : -num(v, e, 'unary -') }
    }
    case 'in': {
      const a = compileExpr(e.arg, resolve)
      const list = e.list.map(x => compileExpr(x, resolve))
      const neg = e.negate
      return (row) => { const v = a(row); const hit = list.some(f => equalValues(v, f(row))); return neg ? !hit : hit }
    }
    case 'isnull': {
      const a = compileExpr(e.arg, resolve)
      return e.negate ? (row) => a(row) !== null : (row) => a(row) === null
    }
    case 'binary': return compileBinary(e, compileExpr(e.left, resolve), compileExpr(e.right, resolve))
  }
}

function compileBinary (e: Extract<Expr, { kind: 'binary' }>, l: Compiled, r: Compiled): Compiled {
  switch (e.op) {
    case 'AND': return (row) => truthy(l(row)) && truthy(r(row))
    case 'OR': return (row) => truthy(l(row)) || truthy(r(row))
    case '==': return (row) => equalValues(l(row), r(row))
    case '!=': return (row) => !equalValues(l(row), r(row))
    case '>': case '>=': case '<': case '<=': {
      const op = e.op
      return (row) => {
        const a = l(row)
        const b = r(row)
        if (a === null || b === null || typeof a !== typeof b || (typeof a !== 'number' && typeof a !== 'string')) return false
        const c = compareValues(a, b)
        return op === '>' ? c > 0 : op === '>=' ? c >= 0 : op === '<' ? c < 0 : c <= 0
      }
    }
    case '+': return (row) => {
      const a = l(row)
      const b = r(row)
      if (typeof a === 'string' || typeof b === 'string') return (a === null ? '' : toText(a)) + (b === null ? '' : toText(b))
      if (a === null || b === null) return null
      return num(a, e, '+') + num(b, e, '+')
    }
    case '-': case '*': case '/': case '%': {
      const op = e.op
      return (row) => {
        const a = l(row)
        const b = r(row)
        if (a === null || b === null) return null
        const x = num(a, e, op)
        const y = num(b, e, op)
        if (op === '-') return x - y
        if (op === '*') return x * y
        if (y === 0) throw runtime(e, `division by zero (${op})`)
        return op === '/' ? x / y : x % y
      }
    }
  }
}
