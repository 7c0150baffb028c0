import './polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { Cluster, p2pPort, getJson, runCli, storeVariants, dropSchema, waitFor } from './testkit.js'

const PROCESS_TEST_MS = 120_000

test('three nodes join through Genesis and all see three alive; /health, /metrics, gRPC ListNodes', { timeout: PROCESS_TEST_MS }, async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const g = await c.start('genesis')
  const a = await c.start('node')
  const b = await c.start('node', { seed: `127.0.0.1:${p2pPort(g)}` }) // host:port seed form
  for (const n of [g, a, b]) await c.waitAlive(n, 3)

  const health = await getJson<{ status: string, peerId: string }>(a.ready.http, '/health')
  assert.deepEqual(health, { status: 200, body: { status: 'ok', peerId: a.ready.peerId } })

  const metrics = await getJson<string>(g.ready.http, '/metrics')
  assert.equal(metrics.status, 200)
  for (const family of ['voike_mesh_members', 'voike_actor_messages_total', 'voike_actor_mailbox_depth', 'voike_p2p_frames_total', 'voike_p2p_bad_frames_total', 'process_resident_memory_bytes']) {
    assert.match(metrics.body, new RegExp(`^# TYPE ${family} `, 'm'), `missing ${family}`)
  }
  assert.match(metrics.body, /^voike_mesh_members\{status="alive"\} 3$/m)

  const cli = await runCli(['mesh', 'nodes', '--api', b.ready.api, '--json'])
  assert.equal(cli.code, 0, cli.stderr)
  const nodes = JSON.parse(cli.stdout) as Array<{ peerId: string, status: string }>
  assert.deepEqual(new Set(nodes.map(n => n.peerId)), new Set([g.ready.peerId, a.ready.peerId, b.ready.peerId]))
  assert.ok(nodes.every(n => n.status === 'alive'))
})

// SIGINT / SIGTERM and a hung stop: node/shutdown.test.ts.

test('a killed node is detected: suspect, then dead', { timeout: PROCESS_TEST_MS }, async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const g = await c.start('genesis')
  const a = await c.start('node')
  await c.waitAlive(g, 2)
  await c.kill(a, 'SIGKILL')
  // Every status genesis shows for the victim, in order (polled well inside the 5 s suspicion).
  const seen: string[] = []
  await waitFor(async () => {
    const m = (await c.members(g)).find(x => x.peerId === a.ready.peerId)
    if (m !== undefined && seen[seen.length - 1] !== m.status) seen.push(m.status)
    return m?.status === 'dead' && m.leftAtMs === null
  }, 'genesis declares the killed node dead', 30_000, 25)
  assert.deepEqual(seen.filter(s => s !== 'alive'), ['suspect', 'dead'], `statuses seen: ${seen.join(' → ')}`)
})

for (const variant of storeVariants()) {
  test(`a restarted Genesis reloads its registry (${variant.name} store)`, { timeout: PROCESS_TEST_MS, skip: variant.skip }, async (t) => {
    const env = variant.env()
    const c = new Cluster({ env })
    t.after(async () => { await c.stopAll(); await dropSchema(env) })
    const g1 = await c.start('genesis')
    const a = await c.start('node')
    const b = await c.start('node')
    await c.waitAlive(g1, 3)
    // The members are frozen (SIGSTOP) while Genesis restarts: no hello of theirs can tell it
    // about them, so what it knows comes from its store alone.
    for (const n of [a, b]) n.proc.kill('SIGSTOP')
    await c.kill(g1, 'SIGKILL')
    const g2 = await c.restart(g1, 'genesis')
    assert.equal(g2.ready.peerId, g1.ready.peerId, 'same data dir, same identity')
    const known = await c.members(g2)
    for (const n of [a, b]) {
      const m = known.find(x => x.peerId === n.ready.peerId)
      assert.ok(m !== undefined, `${n.name} reloaded from the store`)
      assert.equal(m.status, 'suspect', `${n.name} is suspect until it answers`)
    }
    for (const n of [a, b]) n.proc.kill('SIGCONT')
    await c.waitAlive(g2, 3)
    await c.waitAlive(a, 3)
  })
}

