/**
 * The gossip queue: membership updates waiting to be piggybacked, each sent a bounded number of
 * times (memberlist's TransmitLimitedQueue).
 *
 * - One entry per member: a newer update about a member replaces the queued one (it supersedes it).
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
  update: Update
  bytes: number
  transmits: number
}

export class BroadcastQueue {
  /** buckets[i]: entries sent i times, in insertion order. */
  private readonly buckets: Array<Map<string, Entry>> = []
  private readonly byId = new Map<string, Entry>()
  private dropped = 0

  constructor (private readonly maxQueued: number) {
    assert(Number.isInteger(maxQueued) && maxQueued > 0)
  }

  get size (): number { return this.byId.size }
  /** Entries dropped because the queue was full. */
  get droppedCount (): number { return this.dropped }

  /** Queues `update`, replacing any queued update about the same member. */
  push (update: Update): void {
    this.remove(update.id)
    const entry: Entry = { update, bytes: jsonBytes(update), transmits: 0 }
    this.bucket(0).set(update.id, entry)
    this.byId.set(update.id, entry)
    while (this.byId.size > this.maxQueued) this.dropMostSent()
  }

  /** The queued update about `id`, if any (used to put a member's own news first in a ping to it). */
  peek (id: string): Update | undefined { return this.byId.get(id)?.update }

  remove (id: string): void {
    const e = this.byId.get(id)
    if (e === undefined) return
    this.buckets[e.transmits].delete(id)
    this.byId.delete(id)
  }

  /**
   * Takes up to `maxCount` updates of at most `maxBytes` in total, least-sent first, counting one
   * transmission each; entries that reach `limit` leave the queue. `skip` ids are not taken
   * (already in the message).
   */
  take (maxCount: number, maxBytes: number, limit: number, skip?: string): Update[] {
    assert(limit >= 1)
    const out: Update[] = []
    const moved: Entry[] = []
    let bytes = 0
    for (let t = 0; t < this.buckets.length && out.length < maxCount; t++) {
      const b = this.buckets[t]
      if (b === undefined) continue
      for (const [id, e] of b) {
        if (out.length >= maxCount) break
        if (id === skip) continue
        if (bytes + e.bytes > maxBytes) continue
        bytes += e.bytes
        out.push(e.update)
        b.delete(id)
        moved.push(e)
      }
    }
    for (const e of moved) {
      e.transmits++
      if (e.transmits >= limit) this.byId.delete(e.update.id)
      else this.bucket(e.transmits).set(e.update.id, e)
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
