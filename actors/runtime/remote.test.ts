import '../../config/polyfill.js'
import { describe, it, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { gate, rejectsWithCode, waitFor } from '../testing/rig.js'
import { Registry } from 'prom-client'
import {
  createActorSystem, createLoopbackTransports, ActorError, ReplyError,
  type Actor, type ActorSystem, type Envelope, type LoopbackNetwork, type MessageContext, type Transport
} from './index.js'

async function waitForMetric (registry: Registry, re: RegExp, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let text = ''
  while (!re.test(text = await registry.metrics())) {
    if (Date.now() > deadline) assert.fail(`metric ${String(re)} not found in:\n${text}`)
    await new Promise(resolve => setTimeout(resolve, 2))
  }
}

const systems: ActorSystem[] = []
afterEach(async () => {
  for (const s of systems.splice(0)) await s.shutdown({ timeoutMs: 2000 })
})

interface Node { system: ActorSystem, registry: Registry }

function linked (peerIds: string[], options: { defaultMailboxCapacity?: number } = {}): { net: LoopbackNetwork, nodes: Record<string, Node> } {
  const net = createLoopbackTransports()
  const nodes: Record<string, Node> = {}
  for (const peerId of peerIds) {
    const registry = new Registry()
    const system = createActorSystem({ peerId, registry, transport: net.transport(peerId), ...options })
    net.attach(system)
    systems.push(system)
    nodes[peerId] = { system, registry }
  }
  return { net, nodes }
}

/** A transport that records what it is asked to send. */
function recordingTransport (): Transport & { sent: Array<{ peerId: string, env: Envelope }> } {
  const sent: Array<{ peerId: string, env: Envelope }> = []
  return { sent, send (peerId, env) { sent.push({ peerId, env }) } }
}

const service = (): Actor => ({
  receive (msg: { op: string, a?: number, b?: number }) {
    switch (msg.op) {
      case 'add': return (msg.a ?? 0) + (msg.b ?? 0)
      case 'invalid': throw new ReplyError('ERR_VALIDATION', 'a must be positive')
      case 'crash': throw new Error('remote kaboom')
      case 'huge': return 2n ** 70n // msgpack cannot encode it
      default: return undefined
    }
  }
})

describe('remote delivery over the msgpack loopback', () => {
  it('remote tell arrives serialized, with the sender ref', { timeout: 60_000 }, async () => {
    const { nodes } = linked(['A', 'B'])
    const got: Array<{ msg: unknown, sender: unknown }> = []
    nodes.B.system.spawn('collector', () => ({
      receive (msg: unknown, ctx: MessageContext) { got.push({ msg, sender: ctx.sender === undefined ? undefined : { ...ctx.sender } }) }
    }))
    const msg = { n: 1, s: 'héllo', list: [1, 2, { deep: true }], bytes: new Uint8Array([1, 2, 3]), big: 12345678901234n }
    const to = nodes.A.system.ref('B', 'collector')
    nodes.A.system.tell(to, msg, 'src')
    nodes.A.system.tell(to, 'second')
    await waitFor(() => got.length === 2, 'two remote tells')
    const first = got[0].msg as typeof msg
    assert.notEqual(first, msg, 'a copy, not the same object')
    assert.deepEqual({ ...first, bytes: undefined }, { ...msg, bytes: undefined })
    assert.deepEqual([...first.bytes], [1, 2, 3])
    assert.deepEqual(got[0].sender, { peerId: 'A', name: 'src' })
    assert.equal(got[1].msg, 'second')
    assert.equal(got[1].sender, undefined)
  })

  it('remote ask: reply, ReplyError, crash, missing actor, unencodable reply', { timeout: 60_000 }, async () => {
    const { nodes } = linked(['A', 'B'])
    nodes.B.system.spawn('svc', service)
    const a = nodes.A.system
    const svc = a.ref('B', 'svc')
    assert.equal(await a.ask(svc, { op: 'add', a: 2, b: 40 }), 42)
    const invalid = await rejectsWithCode(a.ask(svc, { op: 'invalid' }), 'ERR_VALIDATION')
    assert.ok(invalid instanceof ReplyError)
    assert.equal(invalid.message, 'a must be positive')
    const crashed = await rejectsWithCode(a.ask(svc, { op: 'crash' }), 'ERR_ACTOR_CRASHED')
    assert.ok(crashed instanceof ActorError)
    assert.match(crashed.message, /remote kaboom/)
    await rejectsWithCode(a.ask(a.ref('B', 'nobody'), { op: 'add' }), 'ERR_NO_SUCH_ACTOR')
    await rejectsWithCode(a.ask(svc, { op: 'huge' }), 'ERR_REPLY_FAILED')
    // After the crash the supervisor restarted it.
    await waitFor(() => nodes.B.system.actorNames().includes('svc'), 'svc present')
    assert.equal(await a.ask(svc, { op: 'add', a: 1, b: 1 }), 2)
    assert.equal(a.pendingAskCount(), 0)
  })

  it('remote ask to a full mailbox → ERR_MAILBOX_FULL; remote tell to a missing actor is a dead letter', { timeout: 60_000 }, async () => {
    const { net, nodes } = linked(['A', 'B'])
    const g = gate()
    nodes.B.system.spawn('slow', () => ({ async receive () { await g.promise } }), { mailboxCapacity: 1 })
    const a = nodes.A.system
    const slow = a.ref('B', 'slow')
    const p1 = a.ask(slow, 1) // in progress
    await waitFor(() => net.stats.delivered === 1 && nodes.B.system.mailboxDepth('slow') === 0, 'in progress')
    const p2 = a.ask(slow, 2) // waits in the mailbox
    await waitFor(() => nodes.B.system.mailboxDepth('slow') === 1, 'queued')
    await rejectsWithCode(a.ask(slow, 3), 'ERR_MAILBOX_FULL')
    g.open()
    await Promise.all([p1, p2])
    a.tell(a.ref('B', 'ghost'), 'boo')
    await waitForMetric(nodes.B.registry, /voike_actor_dead_letters_total 1\b/)
  })

  it('peerDown rejects pending asks to that peer only', { timeout: 60_000 }, async () => {
    const { net, nodes } = linked(['A', 'B', 'C'])
    const g = gate()
    for (const p of ['B', 'C']) nodes[p].system.spawn('stuck', () => ({ async receive () { await g.promise; return 'ok' } }))
    const a = nodes.A.system
    const toB = a.ask(a.ref('B', 'stuck'), 1, { timeoutMs: 60_000 })
    const toC = a.ask(a.ref('C', 'stuck'), 1, { timeoutMs: 60_000 })
    await waitFor(() => nodes.B.system.mailboxDepth('stuck') === 0 && nodes.C.system.mailboxDepth('stuck') === 0 && net.stats.delivered === 2, 'both delivered')
    net.down('B')
    await rejectsWithCode(toB, 'ERR_PEER_GONE')
    assert.equal(a.pendingAskCount(), 1)
    assert.throws(() => { a.tell(a.ref('B', 'stuck'), 1) }, (err: unknown) => (err as ActorError).code === 'ERR_PEER_UNREACHABLE')
    g.open()
    assert.equal(await toC, 'ok')
  })

  it('remote ask timeout; a late reply is ignored', { timeout: 60_000 }, async () => {
    const { net, nodes } = linked(['A', 'B'])
    const g = gate()
    let done = 0
    nodes.B.system.spawn('slow', () => ({ async receive () { await g.promise; done++; return 'late' } }))
    const a = nodes.A.system
    await rejectsWithCode(a.ask(a.ref('B', 'slow'), 1, { timeoutMs: 20 }), 'ERR_ASK_TIMEOUT')
    g.open()
    await waitFor(() => done === 1, 'B finished')
    await net.idle()
    assert.equal(a.pendingAskCount(), 0)
  })

  it('counts out messages by target name and in messages on the receiver', { timeout: 60_000 }, async () => {
    const { nodes } = linked(['A', 'B'])
    nodes.B.system.spawn('svc', service)
    const a = nodes.A.system
    a.tell(a.ref('B', 'svc'), { op: 'noop' })
    await a.ask(a.ref('B', 'svc'), { op: 'add' })
    assert.match(await nodes.A.registry.metrics(), /voike_actor_messages_total\{actor="svc",direction="out"\} 2/)
    assert.match(await nodes.B.registry.metrics(), /voike_actor_messages_total\{actor="svc",direction="in"\} 2/)
  })

  it('sustains a few thousand remote asks in flight (sanity, no timing assertion)', { timeout: 60_000 }, async (t) => {
    const { nodes } = linked(['A', 'B'], { defaultMailboxCapacity: 8192 })
    nodes.B.system.spawn('svc', service)
    const a = nodes.A.system
    const svc = a.ref('B', 'svc')
    const t0 = performance.now()
    const results = await Promise.all(Array.from({ length: 5000 }, async (_, i) => await a.ask(svc, { op: 'add', a: i, b: 1 })))
    const ms = performance.now() - t0
    t.diagnostic(`5000 remote asks over msgpack loopback in ${ms.toFixed(1)} ms`)
    assert.deepEqual(results, Array.from({ length: 5000 }, (_, i) => i + 1))
  })
})

describe('receiveRemote directly', () => {
  it('matches replies by id and peer; a reply from the wrong peer is ignored', { timeout: 60_000 }, async () => {
    const t = recordingTransport()
    const registry = new Registry()
    const a = createActorSystem({ peerId: 'A', registry, transport: t })
    systems.push(a)
    const p = a.ask(a.ref('B', 'svc'), 'hello', { from: 'me' })
    assert.equal(t.sent.length, 1)
    const { peerId, env } = t.sent[0]
    assert.equal(peerId, 'B')
    assert.equal(env.k, 'a')
    if (env.k !== 'a') return
    assert.equal(env.to, 'svc')
    assert.equal(env.b, 'hello')
    assert.equal(env.f, 'me')
    a.receiveRemote('C', { k: 'o', id: env.id, b: 'forged' })
    a.receiveRemote('B', { k: 'o', id: env.id + 1, b: 'wrong id' })
    assert.equal(a.pendingAskCount(), 1)
    a.receiveRemote('B', { k: 'o', id: env.id, b: 'real' })
    assert.equal(await p, 'real')
    const q = a.ask(a.ref('B', 'svc'), 'x')
    const env2 = t.sent[1].env
    if (env2.k !== 'a') assert.fail('expected an ask')
    a.receiveRemote('B', { k: 'e', id: env2.id, e: { code: 'ERR_CUSTOM', message: 'nope' } })
    const err = await rejectsWithCode(q, 'ERR_CUSTOM')
    assert.ok(err instanceof ReplyError)
    assert.equal(err.message, 'nope')
  })

  it('answers incoming asks through the transport with the same id', { timeout: 60_000 }, async () => {
    const t = recordingTransport()
    const b = createActorSystem({ peerId: 'B', registry: new Registry(), transport: t })
    systems.push(b)
    b.spawn('echo', () => ({ receive: (m: unknown, ctx: MessageContext) => ({ m, from: ctx.sender?.name, peer: ctx.sender?.peerId }) }))
    b.receiveRemote('A', { k: 'a', to: 'echo', id: 77, b: 'hi', f: 'asker' })
    b.receiveRemote('A', { k: 'a', to: 'nobody', id: 78, b: 'hi' })
    await waitFor(() => t.sent.length === 2, 'two replies')
    const byId = new Map(t.sent.map(s => [(s.env as { id: number }).id, s]))
    assert.deepEqual(byId.get(77), { peerId: 'A', env: { k: 'o', id: 77, b: { m: 'hi', from: 'asker', peer: 'A' } } })
    const miss = byId.get(78)
    assert.equal(miss?.peerId, 'A')
    assert.equal(miss?.env.k, 'e')
    assert.equal((miss?.env as { e: { code: string } }).e.code, 'ERR_NO_SUCH_ACTOR')
  })

  it('never throws on garbage; counts and drops it', { timeout: 60_000 }, async () => {
    const t = recordingTransport()
    const registry = new Registry()
    const b = createActorSystem({ peerId: 'B', registry, transport: t })
    systems.push(b)
    b.spawn('echo', () => ({ receive: (m: unknown) => m }))
    const cyclic: Record<string, unknown> = { k: 't' }
    cyclic.to = cyclic
    const throwingGetter = Object.defineProperty({}, 'k', { get () { throw new Error('getter') } })
    const garbage: unknown[] = [
      null, undefined, 0, 42, 'string', true, [], ['t', 'echo'], {}, { k: 'x' }, { k: 7 },
      { k: 't' }, { k: 't', to: 5 }, { k: 't', to: '' }, { k: 't', to: 'bad name' }, { k: 't', to: 'echo', f: 9 },
      { k: 'a', to: 'echo' }, { k: 'a', to: 'echo', id: -1 }, { k: 'a', to: 'echo', id: 1.5 }, { k: 'a', to: 'echo', id: '1' },
      { k: 'a', to: 'echo', id: 2 ** 40 }, { k: 'o' }, { k: 'o', id: null }, { k: 'e', id: 1 }, { k: 'e', id: 1, e: null },
      { k: 'e', id: 1, e: { code: 5, message: 'x' } }, { k: 'e', id: 1, e: { code: 'X' } }, cyclic, throwingGetter
    ]
    for (const g of garbage) assert.doesNotThrow(() => { b.receiveRemote('A', g as Envelope) })
    for (const peer of [undefined, null, '', 42, 'x'.repeat(300)]) {
      assert.doesNotThrow(() => { b.receiveRemote(peer as string, { k: 't', to: 'echo', b: 1 }) })
    }
    const expected = garbage.length + 5
    assert.match(await registry.metrics(), new RegExp(`voike_actor_bad_envelopes_total ${expected}\\b`))
    // Unmatched replies are ignored, not counted as bad.
    assert.doesNotThrow(() => { b.receiveRemote('A', { k: 'o', id: 12345, b: 1 }) })
    // Still works.
    b.receiveRemote('A', { k: 'a', to: 'echo', id: 1, b: 'ok' })
    await waitFor(() => t.sent.length === 1, 'reply')
    assert.deepEqual(t.sent[0], { peerId: 'A', env: { k: 'o', id: 1, b: 'ok' } })
    assert.equal(t.sent.length, 1, 'no reply for any garbage')
  })

  it('transport errors propagate to tell and reject the ask', { timeout: 60_000 }, async () => {
    const failing: Transport = { send () { throw new ActorError('ERR_QUEUE_FULL', 'queue full') } }
    const a = createActorSystem({ peerId: 'A', registry: new Registry(), transport: failing })
    systems.push(a)
    assert.throws(() => { a.tell(a.ref('B', 'x'), 1) }, (err: unknown) => (err as ActorError).code === 'ERR_QUEUE_FULL')
    await rejectsWithCode(a.ask(a.ref('B', 'x'), 1), 'ERR_QUEUE_FULL')
    assert.equal(a.pendingAskCount(), 0)
  })
})