test('random bytes on the p2p port before any handshake leave every node healthy (frames after one: frames.test.ts)', { timeout: PROCESS_TEST_MS }, async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const g = await c.start('genesis')
  const a = await c.start('node')
  await c.waitAlive(g, 2)
  const port = p2pPort(g)
  for (let i = 0; i < 3; i++) {
    await new Promise<void>((resolve) => {
      const sock = connect(port, '127.0.0.1', () => { sock.end(Buffer.from(Array.from({ length: 8192 }, () => Math.floor(Math.random() * 256)))) })
      sock.on('error', () => { resolve() })
      sock.on('close', () => { resolve() })
    })
  }
  for (const n of [g, a]) {
    assert.equal((await getJson(n.ready.http, '/health')).status, 200)
  }
  await c.waitAlive(g, 2)
  await c.waitAlive(a, 2)
})

test('config errors exit 2 and name the flag or variable', { timeout: PROCESS_TEST_MS }, async () => {
  const cases: Array<{ args: string[], env?: Record<string, string>, names: string }> = [
    { args: ['genesis', '--listen', 'not-a-multiaddr'], names: '--listen' },
    { args: ['genesis', '--api', 'localhost'], names: '--api' },
    { args: ['genesis', '--http', '127.0.0.1:99999'], names: '--http' },
    { args: ['node'], names: '--genesis' },
    { args: ['genesis', '--threads', 'many'], names: '--threads' },
    { args: ['genesis'], env: { VOIKE_HTTP: 'nope' }, names: 'VOIKE_HTTP' },
    { args: ['genesis', '--database-url', 'mysql://x'], names: '--database-url' },
    { args: ['genesis', '--no-such-flag'], names: '--no-such-flag' },
    { args: ['frobnicate'], names: 'frobnicate' },
    { args: ['genesis', '--takeover-after-ms', 'soon'], names: '--takeover-after-ms' },
    { args: ['genesis', '--takeover-after-ms', '86400001'], names: '--takeover-after-ms' },
    { args: ['genesis'], env: { VOIKE_TAKEOVER_AFTER_MS: '-1' }, names: 'VOIKE_TAKEOVER_AFTER_MS' },
    { args: ['genesis'], env: { VOIKE_TEST_KINDS: 'teleport' }, names: 'VOIKE_TEST_KINDS' },
    { args: ['genesis'], env: { VOIKE_TEST_KINDS: 'hold' }, names: 'VOIKE_TEST_HOLD_DIR' },
    { args: ['genesis'], env: { VOIKE_TEST_KINDS: 'hold', VOIKE_TEST_HOLD_DIR: 'relative/dir' }, names: 'VOIKE_TEST_HOLD_DIR' },
    // Test-only kinds are refused outright in production, whatever else is set.
    { args: ['genesis'], env: { VOIKE_TEST_KINDS: 'hold', VOIKE_TEST_HOLD_DIR: '/tmp', NODE_ENV: 'production' }, names: 'VOIKE_TEST_KINDS' }
  ]
  for (const k of cases) {
    const r = await runCli(k.args, k.env)
    assert.equal(r.code, 2, `${k.args.join(' ')}: exit ${r.code}; ${r.stderr}`)
    assert.ok(r.stderr.includes(k.names), `${k.args.join(' ')}: stderr does not name ${k.names}: ${r.stderr}`)
  }
})

test('with an API key, calls without it are refused (401 / UNAUTHENTICATED); /health and /metrics stay open', { timeout: PROCESS_TEST_MS }, async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const g = await c.start('genesis', { extraArgs: ['--api-key', 'sekrit-key-1'] })
  assert.equal((await getJson(g.ready.http, '/health')).status, 200)
  assert.equal((await getJson(g.ready.http, '/metrics')).status, 200)
  assert.equal((await getJson(g.ready.http, '/mesh/nodes')).status, 401)
  assert.equal((await getJson(g.ready.http, '/mesh/nodes', { 'x-voike-api-key': 'wrong-key-00' })).status, 401)
  assert.equal((await getJson(g.ready.http, '/mesh/nodes', { 'x-voike-api-key': 'sekrit-key-1' })).status, 200)
  const bad = await runCli(['mesh', 'nodes', '--api', g.ready.api, '--api-key', 'wrong-key-00'])
  assert.equal(bad.code, 1) // unauthenticated is not bad input (issue 9, item 17)
  assert.match(bad.stderr, /unauthenticated/)
  assert.match(bad.stderr, /x-voike-api-key/)
  const good = await runCli(['mesh', 'nodes', '--api', g.ready.api, '--api-key', 'sekrit-key-1', '--json'])
  assert.equal(good.code, 0, good.stderr)
})

