import '../config/polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { Registry } from 'prom-client'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createMesh, ACTOR_PROTOCOL, encodeFrame, FrameDecoder, type Mesh } from './index.js'

async function waitFor (cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

interface TestPeer { mesh: Mesh, got: Array<{ from: string, msg: unknown }>, registry: Registry }

async function peer (maxFrameSizeBytes?: number): Promise<TestPeer> {
  const got: TestPeer['got'] = []
  const registry = new Registry()
  const mesh = await createMesh({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    registry,
    maxFrameSizeBytes,
    onMessage: (from, msg) => { got.push({ from, msg }) }
  })
  return { mesh, got, registry }
}

async function metricValue (registry: Registry, name: string): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get()
  return (m?.values ?? []).reduce((a, v) => a + v.value, 0)
}

test('FrameDecoder reassembles frames split at any byte and rejects oversize and garbage', { timeout: 60_000 }, () => {
  const frames = [encodeFrame({ a: 1 }, 1024), encodeFrame('x'.repeat(300), 1024), encodeFrame([1, 2, 3], 1024)]
  const all = Buffer.concat(frames)
  for (let cut = 1; cut < all.length; cut++) {
    const out: unknown[] = []
    const d = new FrameDecoder(1024)
    d.push(all.subarray(0, cut), m => out.push(m))
    d.push(all.subarray(cut), m => out.push(m))
    assert.deepEqual(out, [{ a: 1 }, 'x'.repeat(300), [1, 2, 3]])
    assert.equal(d.bufferedBytes, 0)
  }
  assert.throws(() => new FrameDecoder(10).push(encodeFrame('y'.repeat(50), 1024), () => {}), { code: 'ERR_FRAME_TOO_LARGE' })
  assert.throws(() => new FrameDecoder(1024).push(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), () => {}), { code: 'ERR_BAD_FRAME' })
  assert.throws(() => new FrameDecoder(1024).push(Buffer.from([0x00]), () => {}), { code: 'ERR_BAD_FRAME' })
  assert.throws(() => new FrameDecoder(1024).push(Buffer.from([0x02, 0xc1, 0xc1]), () => {}), { code: 'ERR_BAD_FRAME' })
  assert.throws(() => encodeFrame('z'.repeat(2000), 1024), { code: 'ERR_FRAME_TOO_LARGE' })
})

test('two meshes exchange ordered messages over one stream, both ways', { timeout: 60_000 }, async (t) => {
  const a = await peer()
  const b = await peer()
  t.after(async () => { await a.mesh.stop(); await b.mesh.stop() })
  await a.mesh.addPeerAddrs(b.mesh.peerId, b.mesh.addrs())
  const count = 5000
  for (let i = 0; i < count; i++) a.mesh.send(b.mesh.peerId, { i })
  await waitFor(() => b.got.length === count, 'all frames at b')
  assert.deepEqual(b.got.map(g => (g.msg as { i: number }).i), Array.from({ length: count }, (_, i) => i))
  assert.ok(b.got.every(g => g.from === a.mesh.peerId))
  b.mesh.send(a.mesh.peerId, { back: true })
  await waitFor(() => a.got.length === 1, 'reply at a')
  assert.deepEqual(a.got[0], { from: b.mesh.peerId, msg: { back: true } })
  assert.equal(a.mesh.libp2p.getConnections().length, 1)
  // Coalescing: far fewer streams than messages, one stream per direction at most.
  const streams = a.mesh.libp2p.getConnections()[0].streams.filter(s => s.protocol === ACTOR_PROTOCOL)
  assert.ok(streams.length >= 1 && streams.length <= 2, `streams: ${streams.length}`)
})

