/**
 * `npm test` is `node --test dist/`: the runner picks files by name, so a helper named like a
 * test (test-*.js, *_test.js, anything under a test/ folder) would run as one, and a test whose
 * child process fails on purpose must not print that failure into the test output.
 */
import '../node/polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, mkdir, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

/** dist/ (this file is dist/deploy/suite.test.js). */
const DIST = join(dirname(fileURLToPath(import.meta.url)), '..')

/** What Node 20's runner takes for a test file when given a directory (checked below against the runner itself). */
export function runnerPicks (relPath: string): boolean {
  const parts = relPath.split(sep)
  const base = parts[parts.length - 1]
  if (!/\.(c|m)?js$/.test(base)) return false
  if (parts.slice(0, -1).includes('test')) return true
  return /^(test|test-.*|.*[._-]test)\.(c|m)?js$/.test(base)
}

async function filesUnder (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules') continue
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...await filesUnder(p))
    else out.push(p)
  }
  return out
}

async function run (args: string[], cwd: string, timeoutMs: number): Promise<{ code: number | null, out: string }> {
  // A nested runner must not think it reports to ours.
  const env = { ...process.env }
  delete env.NODE_TEST_CONTEXT
  return await new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    p.stdout.on('data', (d: Buffer) => { out += d.toString() })
    p.stderr.on('data', (d: Buffer) => { out += d.toString() })
    const t = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`node ${args.join(' ')} did not end in ${timeoutMs} ms:\n${out}`)) }, timeoutMs)
    p.on('exit', (code) => { clearTimeout(t); resolve({ code, out }) })
  })
}

test('the name rule above is the runner\'s own', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'voike-patterns-'))
  try {
    const names = ['a.test.js', 'b-test.js', 'c_test.js', 'test-d.js', 'test.js', 'test/e.js', 'sub/test/f.js', 'g.js', 'testkit.js', 'h.spec.js', 'i.test.cjs', 'sub/j.test.js', 'k.test.ts']
    for (const n of names) {
      await mkdir(join(dir, dirname(n)), { recursive: true })
      await writeFile(join(dir, n), `require('node:test').test(${JSON.stringify(n.split('/').join(sep))}, () => {})\n`)
    }
    const { out } = await run(['--test', '--test-reporter=tap', '.'], dir, 50_000)
    const ran = [...out.matchAll(/^ok \d+ - (.+)$/gm)].map(m => m[1]).sort()
    assert.deepEqual(ran, names.map(n => n.split('/').join(sep)).filter(runnerPicks).sort())
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('every file `node --test dist/` runs is a *.test.js file', async () => {
  const picked = (await filesUnder(DIST)).map(f => relative(DIST, f)).filter(runnerPicks)
  assert.ok(picked.length > 10, `expected the suite's test files, found ${picked.length}`)
  assert.deepEqual(picked.filter(f => !f.endsWith('.test.js')), [], 'helpers named like tests: rename them (e.g. rig.ts, testkit.ts)')
})

test('a test whose peer fails on purpose prints nothing of that failure', { timeout: 120_000 }, async () => {
  const file = join(DIST, 'bench', 'baselines', 'baselines.test.js')
  const { code, out } = await run(['--test', '--test-reporter=tap', '--test-name-pattern=a peer that exits', file], DIST, 110_000)
  assert.equal(code, 0, out)
  assert.match(out, /^ok \d+ - a peer that exits is reported/m)
  assert.doesNotMatch(out, /BenchError|usage: raw-tcp/, 'a peer\'s deliberate failure leaked into the test output')
})
