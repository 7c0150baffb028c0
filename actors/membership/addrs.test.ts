import '../../config/polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Registry } from 'prom-client'
import { createActorSystem, createLoopbackTransports } from '../runtime/index.js'
import { MemberTable, MAX_MEMBERS, type MemberRecord } from './table.js'
import { createMembershipActor, mergeAddrs, MEMBERSHIP_ACTOR } from './membership-actor.js'

const SELF = '12D3KooWSe1fSe1fSe1fSe1fSe1fSe1fSe1fSe1fSe1fSe1fSe1f'
const OTHER = '12D3KooWotherotherotherotherotherotherotherotherothe'
const OWN = '/ip4/10.0.0.2/tcp/4001'
const ELSEWHERE = '/ip4/10.0.0.9/tcp/4001'

function member (peerId: string, over: Partial<MemberRecord> = {}): MemberRecord {
  return { peerId, addrs: [], cores: 2, memoryBytes: 1, version: 't', startedAtMs: 1, status: 'alive', lastSeenMs: 1, leftAtMs: null, isGenesis: false, host: '', ...over }
}

test('mergeAddrs: a live member keeps its own addresses first; others take the new ones first; bounded', () => {
  assert.deepEqual(mergeAddrs(member(OTHER, { addrs: [OWN] }), [ELSEWHERE]), [OWN, ELSEWHERE])
  assert.deepEqual(mergeAddrs(member(OTHER, { addrs: [OWN], status: 'suspect' }), [ELSEWHERE]), [ELSEWHERE, OWN])
  assert.deepEqual(mergeAddrs(member(OTHER, { addrs: [OWN], status: 'dead', leftAtMs: 5 }), [ELSEWHERE]), [ELSEWHERE, OWN])
  assert.deepEqual(mergeAddrs(undefined, [ELSEWHERE]), [ELSEWHERE])
  assert.deepEqual(mergeAddrs(member(OTHER, { addrs: [OWN, ELSEWHERE] }), [ELSEWHERE, OWN]), [OWN, ELSEWHERE])
  const many = Array.from({ length: 40 }, (_, i) => `/ip4/10.0.1.${i}/tcp/1`)
  assert.equal(mergeAddrs(member(OTHER, { addrs: many.slice(0, 10) }), many.slice(10)).length, 16)
  assert.ok(MAX_MEMBERS > 0)
})

test('hello from a live member\'s identity at another address does not move it; a suspect one moves', async (t) => {
  const net = createLoopbackTransports()
  const registry = new Registry()
  const self = createActorSystem({ peerId: SELF, transport: net.transport(SELF), registry })
  const other = createActorSystem({ peerId: OTHER, transport: net.transport(OTHER), registry: new Registry() })
  net.attach(self)
  net.attach(other)
  t.after(async () => { await self.shutdown(); await other.shutdown() })
  const table = new MemberTable(SELF)
  table.put(member(SELF))
  table.put(member(OTHER, { addrs: [OWN] }))
  let connected = true
  self.spawn(MEMBERSHIP_ACTOR, createMembershipActor({ table, connect: async () => {}, isConnected: () => connected }))
  const ref = other.ref(SELF, MEMBERSHIP_ACTOR)
  // An impostor (same key, so the same authenticated peer id) says hello from elsewhere.
  other.tell(ref, { type: 'hello', member: member(OTHER, { addrs: [ELSEWHERE], startedAtMs: 2 }) }, MEMBERSHIP_ACTOR)
  await net.idle()
  await self.ask(self.ref(SELF, MEMBERSHIP_ACTOR), { type: 'list' })
  assert.deepEqual(table.get(OTHER)?.addrs, [OWN, ELSEWHERE])
  assert.equal(table.get(OTHER)?.status, 'alive')
  // A member that is suspect (its process died) and comes back on another port: the new address first.
  connected = false
  await self.ask(self.ref(SELF, MEMBERSHIP_ACTOR), { type: 'peer-down', peerId: OTHER })
  assert.equal(table.get(OTHER)?.status, 'suspect')
  connected = true
  const MOVED = '/ip4/10.0.0.2/tcp/4999'
  other.tell(ref, { type: 'hello', member: member(OTHER, { addrs: [MOVED], startedAtMs: 3 }) }, MEMBERSHIP_ACTOR)
  await net.idle()
  await self.ask(self.ref(SELF, MEMBERSHIP_ACTOR), { type: 'list' })
  assert.equal(table.get(OTHER)?.addrs[0], MOVED)
  assert.equal(table.get(OTHER)?.status, 'alive')
})
