/**
 * The gossip queue: membership updates waiting to be piggybacked, each sent a bounded number of
 * times (memberlist's TransmitLimitedQueue).
 *
 * - One entry per member: a newer update about a member replaces the queued ones (it supersedes
 *   them), except that suspicions of one member by different members are kept side by side: each
 *   is an independent confirmation that shortens the Lifeguard timeout elsewhere, and letting one
 *   overwrite another would lose them (measured: 3 simultaneous suspicions then took up to 11 s
 *   instead of 4 s to become a death).
 * - Messages take the least-sent updates first, so fresh news spreads before old news is repeated.
 * - An update leaves the queue after `limit` transmissions; the limit is computed when it is taken,
 *   from the current cluster size (retransmitMult × ceil(log10(N + 1))).
 * - The queue holds at most `maxQueued` entries; past it, the most-sent entries are dropped.
 *
 * Entries sit in buckets indexed by transmission count, so taking is O(updates taken + buckets),
 * not a sort per message.
 */
import assert from 'node:assert/strict'
import { jsonBytes, type Update } from './messages.js'

interface Entry {
  key: string
  update: Update
  bytes: number
  transmits: number
}

function keyOf (u: Update): string {
  return u.k === 'suspect' ? `${u.id}\u0000${u.from ?? ''}` : u.id
}

export class BroadcastQueue {
  /** buckets[i]: entries sent i times, in insertion order. */
  private readonly buckets: Array<Map<string, Entry>> = []
  private readonly byKey = new Map<string, Entry>()
  /** Keys queued per member id. */
  private readonly keysOf = new Map<string, Set<string>>()
  private dropped = 0

  constructor (private readonly maxQueued: number) {
    assert(Number.isInteger(maxQueued) && maxQueued > 0)
  }

  get size (): number { return this.byKey.size }
  /** Entries dropped because the queue was full. */
  get droppedCount (): number { return this.dropped }

  /** Queues `update`, replacing what it supersedes about the same member. */
  push (update: Update): void {
    const key = keyOf(update)
    if (update.k === 'suspect') this.remove(key)
    else this.removeMember(update.id)
    const entry: Entry = { key, update, bytes: jsonBytes(update), transmits: 0 }
    this.bucket(0).set(key, entry)
    this.byKey.set(key, entry)
    let keys = this.keysOf.get(update.id)
    if (keys === undefined) { keys = new Set(); this.keysOf.set(update.id, keys) }
    keys.add(key)
    while (this.byKey.size > this.maxQueued) this.dropMostSent()
  }

  /** Forgets everything queued about member `id`. */
  removeMember (id: string): void {
    const keys = this.keysOf.get(id)
    if (keys === undefined) return
    for (const k of [...keys]) this.remove(k)
  }

  private remove (key: string): void {
    const e = this.byKey.get(key)
    if (e === undefined) return
    this.buckets[e.transmits].delete(key)
    this.byKey.delete(key)
    this.forgetKey(e)
  }

  private forgetKey (e: Entry): void {
    const keys = this.keysOf.get(e.update.id)
    keys?.delete(e.key)
    if (keys !== undefined && keys.size === 0) this.keysOf.delete(e.update.id)
  }

  /**
   * Takes up to `maxCount` updates of at most `maxBytes` in total, least-sent first, counting one
   * transmission each; entries that reach `limit` leave the queue. Updates about member `skip`
   * are not taken (the message already says what we think of it).
   */
  take (maxCount: number, maxBytes: number, limit: number, skip?: string): Update[] {
    assert(limit >= 1)
    const out: Update[] = []
    const moved: Entry[] = []
    let bytes = 0
    for (let t = 0; t < this.buckets.length && out.length < maxCount; t++) {
      const b = this.buckets[t]
      if (b === undefined) continue
      for (const [key, e] of b) {
        if (out.length >= maxCount) break
        if (e.update.id === skip) continue
        if (bytes + e.bytes > maxBytes) continue
        bytes += e.bytes
        out.push(e.update)
        b.delete(key)
        moved.push(e)
      }
    }
    for (const e of moved) {
      e.transmits++
      if (e.transmits >= limit) { this.byKey.delete(e.key); this.forgetKey(e) } else this.bucket(e.transmits).set(e.key, e)
    }
    return out
  }

  private bucket (t: number): Map<string, Entry> {
    while (this.buckets.length <= t) this.buckets.push(new Map())
    return this.buckets[t]
  }

  private dropMostSent (): void {
    for (let t = this.buckets.length - 1; t >= 0; t--) {
      const b = this.buckets[t]
      if (b === undefined || b.size === 0) continue
      const first = b.keys().next()
      assert(first.done !== true)
      this.remove(first.value)
      this.dropped++
      return
    }
  }
}
