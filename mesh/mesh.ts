/**
 * The mesh: one libp2p 3 peer (TCP + Noise + Yamux, identify, ping) speaking
 * `/voike/actor/1.0.0`, a stream of length-prefixed msgpack frames per peer pair.
 *
 * Why long-lived streams: a new stream costs ~1.1 ms against ~0.2 ms for a frame on an open one.
 * Why coalescing: one `stream.send` per frame tops out near 14k msg/s on these machines; writing
 * every frame queued before the next microtask checkpoint as one `send` reaches ~83k.
 *
 * The mesh knows peers and frames, not what the frames mean: decoded values go to `onMessage`.
 */
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { silentLogger, type Logger } from '../config/logger.js'
import { MeshError } from './errors.js'
import { encodeFrame, FrameDecoder } from './frames.js'
import { createInboundGuard } from './inbound-guard.js'

export const ACTOR_PROTOCOL = '/voike/actor/1.0.0'

export interface MeshOptions {
  /** The node's identity (see loadOrCreateIdentity). */
  privateKey: PrivateKey
  /** Listen multiaddrs, e.g. `/ip4/127.0.0.1/tcp/0`. */
  listen: string[]
  /** Largest frame payload sent or accepted. A larger incoming one resets the stream. Default 4 MiB. */
  maxFrameSizeBytes?: number
  /** Bytes waiting to be written to one peer before `send` throws ERR_QUEUE_FULL. Default 64 MiB. */
  maxQueuedBytesPerPeer?: number
  /** Actor-protocol streams a peer may open on one connection. Default 4. */
  maxStreamsPerConnection?: number
  /** Connections held at once. Default 512. */
  maxConnections?: number
  /** Time allowed to dial and open a stream. Default 5000 ms. */
  dialTimeoutMs?: number
  /**
   * Inbound connections still in their handshake (TCP accepted, not yet encrypted and
   * multiplexed), all remote addresses together. Default 64.
   */
  maxPendingInbound?: number
  /** Of `maxPendingInbound`, slots only members' addresses (`knownAddrs`) may use. Default 16. */
  reservedPendingInbound?: number
  /** Pending inbound connections one address that is not a member's may hold (IPv6: per /64). Default 8. */
  maxPendingInboundPerAddr?: number
  /** Pending inbound connections one member address may hold; members may share a host. Default 32. */
  maxPendingInboundPerKnownAddr?: number
  /** An inbound handshake not complete after this long is closed. Default 3000 ms. */
  inboundUpgradeTimeoutMs?: number
  /** Members' multiaddrs known at start; see `Mesh.setKnownAddrs`. */
  knownAddrs?: string[]
  /** Metrics are registered here. */
  registry: Registry
  logger?: Logger
  /**
   * Optional: what the protocol's messages look like. A frame that decodes but whose value this
   * rejects (returns a reason) is a bad frame like undecodable bytes: counted in
   * `voike_p2p_bad_frames_total`, its stream reset, `onMessage` not called. Must not throw.
   */
  checkMessage?: (msg: unknown) => string | undefined
  /** Every decoded frame. Exceptions thrown here are logged, never tear down the stream. */
  onMessage: (peerId: string, msg: unknown) => void
  onPeerConnect?: (peerId: string) => void
  onPeerDisconnect?: (peerId: string) => void
  /** Frames queued for a peer were dropped because no stream could be opened to it. */
  onSendFailed?: (peerId: string, err: MeshError) => void
}

