/**
 * An in-process network for tests: links N actor systems through Transports that msgpack-encode
 * every envelope on send and decode it on delivery, so whatever crosses it has survived the same
 * serialization the node applies on the wire.
 *
 * Usage:
 *   const net = createLoopbackTransports()
 *   const a = createActorSystem({ peerId: 'A', transport: net.transport('A'), registry })
 *   net.attach(a)
 *
 * Semantics mirror the real transport's contract: `send` encodes synchronously (so an unencodable
 * message throws at the sender), delivery is asynchronous (setImmediate) and in order, sending to
 * or from a peer that is not attached throws ERR_PEER_UNREACHABLE, and a bounded queue throws
 * ERR_QUEUE_FULL when full.
 */
import { pack, unpack } from 'msgpackr'
import type { Envelope, Transport } from './envelope.js'
import { ActorError, ActorErrorCodes } from './errors.js'
import type { ActorSystem } from './types.js'

export interface LoopbackOptions {
  /** Envelopes in flight (all links together) before send throws ERR_QUEUE_FULL. Default 65536. */
  maxQueued?: number
  /** Envelopes delivered per setImmediate turn, so timers and I/O still run. Default 4096. */
  deliverBatch?: number
}

export interface LoopbackStats {
  /** Envelopes accepted by send. */
  sent: number
  /** Envelopes handed to the receiving system. */
  delivered: number
  /** Envelopes dropped because the receiver was detached before delivery. */
  dropped: number
  /** Encoded bytes accepted by send. */
  bytes: number
}

export interface LoopbackNetwork {
  /** The Transport for the system whose peer id is `peerId` (the same object on every call). */
  transport: (peerId: string) => Transport
  /** Connects a system (by its peerId) so it can send and receive. */
  attach: (system: ActorSystem) => void
  /** Disconnects a peer: sends to or from it throw ERR_PEER_UNREACHABLE; envelopes queued to it are dropped. */
  detach: (peerId: string) => void
  /**
   * A peer leaves: detach it and call `peerDown(peerId)` on every other attached system, as the
   * node does (and `peerDown(other)` on the departed system for every other peer).
   */
  down: (peerId: string) => void
  /** Resolves once nothing is queued (or rejects after `timeoutMs`, default 5000). */
  idle: (timeoutMs?: number) => Promise<void>
  readonly stats: Readonly<LoopbackStats>
}

interface Queued { from: string, to: string, bytes: Uint8Array }

export function createLoopbackTransports (options: LoopbackOptions = {}): LoopbackNetwork {
  const maxQueued = options.maxQueued ?? 65536
  const deliverBatch = options.deliverBatch ?? 4096
  if (!Number.isInteger(maxQueued) || maxQueued < 1) throw new RangeError('maxQueued must be a positive integer')
  if (!Number.isInteger(deliverBatch) || deliverBatch < 1) throw new RangeError('deliverBatch must be a positive integer')

  const systems = new Map<string, ActorSystem>()
  const transports = new Map<string, Transport>()
  // FIFO over all links: a single queue keeps per-link order trivially.
  let queue: Queued[] = []
  let head = 0
  let flushScheduled = false
  const stats: LoopbackStats = { sent: 0, delivered: 0, dropped: 0, bytes: 0 }

  const unreachable = (peerId: string): ActorError =>
    new ActorError(ActorErrorCodes.PEER_UNREACHABLE, `loopback: peer ${peerId} is not attached`)

  function flush (): void {
    flushScheduled = false
    for (let n = 0; n < deliverBatch && head < queue.length; n++) {
      const item = queue[head]
      queue[head++] = undefined as unknown as Queued
      const target = systems.get(item.to)
      if (target === undefined) { stats.dropped++; continue }
      stats.delivered++
      target.receiveRemote(item.from, unpack(item.bytes) as Envelope)
    }
    if (head === queue.length) { queue = []; head = 0 } else schedule()
  }

  function schedule (): void {
    if (flushScheduled) return
    flushScheduled = true
    setImmediate(flush)
  }

  function send (from: string, to: string, env: Envelope): void {
    if (!systems.has(from)) throw unreachable(from)
    if (!systems.has(to)) throw unreachable(to)
    if (queue.length - head >= maxQueued) throw new ActorError(ActorErrorCodes.QUEUE_FULL, `loopback: ${maxQueued} envelopes in flight`)
    const bytes = pack(env)
    queue.push({ from, to, bytes })
    stats.sent++
    stats.bytes += bytes.length
    schedule()
  }

  return {
    transport (peerId) {
      let t = transports.get(peerId)
      if (t === undefined) {
        t = { send: (to, env) => { send(peerId, to, env) } }
        transports.set(peerId, t)
      }
      return t
    },
    attach (system) {
      if (systems.has(system.peerId)) throw new Error(`loopback: peer ${system.peerId} already attached`)
      systems.set(system.peerId, system)
    },
    detach (peerId) { systems.delete(peerId) },
    down (peerId) {
      const gone = systems.get(peerId)
      systems.delete(peerId)
      for (const system of systems.values()) {
        system.peerDown(peerId)
        // The departed node, cut off, sees everyone else gone as well.
        gone?.peerDown(system.peerId)
      }
    },
    async idle (timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs
      while (head < queue.length || flushScheduled) {
        if (Date.now() > deadline) throw new Error(`loopback: still ${queue.length - head} envelopes queued after ${timeoutMs} ms`)
        await new Promise(resolve => setImmediate(resolve))
      }
    },
    stats
  }
}
