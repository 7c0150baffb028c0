/**
 * Recursive-descent parser for FLOW (grammar in flows/README.md). It never throws on bad source:
 * `parseFlow` returns every error it found (one per broken step or input line: it recovers at the
 * next top-level line) and warnings for unused steps and inputs. `parse` throws FlowErrors.
 */
import { FlowError, FlowErrors, describeText } from './errors.js'
import { lex, DEFAULT_LEX_LIMITS, type LexLimits, type Token } from './lexer.js'
import { INPUT_TYPES, opRefs, type Flow, type InputDecl, type InputType, type Step, type Warning } from './ast.js'
import { parseOpBody } from './parse-op.js'
import { OP_WORDS } from './ops.js'

export interface ParseLimits {
  lex: LexLimits
  /** Steps per flow. */
  maxSteps: number
  /** Declared inputs per flow. */
  maxInputs: number
  /** Nesting of expressions and WITH payloads. */
  maxDepth: number
}

export const DEFAULT_PARSE_LIMITS: ParseLimits = { lex: DEFAULT_LEX_LIMITS, maxSteps: 1000, maxInputs: 200, maxDepth: 64 }

export interface ParseResult {
  /** Null when there were errors. */
  flow: Flow | null
  errors: FlowError[]
  warnings: Warning[]
}

const MAX_ERRORS = 50

export function kw (t: Token, word: string): boolean {
  return t.kind === 'ident' && t.text.toUpperCase() === word
}

/** A top-level line start: where the parser re-synchronizes after an error. */
function isTopLevel (t: Token): boolean {
  return t.kind === 'eof' || (t.bol && t.col === 1 && (kw(t, 'STEP') || kw(t, 'END') || kw(t, 'INPUTS')))
}

class TopParser {
  i = 0
  readonly errors: FlowError[] = []
  private readonly seen = new Set<string>()
  constructor (readonly toks: Token[], readonly limits: ParseLimits) {}

  peek (k = 0): Token { return this.toks[Math.min(this.i + k, this.toks.length - 1)]! }
  next (): Token { const t = this.peek(); if (t.kind !== 'eof') this.i++; return t }

  report (e: FlowError): void {
    const key = `${e.line ?? 0}:${e.col ?? 0}`
    if (this.seen.has(key) || this.errors.length >= MAX_ERRORS) return
    this.seen.add(key)
    this.errors.push(e)
  }

  /** Like fail, but a token on a later line is reported as "end of line" just after `prev`. */
  failAfter (prev: Token, t: Token, expected: string, hint?: string): FlowError {
    if (!t.bol || t.kind === 'eof' && t.line === prev.line) return this.fail(t, expected, hint)
    return new FlowError('ERR_SYNTAX', `expected ${expected}, found end of line`, { line: prev.line, col: prev.endCol, text: '\n', hint })
  }

  fail (t: Token, expected: string, hint?: string): FlowError {
    return new FlowError('ERR_SYNTAX', `expected ${expected}, found ${describeText(t.text)}`, { line: t.line, col: t.col, text: t.text, hint })
  }

  /** Skip to the next top-level line (STEP, END, INPUTS in column 1) or the end. */
  sync (): void { while (!isTopLevel(this.peek())) this.i++ }
  /** Skip to the next line. */
  syncLine (): void { this.i++; while (!this.peek().bol) this.i++ }