export interface Mesh {
  readonly peerId: string
  /** Our listen addresses, each ending in `/p2p/<peerId>`. */
  addrs: () => string[]
  /** Connects to a multiaddr (with or without `/p2p/`); resolves to the remote peerId. */
  dial: (addr: string, options?: { signal?: AbortSignal }) => Promise<string>
  /**
   * Replaces the cluster members' addresses (their multiaddrs; only the IP counts). Connections
   * from these addresses may use the pending-handshake slots reserved for members, so a flood
   * from elsewhere cannot keep the cluster's own peers out. Returns how many distinct addresses
   * are known; entries without an IP are skipped.
   */
  setKnownAddrs: (addrs: readonly string[]) => number
  /** Remembers where a peer can be reached, so `send` can dial it. */
  addPeerAddrs: (peerId: string, addrs: string[]) => Promise<void>
  /** Queues one message; frames queued by the same synchronous run of code leave in one write. Throws ERR_FRAME_TOO_LARGE, ERR_QUEUE_FULL, ERR_MESH_STOPPED. */
  send: (peerId: string, msg: unknown) => void
  isConnected: (peerId: string) => boolean
  connectedPeers: () => string[]
  hangUp: (peerId: string) => Promise<void>
  /** Resolves once every queued frame was handed to its stream, or after `timeoutMs`. */
  flush: (timeoutMs: number) => Promise<void>
  /** The libp2p node, for tests and benches that need the raw peer. */
  readonly libp2p: Libp2p
  stop: () => Promise<void>
}

interface Channel {
  peerId: string
  /** The stream we write to; inbound or outbound, whichever came first. */
  stream: Stream | undefined
  opening: boolean
  draining: boolean
  flushScheduled: boolean
  queue: Uint8Array[]
  queuedBytes: number
  /** flush bound to this channel, so scheduling a flush allocates nothing. */
  flushFn: () => void
}

/** 16 B … 16 MiB, ×4 per bucket: control messages are tens of bytes, result batches megabytes. */
const FRAME_SIZE_BUCKETS_BYTES = [16, 64, 256, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216]

interface MeshMetrics {
  framesIn: Counter.Internal
  framesOut: Counter.Internal
  /** Frame sizes (length prefix included) by direction: _sum is the bytes received and sent. */
  bytesIn: Histogram.Internal<string>
  bytesOut: Histogram.Internal<string>
  badFrames: Counter
  sendFailures: Counter
}

function createMetrics (registry: Registry, channels: Map<string, Channel>, getConnections: () => number): MeshMetrics {
  const frames = new Counter({ name: 'voike_p2p_frames_total', help: 'Actor-protocol frames by direction', labelNames: ['direction'], registers: [registry] })
  const sizes = new Histogram({ name: 'voike_p2p_frame_size_bytes', help: 'Actor-protocol frame sizes in bytes (length prefix included) by direction; _sum is the bytes received (in) and sent (out)', labelNames: ['direction'], buckets: FRAME_SIZE_BUCKETS_BYTES, registers: [registry] })
  const badFrames = new Counter({ name: 'voike_p2p_bad_frames_total', help: 'Malformed or oversized frames received (each resets its stream)', registers: [registry] })
  const sendFailures = new Counter({ name: 'voike_p2p_send_failures_total', help: 'Queued frames dropped because the peer could not be reached', registers: [registry] })
  new Gauge({ // eslint-disable-line no-new
    name: 'voike_p2p_queued_bytes',
    help: 'Bytes waiting to be written to peers',
    registers: [registry],
    collect () { let n = 0; for (const c of channels.values()) n += c.queuedBytes; this.set(n) }
  })
  new Gauge({ // eslint-disable-line no-new
    name: 'voike_p2p_connections',
    help: 'Open libp2p connections',
    registers: [registry],
    collect () { this.set(getConnections()) }
  })
  // The series exist from the start (at 0), so rate() works before the first frame.
  sizes.zero({ direction: 'in' })
  sizes.zero({ direction: 'out' })
  frames.inc({ direction: 'in' }, 0)
  frames.inc({ direction: 'out' }, 0)
  return { framesIn: frames.labels('in'), framesOut: frames.labels('out'), bytesIn: sizes.labels('in'), bytesOut: sizes.labels('out'), badFrames, sendFailures }
}

