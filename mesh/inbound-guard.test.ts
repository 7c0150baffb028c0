import '../node/polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Registry } from 'prom-client'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createMesh, type Mesh } from './index.js'
import { addressKey, createInboundGuard, PendingInboundPolicy, type PendingLimits } from './inbound-guard.js'
import { startRawFlood, type RawFlood } from './raw-flood.js'

const LIMITS: PendingLimits = { maxPendingInbound: 6, reservedPendingInbound: 2, maxPendingInboundPerAddr: 2, maxPendingInboundPerKnownAddr: 3 }

test('policy: one address holds its share, the reserve is for members, release frees slots', { timeout: 60_000 }, () => {
  const p = new PendingInboundPolicy(LIMITS)
  assert.equal(p.admit('10.0.0.1', false), undefined)
  assert.equal(p.admit('10.0.0.1', false), undefined)
  assert.equal(p.admit('10.0.0.1', false), 'addr_limit')
  assert.equal(p.admit('10.0.0.2', false), undefined)
  assert.equal(p.admit('10.0.0.2', false), undefined)
  // 4 unknown = maxPendingInbound - reservedPendingInbound: strangers are out, members are not.
  assert.equal(p.admit('10.0.0.3', false), 'pool_full')
  assert.equal(p.admit('10.0.0.9', true), undefined)
  assert.equal(p.admit('10.0.0.9', true), undefined)
  assert.equal(p.pending, 6)
  assert.equal(p.admit('10.0.0.8', true), 'pool_full')
  // A member's own share also bounds it.
  p.release('10.0.0.1', false)
  p.release('10.0.0.1', false)
  assert.equal(p.pendingFrom('10.0.0.1'), 0)
  assert.equal(p.admit('10.0.0.9', true), undefined)
  assert.equal(p.admit('10.0.0.9', true), 'addr_limit')
  assert.equal(p.admit('10.0.0.3', false), undefined)
  assert.equal(p.pendingUnknown, 3)
  assert.throws(() => { p.release('10.0.0.77', false) }, /release without admit/)
})

test('policy: limits are validated with the option named', { timeout: 60_000 }, () => {
  assert.throws(() => new PendingInboundPolicy({ ...LIMITS, reservedPendingInbound: 6 }), { code: 'ERR_INVALID_OPTION', message: /reservedPendingInbound \(6\) must be less than maxPendingInbound \(6\)/ })
  assert.throws(() => new PendingInboundPolicy({ ...LIMITS, maxPendingInboundPerAddr: 5 }), { code: 'ERR_INVALID_OPTION', message: /maxPendingInboundPerAddr \(5\)/ })
  assert.throws(() => new PendingInboundPolicy({ ...LIMITS, maxPendingInboundPerKnownAddr: 0 }), { code: 'ERR_INVALID_OPTION', message: /maxPendingInboundPerKnownAddr/ })
  assert.throws(() => new PendingInboundPolicy({ ...LIMITS, maxPendingInbound: 2.5 }), { code: 'ERR_INVALID_OPTION', message: /maxPendingInbound must be a non-negative integer, got 2.5/ })
})

