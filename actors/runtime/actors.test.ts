import '../../config/polyfill.js'
import { describe, it, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { gate, rejectsWithCode, waitFor } from '../testing/rig.js'
import { Registry } from 'prom-client'
import {
  createActorSystem, ReplyError, type Actor, type ActorSystem, type ActorSystemOptions, type MessageContext
} from './index.js'

function throwsCode (fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => (err as { code?: string }).code === code)
}

const systems: ActorSystem[] = []
function makeSystem (extra: Partial<ActorSystemOptions> = {}): { system: ActorSystem, registry: Registry } {
  const registry = new Registry()
  const system = createActorSystem({ peerId: 'local-peer', registry, ...extra })
  systems.push(system)
  return { system, registry }
}

afterEach(async () => {
  for (const s of systems.splice(0)) await s.shutdown({ timeoutMs: 2000 })
})

/** A counter: 'inc' adds one, 'get' returns the count, 'boom' crashes, 'bad' rejects with a ReplyError. */
function counterActor (log?: { starts: number, stops: number }): Actor {
  let count = 0
  return {
    preStart () { if (log !== undefined) log.starts++ },
    receive (msg: string) {
      switch (msg) {
        case 'inc': count++; return count
        case 'get': return count
        case 'boom': throw new Error('kaboom')
        case 'bad': throw new ReplyError('ERR_VALIDATION', 'bad input')
        case 'async-inc': return Promise.resolve().then(() => ++count)
        case 'async-boom': return Promise.reject(new Error('async kaboom'))
        default: throw new ReplyError('ERR_UNKNOWN', `unknown ${msg}`)
      }
    },
    postStop () { if (log !== undefined) log.stops++ }
  }
}

