/**
 * FLOW tokenizer. Newlines are not tokens: each token records its line, column and whether it is
 * the first on its line (`bol`), which is all the line-structured parts of the grammar need (a step
 * body ends at the next token in column 1). Comments run from `#` or `//` to the end of the line.
 *
 * String literals are double-quoted with JSON-style escapes plus `\$`; a `${path}` inside a string
 * is a template reference, kept as a part with its own line:col so the planner can name it.
 */
import { FlowError } from './errors.js'

export type TokenKind = 'ident' | 'string' | 'number' | 'punct' | 'eof'

export interface TemplateRef {
  /** The reference's path: `['f', 'result', 'digits']`. */
  path: string[]
  line: number
  col: number
}

export type StringPart = string | TemplateRef

export interface Token {
  kind: TokenKind
  /** Source text (for strings: the decoded value; for eof: ''). */
  text: string
  line: number
  col: number
  /** Column just past the token's source text. */
  endCol: number
  /** First token on its line. */
  bol: boolean
  /** String tokens: literal pieces and `${}` references, in order. */
  parts?: StringPart[]
}

export interface LexResult {
  tokens: Token[]
  errors: FlowError[]
}

export interface LexLimits {
  /** Source larger than this is refused before lexing. */
  maxSourceBytes: number
  /** More tokens than this stop the lexer with ERR_LIMIT. */
  maxTokens: number
}

export const DEFAULT_LEX_LIMITS: LexLimits = { maxSourceBytes: 1 << 20, maxTokens: 200_000 }

const PUNCT2 = new Set(['==', '!=', '>=', '<='])
const PUNCT1 = new Set(['$', '>', '<', '=', '+', '-', '*', '/', '%', '(', ')', '[', ']', '{', '}', ',', ':', '.', '@'])
const IDENT_START = /[A-Za-z_]/
const IDENT_PART = /[A-Za-z0-9_]/
const DIGIT = /[0-9]/
const MAX_ERRORS = 50

export function lex (source: string, limits: LexLimits = DEFAULT_LEX_LIMITS): LexResult {
  const errors: FlowError[] = []
  const tokens: Token[] = []
  if (Buffer.byteLength(source, 'utf8') > limits.maxSourceBytes) {
    errors.push(new FlowError('ERR_LIMIT', `flow source is larger than maxSourceBytes (${limits.maxSourceBytes})`, { line: 1, col: 1 }))
    return { tokens: [{ kind: 'eof', text: '', line: 1, col: 1, endCol: 1, bol: true }], errors }
  }
  // A BOM at the start is not part of the program.
  let i = source.charCodeAt(0) === 0xfeff ? 1 : 0
  let line = 1
  let lineStart = i
  let bol = true
  const col = (): number => i - lineStart + 1
  const push = (t: Token): void => {
    tokens.push(t)
    bol = false
  }
  while (i < source.length) {
    if (tokens.length >= limits.maxTokens) {
      errors.push(new FlowError('ERR_LIMIT', `flow has more than maxTokens (${limits.maxTokens}) tokens`, { line, col: col() }))
      break
    }
    if (errors.length >= MAX_ERRORS) break
    const c = source[i]!
    if (c === '\n') { i++; line++; lineStart = i; bol = true; continue }
    if (c === ' ' || c === '\t' || c === '\r') { i++; continue }
    if (c === '#' || (c === '/' && source[i + 1] === '/')) {
      while (i < source.length && source[i] !== '\n') i++
      continue
    }
    const startCol = col()
    if (c === '"') {
      const r = lexString(source, i, line, lineStart)
      if (r.error !== undefined) errors.push(r.error)
      i = r.end
      push({ kind: 'string', text: r.value, line, col: startCol, endCol: col(), bol, parts: r.parts })
      continue
    }
    if (DIGIT.test(c)) {
      let j = i
      while (j < source.length && DIGIT.test(source[j]!)) j++
      if (source[j] === '.' && DIGIT.test(source[j + 1] ?? '')) {
        j++
        while (j < source.length && DIGIT.test(source[j]!)) j++
      }
      if ((source[j] === 'e' || source[j] === 'E') && /[0-9+-]/.test(source[j + 1] ?? '')) {
        let k = j + 1
        if (source[k] === '+' || source[k] === '-') k++
        if (DIGIT.test(source[k] ?? '')) {
          while (k < source.length && DIGIT.test(source[k]!)) k++
          j = k
        }
      }
      const text = source.slice(i, j)
      i = j
      push({ kind: 'number', text, line, col: startCol, endCol: col(), bol })
      continue
    }
    if (IDENT_START.test(c)) {
      let j = i + 1
      while (j < source.length && IDENT_PART.test(source[j]!)) j++
      const text = source.slice(i, j)
      i = j
      push({ kind: 'ident', text, line, col: startCol, endCol: col(), bol })
      continue
    }
    const two = source.slice(i, i + 2)
    if (PUNCT2.has(two)) { i += 2; push({ kind: 'punct', text: two, line, col: startCol, endCol: col(), bol }); continue }
    if (PUNCT1.has(c)) { i++; push({ kind: 'punct', text: c, line, col: startCol, endCol: col(), bol }); continue }
    const hint = c === "'" ? 'strings use double quotes' : c === '!' ? 'use NOT or !=' : c === '&' || c === '|' ? 'use AND / OR' : undefined
    errors.push(new FlowError('ERR_LEX', `unexpected character ${JSON.stringify(c)}`, { line, col: startCol, text: c, hint }))
    i++
  }
  tokens.push({ kind: 'eof', text: '', line, col: col(), endCol: col(), bol: true })
  return { tokens, errors }
}