test('a Genesis stopped with SIGTERM and restarted is alive again for every member', { timeout: PROCESS_TEST_MS }, async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const g1 = await c.start('genesis')
  const a = await c.start('node')
  await c.waitAlive(a, 2)
  assert.equal(await c.kill(g1, 'SIGTERM'), 0)
  await waitFor(async () => (await c.members(a)).find(m => m.peerId === g1.ready.peerId && m.leftAtMs !== null), 'a sees genesis leave')
  await c.restart(g1, 'genesis')
  await c.waitAlive(a, 2)
})

test('a node that joined through another member while Genesis was down becomes known to Genesis', { timeout: PROCESS_TEST_MS }, async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const g1 = await c.start('genesis')
  const a = await c.start('node')
  await c.waitAlive(a, 2)
  await c.kill(g1, 'SIGKILL')
  const n = await c.start('node', { seed: a.ready.p2p[0] })
  const g2 = await c.restart(g1, 'genesis')
  await c.waitAlive(g2, 3)
  // And a node joining through Genesis now learns about it too.
  const m = await c.start('node', { seed: g2.ready.p2p[0] })
  await c.waitAlive(m, 4)
  await c.waitAlive(n, 4)
})

test('forged membership messages from a peer do not break membership', { timeout: PROCESS_TEST_MS }, async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const g = await c.start('genesis')
  const a = await c.start('node')
  await c.waitAlive(g, 2)
  const { createMesh } = await import('../mesh/index.js')
  const { generateKeyPair } = await import('@libp2p/crypto/keys')
  const { Registry } = await import('prom-client')
  const replies = new Map<number, { k: string, e?: { code: string } }>()
  const attacker = await createMesh({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    registry: new Registry(),
    onMessage: (_from, msg) => {
      const m = msg as { k: string, id?: number, e?: { code: string } }
      if (typeof m.id === 'number') replies.set(m.id, m)
    }
  })
  t.after(async () => { await attacker.stop() })
  const gid = await attacker.dial(g.ready.p2p[0])
  const forged = { peerId: 'not-a-peer-id', addrs: [], cores: 1, memoryBytes: 1, version: 'x', startedAtMs: 1, status: 'alive', lastSeenMs: 1, leftAtMs: null, isGenesis: false, host: '' }
  for (let i = 0; i < 10; i++) {
    attacker.send(gid, { k: 't', to: 'membership', b: { type: 'joined', member: forged }, f: 'membership' })
    attacker.send(gid, { k: 't', to: 'membership', b: { type: 'left', peerId: a.ready.peerId }, f: 'membership' })
    attacker.send(gid, { k: 'a', id: i + 1, to: 'membership', b: { type: 'join', member: { ...forged, peerId: a.ready.peerId } }, f: 'membership' })
  }
  // The frames arrived (in order, on one stream): every forged join was answered, and refused.
  await waitFor(() => replies.size === 10, 'the answers to the ten forged joins')
  for (const [id, r] of replies) assert.equal(r.e?.code, 'ERR_INVALID_MEMBER', `forged join ${id} answered ${JSON.stringify(r)}`)
  // Genesis still tracks members: a is not marked left, a kill is still detected, joins still work.
  const b = await c.start('node')
  await c.waitAlive(g, 3)
  assert.equal((await c.members(g)).find(m => m.peerId === a.ready.peerId)?.leftAtMs, null)
  await c.kill(b, 'SIGKILL')
  await waitFor(async () => (await c.members(g)).find(m => m.peerId === b.ready.peerId && m.status !== 'alive'), 'kill detected')
  assert.ok(!(await c.members(g)).some(m => m.peerId === 'not-a-peer-id'))
})
