/**
 * The ops registry: each op's versioned contract (`NAME@MAJOR.MINOR`), what it takes and gives.
 * A flow may pin a major (`FILTER@1`) or a minimum minor (`FILTER@1.0`); the newest version with
 * that major serves it. Contracts are data only: the implementations live in the executor, which
 * asserts that it has one for every contract listed here.
 */
import { FlowError } from './errors.js'
import type { OpName } from './ast.js'

export interface OpParam { name: string, type: string, required: boolean, doc: string }

export interface OpContract {
  name: OpName
  major: number
  minor: number
  /** `NAME@MAJOR.MINOR` */
  version: string
  syntax: string
  summary: string
  /** What the op reads (references). */
  inputs: string[]
  /** What its value is. */
  output: string
  params: OpParam[]
  limits: string[]
  /** Consumes rows one batch at a time (can read a fused, streamed producer). */
  streamsIn: boolean
  /** Can hand its rows on as a stream instead of an array. */
  streamsOut: boolean
  /** Fails at plan time: the op needs a backend this runtime does not have. */
  needsAgent: boolean
}

type ContractInit = Omit<OpContract, 'version' | 'streamsIn' | 'streamsOut' | 'needsAgent'> & Partial<Pick<OpContract, 'streamsIn' | 'streamsOut' | 'needsAgent'>>

function c (init: ContractInit): OpContract {
  return { streamsIn: false, streamsOut: false, needsAgent: false, ...init, version: `${init.name}@${init.major}.${init.minor}` }
}

const p = (name: string, type: string, required: boolean, doc: string): OpParam => ({ name, type, required, doc })
const ROWS = 'maxRows rows per materialized table (ERR_LIMIT)'

export const CONTRACTS: readonly OpContract[] = [
  c({ name: 'LOAD_CSV', major: 1, minor: 0, syntax: 'LOAD CSV FROM ref', summary: 'Parse RFC 4180 CSV with a header row; numeric cells become numbers, empty cells null.', inputs: ['a file or text input, or a step holding text'], output: 'table (array of row objects keyed by header)', params: [p('from', 'ref', true, 'file path input, text, or bytes')], limits: ['maxFileBytes bytes read', ROWS], streamsOut: true }),
  c({ name: 'LOAD_JSON', major: 1, minor: 0, syntax: 'LOAD JSON FROM ref', summary: 'Parse a JSON document (file, text, or a JSON value passed through).', inputs: ['a file, text or json input'], output: 'the JSON value', params: [p('from', 'ref', true, 'file, text or json')], limits: ['maxFileBytes bytes read'] }),
  c({ name: 'FILTER', major: 1, minor: 0, syntax: 'FILTER ref WHERE cond', summary: 'Keep the rows for which cond is true (AND OR NOT, ( ), == != > >= < <=, IN [..], IS [NOT] NULL).', inputs: ['table'], output: 'table', params: [p('where', 'condition', true, 'row condition; bare names are row fields, $name reads a step or input')], limits: [ROWS], streamsIn: true, streamsOut: true }),
  c({ name: 'MAP', major: 1, minor: 0, syntax: 'MAP ref SET name = expr[, name = expr]...', summary: 'Add or replace computed fields, left to right (a later field sees earlier ones).', inputs: ['table'], output: 'table', params: [p('set', 'name = expr list', true, 'arithmetic + - * / % with ( ); + joins strings')], limits: [ROWS], streamsIn: true, streamsOut: true }),
  c({ name: 'GROUP', major: 1, minor: 0, syntax: 'GROUP ref BY field[, field]  (AGG fn(field) AS name)...', summary: 'One row per distinct key, in first-seen order, with the key fields and the aggregates.', inputs: ['table'], output: 'table', params: [p('by', 'field list', true, 'grouping fields'), p('agg', 'count(*) | count(f) | sum(f) | avg(f) | min(f) | max(f) | f (sum)', false, 'aggregates; null cells are skipped')], limits: ['maxGroups groups', ROWS], streamsIn: true }),
  c({ name: 'SORT', major: 1, minor: 0, syntax: 'SORT ref BY field [ASC|DESC][, ...]  [TAKE n]', summary: 'Stable sort on several keys; nulls last ascending; numbers before strings.', inputs: ['table'], output: 'table', params: [p('by', 'key list', true, 'fields with ASC (default) or DESC'), p('take', 'number or $ref', false, 'keep the first n')], limits: [ROWS] }),
  c({ name: 'TAKE', major: 1, minor: 0, syntax: 'TAKE n FROM ref', summary: 'The first n rows.', inputs: ['table'], output: 'table', params: [p('n', 'number or $ref', true, 'a non-negative integer')], limits: [ROWS], streamsIn: true, streamsOut: true }),
  c({ name: 'JOIN', major: 1, minor: 0, syntax: 'JOIN a WITH b ON key [= bkey] [INNER|LEFT]', summary: 'Rows of a merged with the matching rows of b on equal keys (INNER by default; LEFT keeps unmatched a rows with b fields null). b fields that clash with a fields are renamed b_field.', inputs: ['table a', 'table b'], output: 'table', params: [p('on', 'field [= field]', true, 'key in a, and in b if named differently'), p('mode', 'INNER | LEFT', false, 'default INNER')], limits: [ROWS + ' (the joined table too)'] }),
  c({ name: 'RUN_JOB', major: 1, minor: 0, syntax: 'RUN JOB "kind" [WITH {...}]', summary: 'Submit a grid job and wait for it; cancelling the run cancels the job.', inputs: ['references inside WITH'], output: 'the finished job object (id, kind, status, result, segments, ...)', params: [p('kind', 'string', true, 'job kind, e.g. "fib"'), p('with', 'object', false, 'job parameters')], limits: ['jobTimeoutMs per job'] }),
  c({ name: 'RUN_VASM', major: 1, minor: 0, syntax: 'RUN VASM "path" [WITH { args, fuel, range, segments, reduce }]', summary: 'Run a VASM program as a grid job of kind "vasm"; the program is read from path.', inputs: ['references inside WITH'], output: 'the finished job object; result is {value, fuelUsed}', params: [p('path', 'string', true, 'program file (relative to the flow file)'), p('args', 'array of integers', false, 'r1, r2, ...'), p('fuel', 'integer', false, 'fuel budget'), p('range', '"START:END" or [start, end]', false, 'map form'), p('segments', 'integer', false, 'map form segments'), p('reduce', 'sum|min|max|list|summod:M', false, 'map form reduce')], limits: ['maxProgramBytes', 'jobTimeoutMs per job'] }),
  c({ name: 'CALL_FLOW', major: 1, minor: 0, syntax: 'CALL FLOW "path" [WITH {...}]', summary: 'Run another flow with WITH as its inputs; the value is its outputs object.', inputs: ['references inside WITH'], output: 'the called flow\'s outputs', params: [p('path', 'string', true, 'flow file (relative to the calling flow)'), p('with', 'object', false, 'inputs by name')], limits: ['maxCallDepth nested calls'] }),
  c({ name: 'OUTPUT', major: 1, minor: 0, syntax: 'OUTPUT ref AS "label"', summary: 'Publish a value under a label in the run\'s outputs.', inputs: ['any value'], output: 'the value', params: [p('label', 'string', true, 'key in outputs')], limits: [] }),
  c({ name: 'OUTPUT_TEXT', major: 1, minor: 0, syntax: 'OUTPUT_TEXT ref | "text with ${ref.path}"', summary: 'Publish text under the step\'s name: a string as is, another value as JSON.', inputs: ['any value, or template references'], output: 'string', params: [p('text', 'ref or string template', true, '${ref.path} is replaced by the value')], limits: ['maxTextBytes'] }),
  c({ name: 'RUN_AGENT', major: 1, minor: 0, syntax: 'RUN AGENT "name" [WITH {...}]', summary: 'Needs an agent backend; none is configured, so plans using it are rejected.', inputs: [], output: 'n/a', params: [], limits: [], needsAgent: true }),
  c({ name: 'ASK_AI', major: 1, minor: 0, syntax: 'ASK_AI "prompt" [WITH {...}]', summary: 'Needs an agent backend; none is configured, so plans using it are rejected.', inputs: [], output: 'n/a', params: [], limits: [], needsAgent: true })
]