interface StringLex { value: string, parts: StringPart[], end: number, error?: FlowError }

const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', $: '$' }

/** Lexes the string starting at the `"` at `start`; strings end on their line. */
function lexString (src: string, start: number, line: number, lineStart: number): StringLex {
  const parts: StringPart[] = []
  let lit = ''
  let value = ''
  let i = start + 1
  const colAt = (k: number): number => k - lineStart + 1
  // After an error the rest of the line is skipped: its text was meant to be inside the string.
  const lineEnd = src.indexOf('\n', start) < 0 ? src.length : src.indexOf('\n', start)
  const fail = (k: number, detail: string, hint?: string): StringLex => {
    if (lit !== '') parts.push(lit)
    return { value, parts, end: lineEnd, error: new FlowError('ERR_LEX', detail, { line, col: colAt(k), text: src.slice(k, k + 1), hint }) }
  }
  while (i < src.length) {
    const c = src[i]!
    if (c === '"') {
      if (lit !== '') parts.push(lit)
      return { value, parts, end: i + 1 }
    }
    if (c === '\n') return fail(start, 'unterminated string', 'close the string with " on the same line')
    if (c === '\\') {
      const e = src[i + 1] ?? ''
      if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(src.slice(i + 2, i + 6))) {
        const ch = String.fromCharCode(parseInt(src.slice(i + 2, i + 6), 16))
        lit += ch; value += ch; i += 6; continue
      }
      const ch = ESCAPES[e]
      if (ch === undefined) return fail(i, `bad escape ${JSON.stringify('\\' + e)} in string`, 'escapes are \\" \\\\ \\n \\t \\r \\$ \\uXXXX')
      lit += ch; value += ch; i += 2; continue
    }
    if (c === '$' && src[i + 1] === '{') {
      const close = src.indexOf('}', i + 2)
      const nl = src.indexOf('\n', i + 2)
      if (close < 0 || (nl >= 0 && nl < close)) return fail(i, 'unterminated ${ in string', 'write ${step.path}, or \\${ for a literal')
      const inner = src.slice(i + 2, close)
      const trimmed = inner.trim()
      if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$/.test(trimmed)) {
        return fail(i + 2, `bad template reference ${JSON.stringify(inner)}`, 'a template holds a reference such as ${step.field}')
      }
      if (lit !== '') parts.push(lit)
      lit = ''
      parts.push({ path: trimmed.split('.'), line, col: colAt(i + 2 + inner.indexOf(trimmed)) })
      value += src.slice(i, close + 1)
      i = close + 1
      continue
    }
    lit += c; value += c; i++
  }
  return fail(start, 'unterminated string', 'close the string with "')
}
