/**
 * Bounds on every API input, checked on the raw JSON text before anything parses or walks it
 * (issue 9, item 8): nesting depth and the number of values. JSON.parse itself copes with deep
 * nesting, but everything after it (a kind's validation, describing a bad value in an error,
 * JSON.stringify when the job is stored, msgpack on the mesh) may recurse, so a value nested
 * 100,000 levels deep would overflow the stack far from the API. The scan is one loop with no
 * recursion and names the field holding the offending value.
 */
import { GridError } from '../actors/scheduler/api.js'

/** Deepest nesting of arrays and objects in an API input. Job parameters are flat; FLOW payloads nest a little. */
export const MAX_JSON_DEPTH = 64
/** Most values (array items and object members) in one API input. */
export const MAX_JSON_VALUES = 100_000
/** Most object keys shown in a field path, and characters per key. */
const MAX_PATH_KEYS = 8
const MAX_KEY_CHARS = 64

export interface JsonBounds {
  /** Names the input itself (`body`, `params_json`) when the offending value has no key path. */
  field: string
  /** Default MAX_JSON_DEPTH. */
  maxDepth?: number
  /** Default MAX_JSON_VALUES. */
  maxValues?: number
}

const QUOTE = 0x22
const BACKSLASH = 0x5c

/**
 * Throws GridError ERR_INVALID_ARGUMENT when `text` nests deeper than maxDepth or holds more than
 * maxValues values. The field is the path of object keys to the value (`params.n.a`), stopping at
 * the first array; `field` when there is none. Malformed JSON is left to JSON.parse.
 */
export function checkJsonText (text: string, bounds: JsonBounds): void {
  const maxDepth = bounds.maxDepth ?? MAX_JSON_DEPTH
  const maxValues = bounds.maxValues ?? MAX_JSON_VALUES
  /** Per open container: whether it is an object, and its current key. */
  const isObject: boolean[] = []
  const keys: Array<string | undefined> = []
  let expectKey = false
  let values = 0
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i)
    if (ch === QUOTE) {
      const end = stringEnd(text, i)
      if (expectKey) { keys[keys.length - 1] = decodeKey(text.slice(i, end + 1)); expectKey = false }
      i = end
      continue
    }
    switch (ch) {
      case 0x7b: case 0x5b: // { [
        if (isObject.length + 1 > maxDepth) {
          throw tooDeep(pathOf(isObject, keys, bounds.field), `nested deeper than ${maxDepth} levels of arrays and objects`)
        }
        values++
        isObject.push(ch === 0x7b)
        keys.push(undefined)
        expectKey = ch === 0x7b
        break
      case 0x7d: case 0x5d: // } ]
        isObject.pop()
        keys.pop()
        expectKey = false
        break
      case 0x2c: // ,
        values++
        expectKey = isObject[isObject.length - 1] === true
        break
      default:
        continue
    }
    if (values > maxValues) throw tooDeep(pathOf(isObject, keys, bounds.field), `holds more than ${maxValues} values`)
  }
}

/** Index of the quote closing the string that opens at `start` (or the text's end). */
function stringEnd (text: string, start: number): number {
  let j = start + 1
  while (j < text.length) {
    const c = text.charCodeAt(j)
    if (c === BACKSLASH) j += 2
    else if (c === QUOTE) return j
    else j++
  }
  return text.length - 1
}

function decodeKey (token: string): string {
  let key: string
  try { key = JSON.parse(token) as string } catch { key = token.slice(1, -1) }
  return key.length > MAX_KEY_CHARS ? key.slice(0, MAX_KEY_CHARS) + '…' : key
}

/** The keys of the enclosing objects from the root, up to the first array. */
function pathOf (isObject: boolean[], keys: Array<string | undefined>, root: string): string {
  const path: string[] = []
  for (let d = 0; d < isObject.length && isObject[d] && path.length < MAX_PATH_KEYS; d++) {
    const k = keys[d]
    if (k === undefined) break
    path.push(k)
  }
  return path.length === 0 ? root : path.join('.')
}

function tooDeep (field: string, what: string): GridError {
  return new GridError('ERR_INVALID_ARGUMENT', `${field}: ${what}`, field)
}
