/**
 * Where pieces live: rendezvous (highest-random-weight) hashing. Pure functions, no I/O, no clock.
 *
 * Every member gets a weight for a key, w = first 48 bits of SHA-256(key ‖ 0x00 ‖ member); the
 * owners of the key are the members of highest weight. Every node computes the same owners from
 * the same member list, with no coordination, and a change of members moves only what it must:
 * removing a member changes only the keys it owned (each loses that one owner and gains one),
 * adding one changes only the keys it now owns (SHA-256 makes weights independent and uniform,
 * so load spreads evenly).
 *
 * Hosts: members on one machine fail together, so owners prefer distinct hosts. Each member gets
 * a *level*: its rank among the members of its host (0 = that host's heaviest for this key).
 * Owners are the first `count` members ordered by (level, weight desc): one per host first, then a
 * second per host, and so on. With H hosts and count ≤ H the owners are on distinct hosts; above
 * that the pieces per host differ by at most one (when the hosts have members enough). The
 * movement property above still holds (tested): a member's level depends only on heavier members
 * of its own host.
 *
 * `owners` never returns one member twice. A stripe wider than the member list (`placeStripe`)
 * wraps around the ranking, so pieces spread as evenly as possible until members join.
 */
import { createHash } from 'node:crypto'
import { invalidOption, isIntIn } from './errors.js'

/** Most owners asked for at once (a stripe is at most 256 pieces). */
export const MAX_OWNERS = 256
/** Longest key (chunk hashes are 64 characters). */
export const MAX_KEY_LENGTH = 1024
/** Most members considered (a mesh is far smaller; bounds the per-call work). */
export const MAX_MEMBERS = 4096

export interface OwnersOptions {
  /**
   * The host (machine) a member runs on; members sharing a host share failures. Undefined or an
   * empty string means "a host of its own".
   */
  hostOf?: (member: string) => string | undefined
}

/** The member's weight for `key`: a uniform 48-bit integer, the same on every node. */
export function weight (key: string, member: string): number {
  return createHash('sha256').update(key).update('\u0000').update(member).digest().readUIntBE(0, 6)
}

interface Ranked {
  member: string
  w: number
  level: number
}

/**
 * All members in placement order for `key`: (level, weight desc, member id). The first `count`
 * of this order are `owners(key, members, count)`.
 */
export function rank (key: string, members: ReadonlyArray<string>, options: OwnersOptions = {}): string[] {
  checkKey(key)
  checkMembers(members)
  const hostOf = options.hostOf
  if (hostOf !== undefined && typeof hostOf !== 'function') throw invalidOption('rendezvous', 'hostOf', 'must be a function')
  const ranked: Ranked[] = members.map((member) => ({ member, w: weight(key, member), level: 0 }))
  ranked.sort(byWeight)
  const perHost = new Map<string, number>()
  for (const r of ranked) {
    const host = hostOf?.(r.member)
    const h = typeof host === 'string' && host !== '' ? 'h:' + host : 'm:' + r.member
    const level = perHost.get(h) ?? 0
    r.level = level
    perHost.set(h, level + 1)
  }
  ranked.sort((a, b) => a.level - b.level || byWeight(a, b))
  return ranked.map((r) => r.member)
}

/**
 * The `count` owners of `key` (fewer when there are fewer members): distinct members, spread over
 * distinct hosts first, in placement order (owners[0] is the key's first choice).
 */
export function owners (key: string, members: ReadonlyArray<string>, count: number, options: OwnersOptions = {}): string[] {
  if (!isIntIn(count, 0, MAX_OWNERS)) throw invalidOption('rendezvous', 'count', `must be an integer in 0..${MAX_OWNERS}, got ${String(count)}`)
  return rank(key, members, options).slice(0, count)
}

/**
 * An owner for each of `pieces` pieces of one stripe: `owners(key, members, pieces)` when there
 * are members enough, otherwise the ranking repeated, so no member holds more than
 * ceil(pieces / members) pieces. Empty when there are no members.
 */
export function placeStripe (key: string, members: ReadonlyArray<string>, pieces: number, options: OwnersOptions = {}): string[] {
  if (!isIntIn(pieces, 0, MAX_OWNERS)) throw invalidOption('rendezvous', 'pieces', `must be an integer in 0..${MAX_OWNERS}, got ${String(pieces)}`)
  const order = rank(key, members, options)
  if (order.length === 0) return []
  const out: string[] = []
  for (let i = 0; i < pieces; i++) out.push(order[i % order.length])
  return out
}

/**
 * A new owner for each piece, moving as few pieces as possible: a piece whose current owner is
 * among `target` stays there; the others take the target owners left over, in target order.
 * `target` is a placement (from `owners` or `placeStripe`) of the same length as `current`; it
 * may repeat a member (a stripe wider than the mesh), and then a member keeps at most as many
 * pieces as it appears in `target`. Returns the owners, index by piece.
 */
export function assignPieces (current: ReadonlyArray<string | undefined>, target: ReadonlyArray<string>): string[] {
  if (current.length !== target.length) {
    throw invalidOption('assignPieces', 'target', `must have one owner per piece (${current.length}), got ${target.length}`)
  }
  const left = new Map<string, number>()
  for (const t of target) left.set(t, (left.get(t) ?? 0) + 1)
  const out: Array<string | undefined> = current.map((c) => {
    if (c === undefined) return undefined
    const n = left.get(c) ?? 0
    if (n === 0) return undefined
    left.set(c, n - 1)
    return c
  })
  let next = 0
  for (let i = 0; i < out.length; i++) {
    if (out[i] !== undefined) continue
    while ((left.get(target[next]) ?? 0) === 0) next++
    const t = target[next]
    left.set(t, (left.get(t) as number) - 1)
    out[i] = t
  }
  return out as string[]
}

function byWeight (a: Ranked, b: Ranked): number {
  if (a.w !== b.w) return b.w - a.w
  return a.member < b.member ? -1 : a.member > b.member ? 1 : 0
}

function checkKey (key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw invalidOption('rendezvous', 'key', `must be a string of 1..${MAX_KEY_LENGTH} characters, got ${typeof key === 'string' ? `${key.length} characters` : typeof key}`)
  }
}

function checkMembers (members: ReadonlyArray<string>): void {
  if (!Array.isArray(members)) throw invalidOption('rendezvous', 'members', 'must be an array of member ids')
  if (members.length > MAX_MEMBERS) throw invalidOption('rendezvous', 'members', `must hold at most ${MAX_MEMBERS} members, got ${members.length}`)
  const seen = new Set<string>()
  for (let i = 0; i < members.length; i++) {
    const m = members[i]
    if (typeof m !== 'string' || m === '') throw invalidOption('rendezvous', `members[${i}]`, 'must be a non-empty string')
    if (seen.has(m)) throw invalidOption('rendezvous', `members[${i}]`, `is a duplicate of "${m}"`)
    seen.add(m)
  }
}
