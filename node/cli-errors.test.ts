/**
 * Error messages a new user meets (issue 9, item 17): no empty "Resolution note:", `--api` at the
 * HTTP port says so, a port in use names the flag (and no libp2p internals), a missing or wrong
 * API key exits 1 with "unauthenticated"; the key is accepted as `authorization: Bearer KEY` on
 * HTTP and gRPC as well as `x-voike-api-key`.
 */
import './polyfill.js'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { Metadata, credentials } from '@grpc/grpc-js'
import { Cluster, getJson, p2pPort, runCli, type NodeProc } from './testkit.js'
import { loadVoikeProto } from './proto.js'

const KEY = 'correct-horse-battery-staple'

/** A port nobody listens on (bound, then released). */
async function closedPort (): Promise<number> {
  const s = createServer()
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as { port: number }).port
  await new Promise<void>(resolve => s.close(() => { resolve() }))
  return port
}

async function grpcListNodes (api: string, md: Metadata): Promise<{ code: number, details?: string }> {
  const { Mesh } = loadVoikeProto()
  const mesh = new Mesh(api, credentials.createInsecure()) as unknown as { ListNodes: (req: unknown, md: Metadata, o: unknown, cb: (err: { code: number, details: string } | null) => void) => void, close: () => void }
  try {
    return await new Promise((resolve) => {
      mesh.ListNodes({}, md, { deadline: Date.now() + 10_000 }, (err) => { resolve(err === null ? { code: 0 } : { code: err.code, details: err.details }) })
    })
  } finally { mesh.close() }
}

describe('error messages (issue 9, item 17)', { timeout: 600_000 }, () => {
  const c = new Cluster()
  let g: NodeProc
  before(async () => { g = await c.start('genesis', { extraArgs: ['--api-key', KEY] }) }, { timeout: 90_000 })
  after(async () => { await c.stopAll() }, { timeout: 60_000 })

  it('an unreachable API: no empty "Resolution note:"; --api at the HTTP port says so', { timeout: 90_000 }, async () => {
    const port = await closedPort()
    const closed = await runCli(['job', 'list', '--api', `127.0.0.1:${port}`])
    assert.equal(closed.code, 1, closed.stderr)
    assert.doesNotMatch(closed.stderr, /Resolution note:\s*$/m)
    assert.match(closed.stderr, new RegExp(`cannot reach .*127\\.0\\.0\\.1:${port}`))

    const http = await runCli(['job', 'list', '--api', g.ready.http, '--api-key', KEY])
    assert.equal(http.code, 1, http.stderr)
    assert.doesNotMatch(http.stderr, /Resolution note:\s*$/m)
    assert.match(http.stderr, /HTTP/)
    assert.match(http.stderr, /--api/)
    assert.ok(http.stderr.includes(g.ready.api) || /gRPC/.test(http.stderr), http.stderr)
  })

  it('a missing or wrong API key exits 1 with "unauthenticated"', { timeout: 60_000 }, async () => {
    for (const extra of [[], ['--api-key', 'wrong']]) {
      const r = await runCli(['job', 'list', '--api', g.ready.api, ...extra], { VOIKE_API_KEY: '' })
      assert.equal(r.code, 1, r.stderr)
      assert.match(r.stderr, /unauthenticated/i)
      assert.doesNotMatch(r.stderr, /Nodes:/)
    }
    const ok = await runCli(['mesh', 'nodes', '--api', g.ready.api, '--api-key', KEY])
    assert.equal(ok.code, 0, ok.stderr)
  })

  it('the key is accepted as `authorization: Bearer KEY` on HTTP and gRPC', { timeout: 60_000 }, async () => {
    assert.equal((await getJson(g.ready.http, '/mesh/nodes')).status, 401)
    assert.equal((await getJson(g.ready.http, '/mesh/nodes', { 'x-voike-api-key': KEY })).status, 200)
    assert.equal((await getJson(g.ready.http, '/mesh/nodes', { authorization: `Bearer ${KEY}` })).status, 200)
    assert.equal((await getJson(g.ready.http, '/mesh/nodes', { authorization: `bearer ${KEY}` })).status, 200)
    assert.equal((await getJson(g.ready.http, '/mesh/nodes', { authorization: 'Bearer wrong' })).status, 401)
    assert.equal((await getJson(g.ready.http, '/mesh/nodes', { authorization: KEY })).status, 401)
    // Two different keys at once is a wrong key, whichever is right.
    assert.equal((await getJson(g.ready.http, '/mesh/nodes', { authorization: `Bearer ${KEY}`, 'x-voike-api-key': 'wrong' })).status, 401)

    const bearer = new Metadata()
    bearer.set('authorization', `Bearer ${KEY}`)
    assert.equal((await grpcListNodes(g.ready.api, bearer)).code, 0)
    const wrong = new Metadata()
    wrong.set('authorization', 'Bearer nope')
    assert.equal((await grpcListNodes(g.ready.api, wrong)).code, 16)
    const header = new Metadata()
    header.set('x-voike-api-key', KEY)
    assert.equal((await grpcListNodes(g.ready.api, header)).code, 0)
    assert.equal((await grpcListNodes(g.ready.api, new Metadata())).code, 16)
  })

  it('a port in use names the flag to change, and nothing about libp2p internals', { timeout: 120_000 }, async () => {
    const dir = await c.tempDir()
    const cases: Array<{ flag: string, args: string[] }> = [
      { flag: '--listen', args: ['--listen', `/ip4/127.0.0.1/tcp/${p2pPort(g)}`, '--api', '127.0.0.1:0', '--http', '127.0.0.1:0'] },
      { flag: '--api', args: ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', g.ready.api, '--http', '127.0.0.1:0'] },
      { flag: '--http', args: ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--http', g.ready.http] }
    ]
    for (const k of cases) {
      const r = await runCli(['genesis', ...k.args, '--data', `${dir}/${k.flag.slice(2)}`, '--threads', '1'], { VOIKE_LOG_LEVEL: 'error' })
      assert.equal(r.code, 2, `${k.flag}: ${r.stderr}`)
      assert.match(r.stderr, new RegExp(`${k.flag}\\b.*in use`), r.stderr)
      assert.doesNotMatch(r.stderr, /transportManager|faultTolerance|libp2p|No address added|\n\s+at /, r.stderr)
    }
  })
})
