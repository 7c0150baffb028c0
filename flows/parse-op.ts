/**
 * Parses one step body (the tokens under `STEP name =`) into an op. Throws the first FlowError;
 * the top-level parser catches it and goes on with the next step.
 */
import { FlowError, describeText } from './errors.js'
import type { Token } from './lexer.js'
import type { Agg, AggFn, Count, Expr, Json, OpBody, OpNode, Ref, SortKey, Value } from './ast.js'
import { resolveOp, spell, OP_WORDS } from './ops.js'

const AGG_FNS: readonly AggFn[] = ['count', 'sum', 'avg', 'min', 'max']
const UNSUPPORTED: Record<string, string> = {
  RUN_JOB: 'write RUN JOB "kind" WITH {...}',
  RUN_AGENT: 'write RUN AGENT "name"',
  CALL_FLOW: 'write CALL FLOW "path"'
}
const CMP = new Set(['==', '!=', '>', '>=', '<', '<='])

class BodyParser {
  i = 0
  depth = 0
  constructor (readonly toks: Token[], readonly endTok: Token, readonly maxDepth: number) {}

  peek (k = 0): Token { return this.toks[this.i + k] ?? this.endTok }
  next (): Token { const t = this.peek(); if (this.i < this.toks.length) this.i++; return t }
  atEnd (): boolean { return this.i >= this.toks.length }
  isKw (word: string, k = 0): boolean { const t = this.peek(k); return t.kind === 'ident' && t.text.toUpperCase() === word }
  isPunct (p: string, k = 0): boolean { const t = this.peek(k); return t.kind === 'punct' && t.text === p }

  fail (expected: string, hint?: string, t: Token = this.peek()): FlowError {
    const found = t === this.endTok ? 'end of step' : describeText(t.text)
    return new FlowError('ERR_SYNTAX', `expected ${expected}, found ${found}`, { line: t.line, col: t.col, text: t.text, hint })
  }

  expectKw (word: string, after: string, hint?: string): Token {
    if (!this.isKw(word)) throw this.fail(`${word} after ${after}`, hint)
    return this.next()
  }

  expectPunct (p: string, after: string, hint?: string): Token {
    if (!this.isPunct(p)) throw this.fail(`${p} after ${after}`, hint)
    return this.next()
  }

  ident (what: string): Token {
    const t = this.peek()
    if (t.kind !== 'ident') throw this.fail(what)
    return this.next()
  }

  string (what: string): Token {
    const t = this.peek()
    if (t.kind !== 'string') throw this.fail(what)
    return this.next()
  }

  /** `name(.seg)*`, segments identifiers or integers. */
  path (what: string): { path: string[], tok: Token } {
    const tok = this.ident(what)
    const path = [tok.text]
    while (this.isPunct('.')) {
      this.next()
      const s = this.peek()
      if ((s.kind !== 'ident' && !(s.kind === 'number' && /^[0-9]+$/.test(s.text)))) throw this.fail(`a field name after ${path.join('.')}.`)
      this.next()
      path.push(s.text)
    }
    return { path, tok }
  }

  ref (what: string): Ref {
    if (this.isPunct('$')) this.next()
    const { path, tok } = this.path(what)
    return { path, line: tok.line, col: tok.col }
  }

  nest<T> (t: Token, f: () => T): T {
    if (++this.depth > this.maxDepth) throw new FlowError('ERR_LIMIT', `nesting deeper than maxDepth (${this.maxDepth})`, { line: t.line, col: t.col, text: t.text })
    try { return f() } finally { this.depth-- }
  }

  pin (): OpNode['pin'] {
    if (!this.isPunct('@')) return null
    const at = this.next()
    const n = this.peek()
    const m = n.kind === 'number' ? /^([0-9]+)(?:\.([0-9]+))?$/.exec(n.text) : null
    if (m === null) throw this.fail('a version such as 1 or 1.0 after @')
    this.next()
    return { major: Number(m[1]), minor: m[2] === undefined ? null : Number(m[2]), line: at.line, col: at.col }
  }

