/**
 * README claims that had no test: `voike up --nodes 3 --demo` and Ctrl-C stopping every node,
 * comma-separated seeds, and the progress bar and table of `--wait` in a terminal. (A worker
 * leaving mid-job: faults.test.ts; `--max-frame-bytes`: frames.test.ts.)
 */
import './polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { CLI_PATH, Cluster, p2pPort, runCli } from './testkit.js'
import { fibInProcess } from '../actors/kinds/fib/arith.js'
import { FIB_REFERENCE } from '../actors/kinds/fib/reference.js'

/** A row of the segment table (node/format.ts): index, [start, end), node name (…short id), attempts, lost, ms. */
const SEGMENT_ROW = /^\s*\d+ {2}\[\d+, \d+\) +\S+( \(…\w+\))? +\d+ +\d+ +[\d.]+$/

const PROCESS_TEST_MS = 120_000

/** Whether `port` can be bound on 127.0.0.1 right now. */
async function isFree (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = createServer()
    s.once('error', () => { resolve(false) })
    s.listen(port, '127.0.0.1', () => { s.close(() => { resolve(true) }) })
  })
}

/** A free port (bound by nobody once this returns, so a dial to it is refused). */
async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address()
      s.close(() => { resolve(typeof addr === 'object' && addr !== null ? addr.port : 0) })
    })
  })
}

/**
 * A --base-port for `voike up --nodes n` whose every port is free now: up uses p2p 4001+k+i,
 * gRPC 50051+k+i and HTTP 8080+k+i for k = base − 4001. Tried at random offsets (a race with other
 * programs is still possible: the caller retries when up fails to bind).
 */
async function freeBasePort (nodes: number): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const offset = 10_000 + Math.floor(Math.random() * 5000)
    const ports = [4001, 50051, 8080].flatMap(p => Array.from({ length: nodes }, (_, i) => p + offset + i))
    if ((await Promise.all(ports.map(isFree))).every(Boolean)) return 4001 + offset
  }
  throw new Error('no free range of ports for voike up')
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

test('voike up --nodes 3 --demo: the demo result is exact, and SIGINT stops every node and exits 0', { timeout: PROCESS_TEST_MS }, async (t) => {
  const data = await mkdtemp(join(tmpdir(), 'voike-up-'))
  t.after(async () => { await rm(data, { recursive: true, force: true }) })
  let attempt = 0
  for (;;) {
    attempt++
    const base = await freeBasePort(3)
    const up = spawn(process.execPath, [CLI_PATH, 'up', '--nodes', '3', '--demo', '--base-port', String(base), '--data', data], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VOIKE_LOG_LEVEL: 'warn' }
    })
    let stderr = ''
    up.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const exited = new Promise<number | string>(resolve => up.once('exit', (code, sig) => { resolve(code ?? sig ?? 'unknown') }))
    t.after(() => { if (up.exitCode === null && up.signalCode === null) up.kill('SIGKILL') })
    const lines: string[] = []
    const serving = new Promise<boolean>((resolve) => {
      createInterface({ input: up.stdout }).on('line', (line) => {
        lines.push(line)
        if (line.startsWith('Serving.')) resolve(true)
      })
      void exited.then(() => { resolve(false) })
    })
    if (!await serving) {
      // Another program took one of the ports between the check and the bind: try another range.
      if (/EADDRINUSE|address in use/i.test(stderr) && attempt < 3) continue
      assert.fail(`voike up exited before serving (${await exited}); stdout:\n${lines.join('\n')}\nstderr:\n${stderr}`)
    }
    const children = execFileSync('ps', ['-o', 'pid=', '--ppid', String(up.pid)], { encoding: 'utf8' }).split('\n').map(s => Number(s.trim())).filter(p => p > 0)
    // Collected first: if up fails to stop them, or an assertion below fails, the test still must not leave them running.
    t.after(() => { for (const pid of children) if (alive(pid)) process.kill(pid, 'SIGKILL') })
    const demo = lines.find(l => l.startsWith('Demo: fib n='))
    const n = Number(/n=(\d+)/.exec(demo ?? '')?.[1])
    assert.ok(Number.isInteger(n) && n > 0, `the demo names its n: ${demo}`)
    const result = lines.find(l => l.startsWith('result: '))
    assert.ok(result !== undefined, lines.join('\n'))
    assert.deepEqual(JSON.parse(result.slice('result: '.length)), fibInProcess(n), 'the demo result is exact')
    assert.ok(lines.some(l => /^status: succeeded; [1-3] node\(s\) ran segments/.test(l)), lines.join('\n'))
    // Which node ran each segment: one table row per segment, each naming a node.
    const rows = lines.filter(l => SEGMENT_ROW.test(l))
    const segments = Number(/in (\d+) cost-balanced segments/.exec(demo ?? '')?.[1])
    assert.equal(rows.length, segments, lines.join('\n'))

    assert.equal(children.length, 3, `one child per node: ${children.join(', ')}`)
    up.kill('SIGINT')
    const code = await exited
    assert.equal(code, 0, `voike up exits 0 on Ctrl-C; stderr:\n${stderr}`)
    // Every node is gone with it (up waits for each child's exit before its own).
    for (const pid of children) assert.equal(alive(pid), false, `node process ${pid} still runs after up exited`)
    return
  }
})

