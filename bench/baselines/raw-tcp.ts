/**
 * The floor: raw TCP (Node `net`, no encryption, no multiplexing) echoing 100-byte msgpack
 * messages in 4-byte-length-prefixed frames, both sides coalescing the frames of one event-loop
 * turn into one write.
 *
 *   node dist/bench/baselines/raw-tcp.js serve   → prints {"event":"ready","port":N}
 */
import '../../node/polyfill.js'
import net from 'node:net'
import { once } from 'node:events'
import { BenchError, emit, exitWithParent, isMain } from '../proc.js'
import { FrameBatcher, FramedEchoClient, U32FrameDecoder, echoReply, u32Frame, type EchoClient } from '../echo.js'

function batcherFor (socket: net.Socket): FrameBatcher {
  return new FrameBatcher((buf) => socket.write(buf), async () => { await once(socket, 'drain') })
}

/** Starts the echo server on 127.0.0.1, port 0; resolves to it once listening. */
export async function startRawTcpServer (): Promise<net.Server> {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true)
    const decoder = new U32FrameDecoder()
    const out = batcherFor(socket)
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk, (frame) => { out.push(u32Frame(echoReply(frame)), false) })
        out.flush()
      } catch (err) {
        socket.destroy(err as Error)
      }
    })
    socket.on('error', () => {})
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return server
}

/** Connects a client to a raw TCP echo server. */
export async function connectRawTcp (port: number): Promise<EchoClient> {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new BenchError('ERR_BAD_OPTION', `bad port ${port}`)
  const socket = net.connect(port, '127.0.0.1')
  socket.setNoDelay(true)
  await once(socket, 'connect')
  const client = new FramedEchoClient(batcherFor(socket), u32Frame)
  const decoder = new U32FrameDecoder()
  socket.on('data', (chunk: Buffer) => {
    try {
      decoder.push(chunk, (frame) => { client.onPayload(frame) })
    } catch (err) {
      client.fail(err as Error)
      socket.destroy()
    }
  })
  socket.on('error', (err) => { client.fail(err) })
  socket.on('close', () => { client.fail(new BenchError('ERR_CLOSED', 'raw TCP connection closed')) })
  return {
    echo: client.echo,
    close: async () => {
      if (socket.destroyed) return
      socket.end()
      socket.destroy()
    }
  }
}

async function main (argv: string[]): Promise<void> {
  if (argv[0] !== 'serve') throw new BenchError('ERR_USAGE', 'usage: raw-tcp.js serve')
  const server = await startRawTcpServer()
  exitWithParent(async () => { server.close() })
  emit('ready', { port: (server.address() as net.AddressInfo).port })
}

if (isMain(import.meta.url)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`raw-tcp: ${String(err)}\n`)
    process.exit(1)
  })
}
