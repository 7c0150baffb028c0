/**
 * The limit for VOIKE's transport: a raw libp2p 3 echo over the same stack (TCP + Noise + Yamux),
 * one reused stream, varint-length-prefixed frames, BOTH sides coalescing the frames of one
 * event-loop turn into one `stream.send` (event API: 'message' + LengthPrefixedDecoder; `send`
 * returning false → `await stream.onDrain()`).
 *
 *   node dist/bench/baselines/raw-libp2p.js serve
 *       → {"event":"ready","peerId":"...","multiaddrs":["/ip4/127.0.0.1/tcp/N/p2p/..."]}
 *       then {"event":"peer:connect","peerId":"..."} for each peer that connects
 *   node dist/bench/baselines/raw-libp2p.js join --peer MULTIADDR
 *       → starts a bare node, dials MULTIADDR, prints {"event":"ready","peerId":"..."}, idles
 *         (the floor for a node's join time and idle footprint)
 */
import '../../node/polyfill.js'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { LengthPrefixedDecoder } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import { BenchError, argValue, emit, exitWithParent, isMain } from '../proc.js'
import { FrameBatcher, FramedEchoClient, echoReply, varintFrame, type EchoClient } from '../echo.js'

export const ECHO_PROTOCOL = '/voike-bench/echo/1.0.0'
/** Largest frame either side accepts (messages are 100 bytes). */
const MAX_FRAME_BYTES = 1 << 20

/** A bare libp2p node on the same stack as VOIKE's mesh: TCP + Noise + Yamux, loopback only. */
export async function createBareNode (listen: boolean): Promise<Libp2p> {
  return await createLibp2p({
    addresses: { listen: listen ? ['/ip4/127.0.0.1/tcp/0'] : [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // The default (5 new inbound connections/s per host) would throttle benches that spawn nodes.
    connectionManager: { inboundConnectionThreshold: 1_000 }
  })
}

function batcherFor (stream: Stream): FrameBatcher {
  return new FrameBatcher((buf) => stream.send(buf), async () => { await stream.onDrain() })
}

/** Makes `node` echo on ECHO_PROTOCOL. */
export async function handleEcho (node: Libp2p): Promise<void> {
  await node.handle(ECHO_PROTOCOL, (stream) => {
    const decoder = new LengthPrefixedDecoder({ maxDataLength: MAX_FRAME_BYTES })
    const out = batcherFor(stream)
    stream.addEventListener('message', (e) => {
      try {
        for (const frame of decoder.decode(e.data)) out.push(varintFrame(echoReply(frame.subarray())), false)
        out.flush()
      } catch (err) {
        stream.abort(err as Error)
      }
    })
  }, { maxInboundStreams: 16 })
}

/** Dials a raw libp2p echo server and opens the one stream all calls share. */
export async function connectRawLibp2p (addr: string): Promise<EchoClient> {
  const node = await createBareNode(false)
  try {
    const stream = await node.dialProtocol(multiaddr(addr), ECHO_PROTOCOL)
    const client = new FramedEchoClient(batcherFor(stream), varintFrame)
    const decoder = new LengthPrefixedDecoder({ maxDataLength: MAX_FRAME_BYTES })
    stream.addEventListener('message', (e) => {
      try {
        for (const frame of decoder.decode(e.data)) client.onPayload(frame.subarray())
      } catch (err) {
        client.fail(err as Error)
        stream.abort(err as Error)
      }
    })
    stream.addEventListener('close', () => { client.fail(new BenchError('ERR_CLOSED', 'libp2p echo stream closed')) })
    return {
      echo: client.echo,
      close: async () => {
        client.fail(new BenchError('ERR_CLOSED', 'client closed'))
        try { await stream.close() } catch { /* already gone */ }
        await node.stop()
      }
    }
  } catch (err) {
    await node.stop()
    throw err
  }
}

async function serve (): Promise<void> {
  const node = await createBareNode(true)
  await handleEcho(node)
  node.addEventListener('peer:connect', (e) => { emit('peer:connect', { peerId: e.detail.toString() }) })
  exitWithParent(async () => { await node.stop() })
  emit('ready', { peerId: node.peerId.toString(), multiaddrs: node.getMultiaddrs().map((m) => m.toString()) })
}

async function join (argv: string[]): Promise<void> {
  const peer = argValue(argv, '--peer')
  if (peer === undefined) throw new BenchError('ERR_USAGE', 'join needs --peer MULTIADDR')
  const node = await createBareNode(true)
  exitWithParent(async () => { await node.stop() })
  await node.dial(multiaddr(peer))
  emit('ready', { peerId: node.peerId.toString() })
}

async function main (argv: string[]): Promise<void> {
  if (argv[0] === 'serve') await serve()
  else if (argv[0] === 'join') await join(argv.slice(1))
  else throw new BenchError('ERR_USAGE', 'usage: raw-libp2p.js serve | join --peer MULTIADDR')
}

if (isMain(import.meta.url)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`raw-libp2p: ${String(err)}\n`)
    process.exit(1)
  })
}
