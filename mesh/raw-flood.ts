/**
 * A raw TCP flood: opens sockets to a port and never sends a byte, the way a port scanner, a
 * broken client or a hostile one holds a libp2p listener's handshake slots. Used by the mesh's
 * tests (and usable by benches) to check that such sockets neither keep members out nor stay
 * open for long.
 *
 * Every socket is bound to `localAddress`, so a test on one host can make the flood come from
 * another loopback address (127.0.0.2) than the peers it must not disturb (127.0.0.1).
 */
import { connect, type Socket } from 'node:net'
import assert from 'node:assert/strict'

export interface RawFloodOptions {
  host: string
  port: number
  /** Source address of every socket (any 127.x.y.z works on Linux loopback). */
  localAddress?: string
  /** Sockets held at once. */
  count: number
  /** When set, a socket the server closed is opened again after this many ms. */
  reconnectDelayMs?: number
  /** Upper bound on sockets opened over the flood's life, reconnects included. Default 100,000. */
  maxOpenedTotal?: number
}

export interface RawFlood {
  /** Sockets opened so far, reconnects included. */
  readonly opened: () => number
  /** Sockets that reached 'connect' or failed to (each counted once). */
  readonly settled: () => number
  /** Sockets currently open. */
  readonly open: () => number
  /** Sockets the remote side closed (we never close one before `stop`). */
  readonly closedByServer: () => number
  /** Destroys every socket, cancels pending reconnects, resolves when all are closed. */
  stop: () => Promise<void>
}

export function startRawFlood (options: RawFloodOptions): RawFlood {
  assert.ok(Number.isInteger(options.count) && options.count > 0, 'count must be a positive integer')
  const maxOpenedTotal = options.maxOpenedTotal ?? 100_000
  const live = new Set<Socket>()
  const timers = new Set<NodeJS.Timeout>()
  let opened = 0
  let settled = 0
  let closedByServer = 0
  let stopping = false

  const openOne = (): void => {
    if (stopping || opened >= maxOpenedTotal) return
    opened++
    const sock = connect({ host: options.host, port: options.port, localAddress: options.localAddress })
    live.add(sock)
    let wasSettled = false
    const settle = (): void => { if (!wasSettled) { wasSettled = true; settled++ } }
    sock.on('connect', settle)
    sock.on('error', settle) // ECONNRESET when the server refuses; nothing to do but count it
    sock.on('close', () => {
      settle()
      live.delete(sock)
      if (stopping) return
      closedByServer++
      if (options.reconnectDelayMs !== undefined) {
        const t = setTimeout(() => { timers.delete(t); openOne() }, options.reconnectDelayMs)
        timers.add(t)
      }
    })
  }

  for (let i = 0; i < options.count; i++) openOne()

  return {
    opened: () => opened,
    settled: () => settled,
    open: () => live.size,
    closedByServer: () => closedByServer,
    async stop () {
      stopping = true
      for (const t of timers) clearTimeout(t)
      timers.clear()
      const closing = [...live].map(s => new Promise<void>(resolve => { s.once('close', () => { resolve() }) }))
      for (const s of live) s.destroy()
      await Promise.all(closing)
    }
  }
}
