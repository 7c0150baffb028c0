/**
 * The FLOW syntax tree. Positions are 1-based line:col of the first token of each node.
 * Literal values are JSON values; references name a step or an input plus a path into its value.
 */
import type { StringPart, TemplateRef } from './lexer.js'

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

export interface Pos { line: number, col: number }

/** `name.path.to.field`: `path[0]` is the step or input name. */
export interface Ref extends Pos { path: string[] }

export type InputType = 'file' | 'text' | 'json' | 'number' | 'bool' | 'table' | 'blob'
export const INPUT_TYPES: readonly InputType[] = ['file', 'text', 'json', 'number', 'bool', 'table', 'blob']

export interface InputDecl extends Pos { name: string, type: InputType, optional: boolean }

/** Row expressions (FILTER conditions, MAP fields). `field` paths read the current row; `ref` reads a step or input. */
export type Expr =
  | ({ kind: 'lit', value: Json } & Pos)
  | ({ kind: 'field', path: string[] } & Pos)
  | ({ kind: 'ref', ref: Ref } & Pos)
  | ({ kind: 'template', parts: StringPart[] } & Pos)
  | ({ kind: 'unary', op: '-' | 'NOT', arg: Expr } & Pos)
  | ({ kind: 'binary', op: BinaryOp, left: Expr, right: Expr } & Pos)
  | ({ kind: 'in', arg: Expr, list: Expr[], negate: boolean } & Pos)
  | ({ kind: 'isnull', arg: Expr, negate: boolean } & Pos)

export type BinaryOp = '+' | '-' | '*' | '/' | '%' | '==' | '!=' | '>' | '>=' | '<' | '<=' | 'AND' | 'OR'

/** `WITH { ... }` payload values: JSON-like literals with references and templates. */
export type Value =
  | ({ kind: 'lit', value: Json } & Pos)
  | ({ kind: 'ref', ref: Ref } & Pos)
  | ({ kind: 'template', parts: StringPart[] } & Pos)
  | ({ kind: 'object', entries: Array<[string, Value]> } & Pos)
  | ({ kind: 'array', items: Value[] } & Pos)

export type AggFn = 'count' | 'sum' | 'avg' | 'min' | 'max'
export interface Agg extends Pos { fn: AggFn, /** null for count(*) */ field: string[] | null, as: string }
export interface SortKey extends Pos { field: string[], desc: boolean }

/** A number literal or a reference that must hold a number at run time. */
export type Count = { kind: 'lit', value: number } | { kind: 'ref', ref: Ref }

export type OpBody =
  | { op: 'LOAD_CSV', source: Ref }
  | { op: 'LOAD_JSON', source: Ref }
  | { op: 'FILTER', source: Ref, where: Expr }
  | { op: 'MAP', source: Ref, fields: Array<{ name: string, expr: Expr } & Pos> }
  | { op: 'GROUP', source: Ref, by: string[][], aggs: Agg[] }
  | { op: 'SORT', source: Ref, keys: SortKey[], take: Count | null }
  | { op: 'TAKE', source: Ref, n: Count }
  | { op: 'JOIN', left: Ref, right: Ref, leftKey: string[], rightKey: string[], mode: 'inner' | 'left' }
  | { op: 'RUN_JOB', kind: string, with: Value | null }
  | { op: 'RUN_VASM', path: string, with: Value | null }
  | { op: 'CALL_FLOW', path: string, with: Value | null }
  | { op: 'OUTPUT', source: Ref, label: string }
  | { op: 'OUTPUT_TEXT', source: Ref | null, template: StringPart[] | null }
  | { op: 'RUN_AGENT', agent: string | null, with: Value | null }
  | { op: 'ASK_AI', prompt: Value | null, with: Value | null }

export type OpName = OpBody['op']

/** An op as written: its body plus where it is and the version pin, if any. */
export type OpNode = OpBody & Pos & { pin: { major: number, minor: number | null } & Pos | null }

export interface Step extends Pos { name: string, op: OpNode }

export interface Flow {
  name: string
  inputs: InputDecl[]
  steps: Step[]
}

export interface Warning extends Pos { code: 'WARN_UNUSED_STEP' | 'WARN_UNUSED_INPUT', message: string }

// ---- references ---------------------------------------------------------------------------------

function templateRefs (parts: readonly StringPart[], out: Ref[]): void {
  for (const p of parts) if (typeof p !== 'string') out.push(templateRef(p))
}

export function templateRef (t: TemplateRef): Ref { return { path: t.path, line: t.line, col: t.col } }

export function exprRefs (e: Expr, out: Ref[]): void {
  switch (e.kind) {
    case 'lit': case 'field': return
    case 'ref': out.push(e.ref); return
    case 'template': templateRefs(e.parts, out); return
    case 'unary': exprRefs(e.arg, out); return
    case 'binary': exprRefs(e.left, out); exprRefs(e.right, out); return
    case 'in': exprRefs(e.arg, out); for (const x of e.list) exprRefs(x, out); return
    case 'isnull': exprRefs(e.arg, out)
  }
}

export function valueRefs (v: Value | null, out: Ref[]): void {
  if (v === null) return
  switch (v.kind) {
    case 'lit': return
    case 'ref': out.push(v.ref); return
    case 'template': templateRefs(v.parts, out); return
    case 'object': for (const [, x] of v.entries) valueRefs(x, out); return
    case 'array': for (const x of v.items) valueRefs(x, out)
  }
}

function countRefs (c: Count | null, out: Ref[]): void { if (c !== null && c.kind === 'ref') out.push(c.ref) }

/** Every reference an op makes, in source order: the planner's edges come from here. */
export function opRefs (op: OpBody): Ref[] {
  const out: Ref[] = []
  switch (op.op) {
    case 'LOAD_CSV': case 'LOAD_JSON': case 'OUTPUT': out.push(op.source); break
    case 'FILTER': out.push(op.source); exprRefs(op.where, out); break
    case 'MAP': out.push(op.source); for (const f of op.fields) exprRefs(f.expr, out); break
    case 'GROUP': out.push(op.source); break
    case 'SORT': out.push(op.source); countRefs(op.take, out); break
    case 'TAKE': out.push(op.source); countRefs(op.n, out); break
    case 'JOIN': out.push(op.left, op.right); break
    case 'RUN_JOB': case 'RUN_VASM': case 'CALL_FLOW': case 'RUN_AGENT': valueRefs(op.with, out); break
    case 'ASK_AI': valueRefs(op.prompt, out); valueRefs(op.with, out); break
    case 'OUTPUT_TEXT': if (op.source !== null) out.push(op.source); if (op.template !== null) templateRefs(op.template, out); break
  }
  return out
}