test('addressKey: IPv4 as is, IPv4-mapped IPv6 as IPv4, IPv6 by /64', { timeout: 60_000 }, () => {
  assert.equal(addressKey('192.0.2.7'), '192.0.2.7')
  assert.equal(addressKey('::ffff:192.0.2.7'), '192.0.2.7')
  assert.equal(addressKey('::ffff:c000:207'), '192.0.2.7')
  assert.equal(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64')
  assert.equal(addressKey('2001:db8:1:2:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64')
  assert.equal(addressKey('[2001:db8::1]'), '2001:db8:0:0::/64')
  assert.equal(addressKey('::1'), '0:0:0:0::/64')
  assert.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64')
  assert.equal(addressKey('example.com'), undefined)
  assert.equal(addressKey('1.2.3'), undefined)
})

test('setKnownAddrs keeps IP addresses, skips the rest, bounds its input', { timeout: 60_000 }, () => {
  const guard = createInboundGuard({ ...LIMITS, inboundUpgradeTimeoutMs: 1000, registry: new Registry() })
  assert.equal(guard.setKnownAddrs([
    '/ip4/10.1.2.3/tcp/4001/p2p/12D3KooWJsaD48rp3Cj2a1N5RioPnH9RsEuqUqxFgNdTaqtEGhCD',
    '/ip4/10.1.2.3/tcp/4002',
    '/ip6/2001:db8::5/tcp/4001',
    '/ip6/2001:db8::6/tcp/4001',
    '/dns4/seed.example/tcp/4001',
    'not a multiaddr'
  ]), 2)
  assert.equal(guard.setKnownAddrs([]), 0)
  assert.throws(() => guard.setKnownAddrs('/ip4/1.2.3.4/tcp/1' as unknown as string[]), { code: 'ERR_INVALID_OPTION' })
  const many = Array.from({ length: 16_385 }, (_, i) => `/ip4/10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/tcp/1`)
  assert.throws(() => guard.setKnownAddrs(many), { code: 'ERR_INVALID_OPTION', message: /more than 16384/ })
})

test('createMesh refuses inconsistent pending limits before it starts anything', { timeout: 60_000 }, async () => {
  await assert.rejects(createMesh({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    registry: new Registry(),
    maxPendingInbound: 4,
    reservedPendingInbound: 4,
    onMessage: () => {}
  }), { code: 'ERR_INVALID_OPTION', message: /reservedPendingInbound \(4\) must be less than maxPendingInbound \(4\)/ })
})

async function waitFor (cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

async function metric (registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get()
  const v = m?.values.find(v => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
  assert.ok(v !== undefined, `no ${name} ${JSON.stringify(labels)}`)
  return v.value
}

test('a flood from several addresses fills the strangers\' slots; a member still gets in', { timeout: 60_000 }, async (t) => {
  const registry = new Registry()
  const got: string[] = []
  const seed = await createMesh({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    registry,
    ...LIMITS,
    // The flood must still hold its slots while the test dials.
    inboundUpgradeTimeoutMs: 60_000,
    onMessage: (from) => { got.push(from) }
  })
  const joiner: Mesh = await createMesh({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], registry: new Registry(), dialTimeoutMs: 20_000, onMessage: () => {} })
  const floods: RawFlood[] = []
  t.after(async () => {
    for (const f of floods) await f.stop()
    await joiner.stop()
    await seed.stop()
  })
  for (const rejected of ['addr_limit', 'pool_full', 'handshake_timeout', 'handshake_failed']) {
    assert.equal(await metric(registry, 'voike_p2p_inbound_rejected_total', { reason: rejected }), 0, `${rejected} starts at 0`)
  }

  const port = Number(multiaddr(seed.addrs()[0]).getComponents().find(c => c.name === 'tcp')?.value)
  // Two addresses fill the 4 slots strangers may use, 2 each; a third gets none.
  for (const from of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) floods.push(startRawFlood({ host: '127.0.0.1', port, localAddress: from, count: 5 }))
  await waitFor(() => floods.every(f => f.settled() === 5), 'flood sockets connected')
  await waitFor(async () => await metric(registry, 'voike_p2p_inbound_pending') === 4, 'four pending handshakes')
  await waitFor(() => floods.reduce((n, f) => n + f.closedByServer(), 0) === 15 - 4, 'the seed to refuse the rest')
  assert.equal(await metric(registry, 'voike_p2p_inbound_rejected_total', { reason: 'addr_limit' }) + await metric(registry, 'voike_p2p_inbound_rejected_total', { reason: 'pool_full' }), 11)

  // A stranger (127.0.0.1) finds no slot: refused at once, not left waiting.
  await assert.rejects(joiner.dial(seed.addrs()[0]), { code: 'ERR_CONNECT_FAILED' })
  assert.ok(await metric(registry, 'voike_p2p_inbound_rejected_total', { reason: 'pool_full' }) >= 1)

  // The same peer as a member uses the reserve.
  assert.equal(seed.setKnownAddrs(joiner.addrs()), 1)
  assert.equal(await joiner.dial(seed.addrs()[0]), seed.peerId)
  joiner.send(seed.peerId, 'member')
  await waitFor(() => got.includes(joiner.peerId), 'frame from the member')
  assert.equal(await metric(registry, 'voike_p2p_inbound_pending'), 4, 'the upgraded connection left the pending pool')
})
