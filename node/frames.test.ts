/**
 * Bad frames on the actor protocol of a real node process, sent AFTER a real Noise handshake by a
 * raw libp2p peer (TCP + Noise + Yamux, as bench/baselines/raw-libp2p.ts builds one), so that
 * they reach VOIKE's frame decoder. Each case must count exactly once in the node's own
 * `voike_p2p_bad_frames_total` and reset only its own stream: a second stream on the same
 * connection keeps carrying asks and their replies, and the node still runs jobs.
 */
import './polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, Stream } from '@libp2p/interface'
import { ACTOR_PROTOCOL, encodeFrame, FrameDecoder } from '../mesh/index.js'
import { Cluster, getJson, postJson, waitFor, type NodeProc } from './testkit.js'
import { metricValue, scrape } from './faultkit.js'
import { FIB_REFERENCE } from '../actors/kinds/fib/reference.js'
import type { JobView } from '../actors/scheduler/api.js'

const PROCESS_TEST_MS = 120_000
/** The node under test refuses frames above this (`--max-frame-bytes`). */
const MAX_FRAME_BYTES = 65_536

/** A raw libp2p peer talking VOIKE's actor protocol by hand: every reply it reads, by ask id. */
class RawPeer {
  readonly replies = new Map<number, Record<string, unknown>>()
  private nextId = 1

  private constructor (readonly node: Libp2p) {}

  static async create (): Promise<RawPeer> {
    const node = await createLibp2p({
      addresses: { listen: [] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()]
    })
    const peer = new RawPeer(node)
    // The node answers on a stream of its choosing, possibly one it opens to us.
    await node.handle(ACTOR_PROTOCOL, (stream) => { peer.read(stream) }, { maxInboundStreams: 16 })
    return peer
  }

  read (stream: Stream): void {
    const decoder = new FrameDecoder(4 * 1024 * 1024)
    stream.addEventListener('message', (evt) => {
      const chunks = evt.data instanceof Uint8Array ? [evt.data] : [...evt.data]
      for (const chunk of chunks) {
        decoder.push(chunk, (msg) => {
          const m = msg as Record<string, unknown>
          if ((m.k === 'o' || m.k === 'e') && typeof m.id === 'number') this.replies.set(m.id, m)
        })
      }
    })
  }

  async open (conn: Connection): Promise<Stream> {
    const stream = await conn.newStream(ACTOR_PROTOCOL)
    this.read(stream)
    return stream
  }

  /** Sends an ask to the node's scheduler on `stream` and waits for its reply (on any stream). */
  async ask (stream: Stream, padding = ''): Promise<Record<string, unknown>> {
    const id = this.nextId++
    stream.send(encodeFrame({ k: 'a', to: 'scheduler', id, b: { type: 'get', id: 'no-such-job', padding }, f: 'frames-test' }, 4 * 1024 * 1024))
    return await waitFor(() => this.replies.get(id), `the reply to ask ${id}`, 15_000, 10)
  }
}

/** The frame bytes of a varint length followed by `payload`. */
function rawFrame (length: number, payload: Uint8Array): Uint8Array {
  const prefix: number[] = []
  let n = length
  while (n >= 0x80) { prefix.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) }
  prefix.push(n)
  return Buffer.concat([Buffer.from(prefix), payload])
}

test('bad frames after a real handshake: each counted once, only its stream reset, the connection and the node go on', { timeout: PROCESS_TEST_MS }, async (t) => {
  const c = new Cluster()
  const raw = await RawPeer.create()
  t.after(async () => { await raw.node.stop(); await c.stopAll() })
  const g: NodeProc = await c.start('genesis', { extraArgs: ['--max-frame-bytes', String(MAX_FRAME_BYTES)] })
  const conn = await raw.node.dial(multiaddr(g.ready.p2p[0]))
  const control = await raw.open(conn)
  const first = await raw.ask(control)
  assert.ok(first.k === 'o' || first.k === 'e', 'the scheduler answers an ask')
  assert.equal(metricValue(await scrape(g), 'voike_p2p_bad_frames_total'), 0)

  const cases: Array<[string, Uint8Array]> = [
    ['garbage bytes', Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x13, 0x37])],
    ['an oversized frame length', rawFrame(MAX_FRAME_BYTES + 1, Buffer.from([0x90]))],
    ['a whole frame over --max-frame-bytes', encodeFrame({ k: 't', to: 'scheduler', b: 'x'.repeat(MAX_FRAME_BYTES + 100) }, 4 * MAX_FRAME_BYTES)],
    ['bad msgpack', rawFrame(3, Buffer.from([0xc1, 0xc1, 0xc1]))],
    ['valid msgpack that is not an envelope', encodeFrame({ hello: 'world', k: 'zz' }, 1024)],
    ['valid msgpack that is not even an object', encodeFrame([1, 2, 3], 1024)]
  ]
  for (const [what, bytes] of cases) {
    const before = metricValue(await scrape(g), 'voike_p2p_bad_frames_total')
    const victim = await raw.open(conn)
    victim.send(bytes)
    await waitFor(() => victim.status === 'reset', `${what}: its stream reset by the node`, 15_000, 10)
    // The other stream on the same connection still carries an ask and its reply.
    await raw.ask(control)
    assert.equal(control.status, 'open', `${what}: the other stream is open`)
    assert.equal(conn.status, 'open', `${what}: the connection is open`)
    assert.deepEqual(raw.node.getConnections(conn.remotePeer), [conn], `${what}: still the one connection`)
    assert.equal(metricValue(await scrape(g), 'voike_p2p_bad_frames_total'), before + 1, `${what}: counted exactly once`)
  }

  // A frame just under --max-frame-bytes is accepted and answered.
  const big = await raw.ask(control, 'y'.repeat(MAX_FRAME_BYTES - 200))
  assert.ok(big.k === 'o' || big.k === 'e')
  assert.equal(metricValue(await scrape(g), 'voike_p2p_bad_frames_total'), cases.length)

  // And the node still runs jobs, exactly.
  assert.equal((await getJson(g.ready.http, '/health')).status, 200)
  const ref = FIB_REFERENCE.find(r => r.n === 5000)
  assert.ok(ref !== undefined)
  const submitted = await postJson<JobView>(g.ready.http, '/grid/jobs', { kind: 'fib', params: { n: 5000, segments: 4 } })
  assert.equal(submitted.status, 201, JSON.stringify(submitted.body))
  const done = await waitFor(async () => {
    const j = (await getJson<JobView>(g.ready.http, `/grid/jobs/${submitted.body.id}`)).body
    return j.status === 'succeeded' || j.status === 'failed' ? j : undefined
  }, 'the job end')
  assert.deepEqual(done.result, ref)
})
