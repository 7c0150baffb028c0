/**
 * Text → Program. Grammar (vasm/README.md "Syntax"): each line is
 *   [label ':'] [MNEMONIC [operand ((',' | whitespace) operand)*]] [(';' | '#') comment]
 * Errors are VasmError(ERR_VASM_SYNTAX) naming `line:col` and what was expected.
 */
import { Buffer } from 'node:buffer'
import { syntaxError, quote, VasmErrorCode } from './errors.js'
import { opByName, REGISTER_COUNT, type OpInfo } from './isa.js'
import { LABEL_RE, bitLength, resolveProgramLimits, type Instr, type Label, type Program, type ProgramLimits, type SourcePos } from './program.js'

interface Token { text: string, col: number }

interface Fixup { instr: number, arg: number, name: string, line: number, col: number }

const REG_RE = /^[rR](0|[1-9][0-9]?)$/
const INT_RE = /^[+-]?[0-9]+$/
const WORD_CHAR = /[A-Za-z0-9_.$+-]/

/** Decimal digits that can still hold `bits` bits: a cheap bound before BigInt parses a huge literal. */
function maxDigitsFor (bits: number): number {
  return Math.ceil(bits * Math.log10(2)) + 1
}

class LineScanner {
  pos = 0
  constructor (readonly text: string, readonly line: number) {}

  skipSpace (): void {
    while (this.pos < this.text.length && (this.text[this.pos] === ' ' || this.text[this.pos] === '\t')) this.pos++
  }

  atEnd (): boolean { return this.pos >= this.text.length }

  peek (): string { return this.text[this.pos] }

  col (): number { return this.pos + 1 }

  word (): Token | undefined {
    const start = this.pos
    while (this.pos < this.text.length && WORD_CHAR.test(this.text[this.pos])) this.pos++
    if (this.pos === start) return undefined
    return { text: this.text.slice(start, this.pos), col: start + 1 }
  }

  unexpected (expected: string): never {
    throw syntaxError(this.line, this.col(), `expected ${expected}, found ${quote(this.text[this.pos])}`)
  }
}

/** Strips a comment (`;` or `#` to the end of the line). The syntax has no strings, so the first one starts it. */
function stripComment (line: string): string {
  for (let i = 0; i < line.length; i++) {
    if (line[i] === ';' || line[i] === '#') return line.slice(0, i)
  }
  return line
}

export function assemble (source: string, limitsIn?: Partial<ProgramLimits>): Program {
  const limits = resolveProgramLimits(limitsIn)
  const size = Buffer.byteLength(source, 'utf8')
  if (size > limits.maxSourceBytes) {
    throw syntaxError(1, 1, `program text is ${size} bytes, above the limit of ${limits.maxSourceBytes}`, VasmErrorCode.PROGRAM_TOO_LARGE)
  }
  const instrs: Instr[] = []
  const debug: SourcePos[] = []
  const labels: Label[] = []
  const labelAt = new Map<string, SourcePos>()
  const fixups: Fixup[] = []
  const lines = source.split('\n')
  for (let i = 0; i < lines.length; i++) {
    let text = stripComment(lines[i])
    if (text.endsWith('\r')) text = text.slice(0, -1)
    const s: LineScanner = new LineScanner(text, i + 1)
    s.skipSpace()
    if (s.atEnd()) continue
    let word = s.word()
    if (word === undefined) s.unexpected('a label or an instruction')
    if (!s.atEnd() && s.peek() === ':') {
      defineLabel(word, i + 1, instrs.length, limits, labels, labelAt)
      s.pos++
      s.skipSpace()
      if (s.atEnd()) continue
      word = s.word()
      if (word === undefined) s.unexpected('an instruction')
    }
    const info = opByName(word.text)
    if (info === undefined || !/^[A-Za-z_]+$/.test(word.text)) {
      throw syntaxError(i + 1, word.col, `unknown instruction ${quote(word.text)}`)
    }
    if (instrs.length >= limits.maxInstructions) {
      throw syntaxError(i + 1, word.col, `more than ${limits.maxInstructions} instructions`, VasmErrorCode.PROGRAM_TOO_LARGE)
    }
    const operands = readOperands(s, info)
    instrs.push({ op: info.code, args: operands.map((t, k) => parseOperand(info, k, t, i + 1, limits, instrs.length, fixups)) })
    debug.push({ line: i + 1, col: word.col })
  }
  const labelPc = new Map(labels.map(l => [l.name, l.pc]))
  for (const f of fixups) {
    const pc = labelPc.get(f.name)
    if (pc === undefined) throw syntaxError(f.line, f.col, `undefined label ${quote(f.name)}`)
    instrs[f.instr].args[f.arg] = pc
  }
  return { instrs, labels, debug }
}

