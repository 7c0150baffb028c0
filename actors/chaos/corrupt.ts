/**
 * Corrupts a task's result so that it stays well-formed: the coordinator's `checkValue` still
 * accepts it, and only comparing it with another run (spot checks) can tell it is wrong. Kind-
 * agnostic, over the JSON shape:
 * - the first string of decimal digits found (keys in sorted order, depth first) gets one digit
 *   changed so its value is *smaller* and its length the same (a fib segment's `sumMod61` stays a
 *   residue below 2^61 − 1, i.e. a wrong but valid partial sum);
 * - else the first hex string gets its last digit changed;
 * - else the first finite number is changed by one (integers stay integers);
 * - else (nothing to change) the value is returned as is and `changed` is false.
 * Pure: the input is not modified.
 */
export function corruptValue (value: unknown): { value: unknown, changed: boolean } {
  for (const kind of ['decimal', 'hex', 'number'] as const) {
    const out = visit(value, kind, 0)
    if (out.changed) return out
  }
  return { value, changed: false }
}

const MAX_DEPTH = 32

function visit (v: unknown, kind: 'decimal' | 'hex' | 'number', depth: number): { value: unknown, changed: boolean } {
  if (depth > MAX_DEPTH) return { value: v, changed: false }
  if (typeof v === 'string') {
    const c = kind === 'decimal' ? smallerDecimal(v) : kind === 'hex' ? otherHex(v) : undefined
    return c === undefined ? { value: v, changed: false } : { value: c, changed: true }
  }
  if (typeof v === 'number' && kind === 'number' && Number.isFinite(v)) return { value: v > 0 ? v - 1 : v + 1, changed: true }
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const r = visit(v[i], kind, depth + 1)
      if (r.changed) { const copy = v.slice(); copy[i] = r.value; return { value: copy, changed: true } }
    }
    return { value: v, changed: false }
  }
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>
    for (const k of Object.keys(o).sort()) {
      const r = visit(o[k], kind, depth + 1)
      if (r.changed) return { value: { ...o, [k]: r.value }, changed: true }
    }
  }
  return { value: v, changed: false }
}

/** The same-length decimal just below it, one digit changed (no leading zero created); undefined when none. */
function smallerDecimal (s: string): string | undefined {
  if (!/^\d{1,400}$/.test(s)) return undefined
  // Lower the last digit that can go down without creating a leading zero.
  for (let i = s.length - 1; i >= 0; i--) {
    const d = s.charCodeAt(i) - 48
    if (d === 0 || (i === 0 && d === 1 && s.length > 1)) continue
    return s.slice(0, i) + String(d - 1) + s.slice(i + 1)
  }
  // "0", or "10…0": nothing smaller of the same length; "0" becomes "1" (still a residue).
  return s === '0' ? '1' : undefined
}

function otherHex (s: string): string | undefined {
  if (!/^[0-9a-f]{8,4096}$/.test(s)) return undefined
  const last = s[s.length - 1]
  return s.slice(0, -1) + (last === '0' ? '1' : '0')
}