  count (after: string): Count {
    if (this.isPunct('$')) return { kind: 'ref', ref: this.ref(`a reference after ${after} $`) }
    const t = this.peek()
    if (t.kind !== 'number' || !/^[0-9]+$/.test(t.text)) throw this.fail(`a whole number after ${after}`, 'TAKE 10, or TAKE $limit for an input')
    this.next()
    return { kind: 'lit', value: Number(t.text) }
  }

  // ---- ops --------------------------------------------------------------------------------------

  op (): OpNode {
    const t = this.peek()
    if (t.kind !== 'ident') throw this.fail('an op', `ops are ${OP_WORDS.join(', ')}`)
    this.next()
    const word = t.text.toUpperCase()
    const two = (second: string[], what: string): string => {
      const s = this.peek()
      const hit = second.find(w => this.isKw(w))
      if (hit === undefined) throw this.fail(`${second.join(' or ')} after ${word}`, what, s)
      this.next()
      return `${word}_${hit}`
    }
    let name: string
    switch (word) {
      case 'LOAD': name = two(['CSV', 'JSON'], 'LOAD CSV FROM ref or LOAD JSON FROM ref'); break
      case 'RUN': name = two(['JOB', 'VASM', 'AGENT'], 'RUN JOB "kind", RUN VASM "path" or RUN AGENT "name"'); break
      case 'CALL': name = two(['FLOW'], 'CALL FLOW "path" WITH {...}'); break
      case 'FILTER': case 'MAP': case 'GROUP': case 'SORT': case 'TAKE': case 'JOIN': case 'OUTPUT': case 'OUTPUT_TEXT': case 'ASK_AI': name = word; break
      default:
        throw new FlowError('ERR_UNKNOWN_OP', `unknown op ${describeText(t.text)}`, { line: t.line, col: t.col, text: t.text, hint: UNSUPPORTED[word] ?? `ops are ${OP_WORDS.join(', ')}` })
    }
    const pin = this.pin()
    const body = this.body(name as OpBody['op'])
    const node = { ...body, pin, line: t.line, col: t.col } as OpNode
    resolveOp(node.op, pin)
    return node
  }

