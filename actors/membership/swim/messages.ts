/**
 * The wire shapes of the SWIM protocol: plain JSON-able objects (the node sends them as msgpack
 * actor messages), and the validator every incoming message passes before anything reads it.
 *
 * Keys are short because every heartbeat carries them: `t` type, `seq` sequence number, `to` the
 * member a ping is meant for, `u` piggybacked updates. An update is `{ k, id, inc, … }`: kind,
 * member id, incarnation; `alive` carries the member's `addr` and `meta`; `suspect` and `dead` carry
 * `from`, the member whose evidence it is (independent confirmations are counted by `from`).
 */

export type MemberState = 'alive' | 'suspect' | 'dead' | 'left'

export interface Update {
  k: MemberState
  id: string
  inc: number
  /** The member's address; always on `alive`, optional on the others (full-state syncs carry it). */
  addr?: string
  meta?: Record<string, unknown>
  /** Who suspected or declared (suspect, dead). */
  from?: string
}

export type SwimMessage =
  /** Direct probe or heartbeat: answer with `ack` of the same seq. `to` guards against a reused address. */
  | { t: 'ping', seq: number, to: string, u?: Update[] }
  | { t: 'ack', seq: number, u?: Update[] }
  /** Probe `to` (at `addr`) on my behalf and forward its ack with my `seq`. */
  | { t: 'ping-req', seq: number, to: string, addr: string, u?: Update[] }
  /** Updates only (leave announcements). */
  | { t: 'gossip', u: Update[] }
  /**
   * Full-state exchange (join and anti-entropy): `u` holds one update per member. A request
   * (`reply: false`) is answered with the receiver's own state; `join` marks the joiner's first sync.
   * Large states are cut into `parts`; each part merges on its own.
   */
  | { t: 'sync', join: boolean, reply: boolean, part: number, parts: number, u: Update[] }

export interface MessageLimits {
  maxUpdatesPerMessage: number
  maxMembers: number
  maxMetaBytes: number
  maxAddrLength: number
  isValidId: (id: string) => boolean
}

export type ParseResult = { ok: true, msg: SwimMessage } | { ok: false, reason: string }

/** Ids: non-empty strings of at most this many characters (the node injects a stricter check). */
export const MAX_ID_LENGTH = 256
/** Incarnations stay exact integers. */
const MAX_INCARNATION = Number.MAX_SAFE_INTEGER
/** Sequence numbers wrap below this. */
export const MAX_SEQ = 2 ** 31 - 1

export const defaultIsValidId = (id: string): boolean => id.length > 0 && id.length <= MAX_ID_LENGTH

const STATES = new Set<string>(['alive', 'suspect', 'dead', 'left'])