const BY_NAME = new Map<OpName, OpContract[]>()
for (const k of CONTRACTS) {
  const list = BY_NAME.get(k.name) ?? []
  list.push(k)
  BY_NAME.set(k.name, list)
}

/** Every op contract, for `/flow/ops`. */
export function listOps (): OpContract[] { return CONTRACTS.map(k => ({ ...k })) }

/** The source spelling of an op name: `LOAD_CSV` → `LOAD CSV`. */
export function spell (name: OpName): string {
  return name === 'OUTPUT_TEXT' || name === 'ASK_AI' ? name : name.replace('_', ' ')
}

/**
 * The contract serving `name` pinned at `major[.minor]` (newest when unpinned). Throws
 * ERR_OP_VERSION at the pin's position when no version fits.
 */
export function resolveOp (name: OpName, pin: { major: number, minor: number | null, line: number, col: number } | null): OpContract {
  const list = BY_NAME.get(name)
  if (list === undefined) throw new FlowError('ERR_UNKNOWN_OP', `unknown op ${name}`)
  const fit = list
    .filter(k => pin === null || (k.major === pin.major && (pin.minor === null || k.minor >= pin.minor)))
    .sort((a, b) => (b.major - a.major) || (b.minor - a.minor))[0]
  if (fit === undefined) {
    const have = list.map(k => k.version).join(', ')
    const want = pin === null ? '' : `@${pin.major}${pin.minor === null ? '' : '.' + pin.minor}`
    throw new FlowError('ERR_OP_VERSION', `no version of ${spell(name)} matches ${want}`, { line: pin?.line, col: pin?.col, text: want, hint: `available: ${have}` })
  }
  return fit
}

/** Op names as words, for hints. */
export const OP_WORDS = ['LOAD CSV', 'LOAD JSON', 'FILTER', 'MAP', 'GROUP', 'SORT', 'TAKE', 'JOIN', 'RUN JOB', 'RUN VASM', 'CALL FLOW', 'OUTPUT', 'OUTPUT_TEXT', 'RUN AGENT', 'ASK_AI']
