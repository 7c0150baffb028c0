import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync, unlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { watchFlows } from './watch.js'
import { execute } from './executor.js'
import { FakeGrid, waitFor } from './fakes.js'

const flowText = (n: number): string => `FLOW "v${n}"\nSTEP f =\n  RUN JOB "fib" WITH { n: ${n} }\nSTEP o =\n  OUTPUT f.result.n AS "n"\nEND FLOW\n`

test('hot reload: a good edit becomes the new version, a bad edit keeps the old one and its error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flow-watch-'))
  const changes: string[] = []
  const errors: string[] = []
  writeFileSync(join(dir, 'fib.flow'), flowText(10))
  writeFileSync(join(dir, 'notes.txt'), 'not a flow')
  const w = watchFlows(dir, { debounceMs: 20, onChange: v => changes.push(`${v.name}@${v.version}`), onError: (name, e) => errors.push(`${name}: ${e.message}`) })
  try {
    await w.ready
    assert.deepEqual(changes, ['fib@1'])
    assert.deepEqual(w.list().map(e => e.name), ['fib'])
    const v1 = w.get('fib')!
    // A run takes the version current when it starts and keeps it.
    const grid = new FakeGrid()
    grid.hold = true
    const inFlight = execute(v1.planned, {}, { port: grid })
    await waitFor(() => grid.inFlight === 1, 'the v1 job in flight')

    writeFileSync(join(dir, 'fib.flow'), flowText(20))
    await waitFor(() => w.get('fib')?.version === 2, 'version 2')
    const v2 = w.get('fib')!
    assert.notEqual(v2.planned.plan.hash, v1.planned.plan.hash)
    grid.release()
    const r1 = await inFlight
    assert.equal(r1.metrics.planHash, v1.planned.plan.hash)
    assert.equal(r1.outputs.n, 10)

    writeFileSync(join(dir, 'fib.flow'), flowText(30).replace('RUN JOB "fib"', 'RUN JOB fib'))
    await waitFor(() => w.list()[0]!.error !== null, 'the error of the bad edit')
    const entry = w.list()[0]!
    assert.match(entry.error!.message, /^fib\.flow: 3:11: expected a job kind as a string/)
    assert.equal(entry.error!.errors[0]!.line, 3)
    assert.equal(w.get('fib')!.version, 2, 'the old version stays')
    assert.ok(errors.length >= 1)
    const r2 = await execute(w.get('fib')!.planned, {}, { port: new FakeGrid() })
    assert.equal(r2.outputs.n, 20)

    // Fixing the file clears the error; a new file appears; a removed one goes.
    writeFileSync(join(dir, 'fib.flow'), flowText(40))
    await waitFor(() => w.get('fib')?.version === 3, 'version 3')
    assert.equal(w.list()[0]!.error, null)
    writeFileSync(join(dir, 'other.flow'), flowText(5))
    await waitFor(() => w.get('other') !== undefined, 'the new flow')
    unlinkSync(join(dir, 'other.flow'))
    await waitFor(() => w.get('other') === undefined, 'the removed flow')
    assert.deepEqual(changes, ['fib@1', 'fib@2', 'fib@3', 'other@1'])
  } finally {
    w.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
