/**
 * Errors of the FLOW library. Every error carries a `code` (stable, for programs), and where it
 * comes from source text, the `line:col`, the offending text and a hint (for people).
 */

export type FlowErrorCode =
  | 'ERR_SYNTAX' // tokens in the wrong place
  | 'ERR_LEX' // a character or literal that is not FLOW
  | 'ERR_UNKNOWN_OP' // an op name the registry does not know
  | 'ERR_OP_VERSION' // a pinned version the registry cannot serve
  | 'ERR_UNKNOWN_REF' // a reference to no step or input
  | 'ERR_CYCLE' // steps that depend on each other
  | 'ERR_DUPLICATE' // a step or input declared twice
  | 'ERR_NO_AGENT' // RUN AGENT / ASK_AI with no agent backend
  | 'ERR_LIMIT' // a configured limit was exceeded
  | 'ERR_INPUT' // a missing or mistyped input value
  | 'ERR_RUNTIME' // an op failed on its data (type errors, bad CSV, ...)
  | 'ERR_JOB_FAILED' // a grid job ended failed or cancelled
  | 'ERR_CANCELLED' // the run was aborted
  | 'ERR_UPSTREAM' // a step did not run because a step it depends on failed
  | 'ERR_RESUME' // a run record cannot be resumed with this plan
  | 'ERR_BAD_OPTION' // an option passed to the library is invalid

export interface SourcePos {
  line: number
  col: number
}

export interface FlowErrorInit {
  line?: number
  col?: number
  /** The offending source text (a token), when there is one. */
  text?: string
  hint?: string
  /** The step this error belongs to (planner and executor errors). */
  step?: string
  cause?: unknown
}

export class FlowError extends Error {
  readonly code: FlowErrorCode
  readonly line: number | undefined
  readonly col: number | undefined
  readonly text: string | undefined
  readonly hint: string | undefined
  readonly step: string | undefined
  /** The message without the `line:col: ` prefix. */
  readonly detail: string

  constructor (code: FlowErrorCode, detail: string, init: FlowErrorInit = {}) {
    const where = init.line !== undefined ? `${init.line}:${init.col ?? 1}: ` : ''
    const hint = init.hint !== undefined ? ` (hint: ${init.hint})` : ''
    super(`${where}${detail}${hint}`, init.cause !== undefined ? { cause: init.cause } : undefined)
    this.name = 'FlowError'
    this.code = code
    this.line = init.line
    this.col = init.col
    this.text = init.text
    this.hint = init.hint
    this.step = init.step
    this.detail = detail
  }

  toJSON (): Record<string, unknown> {
    return { code: this.code, message: this.message, line: this.line ?? null, col: this.col ?? null, text: this.text ?? null, hint: this.hint ?? null, step: this.step ?? null }
  }
}

/** Several errors found in one pass (a parse or a plan). `errors` is sorted by position. */
export class FlowErrors extends Error {
  readonly code: FlowErrorCode
  readonly errors: readonly FlowError[]
  constructor (errors: readonly FlowError[]) {
    if (errors.length === 0) throw new TypeError('FlowErrors needs at least one error')
    const sorted = [...errors].sort((a, b) => ((a.line ?? 0) - (b.line ?? 0)) || ((a.col ?? 0) - (b.col ?? 0)))
    super(sorted.map(e => e.message).join('\n'))
    this.name = 'FlowErrors'
    this.errors = sorted
    this.code = sorted[0]!.code
  }

  /** The first error (by position): what a one-line report shows. */
  get first (): FlowError { return this.errors[0]! }
}

/** Quote a token for a message: `"sales"`, or `end of file`. */
export function describeText (text: string | undefined): string {
  if (text === undefined || text === '') return 'end of file'
  if (text === '\n') return 'end of line'
  return JSON.stringify(text.length > 40 ? text.slice(0, 40) + '…' : text)
}
