/**
 * Describing a value for an error message, in bounded time and space: never recursing into it
 * (a 100,000-level array must not overflow the stack; String([[…]]) and JSON.stringify do) and
 * never copying much of it (a 1 MiB string is cut).
 */

/** Characters of a string shown before it is cut. */
export const DESCRIBE_MAX_CHARS = 40

/** `-1`, `"abc"`, `an array of 3 items`, `an object with 2 keys`, `null`, … */
export function describeValue (v: unknown): string {
  switch (typeof v) {
    case 'string': return JSON.stringify(v.slice(0, DESCRIBE_MAX_CHARS)) + (v.length > DESCRIBE_MAX_CHARS ? '…' : '')
    case 'number': case 'boolean': case 'undefined': return String(v)
    case 'bigint': return `${v}n`.length > DESCRIBE_MAX_CHARS ? `a ${v.toString(2).length}-bit bigint` : `${v}n`
    case 'object':
      if (v === null) return 'null'
      if (Array.isArray(v)) return `an array of ${v.length} item${v.length === 1 ? '' : 's'}`
      return `an object with ${countKeys(v)}`
    default: return `a ${typeof v}`
  }
}

function countKeys (o: object): string {
  let n = 0
  // for…in stops early: no array of every key of a huge object.
  for (const k in o) { if (Object.hasOwn(o, k)) n++; if (n > 1000) return 'over 1000 keys' }
  return `${n} key${n === 1 ? '' : 's'}`
}