/** Thrown inside the parser only; turned into `{ ok: false, reason }`. */
class Reject {
  constructor (readonly reason: string) {}
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function seqOf (m: Record<string, unknown>): number {
  const s = m.seq
  if (typeof s !== 'number' || !Number.isInteger(s) || s < 0 || s > MAX_SEQ) throw new Reject('bad-seq')
  return s
}

function idOf (v: unknown, field: string, limits: MessageLimits): string {
  if (typeof v !== 'string' || !defaultIsValidId(v) || !limits.isValidId(v)) throw new Reject(`bad-${field}`)
  return v
}

function addrOf (v: unknown, limits: MessageLimits): string {
  if (typeof v !== 'string' || v.length > limits.maxAddrLength) throw new Reject('bad-addr')
  return v
}

/** Meta must be a plain JSON object of bounded size; it is copied so the sender's object is not kept. */
function metaOf (v: unknown, limits: MessageLimits): Record<string, unknown> {
  if (!isObject(v)) throw new Reject('bad-meta')
  let text: string
  try { text = JSON.stringify(v) } catch { throw new Reject('bad-meta') }
  if (Buffer.byteLength(text) > limits.maxMetaBytes) throw new Reject('meta-too-large')
  return JSON.parse(text) as Record<string, unknown>
}

function updateOf (v: unknown, limits: MessageLimits): Update {
  if (!isObject(v)) throw new Reject('bad-update')
  if (typeof v.k !== 'string' || !STATES.has(v.k)) throw new Reject('bad-update-kind')
  const k = v.k as MemberState
  const id = idOf(v.id, 'update-id', limits)
  const inc = v.inc
  if (typeof inc !== 'number' || !Number.isInteger(inc) || inc < 0 || inc > MAX_INCARNATION) throw new Reject('bad-incarnation')
  const u: Update = { k, id, inc }
  if (v.addr !== undefined) u.addr = addrOf(v.addr, limits)
  else if (k === 'alive') throw new Reject('bad-addr')
  if (v.meta !== undefined) u.meta = metaOf(v.meta, limits)
  if (v.from !== undefined) u.from = idOf(v.from, 'from', limits)
  else if (k === 'suspect' || k === 'dead') throw new Reject('bad-from')
  return u
}

function updatesOf (v: unknown, max: number, limits: MessageLimits, required: boolean): Update[] | undefined {
  if (v === undefined && !required) return undefined
  if (!Array.isArray(v)) throw new Reject('bad-updates')
  if (v.length > max) throw new Reject('too-many-updates')
  return v.map(x => updateOf(x, limits))
}

function parseOrThrow (value: unknown, limits: MessageLimits): SwimMessage {
  if (!isObject(value)) throw new Reject('not-an-object')
  const max = limits.maxUpdatesPerMessage
  switch (value.t) {
    case 'ping': {
      const u = updatesOf(value.u, max, limits, false)
      return { t: 'ping', seq: seqOf(value), to: idOf(value.to, 'to', limits), ...(u !== undefined ? { u } : {}) }
    }
    case 'ack': {
      const u = updatesOf(value.u, max, limits, false)
      return { t: 'ack', seq: seqOf(value), ...(u !== undefined ? { u } : {}) }
    }
    case 'ping-req': {
      const u = updatesOf(value.u, max, limits, false)
      return { t: 'ping-req', seq: seqOf(value), to: idOf(value.to, 'to', limits), addr: addrOf(value.addr, limits), ...(u !== undefined ? { u } : {}) }
    }
    case 'gossip':
      return { t: 'gossip', u: updatesOf(value.u, max, limits, true) as Update[] }
    case 'sync': {
      if (typeof value.join !== 'boolean' || typeof value.reply !== 'boolean') throw new Reject('bad-sync-flags')
      const parts = value.parts
      const part = value.part
      if (typeof parts !== 'number' || !Number.isInteger(parts) || parts < 1 || parts > limits.maxMembers) throw new Reject('bad-sync-parts')
      if (typeof part !== 'number' || !Number.isInteger(part) || part < 0 || part >= parts) throw new Reject('bad-sync-part')
      const u = updatesOf(value.u, limits.maxMembers, limits, true) as Update[]
      return { t: 'sync', join: value.join, reply: value.reply, part, parts, u }
    }
    default:
      throw new Reject('unknown-type')
  }
}

/**
 * Validates an incoming message and returns a clean copy (unknown fields dropped), or the reason
 * it was rejected. Never throws: the network is not trusted to send well-formed data.
 */
export function parseMessage (value: unknown, limits: MessageLimits): ParseResult {
  try {
    return { ok: true, msg: parseOrThrow(value, limits) }
  } catch (err) {
    if (err instanceof Reject) return { ok: false, reason: err.reason }
    // Anything else (a getter that throws, a cyclic structure) is garbage too.
    return { ok: false, reason: 'malformed' }
  }
}

/** Bytes an object takes as JSON: the budget unit (msgpack is about as large or smaller for these shapes). */
export function jsonBytes (v: unknown): number {
  return Buffer.byteLength(JSON.stringify(v))
}
