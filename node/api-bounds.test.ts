/**
 * Every API input has a depth and size bound checked before anything walks it (issue 9, item 8):
 * a deeply nested value inside a job parameter is a 400 / INVALID_ARGUMENT naming the field, never
 * a 500 / INTERNAL "Maximum call stack size exceeded", and the node keeps serving.
 */
import './polyfill.js'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { Cluster, getJson, postJson, type NodeProc } from './testkit.js'
import { Metadata, credentials } from '@grpc/grpc-js'
import { loadVoikeProto } from './proto.js'

const LEVELS = 100_000

/** `[[[ … ]]]` LEVELS deep, as text (building it as a value would need the recursion we forbid). */
function deepText (levels: number, open = '[', close = ']'): string {
  return open.repeat(levels) + close.repeat(levels)
}

interface ErrorBody { error: { code: string, field?: string, message: string } }

describe('API input bounds (issue 9, item 8)', { timeout: 300_000 }, () => {
  const c = new Cluster()
  let g: NodeProc
  before(async () => { g = await c.start('genesis') }, { timeout: 90_000 })
  after(async () => { await c.stopAll() }, { timeout: 60_000 })

  it('HTTP: a 100,000-level value inside a job parameter is a 400 naming the field', { timeout: 60_000 }, async () => {
    const inline = await postJson<ErrorBody>(g.ready.http, '/grid/jobs', `{"kind":"fib","n":${deepText(LEVELS)},"segments":1}`)
    assert.equal(inline.status, 400, JSON.stringify(inline.body).slice(0, 300))
    assert.equal(inline.body.error.code, 'ERR_INVALID_ARGUMENT')
    assert.equal(inline.body.error.field, 'n')
    assert.match(inline.body.error.message, /nested/)
    const wrapped = await postJson<ErrorBody>(g.ready.http, '/grid/jobs', `{"kind":"fib","params":{"segments":1,"n":{"a":${deepText(LEVELS)}}}}`)
    assert.equal(wrapped.status, 400)
    assert.equal(wrapped.body.error.field, 'params.n.a')
    // Moderately deep (well within the stack) is bounded too.
    const moderate = await postJson<ErrorBody>(g.ready.http, '/grid/jobs', `{"kind":"fib","n":${deepText(100)},"segments":1}`)
    assert.equal(moderate.status, 400)
    assert.equal(moderate.body.error.field, 'n')
    const top = await postJson<ErrorBody>(g.ready.http, '/grid/jobs', deepText(LEVELS, '{"a":', '}').replace(/\{"a":\}/, '{}'))
    assert.equal(top.status, 400)
    // Wide but flat: bounded by the count of values, not only by the byte size.
    const wide = await postJson<ErrorBody>(g.ready.http, '/grid/jobs', `{"kind":"fib","segments":1,"n":[${'0,'.repeat(300_000)}0]}`)
    assert.equal(wide.status, 400)
    assert.equal(wide.body.error.field, 'n')
    assert.equal((await getJson(g.ready.http, '/health')).status, 200)
  })

  it('gRPC: the same value in params_json is INVALID_ARGUMENT naming the field', { timeout: 60_000 }, async () => {
    const { Grid } = loadVoikeProto()
    const grid = new Grid(g.ready.api, credentials.createInsecure()) as unknown as { SubmitJob: (req: unknown, md: Metadata, o: unknown, cb: (err: { code: number, details: string } | null) => void) => void, close: () => void }
    const submit = async (paramsJson: string): Promise<{ code: number, details: string }> => await new Promise((resolve) => {
      grid.SubmitJob({ kind: 'fib', paramsJson }, new Metadata(), { deadline: Date.now() + 30_000 }, (err) => { resolve(err ?? { code: 0, details: '' }) })
    })
    try {
      const deep = await submit(`{"n":${deepText(LEVELS)},"segments":1}`)
      assert.equal(deep.code, 3, deep.details) // INVALID_ARGUMENT, not INTERNAL
      assert.match(deep.details, /^n: .*nested/)
      const inner = await submit(`{"segments":1,"n":{"x":[${deepText(LEVELS)}]}}`)
      assert.equal(inner.code, 3, inner.details)
      assert.match(inner.details, /^n\.x: /)
      // Still serving.
      assert.equal((await submit('{"n":10,"segments":1}')).code, 0)
    } finally { grid.close() }
  })
})