  parse (): Flow | null {
    const name = this.header()
    const inputs: InputDecl[] = []
    const steps: Step[] = []
    const names = new Map<string, number>()
    let ended = false
    let endAt: Token | null = null
    while (!ended) {
      const t = this.peek()
      if (t.kind === 'eof') { this.report(this.fail(t, 'END FLOW', 'every flow ends with END FLOW')); break }
      if (kw(t, 'INPUTS') && t.bol) {
        this.next()
        if (inputs.length > 0 || steps.length > 0) this.report(new FlowError('ERR_SYNTAX', 'INPUTS must come once, before the first STEP', { line: t.line, col: t.col, text: t.text }))
        this.inputs(inputs, names)
      } else if (kw(t, 'STEP') && t.bol) {
        this.next()
        const s = this.step(t)
        if (s !== null) {
          if (steps.length >= this.limits.maxSteps) this.report(new FlowError('ERR_LIMIT', `flow has more than maxSteps (${this.limits.maxSteps}) steps`, { line: t.line, col: t.col }))
          else if (names.has(s.name)) this.report(new FlowError('ERR_DUPLICATE', `step ${s.name} is already declared on line ${names.get(s.name)!}`, { line: s.line, col: s.col, text: s.name }))
          else { names.set(s.name, s.line); steps.push(s) }
        }
      } else if (kw(t, 'END') && t.bol) {
        endAt = t
        this.next()
        const f = this.peek()
        if (!kw(f, 'FLOW')) { this.report(this.fail(f, 'FLOW after END')); this.sync(); continue }
        this.next()
        const after = this.peek()
        if (after.kind !== 'eof') this.report(this.fail(after, 'end of file after END FLOW'))
        ended = true
      } else {
        const op = t.kind === 'ident' && OP_WORDS.some(w => w.split(' ')[0] === t.text.toUpperCase())
        const hint = op ? 'a step body is indented under STEP name =' : t.col > 1 && t.bol ? 'is a step missing its STEP name = line?' : undefined
        this.report(this.fail(t, 'STEP, INPUTS or END FLOW', hint))
        this.i++
        this.sync()
      }
    }
    if (steps.length === 0 && this.errors.length === 0) this.report(new FlowError('ERR_SYNTAX', 'a flow needs at least one STEP', { line: (endAt ?? this.peek()).line, col: 1, hint: 'STEP name = on its own line, then the op indented' }))
    if (name === null || this.errors.length > 0) return null
    return { name, inputs, steps }
  }

  header (): string | null {
    const t = this.peek()
    if (!kw(t, 'FLOW')) {
      this.report(this.fail(t, 'FLOW "name" at the start of the file'))
      this.sync()
      return null
    }
    this.next()
    const n = this.peek()
    if (n.kind !== 'string' || n.bol) {
      this.report(this.failAfter(t, n, 'the flow\'s name as a string after FLOW', 'FLOW "My flow"'))
      if (!n.bol) this.syncLine()
      return null
    }
    this.next()
    if (!this.peek().bol) { this.report(this.fail(this.peek(), 'end of line after the flow\'s name')); this.syncLine() }
    return n.text
  }

  inputs (out: InputDecl[], names: Map<string, number>): void {
    if (!this.peek().bol) { this.report(this.fail(this.peek(), 'end of line after INPUTS')); this.syncLine() }
    for (;;) {
      const t = this.peek()
      if (kw(t, 'END') && kw(this.peek(1), 'INPUTS')) { this.next(); this.next(); break }
      if (t.kind === 'eof' || (t.bol && t.col === 1 && (kw(t, 'STEP') || kw(t, 'END')))) {
        this.report(this.fail(t, 'END INPUTS', 'close the INPUTS block with END INPUTS'))
        return
      }
      const d = this.inputDecl()
      if (d === null) { this.syncLine(); continue }
      if (out.length >= this.limits.maxInputs) this.report(new FlowError('ERR_LIMIT', `flow has more than maxInputs (${this.limits.maxInputs}) inputs`, { line: d.line, col: d.col }))
      else if (names.has(d.name)) this.report(new FlowError('ERR_DUPLICATE', `input ${d.name} is already declared on line ${names.get(d.name)!}`, { line: d.line, col: d.col, text: d.name }))
      else { names.set(d.name, d.line); out.push(d) }
    }
    if (!this.peek().bol) { this.report(this.fail(this.peek(), 'end of line after END INPUTS')); this.syncLine() }
  }

  inputDecl (): InputDecl | null {
    const ty = this.peek()
    if (ty.kind !== 'ident' || !(INPUT_TYPES as readonly string[]).includes(ty.text.toLowerCase())) {
      this.report(this.fail(ty, 'an input type', `types are ${INPUT_TYPES.join(' ')}; a line reads: number limit optional`))
      return null
    }
    this.next()
    const n = this.peek()
    if (n.kind !== 'ident' || n.bol) { this.report(this.failAfter(ty, n, `an input name after ${ty.text}`)); return null }
    this.next()
    let optional = false
    if (kw(this.peek(), 'OPTIONAL') && !this.peek().bol) { this.next(); optional = true }
    const after = this.peek()
    if (!after.bol) { this.report(this.fail(after, `end of line after input ${n.text}`, 'one input per line: type name [optional]')); return null }
    return { name: n.text, type: ty.text.toLowerCase() as InputType, optional, line: n.line, col: n.col }
  }