  body (name: OpBody['op']): OpBody {
    const sp = spell(name)
    switch (name) {
      case 'LOAD_CSV': case 'LOAD_JSON':
        this.expectKw('FROM', sp, `${sp} FROM input_name`)
        return { op: name, source: this.ref(`a reference after ${sp} FROM`) }
      case 'FILTER': {
        const source = this.ref('a step or input name after FILTER')
        this.expectKw('WHERE', `FILTER ${source.path.join('.')}`)
        return { op: name, source, where: this.expr() }
      }
      case 'MAP': {
        const source = this.ref('a step or input name after MAP')
        if (!this.isKw('SET') && !this.isKw('WITH')) throw this.fail(`SET after MAP ${source.path.join('.')}`, 'MAP rows SET total = price * qty')
        this.next()
        const fields: Array<{ name: string, expr: Expr, line: number, col: number }> = []
        do {
          if (fields.length > 0) this.next()
          const f = this.ident('a field name to SET')
          this.expectPunct('=', `field ${f.text}`)
          fields.push({ name: f.text, expr: this.expr(), line: f.line, col: f.col })
        } while (this.isPunct(','))
        return { op: name, source, fields }
      }
      case 'GROUP': {
        const source = this.ref('a step or input name after GROUP')
        this.expectKw('BY', `GROUP ${source.path.join('.')}`)
        const by = [this.path('a field after BY').path]
        while (this.isPunct(',')) { this.next(); by.push(this.path('a field after ,').path) }
        const aggs: Agg[] = []
        while (this.isKw('AGG')) { this.next(); aggs.push(this.agg()) }
        return { op: name, source, by, aggs }
      }
      case 'SORT': {
        const source = this.ref('a step or input name after SORT')
        this.expectKw('BY', `SORT ${source.path.join('.')}`)
        const keys: SortKey[] = []
        do {
          if (keys.length > 0) this.next()
          const { path, tok } = this.path('a field to sort by')
          let desc = false
          if (this.isKw('DESC')) { this.next(); desc = true } else if (this.isKw('ASC')) this.next()
          keys.push({ field: path, desc, line: tok.line, col: tok.col })
        } while (this.isPunct(','))
        let take: Count | null = null
        if (this.isKw('TAKE')) { this.next(); take = this.count('TAKE') }
        return { op: name, source, keys, take }
      }
      case 'TAKE': {
        const n = this.count('TAKE')
        this.expectKw('FROM', 'TAKE n', 'TAKE 10 FROM rows')
        return { op: name, source: this.ref('a reference after TAKE n FROM'), n }
      }
      case 'JOIN': {
        const left = this.ref('a step or input name after JOIN')
        this.expectKw('WITH', `JOIN ${left.path.join('.')}`, 'JOIN a WITH b ON key')
        const right = this.ref('a step or input name after WITH')
        this.expectKw('ON', `JOIN ${left.path.join('.')} WITH ${right.path.join('.')}`, 'JOIN a WITH b ON key')
        const leftKey = this.path('a key field after ON').path
        let rightKey = leftKey
        if (this.isPunct('=') || this.isPunct('==')) { this.next(); rightKey = this.path('a key field of the right table after =').path }
        let mode: 'inner' | 'left' = 'inner'
        if (this.isKw('LEFT')) { this.next(); mode = 'left' } else if (this.isKw('INNER')) this.next()
        return { op: name, left, right, leftKey, rightKey, mode }
      }
      case 'RUN_JOB': case 'RUN_VASM': case 'CALL_FLOW': {
        const what = name === 'RUN_JOB' ? 'a job kind as a string' : 'a path as a string'
        const s = this.string(`${what} after ${sp}`)
        if (s.parts?.some(p => typeof p !== 'string') === true) throw new FlowError('ERR_SYNTAX', `${sp} takes a literal string, not a template`, { line: s.line, col: s.col, text: s.text })
        const w = this.withPayload(sp)
        return name === 'RUN_JOB' ? { op: name, kind: s.text, with: w } : { op: name, path: s.text, with: w }
      }
      case 'RUN_AGENT': {
        const agent = this.peek().kind === 'string' ? this.next().text : null
        return { op: name, agent, with: this.withPayload(sp) }
      }
      case 'ASK_AI': {
        const prompt = this.atEnd() || this.isKw('WITH') ? null : this.value()
        return { op: name, prompt, with: this.withPayload(sp) }
      }
      case 'OUTPUT': {
        const source = this.ref('a step or input name after OUTPUT')
        this.expectKw('AS', `OUTPUT ${source.path.join('.')}`, `OUTPUT ${source.path.join('.')} AS "label"`)
        const label = this.string('a label string after AS')
        if (label.parts?.some(p => typeof p !== 'string') === true) throw new FlowError('ERR_SYNTAX', 'an OUTPUT label is a literal string, not a template', { line: label.line, col: label.col, text: label.text })
        return { op: name, source, label: label.text }
      }
      case 'OUTPUT_TEXT': {
        const t = this.peek()
        if (t.kind === 'string') { this.next(); return { op: name, source: null, template: t.parts ?? [] } }
        if (t.kind === 'ident' || this.isPunct('$')) return { op: name, source: this.ref('a reference'), template: null }
        throw this.fail('a reference or a string after OUTPUT_TEXT', 'OUTPUT_TEXT step.field, or OUTPUT_TEXT "n = ${f.result.n}"')
      }
    }
  }

  agg (): Agg {
    const t = this.peek()
    let fn: AggFn = 'sum'
    let field: string[] | null
    if (t.kind === 'ident' && this.isPunct('(', 1)) {
      const f = t.text.toLowerCase() as AggFn
      if (!AGG_FNS.includes(f)) throw new FlowError('ERR_SYNTAX', `unknown aggregate ${describeText(t.text)}`, { line: t.line, col: t.col, text: t.text, hint: 'aggregates are count(*), count(f), sum, avg, min, max' })
      fn = f
      this.next(); this.next()
      if (this.isPunct('*')) {
        if (fn !== 'count') throw this.fail(`a field inside ${fn}( )`, 'only count takes *')
        this.next()
        field = null
      } else {
        field = this.path(`a field inside ${fn}( )`).path
      }
      this.expectPunct(')', `${fn}(${field === null ? '*' : field.join('.')}`)
    } else {
      field = this.path('an aggregate after AGG', ).path
    }
    this.expectKw('AS', `AGG ${fn}(${field === null ? '*' : field.join('.')})`, 'AGG sum(amount) AS total')
    const as = this.ident('a result name after AS')
    return { fn, field, as: as.text, line: t.line, col: t.col }
  }

