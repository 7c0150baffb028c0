/**
 * Peer system: Moleculer 0.15, two ServiceBrokers on its built-in TCP transporter (UDP discovery
 * off; the client finds the server through a static `urls` entry with the port the server got from
 * port 0), default JSON serializer, an `echo.echo` action returning its params. Each call carries
 * the same `{ i, b }` object whose msgpack encoding is 100 bytes.
 *
 *   node dist/bench/baselines/moleculer.js serve → {"event":"ready","port":N,"nodeID":"..."}
 */
import '../../node/polyfill.js'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { ServiceBroker, type BrokerOptions } from 'moleculer'
import { BenchError, emit, exitWithParent, isMain } from '../proc.js'
import { IdSource, echoMessage, type EchoClient } from '../echo.js'

/** Installed Moleculer version (for latest.json). */
export function moleculerVersion (): string {
  const require = createRequire(import.meta.url)
  const main = require.resolve('moleculer')
  const pkg = JSON.parse(readFileSync(main.replace(/index\.js$/, 'package.json'), 'utf8')) as { version: string }
  return pkg.version
}

function brokerOptions (nodeID: string, urls: string | null): BrokerOptions {
  return {
    nodeID,
    logger: false,
    transporter: {
      type: 'TCP',
      options: { udpDiscovery: false, port: 0, ...(urls !== null ? { urls } : {}) }
    }
  }
}

/** Starts a broker with the echo service; resolves with its TCP port. */
export async function startMoleculerServer (nodeID: string): Promise<{ broker: ServiceBroker, port: number }> {
  const broker = new ServiceBroker(brokerOptions(nodeID, null))
  broker.createService({
    name: 'echo',
    actions: { echo: (ctx: { params: unknown }) => ctx.params }
  })
  await broker.start()
  // The TCP transporter writes the port it got from port 0 back into its options.
  const port = (broker.transit as unknown as { tx: { opts: { port: number } } }).tx.opts.port
  if (!Number.isInteger(port) || port <= 0) {
    await broker.stop()
    throw new BenchError('ERR_MOLECULER_PORT', 'cannot find the Moleculer TCP transporter port')
  }
  return { broker, port }
}

/** A client broker connected to the server broker at 127.0.0.1:port (node `serverNodeID`). */
export async function connectMoleculer (port: number, serverNodeID: string, timeoutMs = 20_000): Promise<EchoClient> {
  const broker = new ServiceBroker(brokerOptions(`bench-client-${process.pid}`, `127.0.0.1:${port}/${serverNodeID}`))
  await broker.start()
  try {
    await broker.waitForServices('echo', timeoutMs)
  } catch (err) {
    await broker.stop()
    throw err
  }
  const ids = new IdSource()
  return {
    echo: async () => {
      const id = ids.take()
      const res = await broker.call('echo.echo', echoMessage(id)) as { i?: unknown }
      if (res?.i !== id) throw new BenchError('ERR_BAD_ECHO', `Moleculer echoed id ${String(res?.i)}, sent ${id}`)
    },
    close: async () => { await broker.stop() }
  }
}

async function main (argv: string[]): Promise<void> {
  if (argv[0] !== 'serve') throw new BenchError('ERR_USAGE', 'usage: moleculer.js serve')
  const nodeID = `bench-server-${process.pid}`
  const { broker, port } = await startMoleculerServer(nodeID)
  exitWithParent(async () => { await broker.stop() })
  emit('ready', { port, nodeID })
}

if (isMain(import.meta.url)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`moleculer: ${String(err)}\n`)
    process.exit(1)
  })
}
