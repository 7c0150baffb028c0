/**
 * A bounded FIFO of (message, sender, reply) triples for one actor.
 *
 * A ring buffer over three parallel arrays, so that enqueuing and dequeuing allocate nothing once
 * the buffer has grown to its working size (no per-message entry object). The arrays start small
 * and double up to `capacity`, so an idle actor with a large capacity costs little memory.
 */

/** Largest mailbox capacity accepted: a limit on the memory one actor can pin. */
export const MAX_MAILBOX_CAPACITY = 1 << 22
const INITIAL_SLOTS = 16

export class Mailbox<S, R> {
  readonly capacity: number
  private msgs: unknown[]
  private senders: Array<S | undefined>
  private replies: Array<R | undefined>
  private head = 0
  private size = 0
  /** Sender of the message last returned by `shift` (read right after the call). */
  shiftedSender: S | undefined = undefined
  /** Reply handle of the message last returned by `shift` (read right after the call). */
  shiftedReply: R | undefined = undefined

  constructor (capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_MAILBOX_CAPACITY) {
      throw new RangeError(`mailbox capacity must be an integer in 1..${MAX_MAILBOX_CAPACITY}, got ${String(capacity)}`)
    }
    this.capacity = capacity
    const slots = Math.min(capacity, INITIAL_SLOTS)
    this.msgs = new Array(slots).fill(undefined)
    this.senders = new Array(slots).fill(undefined)
    this.replies = new Array(slots).fill(undefined)
  }

  get length (): number { return this.size }

  /** Appends; returns false (and stores nothing) when the mailbox holds `capacity` messages. */
  push (msg: unknown, sender: S | undefined, reply: R | undefined): boolean {
    if (this.size === this.msgs.length) {
      if (this.size >= this.capacity) return false
      this.grow()
    }
    let tail = this.head + this.size
    if (tail >= this.msgs.length) tail -= this.msgs.length
    this.msgs[tail] = msg
    this.senders[tail] = sender
    this.replies[tail] = reply
    this.size++
    return true
  }

  /**
   * Removes and returns the oldest message; its sender and reply are left in `shiftedSender` and
   * `shiftedReply`. Must not be called on an empty mailbox.
   */
  shift (): unknown {
    if (this.size === 0) throw new Error('Mailbox.shift on an empty mailbox')
    const i = this.head
    const msg = this.msgs[i]
    this.shiftedSender = this.senders[i]
    this.shiftedReply = this.replies[i]
    // Clear the slots so a processed message can be garbage-collected.
    this.msgs[i] = undefined
    this.senders[i] = undefined
    this.replies[i] = undefined
    this.head = i + 1 === this.msgs.length ? 0 : i + 1
    this.size--
    return msg
  }

  /** Doubles the arrays (bounded by capacity), unrolling the ring so it starts at index 0. */
  private grow (): void {
    const old = this.msgs.length
    const slots = Math.min(this.capacity, old * 2)
    const msgs = new Array(slots).fill(undefined)
    const senders = new Array<S | undefined>(slots).fill(undefined)
    const replies = new Array<R | undefined>(slots).fill(undefined)
    for (let n = 0; n < this.size; n++) {
      const j = (this.head + n) % old
      msgs[n] = this.msgs[j]
      senders[n] = this.senders[j]
      replies[n] = this.replies[j]
    }
    this.msgs = msgs
    this.senders = senders
    this.replies = replies
    this.head = 0
  }
}
