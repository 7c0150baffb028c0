/**
 * A fixed-capacity ring of events, oldest dropped first: advisories and trust events are kept in
 * memory for the APIs, and a long-running node must not grow them without bound.
 */
import assert from 'node:assert/strict'

export class EventRing<T> {
  private readonly items: Array<T | undefined>
  private start = 0
  private count = 0
  /** Events ever pushed (dropped ones included), so a reader can tell it missed some. */
  total = 0

  constructor (readonly capacity: number) {
    assert.ok(Number.isInteger(capacity) && capacity >= 1 && capacity <= 1_000_000, 'ring capacity must be an integer in 1..1000000')
    this.items = new Array<T | undefined>(capacity)
  }

  push (item: T): void {
    this.total++
    if (this.count < this.capacity) {
      this.items[(this.start + this.count) % this.capacity] = item
      this.count++
      return
    }
    this.items[this.start] = item
    this.start = (this.start + 1) % this.capacity
  }

  get size (): number { return this.count }

  /** The newest `limit` events (all by default), oldest first. */
  list (limit = this.count): T[] {
    const n = Math.max(0, Math.min(this.count, Math.floor(limit)))
    const out: T[] = []
    for (let i = this.count - n; i < this.count; i++) out.push(this.items[(this.start + i) % this.capacity] as T)
    return out
  }
}
