import './polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConfigError, VoikeError, errorFields, MAX_LOGGED_CAUSES } from './errors.js'
import { createLogger } from './logger.js'
import { intOption, resolveInts } from './options.js'

test('VoikeError carries code, message, field and cause; the logger writes the causes', () => {
  const root = new Error('socket closed')
  const mid = new VoikeError('ERR_STORE_QUERY', 'updateJob failed', { cause: root })
  const top = new VoikeError('ERR_UNAVAILABLE', 'the store failed', { field: 'id', cause: mid })
  assert.equal(top.cause, mid)
  assert.deepEqual(errorFields(top), {
    message: 'the store failed', code: 'ERR_UNAVAILABLE', field: 'id',
    cause: { message: 'updateJob failed', code: 'ERR_STORE_QUERY', cause: { message: 'socket closed' } }
  })
  const lines: string[] = []
  createLogger({ write: (l) => { lines.push(l) } }).warn('write failed', { err: top })
  assert.equal(JSON.parse(lines[0]).err.cause.cause.message, 'socket closed')
  // A cycle stops at the bound.
  const a = new VoikeError('A', 'a')
  Object.defineProperty(a, 'cause', { value: a })
  let depth = 0
  for (let f: Record<string, unknown> | undefined = errorFields(a); f !== undefined; f = f.cause as Record<string, unknown> | undefined) depth++
  assert.equal(depth, MAX_LOGGED_CAUSES + 1)
  const c = new ConfigError('--api', 'bad')
  assert.ok(c instanceof VoikeError)
  assert.equal(c.field, '--api')
  assert.equal(c.code, 'ERR_INVALID_CONFIG')
})

test('the option table: defaults, ranges, unknown names with strict', () => {
  const fail = (name: string, why: string): Error => new VoikeError('ERR_INVALID_OPTION', `${name} ${why}`, { field: name })
  const table = { a: { default: 1, min: 0, max: 5 }, b: { default: 10, min: 10, max: 20 } }
  assert.deepEqual(resolveInts(table, undefined, fail), { a: 1, b: 10 })
  assert.deepEqual(resolveInts(table, { a: 5, c: 1 }, fail), { a: 5, b: 10 })
  assert.throws(() => resolveInts(table, { c: 1 }, fail, { strict: true, prefix: 'o.' }), /o\.c is not a known option/)
  assert.throws(() => resolveInts(table, { b: 9 }, fail), /b must be an integer in 10\.\.20, got 9/)
  assert.throws(() => intOption(1.5, 'x', table.a, fail), (e: VoikeError) => e.field === 'x')
  assert.throws(() => resolveInts(table, 'no', fail, { prefix: 'limits.' }), /limits must be an object/)
})