function defineLabel (word: Token, line: number, pc: number, limits: ProgramLimits, labels: Label[], labelAt: Map<string, SourcePos>): void {
  if (!LABEL_RE.test(word.text)) {
    throw syntaxError(line, word.col, `expected a label name (a letter, _, . or $, then also digits), found ${quote(word.text)}`)
  }
  if (word.text.length > limits.maxLabelLength) {
    throw syntaxError(line, word.col, `label name longer than ${limits.maxLabelLength} characters`)
  }
  const first = labelAt.get(word.text)
  if (first !== undefined) {
    throw syntaxError(line, word.col, `duplicate label ${quote(word.text)} (first defined at ${first.line}:${first.col})`)
  }
  labelAt.set(word.text, { line, col: word.col })
  labels.push({ name: word.text, pc })
}

/** Reads the operands after a mnemonic: separated by a comma and/or whitespace, exactly as many as the opcode takes. */
function readOperands (s: LineScanner, info: OpInfo): Token[] {
  const out: Token[] = []
  const want = info.operands.length
  const shape = `${info.name} takes ${want} operand${want === 1 ? '' : 's'}${want > 0 ? ` (${info.names.join(', ')})` : ''}`
  for (;;) {
    const before = s.pos
    s.skipSpace()
    if (s.atEnd()) break
    if (out.length === 0 && s.pos === before) s.unexpected('whitespace after the instruction name')
    if (out.length > 0 && s.peek() === ',') {
      s.pos++
      s.skipSpace()
      if (s.atEnd()) throw syntaxError(s.line, s.col(), `expected an operand after ","`)
    } else if (out.length > 0 && s.pos === before) {
      s.unexpected(out.length >= want ? 'the end of the line' : '"," or whitespace between operands')
    }
    const tok = s.word()
    if (tok === undefined) s.unexpected(out.length < want ? `operand ${out.length + 1} of ${shape}` : 'the end of the line')
    if (out.length >= want) {
      throw syntaxError(s.line, tok.col, `expected the end of the line (${shape}), found ${quote(tok.text)}`)
    }
    out.push(tok)
  }
  if (out.length < want) {
    throw syntaxError(s.line, s.pos + 1, `expected operand ${out.length + 1} of ${shape}, found the end of the line`)
  }
  return out
}

function parseOperand (info: OpInfo, k: number, tok: Token, line: number, limits: ProgramLimits,
  instrIndex: number, fixups: Fixup[]): number | bigint {
  const kind = info.operands[k]
  if (kind === 'reg') {
    const m = REG_RE.exec(tok.text)
    if (m === null || Number(m[1]) >= REGISTER_COUNT) {
      throw syntaxError(line, tok.col, `expected a register r0-r15, found ${quote(tok.text)}`)
    }
    return Number(m[1])
  }
  if (kind === 'imm') {
    if (!INT_RE.test(tok.text)) throw syntaxError(line, tok.col, `expected a decimal integer, found ${quote(tok.text)}`)
    const digits = tok.text.replace(/^[+-]?0*/, '').length
    if (digits > maxDigitsFor(limits.maxConstBits)) {
      throw syntaxError(line, tok.col, `integer constant larger than ${limits.maxConstBits} bits`)
    }
    const v = BigInt(tok.text)
    if (bitLength(v) > limits.maxConstBits) throw syntaxError(line, tok.col, `integer constant larger than ${limits.maxConstBits} bits`)
    return v
  }
  if (!LABEL_RE.test(tok.text)) {
    throw syntaxError(line, tok.col, `expected a label name, found ${quote(tok.text)}`)
  }
  fixups.push({ instr: instrIndex, arg: k, name: tok.text, line, col: tok.col })
  return -1
}