export async function createMesh (options: MeshOptions): Promise<Mesh> {
  const maxFrameSizeBytes = options.maxFrameSizeBytes ?? 4 * 1024 * 1024
  const maxQueuedBytesPerPeer = options.maxQueuedBytesPerPeer ?? 64 * 1024 * 1024
  const dialTimeoutMs = options.dialTimeoutMs ?? 5000
  const inboundUpgradeTimeoutMs = options.inboundUpgradeTimeoutMs ?? 3000
  const maxPendingInbound = options.maxPendingInbound ?? 64
  const log = options.logger ?? silentLogger
  assertPositive('maxFrameSizeBytes', maxFrameSizeBytes)
  assertPositive('maxQueuedBytesPerPeer', maxQueuedBytesPerPeer)
  assertPositive('dialTimeoutMs', dialTimeoutMs)
  if (maxQueuedBytesPerPeer < maxFrameSizeBytes) throw new MeshError('ERR_INVALID_OPTION', 'maxQueuedBytesPerPeer must be at least maxFrameSizeBytes')
  if (options.listen.length === 0) throw new MeshError('ERR_INVALID_OPTION', 'listen needs at least one multiaddr')

  // Validates its options (throwing ERR_INVALID_OPTION) before libp2p is created.
  const guard = createInboundGuard({
    maxPendingInbound,
    reservedPendingInbound: options.reservedPendingInbound ?? 16,
    maxPendingInboundPerAddr: options.maxPendingInboundPerAddr ?? 8,
    maxPendingInboundPerKnownAddr: options.maxPendingInboundPerKnownAddr ?? 32,
    inboundUpgradeTimeoutMs,
    knownAddrs: options.knownAddrs,
    registry: options.registry,
    logger: log.child({ component: 'inbound-guard' })
  })

  const libp2p = await createLibp2p({
    privateKey: options.privateKey,
    addresses: { listen: options.listen },
    // TCP options left at their defaults, on purpose: `maxConnections` and
    // `closeServerOnMaxConnections` cap or pause the listener for everyone (members too), and
    // `inboundSocketInactivityTimeout` would also close idle upgraded connections.
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // Per-address pending bounds and the members' reserve (see inbound-guard.ts).
    connectionGater: guard.gater,
    connectionManager: {
      maxConnections: options.maxConnections ?? 512,
      // A grid's members all join through one Genesis, often from one host in tests and on
      // small clusters: the default of 5 new inbound connections/s per host would stall joins.
      inboundConnectionThreshold: 200,
      // The same bound the guard enforces: libp2p refuses beyond it before the gater runs, so
      // the guard's reserve is only reachable if the two agree. (libp2p's own `allow` list is
      // not used for the reserve: it is fixed at creation and exempts an address from every
      // limit, the connection cap included.)
      maxIncomingPendingConnections: maxPendingInbound,
      // A handshake on loopback or a LAN takes milliseconds and our dialers give up after their
      // dial timeout (5 s): a socket still in its handshake after 3 s is almost surely not a
      // peer. libp2p's default, 10 s, let each one hold its slot more than three times longer.
      inboundUpgradeTimeout: inboundUpgradeTimeoutMs,
      dialTimeout: dialTimeoutMs
    },
    services: { identify: identify(), ping: ping() },
    start: false
  })

  const channels = new Map<string, Channel>()
  let stopped = false
  const metrics = createMetrics(options.registry, channels, () => libp2p.getConnections().length)

  const channelOf = (peerId: string): Channel => {
    let ch = channels.get(peerId)
    if (ch === undefined) {
      const created: Channel = { peerId, stream: undefined, opening: false, draining: false, flushScheduled: false, queue: [], queuedBytes: 0, flushFn: () => { flush(created) } }
      ch = created
      channels.set(peerId, ch)
    }
    return ch
  }

  const dropQueue = (ch: Channel, err: MeshError): void => {
    if (ch.queue.length === 0) return
    metrics.sendFailures.inc(ch.queue.length)
    log.warn('dropping frames for unreachable peer', { peer: ch.peerId, frames: ch.queue.length, err })
    ch.queue = []
    ch.queuedBytes = 0
    try {
      options.onSendFailed?.(ch.peerId, err)
    } catch (cbErr) {
      // openStream runs detached: a throw here would be an unhandled rejection.
      log.error('onSendFailed handler failed', { peer: ch.peerId, err: cbErr })
    }
  }

  const attach = (stream: Stream, peerId: string): void => {
    const decoder = new FrameDecoder(maxFrameSizeBytes)
    const ch = channelOf(peerId)
    if (ch.stream === undefined) ch.stream = stream
    const onFrame = (msg: unknown, sizeBytes: number): void => {
      const problem = options.checkMessage?.(msg)
      // Thrown into the decoder's caller below: the same path as undecodable bytes.
      if (problem !== undefined) throw new MeshError('ERR_BAD_FRAME', `frame is not a protocol message: ${problem}`)
      metrics.framesIn.inc()
      metrics.bytesIn.observe(sizeBytes)
      try {
        options.onMessage(peerId, msg)
      } catch (err) {
        log.error('message handler failed', { peer: peerId, err })
      }
    }
    stream.addEventListener('message', (evt) => {
      const data = evt.data
      try {
        if (data instanceof Uint8Array) decoder.push(data, onFrame)
        else for (const chunk of data) decoder.push(chunk, onFrame)
      } catch (err) {
        // Garbage or an oversized frame: this stream is unusable, the node is not.
        metrics.badFrames.inc()
        log.warn('bad frame; resetting stream', { peer: peerId, err })
        stream.abort(err as Error)
      }
    })
    stream.addEventListener('remoteCloseWrite', () => { void stream.close().catch(() => {}) })
    stream.addEventListener('close', () => {
      if (ch.stream !== stream) return
      ch.stream = undefined
      ch.draining = false
      if (ch.queue.length > 0) scheduleFlush(ch)
    })
  }

  const openStream = async (ch: Channel): Promise<void> => {
    ch.opening = true
    try {
      const signal = AbortSignal.timeout(dialTimeoutMs)
      const pid = peerIdFromString(ch.peerId)
      const conn: Connection | undefined = libp2p.getConnections(pid).find(c => c.status === 'open')
      const stream = conn !== undefined
        ? await conn.newStream(ACTOR_PROTOCOL, { signal, negotiateFully: false })
        : await libp2p.dialProtocol(pid, ACTOR_PROTOCOL, { signal, negotiateFully: false })
      attach(stream, ch.peerId)
    } catch (err) {
      dropQueue(ch, new MeshError('ERR_PEER_UNREACHABLE', `cannot open a stream to ${ch.peerId}: ${(err as Error).message}`, { cause: err }))
    } finally {
      ch.opening = false
    }
    if (ch.queue.length > 0) flush(ch)
  }

  const flush = (ch: Channel): void => {
    ch.flushScheduled = false
    if (stopped || ch.draining || ch.opening || ch.queue.length === 0) return
    const stream = ch.stream
    if (stream === undefined || stream.writeStatus !== 'writable') {
      if (stream !== undefined) ch.stream = undefined
      void openStream(ch)
      return
    }
    const queue = ch.queue
    const frames = queue.length
    const data = frames === 1 ? queue[0] : Buffer.concat(queue, ch.queuedBytes)
    ch.queue = []
    ch.queuedBytes = 0
    metrics.framesOut.inc(frames)
    for (const frame of queue) metrics.bytesOut.observe(frame.length)
    if (!stream.send(data)) {
      // Accepted, but the transport's buffer is full: hold further frames until it drains.
      ch.draining = true
      stream.onDrain().then(() => {
        ch.draining = false
        flush(ch)
      }, () => {
        ch.draining = false
        if (ch.stream === stream) ch.stream = undefined
        if (ch.queue.length > 0) scheduleFlush(ch)
      })
    }
  }

  const scheduleFlush = (ch: Channel): void => {
    if (ch.flushScheduled) return
    ch.flushScheduled = true
    // A microtask, not setImmediate: frames sent by the code running now (an actor's drain, a
    // client's batch) still leave in one write, and the write does not wait for the next
    // check phase (~10 µs per hop of a round trip; actors also drain remote messages inside
    // the read callback, see actors/system.ts, so a reply is written before the loop moves on).
    queueMicrotask(ch.flushFn)
  }

  await libp2p.handle(ACTOR_PROTOCOL, (stream, connection) => {
    attach(stream, connection.remotePeer.toString())
  }, { maxInboundStreams: options.maxStreamsPerConnection ?? 4, maxOutboundStreams: options.maxStreamsPerConnection ?? 4 })

  libp2p.addEventListener('peer:connect', (evt) => { options.onPeerConnect?.(evt.detail.toString()) })
  libp2p.addEventListener('peer:disconnect', (evt) => {
    const peerId = evt.detail.toString()
    const ch = channels.get(peerId)
    if (ch !== undefined && ch.queue.length === 0 && ch.stream === undefined) channels.delete(peerId)
    options.onPeerDisconnect?.(peerId)
  })

  await libp2p.start()
  const peerId = libp2p.peerId.toString()
  log.info('mesh started', { peerId, addrs: libp2p.getMultiaddrs().map(String) })

  return {
    peerId,
    libp2p,
    addrs: () => libp2p.getMultiaddrs().map(String),
    setKnownAddrs: guard.setKnownAddrs,
    async dial (addr, opts = {}) {
      const signal = opts.signal !== undefined ? AbortSignal.any([opts.signal, AbortSignal.timeout(dialTimeoutMs)]) : AbortSignal.timeout(dialTimeoutMs)
      try {
        const conn = await libp2p.dial(multiaddr(addr), { signal })
        return conn.remotePeer.toString()
      } catch (err) {
        throw new MeshError('ERR_CONNECT_FAILED', `cannot connect to ${addr}: ${(err as Error).message}`, { cause: err })
      }
    },
    async addPeerAddrs (pid, addrs) {
      if (pid === peerId) return
      const multiaddrs = []
      for (const a of addrs.slice(0, 16)) {
        try { multiaddrs.push(multiaddr(a)) } catch { log.debug('ignoring bad peer address', { peer: pid, addr: a }) }
      }
      await libp2p.peerStore.merge(peerIdFromString(pid), { multiaddrs })
    },
    send (pid, msg) {
      if (stopped) throw new MeshError('ERR_MESH_STOPPED', 'the mesh is stopped')
      const frame = encodeFrame(msg, maxFrameSizeBytes)
      const ch = channelOf(pid)
      if (ch.queuedBytes + frame.length > maxQueuedBytesPerPeer) {
        throw new MeshError('ERR_QUEUE_FULL', `${ch.queuedBytes} bytes already queued for ${pid} (limit ${maxQueuedBytesPerPeer})`)
      }
      ch.queue.push(frame)
      ch.queuedBytes += frame.length
      scheduleFlush(ch)
    },
    isConnected: (pid) => libp2p.getConnections(peerIdFromString(pid)).some(c => c.status === 'open'),
    connectedPeers: () => libp2p.getPeers().map(String),
    async flush (timeoutMs) {
      const deadline = Date.now() + timeoutMs
      const busy = (): boolean => [...channels.values()].some(c => c.queue.length > 0 && (c.stream !== undefined || c.opening))
      while (busy() && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 5))
    },
    async hangUp (pid) { await libp2p.hangUp(peerIdFromString(pid)) },
    async stop () {
      if (stopped) return
      stopped = true
      channels.clear()
      await libp2p.stop()
    }
  }
}

function assertPositive (name: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) throw new MeshError('ERR_INVALID_OPTION', `${name} must be a positive integer, got ${value}`)
}

export type { PeerId }