describe('local tell and ask', () => {
  it('tell delivers, ask replies, async receive replies', { timeout: 60_000 }, async () => {
    const { system } = makeSystem()
    const ref = system.spawn('counter', () => counterActor())
    assert.deepEqual(ref, { peerId: 'local-peer', name: 'counter' })
    system.tell(ref, 'inc')
    system.tell(ref, 'inc')
    assert.equal(await system.ask(ref, 'get'), 2)
    assert.equal(await system.ask(ref, 'async-inc'), 3)
    assert.equal(await system.ask(ref, 'inc'), 4)
    assert.deepEqual(system.actorNames(), ['counter'])
    assert.equal(system.pendingAskCount(), 0)
  })

  it('passes local messages by reference and sets ctx.sender from `from`', { timeout: 60_000 }, async () => {
    const { system } = makeSystem()
    const seen: Array<{ msg: unknown, sender: unknown, self: unknown }> = []
    const ref = system.spawn('echo', () => ({
      receive (msg: unknown, ctx: MessageContext) {
        seen.push({ msg, sender: ctx.sender === undefined ? undefined : { ...ctx.sender }, self: ctx.self })
        return msg
      }
    }))
    system.spawn('other', () => ({ receive () {} }))
    const obj = { a: [1, 2] }
    system.tell(ref, obj, 'other')
    const back = await system.ask(ref, obj, { from: 'someone' })
    assert.equal(back, obj, 'same object, not a copy')
    assert.equal(seen[0].msg, obj)
    assert.deepEqual(seen[0].sender, { peerId: 'local-peer', name: 'other' })
    assert.deepEqual(seen[1].sender, { peerId: 'local-peer', name: 'someone' })
    assert.equal(seen[0].self, ref)
    system.tell(ref, 'x')
    await system.ask(ref, 'sync')
    assert.equal(seen[2].sender, undefined)
  })

  it('preserves order, with sync and async receives mixed', { timeout: 60_000 }, async () => {
    const { system } = makeSystem()
    const order: number[] = []
    const ref = system.spawn('ordered', () => ({
      receive (n: number) {
        if (n % 7 === 0) return new Promise<void>(resolve => setImmediate(() => { order.push(n); resolve() }))
        order.push(n)
      }
    }), { mailboxCapacity: 2000 })
    for (let i = 0; i < 1000; i++) system.tell(ref, i)
    await system.ask(ref, -1)
    assert.deepEqual(order.slice(0, 1000), Array.from({ length: 1000 }, (_, i) => i))
  })

  it('a full mailbox rejects tell and ask with ERR_MAILBOX_FULL', { timeout: 60_000 }, async () => {
    const { system } = makeSystem()
    const g = gate()
    let processed = 0
    const ref = system.spawn('slow', () => ({
      async receive () { await g.promise; processed++ }
    }), { mailboxCapacity: 2 })
    system.tell(ref, 1) // taken into processing once the actor runs, then blocked on the gate
    await waitFor(() => system.mailboxDepth('slow') === 0, 'first message taken')
    system.tell(ref, 2)
    system.tell(ref, 3)
    throwsCode(() => { system.tell(ref, 4) }, 'ERR_MAILBOX_FULL')
    await rejectsWithCode(system.ask(ref, 5), 'ERR_MAILBOX_FULL')
    assert.equal(system.pendingAskCount(), 0)
    g.open()
    await waitFor(() => processed === 3, 'three processed')
    system.tell(ref, 6) // room again
    await waitFor(() => processed === 4, 'four processed')
  })

  it('unknown actors, duplicate and invalid names', { timeout: 60_000 }, async () => {
    const { system } = makeSystem()
    throwsCode(() => { system.tell(system.ref('local-peer', 'nobody'), 1) }, 'ERR_NO_SUCH_ACTOR')
    await rejectsWithCode(system.ask(system.ref('local-peer', 'nobody'), 1), 'ERR_NO_SUCH_ACTOR')
    system.spawn('a', () => counterActor())
    throwsCode(() => system.spawn('a', () => counterActor()), 'ERR_ACTOR_EXISTS')
    for (const bad of ['', '-x', 'has space', 'x'.repeat(129), 'é']) {
      throwsCode(() => system.spawn(bad, () => counterActor()), 'ERR_INVALID_NAME')
    }
    throwsCode(() => system.spawn('b', () => ({}) as unknown as Actor), 'ERR_INVALID_ARGUMENT')
    throwsCode(() => system.spawn('c', () => counterActor(), { mailboxCapacity: 0 }), 'ERR_INVALID_OPTION')
    throwsCode(() => system.spawn('c', () => counterActor(), { supervision: { maxRestarts: -1 } }), 'ERR_INVALID_OPTION')
    throwsCode(() => { system.tell({ peerId: 'other-peer', name: 'x' }, 1) }, 'ERR_PEER_UNREACHABLE')
    await rejectsWithCode(system.ask({ peerId: 'other-peer', name: 'x' }, 1), 'ERR_PEER_UNREACHABLE')
    throwsCode(() => { system.tell(null as unknown as never, 1) }, 'ERR_INVALID_ARGUMENT')
    assert.deepEqual(system.actorNames(), ['a'])
  })

  it('validates system options', { timeout: 60_000 }, () => {
    const registry = new Registry()
    throwsCode(() => createActorSystem({ peerId: '', registry }), 'ERR_INVALID_OPTION')
    throwsCode(() => createActorSystem({ peerId: 'p', registry: {} as Registry }), 'ERR_INVALID_OPTION')
    throwsCode(() => createActorSystem({ peerId: 'p', registry, defaultMailboxCapacity: 0 }), 'ERR_INVALID_OPTION')
    throwsCode(() => createActorSystem({ peerId: 'p', registry, defaultAskTimeoutMs: 3_600_001 }), 'ERR_INVALID_OPTION')
    throwsCode(() => createActorSystem({ peerId: 'p', registry, transport: {} as never }), 'ERR_INVALID_OPTION')
    const s = createActorSystem({ peerId: 'p', registry })
    systems.push(s)
    throwsCode(() => createActorSystem({ peerId: 'q', registry }), 'ERR_INVALID_OPTION') // one system per registry
  })
})

