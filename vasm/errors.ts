/**
 * VASM errors. Every failure of the library is a VasmError with a stable `code` (for programs)
 * and a `message` whose shape is fixed by vasm/README.md ("Errors"):
 *
 *   syntax, verify:  `LINE:COL: what was expected, found "..."`
 *                    (`instruction N: ...` when a binary program carries no debug section)
 *   decode:          `byte OFFSET: ...`
 *   options:         `FIELD: ...`
 *   runtime:         `REASON at LINE:COL (INSTRUCTION), fuel used N`
 *
 * `kind` tells callers how to react: the CLI exits 1 for `runtime` and 2 for everything else.
 */

export type VasmErrorKind = 'syntax' | 'verify' | 'decode' | 'options' | 'runtime'

export const VasmErrorCode = {
  SYNTAX: 'ERR_VASM_SYNTAX',
  VERIFY: 'ERR_VASM_VERIFY',
  DECODE: 'ERR_VASM_DECODE',
  PROGRAM_TOO_LARGE: 'ERR_VASM_PROGRAM_TOO_LARGE',
  OPTIONS: 'ERR_VASM_OPTIONS',
  FUEL_EXHAUSTED: 'ERR_VASM_FUEL_EXHAUSTED',
  DIVISION_BY_ZERO: 'ERR_VASM_DIVISION_BY_ZERO',
  STACK_OVERFLOW: 'ERR_VASM_STACK_OVERFLOW',
  STACK_UNDERFLOW: 'ERR_VASM_STACK_UNDERFLOW',
  CALL_STACK_OVERFLOW: 'ERR_VASM_CALL_STACK_OVERFLOW',
  INTEGER_TOO_LARGE: 'ERR_VASM_INTEGER_TOO_LARGE'
} as const

export type VasmErrorCodeValue = typeof VasmErrorCode[keyof typeof VasmErrorCode]

/** The runtime errors, by code, with the words that start their message. */
export const RUNTIME_REASONS = {
  ERR_VASM_FUEL_EXHAUSTED: 'fuel exhausted',
  ERR_VASM_DIVISION_BY_ZERO: 'division by zero',
  ERR_VASM_STACK_OVERFLOW: 'stack overflow',
  ERR_VASM_STACK_UNDERFLOW: 'stack underflow',
  ERR_VASM_CALL_STACK_OVERFLOW: 'call stack overflow',
  ERR_VASM_INTEGER_TOO_LARGE: 'integer too large'
} as const

export type RuntimeCode = keyof typeof RUNTIME_REASONS

export interface VasmErrorFields {
  /** 1-based source line, when known. */
  line?: number
  /** 1-based source column (UTF-16 code units), when known. */
  col?: number
  /** Index of the instruction (0-based), for verify and runtime errors. */
  pc?: number
  /** Runtime errors: fuel consumed by the instructions that completed. */
  fuelUsed?: number
  /** Decode errors: byte offset in the binary. */
  offset?: number
  /** Options errors: the option at fault. */
  field?: string
  /** Runtime errors: the failing instruction in canonical text. */
  instruction?: string
}

export class VasmError extends Error {
  readonly code: VasmErrorCodeValue
  readonly kind: VasmErrorKind
  /** The message without its location prefix (what was wrong). */
  readonly detail: string
  readonly line: number | undefined
  readonly col: number | undefined
  readonly pc: number | undefined
  readonly fuelUsed: number | undefined
  readonly offset: number | undefined
  readonly field: string | undefined
  readonly instruction: string | undefined

  constructor (code: VasmErrorCodeValue, kind: VasmErrorKind, message: string, detail: string, fields: VasmErrorFields = {}) {
    super(message)
    this.name = 'VasmError'
    this.code = code
    this.kind = kind
    this.detail = detail
    this.line = fields.line
    this.col = fields.col
    this.pc = fields.pc
    this.fuelUsed = fields.fuelUsed
    this.offset = fields.offset
    this.field = fields.field
    this.instruction = fields.instruction
  }
}

/** `LINE:COL` or, without debug info, `instruction N`. */
export function locationText (line: number | undefined, col: number | undefined, pc: number | undefined): string {
  if (line !== undefined && col !== undefined) return `${line}:${col}`
  return `instruction ${pc ?? 0}`
}

export function syntaxError (line: number, col: number, detail: string, code: VasmErrorCodeValue = VasmErrorCode.SYNTAX): VasmError {
  return new VasmError(code, 'syntax', `${line}:${col}: ${detail}`, detail, { line, col })
}

export function verifyError (pc: number, line: number | undefined, col: number | undefined, detail: string,
  code: VasmErrorCodeValue = VasmErrorCode.VERIFY): VasmError {
  return new VasmError(code, 'verify', `${locationText(line, col, pc)}: ${detail}`, detail, { line, col, pc })
}

export function decodeError (offset: number, detail: string, code: VasmErrorCodeValue = VasmErrorCode.DECODE): VasmError {
  return new VasmError(code, 'decode', `byte ${offset}: ${detail}`, detail, { offset })
}

export function optionsError (field: string, detail: string): VasmError {
  return new VasmError(VasmErrorCode.OPTIONS, 'options', `${field}: ${detail}`, detail, { field })
}

export function runtimeError (code: RuntimeCode, pc: number, line: number | undefined, col: number | undefined,
  instruction: string, fuelUsed: number): VasmError {
  const reason = RUNTIME_REASONS[code]
  const message = `${reason} at ${locationText(line, col, pc)} (${instruction}), fuel used ${fuelUsed}`
  return new VasmError(code, 'runtime', message, reason, { line, col, pc, fuelUsed, instruction })
}

/** Quotes user text for a message: JSON string syntax, cut to 40 characters. */
export function quote (text: string): string {
  return JSON.stringify(text.length > 40 ? text.slice(0, 40) + '…' : text)
}