test('comma-separated seeds: a node joins through the first seed that answers', { timeout: PROCESS_TEST_MS }, async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const g = await c.start('genesis')
  const dead = await freePort()
  // A dead host:port first, then Genesis' multiaddr: both forms in one list.
  const a = await c.start('node', { seed: `127.0.0.1:${dead},${g.ready.p2p[0]}` })
  await c.waitAlive(g, 2)
  await c.waitAlive(a, 2)
  // And the other way round, host:port of a live member after a dead multiaddr.
  const b = await c.start('node', { seed: `/ip4/127.0.0.1/tcp/${dead},127.0.0.1:${p2pPort(a)}` })
  await c.waitAlive(b, 3)
  await c.waitAlive(g, 3)
})

const SCRIPT = '/usr/bin/script'
const noPty = existsSync(SCRIPT) ? false : `${SCRIPT} (util-linux) is not installed: no pseudo-terminal to run the CLI in`

/** Runs the CLI under a pseudo-terminal (util-linux `script`), as a user at a terminal would. */
async function runInTerminal (args: string[]): Promise<{ code: number | null, out: string }> {
  const quoted = [process.execPath, CLI_PATH, ...args].map(a => `'${a.replace(/'/g, "'\\''")}'`).join(' ')
  return await new Promise((resolve, reject) => {
    const p = spawn(SCRIPT, ['-qefc', quoted, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TERM: 'dumb' } })
    let out = ''
    p.stdout.on('data', (d: Buffer) => { out += d.toString() })
    p.stderr.on('data', (d: Buffer) => { out += d.toString() })
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`voike ${args.join(' ')} did not finish; output:\n${out}`)) }, 60_000)
    p.on('exit', (code) => { clearTimeout(timer); resolve({ code, out }) })
  })
}

test('job submit --wait in a terminal: a progress bar, then the segment table and the result; none with --json or without a terminal', { timeout: PROCESS_TEST_MS, skip: noPty }, async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const g = await c.start('genesis')
  const ref = FIB_REFERENCE.find(r => r.n === 100000)
  assert.ok(ref !== undefined)
  const r = await runInTerminal(['job', 'submit', 'fib', '--n', '100000', '--segments', '8', '--wait', '--api', g.ready.api])
  assert.equal(r.code, 0, r.out)
  // The bar is redrawn in place (\r) and ends full.
  assert.match(r.out, /\r\[#{30}\] 8\/8 segments/, JSON.stringify(r.out))
  const lines = r.out.split(/\r?\n|\r/)
  assert.ok(lines.some(l => /^job \S+ {2}fib {2}succeeded {2}8\/8 segments\b/.test(l)), r.out)
  assert.ok(lines.some(l => /^segment {2}range +node +attempts +lost +ms$/.test(l)), r.out)
  const rows = lines.filter(l => SEGMENT_ROW.test(l))
  assert.equal(rows.length, 8, r.out)
  const result = lines.find(l => l.startsWith('result: '))
  assert.deepEqual(JSON.parse((result ?? '').slice('result: '.length)), ref)

  // --json in a terminal: one JSON object, no bar.
  const json = await runInTerminal(['job', 'submit', 'fib', '--n', '5000', '--segments', '3', '--wait', '--json', '--api', g.ready.api])
  assert.equal(json.code, 0, json.out)
  assert.doesNotMatch(json.out, /\[#*\s*\] \d+\/\d+ segments/)
  // The terminal shows stderr too: `job ID submitted` first, then the one JSON object (stdout).
  const jsonLines = json.out.split(/\r?\n/).filter(l => l.trim() !== '')
  assert.match(jsonLines[0], /^job \S+ submitted/)
  assert.equal(jsonLines.filter(l => l.startsWith('{')).length, 1, json.out)
  assert.deepEqual((JSON.parse(jsonLines.find(l => l.startsWith('{')) ?? '') as { result: unknown }).result, FIB_REFERENCE.find(x => x.n === 5000))
  // Without a terminal (pipes): the table, no bar.
  const piped = await runCli(['job', 'submit', 'fib', '--n', '5000', '--segments', '3', '--wait', '--api', g.ready.api])
  assert.equal(piped.code, 0, piped.stderr)
  assert.doesNotMatch(piped.stderr + piped.stdout, /segments\r|\r\[/)
  assert.match(piped.stdout, /^segment {2}range/m)
})