  step (stepTok: Token): Step | null {
    const n = this.peek()
    if (n.kind !== 'ident' || n.bol) { this.report(this.failAfter(stepTok, n, 'a step name after STEP', 'STEP name =')); if (!n.bol) this.i++; this.sync(); return null }
    this.next()
    const eq = this.peek()
    if (eq.kind !== 'punct' || eq.text !== '=') { this.report(this.failAfter(n, eq, `= after STEP ${n.text}`, `STEP ${n.text} =`)); if (!eq.bol) this.i++; this.sync(); return null }
    this.next()
    // The body: every token up to the next line in column 1 (outside brackets), or the next STEP/END.
    const start = this.i
    let depth = 0
    for (;;) {
      const t = this.peek()
      if (isTopLevel(t)) break
      if (t.bol && t.col === 1 && depth <= 0) break
      if (t.kind === 'punct') {
        if (t.text === '(' || t.text === '[' || t.text === '{') depth++
        else if (t.text === ')' || t.text === ']' || t.text === '}') depth--
      }
      this.i++
    }
    const body = this.toks.slice(start, this.i)
    const last = body.length > 0 ? body[body.length - 1]! : eq
    const endTok: Token = { kind: 'eof', text: '', line: last.line, col: last.endCol, endCol: last.endCol, bol: false }
    try {
      const op = parseOpBody(body, endTok, n.text, this.limits.maxDepth)
      return { name: n.text, line: stepTok.line, col: stepTok.col, op }
    } catch (err) {
      if (!(err instanceof FlowError)) throw err
      if (body.length === 0) {
        const nx = this.peek()
        const hint = nx.kind !== 'eof' && !isTopLevel(nx) ? 'a step body is indented under STEP name =' : undefined
        this.report(new FlowError('ERR_SYNTAX', `expected an op after STEP ${n.text} =, found ${describeText(nx.text)}`, { line: nx.line, col: nx.col, text: nx.text, hint }))
        if (!isTopLevel(nx)) { this.i++; this.sync() }
      } else {
        this.report(err)
      }
      return null
    }
  }
}

/** Parses FLOW source; never throws for bad source. */
export function parseFlow (source: string, limits: ParseLimits = DEFAULT_PARSE_LIMITS): ParseResult {
  const { tokens, errors: lexErrors } = lex(source, limits.lex)
  const p = new TopParser(tokens, limits)
  for (const e of lexErrors) p.report(e)
  const flow = p.parse()
  const errors = [...p.errors].sort((a, b) => ((a.line ?? 0) - (b.line ?? 0)) || ((a.col ?? 0) - (b.col ?? 0)))
  if (flow === null || errors.length > 0) return { flow: null, errors, warnings: [] }
  return { flow, errors: [], warnings: warnings(flow) }
}

/** Parses FLOW source or throws FlowErrors listing every error. */
export function parse (source: string, limits?: ParseLimits): { flow: Flow, warnings: Warning[] } {
  const r = parseFlow(source, limits)
  if (r.flow === null) throw new FlowErrors(r.errors)
  return { flow: r.flow, warnings: r.warnings }
}

/** Unused inputs, and steps whose value reaches nothing (neither referenced nor an output). */
export function warnings (flow: Flow): Warning[] {
  const used = new Set<string>()
  for (const s of flow.steps) for (const r of opRefs(s.op)) used.add(r.path[0]!)
  const out: Warning[] = []
  for (const i of flow.inputs) {
    if (!used.has(i.name)) out.push({ code: 'WARN_UNUSED_INPUT', message: `${i.line}:${i.col}: input ${i.name} is never used`, line: i.line, col: i.col })
  }
  for (const s of flow.steps) {
    if (s.op.op === 'OUTPUT' || s.op.op === 'OUTPUT_TEXT' || used.has(s.name)) continue
    out.push({ code: 'WARN_UNUSED_STEP', message: `${s.line}:${s.col}: step ${s.name} is never used and is not an output`, line: s.line, col: s.col })
  }
  return out
}
