import '../../config/polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Registry } from 'prom-client'
import { createActorSystem } from '../runtime/index.js'
import { MemberTable, type MemberRecord } from './table.js'
import { createMembershipActor, MEMBERSHIP_ACTOR, parseMember } from './membership-actor.js'

const SELF = '12D3KooWSe1fSe1fSe1fSe1fSe1fSe1fSe1fSe1fSe1fSe1fSe1f'
const OTHER = '12D3KooWotherotherotherotherotherotherotherotherothe'

function member (peerId: string, over: Partial<MemberRecord> = {}): MemberRecord {
  return { peerId, addrs: [], cores: 2, memoryBytes: 1, version: 't', startedAtMs: 1, status: 'alive', lastSeenMs: 1, leftAtMs: null, isGenesis: false, host: '', ...over }
}

test('parseMember rejects what is not a peer id and keeps only known fields', { timeout: 60_000 }, () => {
  assert.throws(() => parseMember(member('not-a-peer-id')), { code: 'ERR_INVALID_MEMBER' })
  assert.throws(() => parseMember({ ...member(OTHER), cores: 0 }), /cores/)
  assert.deepEqual(parseMember({ ...member(OTHER), extra: 'x' }), member(OTHER))
})

test('a member that stays unreachable is dead, redialled slowly forever, and forgotten after forgetAfterMs', { timeout: 60_000 }, async (t) => {
  let nowMs = 1_000_000
  const dials: number[] = []
  const table = new MemberTable(SELF)
  table.put(member(SELF))
  table.put(member(OTHER))
  const system = createActorSystem({ peerId: SELF, registry: new Registry() })
  t.after(async () => { await system.shutdown() })
  system.spawn(MEMBERSHIP_ACTOR, createMembershipActor({
    table,
    connect: async () => { dials.push(nowMs); throw new Error('unreachable') },
    isConnected: () => false,
    now: () => nowMs,
    suspectTimeoutMs: 5_000,
    deadRetryEveryMs: 5_000,
    deadRetryForMs: 60_000,
    deadRetrySlowEveryMs: 600_000,
    forgetAfterMs: 24 * 3600_000
  }))
  const ref = system.ref(SELF, MEMBERSHIP_ACTOR)
  const tick = async (advanceMs: number): Promise<void> => { nowMs += advanceMs; await system.ask(ref, { type: 'tick' }) }

  await tick(1000)
  assert.equal(table.get(OTHER)?.status, 'suspect')
  await tick(6000)
  assert.equal(table.get(OTHER)?.status, 'dead')
  // Past the fast window, dials continue at the slow pace rather than stopping.
  for (let i = 0; i < 40; i++) await tick(5000) // 200 s
  const before = dials.length
  for (let i = 0; i < 36; i++) await tick(100_000) // one hour later
  const slow = dials.length - before
  assert.ok(slow >= 5 && slow <= 7, `${slow} dials in an hour at one per 10 min`)
  await tick(24 * 3600_000)
  assert.equal(table.get(OTHER), undefined, 'forgotten')
  assert.equal(table.get(SELF)?.status, 'alive')
})
