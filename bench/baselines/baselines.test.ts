import '../../node/polyfill.js'
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { killAllPeers, livePeerCount, rssBytesOf, spawnNodePeer, startPeer } from '../proc.js'
import { measureRtt, type EchoClient } from '../echo.js'
import { connectRawTcp } from './raw-tcp.js'
import { connectRawLibp2p } from './raw-libp2p.js'
import { connectMoleculer } from './moleculer.js'
import { connectRawGrpc } from './raw-grpc.js'
import { runPiscinaNoops } from './piscina.js'

after(async () => { await killAllPeers() })

/**
 * Many calls in flight, then sequential ones: every echo must come back, matched to its own id
 * (the clients resolve a call only on the reply carrying its id). Function only: speed is the
 * benches' business (a loaded machine may complete no call in a short window).
 */
async function exercise (client: EchoClient): Promise<void> {
  await Promise.all(Array.from({ length: 300 }, async () => { await client.echo() }))
  for (let i = 0; i < 20; i++) await client.echo()
  const rtt = await measureRtt(client.echo, { count: 5, warmup: 0 })
  assert.ok(Number.isFinite(rtt.p50Us) && rtt.p99Us >= rtt.p50Us, 'the measurement runs and is ordered')
}

test('raw TCP echo peer', { timeout: 120_000 }, async () => {
  const { peer, ready } = await startPeer('raw-tcp', 'baselines/raw-tcp.js', ['serve'])
  const client = await connectRawTcp(ready.port as number)
  await exercise(client)
  await client.close()
  await peer.kill()
})

test('raw libp2p echo peer, and a joiner seen by its seed', { timeout: 120_000 }, async () => {
  const { peer, ready } = await startPeer('raw-libp2p', 'baselines/raw-libp2p.js', ['serve'])
  const addr = (ready.multiaddrs as string[])[0]!
  assert.match(addr, /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)
  const client = await connectRawLibp2p(addr)
  await exercise(client)
  await client.close()

  const joiner = spawnNodePeer('joiner', 'baselines/raw-libp2p.js', ['join', '--peer', addr])
  const j = await joiner.waitForEvent('ready', 30_000)
  await peer.waitFor((e) => e.event === 'peer:connect' && e.peerId === j.peerId, 30_000, 'peer:connect')
  assert.ok(await rssBytesOf(joiner.pid) > 0)
  await joiner.kill()
  await peer.kill()
})

test('Moleculer echo peer', { timeout: 120_000 }, async () => {
  const { peer, ready } = await startPeer('moleculer', 'baselines/moleculer.js', ['serve'])
  const client = await connectMoleculer(ready.port as number, ready.nodeID as string)
  await exercise(client)
  await client.close()
  await peer.kill()
})

test('gRPC echo peer', { timeout: 120_000 }, async () => {
  const { peer, ready } = await startPeer('raw-grpc', 'baselines/raw-grpc.js', ['serve'])
  const client = await connectRawGrpc(ready.port as number)
  await exercise(client)
  await client.close()
  await peer.kill()
})

test('bare Piscina runs no-op tasks', { timeout: 120_000 }, async () => {
  // Every task comes back with its own input (runPiscinaNoops checks each); no rate is asserted.
  assert.equal(await runPiscinaNoops({ threads: 1, concurrentTasksPerWorker: 4, inFlight: 8, tasks: 500 }), 500)
})

test('a peer that exits is reported, and none are left', { timeout: 120_000 }, async () => {
  // Its usage error is expected: captured into the rejection, not printed into the test output.
  const peer = spawnNodePeer('bad', 'baselines/raw-tcp.js', ['nonsense'], { stderr: 'capture' })
  await assert.rejects(peer.waitForEvent('ready', 30_000), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_PEER_EXITED')
    assert.match(err.message, /usage: raw-tcp\.js serve/)
    return true
  })
  assert.equal(livePeerCount(), 0)
})