describe('ask timeout and abort', () => {
  it('times out with ERR_ASK_TIMEOUT and cleans up', { timeout: 60_000 }, async () => {
    const { system } = makeSystem()
    const g = gate()
    const ref = system.spawn('stuck', () => ({ async receive () { await g.promise; return 'late' } }))
    await rejectsWithCode(system.ask(ref, 'x', { timeoutMs: 20 }), 'ERR_ASK_TIMEOUT')
    assert.equal(system.pendingAskCount(), 0)
    g.open()
    assert.equal(await system.ask(ref, 'y'), 'late', 'actor carries on after the timed-out ask')
  })

  it('rejects invalid timeouts', { timeout: 60_000 }, async () => {
    const { system } = makeSystem()
    const ref = system.spawn('a', () => counterActor())
    for (const timeoutMs of [0, -5, Number.NaN, Infinity, 3_600_001]) {
      await rejectsWithCode(system.ask(ref, 'get', { timeoutMs }), 'ERR_INVALID_ARGUMENT')
    }
    assert.equal(system.pendingAskCount(), 0)
  })

  it('rejects with ERR_ABORTED when the signal aborts (before or during)', { timeout: 60_000 }, async () => {
    const { system } = makeSystem()
    const g = gate()
    const ref = system.spawn('stuck', () => ({ async receive () { await g.promise } }))
    await rejectsWithCode(system.ask(ref, 'x', { signal: AbortSignal.abort() }), 'ERR_ABORTED')
    const ac = new AbortController()
    const p = system.ask(ref, 'x', { signal: ac.signal, timeoutMs: 60_000 })
    await waitFor(() => system.pendingAskCount() === 1, 'ask pending')
    ac.abort(new Error('user cancelled'))
    const err = await rejectsWithCode(p, 'ERR_ABORTED')
    assert.equal((err.cause as Error).message, 'user cancelled')
    assert.equal(system.pendingAskCount(), 0)
    g.open()
  })

  it('enforces maxPendingAsks with ERR_TOO_MANY_ASKS', { timeout: 60_000 }, async () => {
    const { system } = makeSystem({ maxPendingAsks: 2 })
    const g = gate()
    const ref = system.spawn('stuck', () => ({ async receive () { await g.promise } }))
    const p1 = system.ask(ref, 1)
    const p2 = system.ask(ref, 2)
    await rejectsWithCode(system.ask(ref, 3), 'ERR_TOO_MANY_ASKS')
    g.open()
    await Promise.all([p1, p2])
    await system.ask(ref, 4)
  })
})

describe('supervision', () => {
  it('restarts a crashed actor with fresh state; messages sent meanwhile are processed after', { timeout: 60_000 }, async () => {
    const { system, registry } = makeSystem()
    const log = { starts: 0, stops: 0 }
    const ref = system.spawn('c', () => counterActor(log), { supervision: { minBackoffMs: 30, maxBackoffMs: 30 } })
    assert.equal(await system.ask(ref, 'inc'), 1)
    assert.equal(await system.ask(ref, 'inc'), 2)
    const crashed = system.ask(ref, 'boom')
    // Queued right behind the crash: they wait in the mailbox during the backoff.
    const afterCrash = system.ask(ref, 'inc')
    system.tell(ref, 'inc')
    const err = await rejectsWithCode(crashed, 'ERR_ACTOR_CRASHED')
    assert.match(err.message, /kaboom/)
    assert.equal(await afterCrash, 1, 'state was reset by the restart')
    assert.equal(await system.ask(ref, 'get'), 2)
    assert.equal(log.starts, 2)
    assert.equal(log.stops, 1, 'postStop of the crashed instance')
    // An async crash is a crash too.
    await rejectsWithCode(system.ask(ref, 'async-boom'), 'ERR_ACTOR_CRASHED')
    assert.equal(await system.ask(ref, 'get'), 0)
    const text = await registry.metrics()
    assert.match(text, /voike_actor_restarts_total\{actor="c"\} 2/)
  })

  it('a ReplyError rejects the ask without a restart', { timeout: 60_000 }, async () => {
    const { system, registry } = makeSystem()
    const log = { starts: 0, stops: 0 }
    const ref = system.spawn('c', () => counterActor(log))
    await system.ask(ref, 'inc')
    const err = await rejectsWithCode(system.ask(ref, 'bad'), 'ERR_VALIDATION')
    assert.ok(err instanceof ReplyError)
    assert.equal(err.message, 'bad input')
    system.tell(ref, 'bad') // a ReplyError from a tell is ignored
    assert.equal(await system.ask(ref, 'get'), 1, 'state kept')
    assert.equal(log.starts, 1)
    // The series exists (from the start, at 0) and stays 0.
    assert.match(await registry.metrics(), /voike_actor_restarts_total\{actor="c"\} 0/)
  })

  it('preStart throwing counts as a crash and is retried', { timeout: 60_000 }, async () => {
    const { system } = makeSystem()
    let attempts = 0
    const ref = system.spawn('flaky', () => ({
      preStart () { if (++attempts < 3) throw new Error('not ready') },
      receive: () => attempts
    }), { supervision: { minBackoffMs: 1, maxBackoffMs: 5 } })
    assert.equal(await system.ask(ref, 'x'), 3)
  })

  it('gives up after more than maxRestarts crashes in the window', { timeout: 60_000 }, async () => {
    const givenUp: Array<{ name: string, err: Error }> = []
    const { system, registry } = makeSystem({ onGiveUp: (name, err) => { givenUp.push({ name, err }) } })
    const ref = system.spawn('fragile', () => counterActor(), { supervision: { maxRestarts: 2, windowMs: 60_000, minBackoffMs: 1, maxBackoffMs: 4 } })
    const crashes = [system.ask(ref, 'boom'), system.ask(ref, 'boom'), system.ask(ref, 'boom')]
    const queued = system.ask(ref, 'get')
    for (const c of crashes) await rejectsWithCode(c, 'ERR_ACTOR_CRASHED')
    await rejectsWithCode(queued, 'ERR_ACTOR_STOPPED')
    assert.equal(givenUp.length, 1)
    assert.equal(givenUp[0].name, 'fragile')
    assert.equal(givenUp[0].err.message, 'kaboom')
    assert.deepEqual(system.actorNames(), [])
    throwsCode(() => { system.tell(ref, 'inc') }, 'ERR_NO_SUCH_ACTOR')
    const text = await registry.metrics()
    assert.match(text, /voike_actor_giveups_total\{actor="fragile"\} 1/)
    assert.match(text, /voike_actor_restarts_total\{actor="fragile"\} 2/)
    assert.match(text, /voike_actor_dead_letters_total 1/)
    // The name is free again.
    const again = system.spawn('fragile', () => counterActor())
    assert.equal(await system.ask(again, 'inc'), 1)
  })

  it('crashes outside the window do not accumulate', { timeout: 60_000 }, async () => {
    const givenUp: string[] = []
    const { system } = makeSystem({ onGiveUp: (name) => { givenUp.push(name) } })
    const ref = system.spawn('w', () => counterActor(), { supervision: { maxRestarts: 1, windowMs: 30, minBackoffMs: 0, maxBackoffMs: 0 } })
    for (let i = 0; i < 3; i++) {
      await rejectsWithCode(system.ask(ref, 'boom'), 'ERR_ACTOR_CRASHED')
      const t0 = performance.now()
      await waitFor(() => performance.now() - t0 > 40, 'window to pass')
    }
    assert.deepEqual(givenUp, [])
    assert.equal(await system.ask(ref, 'inc'), 1)
  })
})

