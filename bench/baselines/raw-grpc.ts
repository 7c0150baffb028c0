/**
 * Floor for submit latency: a gRPC unary echo (@grpc/grpc-js, insecure, loopback) of the same
 * 100-byte msgpack message, no job machinery. VOIKE's SubmitJob → result goes through at least one
 * such call plus the grid.
 *
 *   node dist/bench/baselines/raw-grpc.js serve → {"event":"ready","port":N}
 */
import '../../node/polyfill.js'
import * as grpc from '@grpc/grpc-js'
import { BenchError, emit, exitWithParent, isMain } from '../proc.js'
import { IdSource, decodeEcho, echoReply, encodeEcho, type EchoClient } from '../echo.js'

const asBuffer = (b: Uint8Array): Buffer => Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)
const identity = (b: Buffer): Buffer => b

/** One unary method carrying raw bytes (no .proto: the payload is msgpack). */
const ECHO_SERVICE: grpc.ServiceDefinition = {
  echo: {
    path: '/voike.bench.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity
  }
}

export async function startRawGrpcServer (): Promise<{ server: grpc.Server, port: number }> {
  const server = new grpc.Server()
  server.addService(ECHO_SERVICE, {
    echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      try { cb(null, asBuffer(echoReply(call.request))) } catch (err) { cb(err as Error) }
    }
  })
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => {
      if (err !== null) reject(err)
      else resolve(p)
    })
  })
  return { server, port }
}

export async function connectRawGrpc (port: number, timeoutMs = 10_000): Promise<EchoClient> {
  const Client = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo')
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure())
  await new Promise<void>((resolve, reject) => {
    client.waitForReady(Date.now() + timeoutMs, (err) => { if (err !== undefined && err !== null) reject(err); else resolve() })
  })
  const ids = new IdSource()
  const echo = client.echo.bind(client) as (req: Buffer, cb: (err: grpc.ServiceError | null, res?: Buffer) => void) => void
  return {
    echo: async () => {
      const id = ids.take()
      const res = await new Promise<Buffer>((resolve, reject) => {
        echo(asBuffer(encodeEcho(id)), (err, r) => { if (err !== null || r === undefined) reject(err ?? new BenchError('ERR_BAD_ECHO', 'empty reply')); else resolve(r) })
      })
      if (decodeEcho(res).i !== id) throw new BenchError('ERR_BAD_ECHO', `gRPC echoed the wrong id (sent ${id})`)
    },
    close: async () => { client.close() }
  }
}

async function main (argv: string[]): Promise<void> {
  if (argv[0] !== 'serve') throw new BenchError('ERR_USAGE', 'usage: raw-grpc.js serve')
  const { server, port } = await startRawGrpcServer()
  exitWithParent(async () => { server.forceShutdown() })
  emit('ready', { port })
}

if (isMain(import.meta.url)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`raw-grpc: ${String(err)}\n`)
    process.exit(1)
  })
}