  withPayload (sp: string): Value | null {
    if (!this.isKw('WITH')) return null
    this.next()
    if (!this.isPunct('{')) throw this.fail(`{ after ${sp} ... WITH`, 'WITH { key: value, ... }')
    return this.value()
  }

  // ---- WITH values ------------------------------------------------------------------------------

  value (): Value {
    const t = this.peek()
    return this.nest(t, () => {
      if (this.isPunct('{')) {
        this.next()
        const entries: Array<[string, Value]> = []
        const keys = new Set<string>()
        while (!this.isPunct('}')) {
          const k = this.peek()
          if (k.kind !== 'ident' && k.kind !== 'string') throw this.fail('a key or }', 'WITH { n: 10, "name": input }')
          this.next()
          if (keys.has(k.text)) throw new FlowError('ERR_DUPLICATE', `key ${describeText(k.text)} appears twice`, { line: k.line, col: k.col, text: k.text })
          keys.add(k.text)
          this.expectPunct(':', `key ${describeText(k.text)}`)
          entries.push([k.text, this.value()])
          if (this.isPunct(',')) this.next()
          else if (!this.isPunct('}')) throw this.fail(', or }')
        }
        this.next()
        return { kind: 'object', entries, line: t.line, col: t.col }
      }
      if (this.isPunct('[')) {
        this.next()
        const items: Value[] = []
        while (!this.isPunct(']')) {
          items.push(this.value())
          if (this.isPunct(',')) this.next()
          else if (!this.isPunct(']')) throw this.fail(', or ]')
        }
        this.next()
        return { kind: 'array', items, line: t.line, col: t.col }
      }
      const lit = this.literal()
      if (lit !== undefined) return lit
      if (t.kind === 'ident' || this.isPunct('$')) return { kind: 'ref', ref: this.ref('a value'), line: t.line, col: t.col }
      throw this.fail('a value', 'a value is a number, "string", true, false, null, [..], {..} or a reference')
    })
  }

  /** number, -number, string (a template when it has ${}), true, false, null; else undefined. */
  literal (): (Value & Expr) | undefined {
    const t = this.peek()
    const at = { line: t.line, col: t.col }
    if (t.kind === 'number' || (this.isPunct('-') && this.peek(1).kind === 'number')) {
      const neg = t.kind !== 'number'
      if (neg) this.next()
      const n = this.next()
      const v = Number(n.text)
      if (!Number.isFinite(v)) throw new FlowError('ERR_SYNTAX', `number ${n.text} is out of range`, { line: n.line, col: n.col, text: n.text })
      return { kind: 'lit', value: neg ? -v : v, ...at }
    }
    if (t.kind === 'string') {
      this.next()
      const parts = t.parts ?? []
      if (parts.some(p => typeof p !== 'string')) return { kind: 'template', parts, ...at }
      return { kind: 'lit', value: t.text, ...at }
    }
    if (t.kind === 'ident') {
      const u = t.text.toLowerCase()
      const v: Json | undefined = u === 'true' ? true : u === 'false' ? false : u === 'null' ? null : undefined
      if (v !== undefined && !this.isPunct('.', 1)) { this.next(); return { kind: 'lit', value: v, ...at } }
    }
    return undefined
  }

  // ---- row expressions --------------------------------------------------------------------------

  expr (): Expr {
    return this.nest(this.peek(), () => {
      let left = this.and()
      while (this.isKw('OR')) { const t = this.next(); left = { kind: 'binary', op: 'OR', left, right: this.and(), line: t.line, col: t.col } }
      return left
    })
  }

  and (): Expr {
    let left = this.not()
    while (this.isKw('AND')) { const t = this.next(); left = { kind: 'binary', op: 'AND', left, right: this.not(), line: t.line, col: t.col } }
    return left
  }