describe('stop and shutdown', () => {
  it('stop waits for the message in progress, dead-letters the rest, runs postStop', { timeout: 60_000 }, async () => {
    const { system } = makeSystem()
    const g = gate()
    const events: string[] = []
    const ref = system.spawn('s', () => ({
      async receive (msg: string) { await g.promise; events.push(`did ${msg}`); return msg },
      async postStop () { await Promise.resolve(); events.push('postStop') }
    }))
    const first = system.ask(ref, 'first')
    await waitFor(() => system.mailboxDepth('s') === 0, 'first in progress')
    const second = system.ask(ref, 'second')
    const stopped = system.stop('s')
    assert.deepEqual(system.actorNames(), [], 'removed at once')
    throwsCode(() => { system.tell(ref, 'x') }, 'ERR_NO_SUCH_ACTOR')
    g.open()
    await stopped
    assert.equal(await first, 'first')
    await rejectsWithCode(second, 'ERR_ACTOR_STOPPED')
    assert.deepEqual(events, ['did first', 'postStop'])
    await system.stop('s') // no-op
  })

  it('an actor can stop itself from receive', { timeout: 60_000 }, async () => {
    const { system } = makeSystem()
    let stops = 0
    const ref = system.spawn('self-stopper', () => ({
      receive (_m: unknown, ctx: MessageContext) { void ctx.system.stop(ctx.self.name); return 'bye' },
      postStop () { stops++ }
    }))
    assert.equal(await system.ask(ref, 'x'), 'bye')
    await waitFor(() => stops === 1, 'postStop')
    assert.deepEqual(system.actorNames(), [])
  })

  it('shutdown rejects pending asks with ERR_SYSTEM_STOPPED and stops every actor', { timeout: 60_000 }, async () => {
    const { system } = makeSystem()
    const g = gate()
    let stops = 0
    const ref = system.spawn('a', () => ({ async receive () { await g.promise }, postStop () { stops++ } }))
    system.spawn('b', () => ({ receive () {}, postStop () { stops++ } }))
    const p = system.ask(ref, 1, { timeoutMs: 60_000 })
    await waitFor(() => system.mailboxDepth('a') === 0, 'in progress')
    const done = system.shutdown({ timeoutMs: 2000 })
    await rejectsWithCode(p, 'ERR_SYSTEM_STOPPED')
    g.open()
    await done
    assert.equal(stops, 2)
    assert.deepEqual(system.actorNames(), [])
    throwsCode(() => { system.tell(ref, 1) }, 'ERR_SYSTEM_STOPPED')
    await rejectsWithCode(system.ask(ref, 1), 'ERR_SYSTEM_STOPPED')
    throwsCode(() => system.spawn('c', () => counterActor()), 'ERR_SYSTEM_STOPPED')
  })

  it('shutdown is bounded when a message never finishes', { timeout: 60_000 }, async () => {
    const { system } = makeSystem()
    const ref = system.spawn('forever', () => ({ receive: async () => await new Promise(() => {}) }))
    system.tell(ref, 1)
    await waitFor(() => system.mailboxDepth('forever') === 0, 'in progress')
    await system.shutdown({ timeoutMs: 30 })
  })
})