test('garbage, a handshake followed by garbage, and oversized frames leave the node healthy', { timeout: 60_000 }, async (t) => {
  const victim = await peer(64 * 1024)
  const friend = await peer()
  const attacker = await peer()
  t.after(async () => { await victim.mesh.stop(); await friend.mesh.stop(); await attacker.mesh.stop() })
  const addr = victim.mesh.addrs()[0]
  const parts = multiaddr(addr).getComponents()
  const host = parts.find(c => c.name === 'ip4')?.value ?? '127.0.0.1'
  const port = Number(parts.find(c => c.name === 'tcp')?.value)

  // 1. Random bytes straight at the TCP port.
  await new Promise<void>((resolve) => {
    const sock = connect(port, host, () => { sock.write(Buffer.from(Array.from({ length: 4096 }, () => Math.floor(Math.random() * 256)))) })
    sock.on('error', () => resolve())
    sock.on('close', () => resolve())
    setTimeout(() => sock.destroy(), 2000).unref()
  })

  // Random bytes never reach the frame decoder (no handshake): nothing counted.
  assert.equal(await metricValue(victim.registry, 'voike_p2p_bad_frames_total'), 0)

  // 2-4. After a real handshake, on the actor protocol: each case counts exactly once and resets
  // its own stream (the count is read per case, so one case counted twice cannot hide another).
  const cases: Array<[string, Uint8Array]> = [
    ['garbage bytes (a length prefix that never ends)', Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])],
    ['an oversized frame (declared length beyond the limit)', encodeFrame('q'.repeat(200 * 1024), 1024 * 1024)],
    ['valid framing around undecodable msgpack', Buffer.from([0x03, 0xc1, 0xc1, 0xc1])]
  ]
  for (const [what, bytes] of cases) {
    const before = await metricValue(victim.registry, 'voike_p2p_bad_frames_total')
    const stream = await attacker.mesh.libp2p.dialProtocol(multiaddr(addr), ACTOR_PROTOCOL)
    stream.send(bytes)
    await waitFor(() => stream.status === 'reset', `${what}: its stream reset`)
    assert.equal(await metricValue(victim.registry, 'voike_p2p_bad_frames_total'), before + 1, `${what}: counted once`)
  }

  // The victim still serves well-behaved peers, and nothing garbage reached the handler.
  await friend.mesh.addPeerAddrs(victim.mesh.peerId, victim.mesh.addrs())
  friend.mesh.send(victim.mesh.peerId, { hello: 'still alive' })
  await waitFor(() => victim.got.some(g => g.from === friend.mesh.peerId), 'friend message')
  assert.deepEqual(victim.got.map(g => g.msg), [{ hello: 'still alive' }])
  victim.mesh.send(friend.mesh.peerId, 'pong')
  await waitFor(() => friend.got.length === 1, 'victim answers')
  assert.equal(await metricValue(victim.registry, 'voike_p2p_bad_frames_total'), cases.length, 'good traffic is not counted')
})

test('checkMessage: a frame that decodes but is no protocol message is a bad frame; the next stream works', { timeout: 60_000 }, async (t) => {
  const got: unknown[] = []
  const registry = new Registry()
  const victim = await createMesh({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    registry,
    checkMessage: (m) => typeof m === 'object' && m !== null && !Array.isArray(m) ? undefined : 'not an object',
    onMessage: (_from, msg) => { got.push(msg) }
  })
  const sender = await peer()
  t.after(async () => { await victim.stop(); await sender.mesh.stop() })
  const bad = await sender.mesh.libp2p.dialProtocol(multiaddr(victim.addrs()[0]), ACTOR_PROTOCOL)
  bad.send(encodeFrame([1, 2, 3], 1024))
  await waitFor(() => bad.status === 'reset', 'the stream of the bad message reset')
  assert.equal(await metricValue(registry, 'voike_p2p_bad_frames_total'), 1)
  const good = await sender.mesh.libp2p.dialProtocol(multiaddr(victim.addrs()[0]), ACTOR_PROTOCOL)
  good.send(encodeFrame({ ok: 1 }, 1024))
  await waitFor(() => got.length === 1, 'the good message delivered')
  assert.deepEqual(got, [{ ok: 1 }])
  assert.equal(good.status, 'open')
  assert.equal(await metricValue(registry, 'voike_p2p_bad_frames_total'), 1)
})

test('send to an unreachable peer reports the failure and drops the frames', { timeout: 60_000 }, async (t) => {
  const failures: string[] = []
  const registry = new Registry()
  const mesh = await createMesh({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    registry,
    dialTimeoutMs: 2000,
    onMessage: () => {},
    onSendFailed: (p, err) => { failures.push(`${p}:${err.code}`) }
  })
  const other = await peer()
  const gone = other.mesh.peerId
  const addrs = other.mesh.addrs()
  await other.mesh.stop()
  t.after(async () => { await mesh.stop() })
  await mesh.addPeerAddrs(gone, addrs)
  mesh.send(gone, { lost: true })
  await waitFor(() => failures.length === 1, 'send failure')
  assert.equal(failures[0], `${gone}:ERR_PEER_UNREACHABLE`)
  assert.throws(() => mesh.send(gone, 'x'.repeat(5 * 1024 * 1024)), { code: 'ERR_FRAME_TOO_LARGE' })
})
