/**
 * A transport that loses and delays frames (VOIKE_CHAOS_DROP, VOIKE_CHAOS_DELAY_MS), wrapping the
 * node's real one. Drops are silent, as on a lossy network. Delays are uniform in 0..maxDelayMs
 * but never reorder a peer's frames (each leaves no earlier than the one before it: the actor
 * streams are ordered per peer, and the protocols above rely on it). Delayed frames are bounded:
 * beyond `maxDelayed` they are dropped (counted).
 */
import type { Counter } from 'prom-client'
import type { Envelope, Transport } from '../runtime/envelope.js'

export interface ChaosTransportOptions {
  drop: number
  delayMs: number
  random: () => number
  counter?: Counter<'action'>
  /** Frames waiting in delay at once. Default 100 000. */
  maxDelayed?: number
  /** A delayed send failed (the peer went away meanwhile). */
  onError?: (peerId: string, err: unknown) => void
}

export interface ChaosTransport extends Transport {
  /** Cancels the frames still waiting. */
  close: () => void
}

export function chaosTransport (inner: Transport, o: ChaosTransportOptions): ChaosTransport {
  const maxDelayed = o.maxDelayed ?? 100_000
  /** Per peer: frames in the order sent, each with its departure time (non-decreasing), and one timer. */
  const queues = new Map<string, { items: Array<{ at: number, env: Envelope }>, timer: NodeJS.Timeout | undefined }>()
  let delayed = 0

  function pump (peerId: string): void {
    const q = queues.get(peerId)
    if (q === undefined) return
    q.timer = undefined
    const now = performance.now()
    while (q.items.length > 0 && q.items[0].at <= now + 0.5) {
      const { env } = q.items.shift() as { at: number, env: Envelope }
      delayed--
      try { inner.send(peerId, env) } catch (err) { o.onError?.(peerId, err) }
    }
    if (q.items.length === 0) { queues.delete(peerId); return }
    q.timer = setTimeout(pump, Math.max(1, q.items[0].at - now), peerId)
  }

  return {
    send (peerId: string, env: Envelope): void {
      if (o.drop > 0 && o.random() < o.drop) { o.counter?.inc({ action: 'drop' }); return }
      if (o.delayMs <= 0) { inner.send(peerId, env); return }
      if (delayed >= maxDelayed) { o.counter?.inc({ action: 'drop' }); return }
      const now = performance.now()
      let q = queues.get(peerId)
      if (q === undefined) { q = { items: [], timer: undefined }; queues.set(peerId, q) }
      const last = q.items.length > 0 ? q.items[q.items.length - 1].at : 0
      // Never before the frame ahead of it: a peer's frames keep their order.
      const at = Math.max(now + o.random() * o.delayMs, last)
      q.items.push({ at, env })
      delayed++
      o.counter?.inc({ action: 'delay' })
      if (q.timer === undefined) q.timer = setTimeout(pump, Math.max(1, q.items[0].at - now), peerId)
    },
    close () {
      for (const q of queues.values()) if (q.timer !== undefined) clearTimeout(q.timer)
      queues.clear()
      delayed = 0
    }
  }
}
