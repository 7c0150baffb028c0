/**
 * Raw TCP sockets that never handshake must not keep peers out of a mesh, and must not stay open.
 *
 * The flood comes from 127.0.0.2 and the joining peer from 127.0.0.1 (both loopback on Linux):
 * the mesh bounds pending handshakes per remote address, so a flood from one address leaves room
 * for everybody else. Nothing here asserts a duration: each wait is for a condition, with a
 * generous bound, and the dial gets one attempt with a 20 s timeout (before the fix it failed at
 * once, refused because the flood held every pending slot).
 */
import '../node/polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Registry } from 'prom-client'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createMesh, type Mesh } from './index.js'
import { startRawFlood, type RawFlood } from './raw-flood.js'

const FLOOD_SOCKETS = 300
const FLOOD_FROM = '127.0.0.2'

async function waitFor (cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

interface TestPeer { mesh: Mesh, got: Array<{ from: string, msg: unknown }>, registry: Registry }

async function peer (dialTimeoutMs?: number): Promise<TestPeer> {
  const got: TestPeer['got'] = []
  const registry = new Registry()
  const mesh = await createMesh({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    registry,
    dialTimeoutMs,
    onMessage: (from, msg) => { got.push({ from, msg }) }
  })
  return { mesh, got, registry }
}

function tcpPort (mesh: Mesh): number {
  const port = Number(multiaddr(mesh.addrs()[0]).getComponents().find(c => c.name === 'tcp')?.value)
  assert.ok(Number.isInteger(port) && port > 0, `no tcp port in ${mesh.addrs()[0]}`)
  return port
}

async function counter (registry: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const m = await registry.getSingleMetric(name)?.get()
  return m?.values.find(v => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value
}

/** One dial (no retry) from `joiner` to `seed`, then a frame each way. */
async function joinAndExchange (joiner: TestPeer, seed: TestPeer): Promise<void> {
  const remote = await joiner.mesh.dial(seed.mesh.addrs()[0])
  assert.equal(remote, seed.mesh.peerId)
  joiner.mesh.send(seed.mesh.peerId, { hello: 'from a new member' })
  await waitFor(() => seed.got.some(g => g.from === joiner.mesh.peerId), 'the seed receives the frame')
  seed.mesh.send(joiner.mesh.peerId, { welcome: true })
  await waitFor(() => joiner.got.some(g => g.from === seed.mesh.peerId), 'the joiner receives the reply')
}

test('300 raw sockets held open neither keep a new peer out nor stay open', { timeout: 60_000 }, async (t) => {
  const seed = await peer()
  const joiner = await peer(20_000)
  let flood: RawFlood | undefined
  t.after(async () => { await flood?.stop(); await joiner.mesh.stop(); await seed.mesh.stop() })

  flood = startRawFlood({ host: '127.0.0.1', port: tcpPort(seed.mesh), localAddress: FLOOD_FROM, count: FLOOD_SOCKETS })
  const f = flood
  await waitFor(() => f.settled() === FLOOD_SOCKETS, 'every flood socket connected')
  // 64 was the most handshakes the seed ever held at once: at or below it, the seed has seen the
  // flood and holds every pending slot the flood can get.
  await waitFor(() => f.open() <= 64, 'the seed to refuse the sockets it will not hold')
  t.diagnostic(`flood sockets still open when the peer dials: ${f.open()}`)

  await joinAndExchange(joiner, seed)

  // Idle handshakes are closed by the seed, not left to the flood: every socket ends.
  await waitFor(() => f.closedByServer() === FLOOD_SOCKETS, 'the seed to close every idle socket')
  assert.equal(f.open(), 0)
  assert.ok((await counter(seed.registry, 'voike_p2p_inbound_rejected_total', { reason: 'addr_limit' }) ?? 0) >= 1, 'refusals counted')
  assert.ok((await counter(seed.registry, 'voike_p2p_inbound_rejected_total', { reason: 'handshake_timeout' }) ?? 0) >= 1, 'timeouts counted')
})

test('raw sockets reopened as soon as they are closed do not keep a new peer out', { timeout: 60_000 }, async (t) => {
  const seed = await peer()
  const joiner = await peer(20_000)
  let flood: RawFlood | undefined
  t.after(async () => { await flood?.stop(); await joiner.mesh.stop(); await seed.mesh.stop() })

  flood = startRawFlood({ host: '127.0.0.1', port: tcpPort(seed.mesh), localAddress: FLOOD_FROM, count: FLOOD_SOCKETS, reconnectDelayMs: 500 })
  const f = flood
  await waitFor(() => f.settled() >= FLOOD_SOCKETS, 'every flood socket connected')
  await waitFor(() => f.closedByServer() >= FLOOD_SOCKETS - 64, 'the seed to refuse the sockets it will not hold')
  await joinAndExchange(joiner, seed)
  // The flood is still running: the seed keeps refusing it while serving the new peer.
  const before = f.closedByServer()
  await waitFor(() => f.closedByServer() > before, 'the seed to keep closing reopened sockets')
  t.diagnostic(`flood sockets opened: ${f.opened()}, closed by the seed: ${f.closedByServer()}`)
})