  not (): Expr {
    if (this.isKw('NOT') && !this.isPunct('.', 1)) {
      const t = this.next()
      return this.nest(t, () => ({ kind: 'unary', op: 'NOT', arg: this.not(), line: t.line, col: t.col }))
    }
    return this.cmp()
  }

  cmp (): Expr {
    const left = this.add()
    const t = this.peek()
    if (t.kind === 'punct' && CMP.has(t.text)) {
      this.next()
      return { kind: 'binary', op: t.text as '==', left, right: this.add(), line: t.line, col: t.col }
    }
    if (t.kind === 'punct' && t.text === '=') throw this.fail('a comparison', 'compare with ==, = only appears in MAP ... SET')
    const negIn = this.isKw('NOT') && this.isKw('IN', 1)
    if (this.isKw('IN') || negIn) {
      if (negIn) this.next()
      this.next()
      if (!this.isPunct('[')) throw this.fail('[ after IN', 'status IN ["paid", "sent"]')
      this.next()
      const list: Expr[] = []
      while (!this.isPunct(']')) {
        list.push(this.expr())
        if (this.isPunct(',')) this.next()
        else if (!this.isPunct(']')) throw this.fail(', or ] in the IN list')
      }
      this.next()
      return { kind: 'in', arg: left, list, negate: negIn, line: t.line, col: t.col }
    }
    if (this.isKw('IS')) {
      this.next()
      let negate = false
      if (this.isKw('NOT')) { this.next(); negate = true }
      this.expectKw('NULL', negate ? 'IS NOT' : 'IS', 'x IS NULL or x IS NOT NULL')
      return { kind: 'isnull', arg: left, negate, line: t.line, col: t.col }
    }
    return left
  }

  add (): Expr {
    let left = this.mul()
    while (this.isPunct('+') || this.isPunct('-')) {
      const t = this.next()
      left = { kind: 'binary', op: t.text as '+', left, right: this.mul(), line: t.line, col: t.col }
    }
    return left
  }

  mul (): Expr {
    let left = this.unary()
    while (this.isPunct('*') || this.isPunct('/') || this.isPunct('%')) {
      const t = this.next()
      left = { kind: 'binary', op: t.text as '*', left, right: this.unary(), line: t.line, col: t.col }
    }
    return left
  }

  unary (): Expr {
    if (this.isPunct('-') && this.peek(1).kind !== 'number') {
      const t = this.next()
      return this.nest(t, () => ({ kind: 'unary', op: '-', arg: this.unary(), line: t.line, col: t.col }))
    }
    return this.primary()
  }

  primary (): Expr {
    const t = this.peek()
    const lit = this.literal()
    if (lit !== undefined) return lit
    if (this.isPunct('(')) {
      this.next()
      const e = this.expr()
      this.expectPunct(')', 'the expression', 'close the parenthesis')
      return e
    }
    if (this.isPunct('$')) { this.next(); const ref = this.ref('a step or input name after $'); return { kind: 'ref', ref, line: t.line, col: t.col } }
    if (t.kind === 'ident') { const { path } = this.path('a field'); return { kind: 'field', path, line: t.line, col: t.col } }
    throw this.fail('a value or a field name', 'e.g. amount > 10 AND status == "paid"')
  }
}

/** Parses one step body; `endTok` stands for its end (for "found end of step" messages). */
export function parseOpBody (toks: Token[], endTok: Token, _stepName: string, maxDepth: number): OpNode {
  const p = new BodyParser(toks, endTok, maxDepth)
  const op = p.op()
  if (!p.atEnd()) {
    const t = p.peek()
    const topWord = t.bol && (p.isKw('END') || p.isKw('STEP') || p.isKw('INPUTS'))
    const hint = topWord ? `${t.text.toUpperCase()} lines start in column 1` : 'one op per step; start another with STEP name ='
    throw new FlowError('ERR_SYNTAX', `unexpected ${describeText(t.text)} after the ${spell(op.op)} op`, { line: t.line, col: t.col, text: t.text, hint })
  }
  return op
}