describe('metrics and scheduling', () => {
  it('exposes voike_actor_* metrics on the injected registry', { timeout: 60_000 }, async () => {
    const { system, registry } = makeSystem()
    const g = gate()
    const ref = system.spawn('m', () => ({ async receive () { await g.promise } }))
    system.tell(ref, 1)
    await waitFor(() => system.mailboxDepth('m') === 0, 'in progress')
    system.tell(ref, 2)
    system.tell(ref, 3)
    const text = await registry.metrics()
    assert.match(text, /voike_actor_messages_total\{actor="m",direction="in"\} 3/)
    assert.match(text, /voike_actor_messages_total\{actor="m",direction="out"\} 3/)
    assert.match(text, /voike_actor_mailbox_depth\{actor="m"\} 2/)
    assert.match(text, /voike_actor_dead_letters_total 0/)
    assert.match(text, /# TYPE voike_actor_restarts_total counter/)
    assert.match(text, /# TYPE voike_actor_giveups_total counter/)
    g.open()
    await waitFor(() => system.mailboxDepth('m') === 0, 'drained')
    assert.match(await registry.metrics(), /voike_actor_mailbox_depth\{actor="m"\} 0/)
  })

  it('bounds metric label cardinality', { timeout: 60_000 }, async () => {
    const { system, registry } = makeSystem({ maxMetricActorLabels: 2 })
    for (const name of ['a1', 'a2', 'a3', 'a4']) system.tell(system.spawn(name, () => counterActor()), 'inc')
    const text = await registry.metrics()
    assert.match(text, /actor="a1",direction="in"\} 1/)
    assert.doesNotMatch(text, /actor="a3"/)
    assert.match(text, /actor="_other",direction="in"\} 2/)
  })

  it('ping-pong between actors does not starve the event loop', { timeout: 60_000 }, async () => {
    const { system } = makeSystem()
    let immediateRanAt = -1
    let exchanges = 0
    const total = 20_000
    const done = gate()
    const make = (peer: string): Actor => ({
      receive (n: number, ctx: MessageContext) {
        exchanges++
        if (n >= total) { done.open(); return }
        ctx.system.tell(ctx.system.ref(ctx.self.peerId, peer), n + 1)
      }
    })
    const ping = system.spawn('ping', () => make('pong'))
    system.spawn('pong', () => make('ping'))
    system.tell(ping, 0)
    setImmediate(() => { immediateRanAt = exchanges })
    await done.promise
    assert.ok(immediateRanAt >= 0 && immediateRanAt < total, `setImmediate ran at exchange ${immediateRanAt}`)
  })

  it('throughput sanity: 100k local tells', { timeout: 60_000 }, async (t) => {
    const { system } = makeSystem()
    let sum = 0
    const ref = system.spawn('sink', () => ({ receive (n: number) { sum += n; return sum } }), { mailboxCapacity: 131_072 })
    const n = 100_000
    const t0 = performance.now()
    for (let i = 0; i < n; i++) system.tell(ref, 1)
    assert.equal(await system.ask(ref, 0), n)
    const ms = performance.now() - t0
    t.diagnostic(`${n} tells in ${ms.toFixed(1)} ms = ${Math.round(n / ms * 1000)} msg/s`)
    // Windowed asks: the async path.
    const t1 = performance.now()
    let inFlight: Array<Promise<unknown>> = []
    for (let i = 0; i < 20_000; i++) {
      inFlight.push(system.ask(ref, 1))
      if (inFlight.length === 512) { await Promise.all(inFlight); inFlight = [] }
    }
    await Promise.all(inFlight)
    const ms2 = performance.now() - t1
    t.diagnostic(`20000 asks (512 in flight) in ${ms2.toFixed(1)} ms = ${Math.round(20_000 / ms2 * 1000)} asks/s`)
    assert.equal(sum, n + 20_000)
  })
})
