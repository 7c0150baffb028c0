/**
 * Stopping a node process: SIGINT and SIGTERM announce the leave, stop cleanly and exit 0; a stop
 * that hangs is forced after the grace period (4.5 s, node/cli.ts) with exit 1 and a message
 * naming the step that hung, so that a hung shutdown can never pass for a clean one.
 */
import './polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { Cluster, dropSchema, getJson, pgSchemaName, pgSkip, waitFor } from './testkit.js'

const PROCESS_TEST_MS = 90_000

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`${signal}: the node announces its leave, stops cleanly and exits 0 (before the forced exit)`, { timeout: PROCESS_TEST_MS }, async (t) => {
    const c = new Cluster()
    t.after(async () => { await c.stopAll() })
    const g = await c.start('genesis')
    const a = await c.start('node')
    const b = await c.start('node')
    for (const n of [g, a, b]) await c.waitAlive(n, 3)
    const code = await c.kill(a, signal)
    // A stop still running at the grace period exits 1 (see the next test): 0 means it finished in time.
    assert.equal(code, 0, `exit ${code}; stderr:\n${a.stderr()}`)
    assert.doesNotMatch(a.stderr(), /shutdown hung|forced exit/)
    for (const n of [g, b]) {
      await waitFor(async () => (await c.members(n)).find(m => m.peerId === a.ready.peerId && m.status === 'dead' && m.leftAtMs !== null), `${n.name} sees the leave`)
    }
  })
}

/** A TCP proxy to PostgreSQL that the test can freeze: connections stay open, nothing flows. */
async function freezableProxy (target: { host: string, port: number }): Promise<{ port: number, freeze: () => void, droppedBytes: () => number, close: () => Promise<void> }> {
  const sockets = new Set<Socket>()
  let frozen = false
  let dropped = 0
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => { client.destroy(); upstream.destroy() })
      s.on('close', () => { sockets.delete(s) })
    }
    client.on('data', (d: Buffer) => { if (!frozen) upstream.write(d); else dropped += d.length })
    upstream.on('data', (d) => { if (!frozen) client.write(d) })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  assert.ok(address !== null && typeof address === 'object')
  return {
    port: address.port,
    // Bytes are read and dropped: the node's queries and its goodbyes are never answered.
    freeze: () => { frozen = true },
    droppedBytes: () => dropped,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>(resolve => server.close(() => { resolve() }))
    }
  }
}

test('a stop that hangs (its database stops answering) is forced after the grace period: exit 1, naming the step', { timeout: PROCESS_TEST_MS, skip: pgSkip() }, async (t) => {
  const url = new URL(process.env.VOIKE_TEST_DATABASE_URL as string)
  const proxy = await freezableProxy({ host: url.hostname, port: Number(url.port === '' ? 5432 : url.port) })
  const proxied = new URL(url)
  proxied.hostname = '127.0.0.1'
  proxied.port = String(proxy.port)
  const env = { DATABASE_URL: proxied.toString(), VOIKE_DB_SCHEMA: pgSchemaName() }
  const c = new Cluster({ env })
  t.after(async () => { await c.stopAll(); await proxy.close(); await dropSchema({ ...env, DATABASE_URL: url.toString() }) })
  const g = await c.start('genesis')
  proxy.freeze()
  // A read of a job not in memory goes to the store, which never answers now: the stop must
  // wait for it (or for the pool holding its connection) and hangs.
  const stuck = getJson(g.ready.http, '/grid/jobs/not-in-memory-0001').catch(() => undefined)
  await waitFor(() => proxy.droppedBytes() > 0, 'the read\'s query sent to the frozen database')
  const t0 = Date.now()
  const code = await c.kill(g, 'SIGTERM')
  const ms = Date.now() - t0
  await stuck
  assert.equal(code, 1, `a hung stop must not exit 0; stderr:\n${g.stderr()}`)
  const line = /voike: shutdown hung: forced exit \d+ ms after SIGTERM, still in step: (.+)/.exec(g.stderr())
  assert.ok(line !== null, `the forced exit says so; stderr:\n${g.stderr()}`)
  t.diagnostic(`the stop hung in: ${line[1]}`)
  assert.notEqual(line[1], 'unknown', 'it names the step that hung')
  assert.match(line[1], /^(leave announcement|gRPC close|HTTP close|membership ticker|service close( \(\w+\))?|actor system shutdown|mesh stop|store close)$/, 'a step of the stop')
  assert.ok(ms >= 4000, `forced only after the grace period (${ms} ms)`)
})
