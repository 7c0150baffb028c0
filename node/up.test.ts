/**
 * `voike up` supervises its nodes: a node killed with SIGKILL is reported and restarted with
 * backoff while the rest keep serving (a client waiting on a job sees it finish exact); past
 * --max-restarts in the window it gives up on that node only; Ctrl-C stops every node, exit 0.
 */
import './polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI_PATH, getJson, postJson, runCli, waitFor } from './testkit.js'
import type { JobView } from '../actors/scheduler/api.js'

/** F(n) exactly, by fast doubling on BigInt: independent of the grid's kernel. */
function fibPair (n: bigint): [bigint, bigint] {
  if (n === 0n) return [0n, 1n]
  const [a, b] = fibPair(n >> 1n)
  const c = a * (2n * b - a)
  const d = a * a + b * b
  return (n & 1n) === 0n ? [c, d] : [d, c + d]
}

/** The fib job's result by the contract: digits and SHA-256 of F(n), sum of F(0..n-1) mod 2^61-1 (= F(n+1) - 1). */
function expectedFib (n: number): { n: number, digits: number, sha256: string, sumMod61: string } {
  const [fn, fn1] = fibPair(BigInt(n))
  const text = fn.toString()
  return { n, digits: text.length, sha256: createHash('sha256').update(text).digest('hex'), sumMod61: ((fn1 - 1n) % (2n ** 61n - 1n)).toString() }
}

async function portFree (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = createServer()
    s.once('error', () => { resolve(false) })
    s.listen(port, '127.0.0.1', () => { s.close(() => { resolve(true) }) })
  })
}

/** A --base-port whose p2p, gRPC and HTTP ranges (see up.ts) are all free now. */
async function freeBasePort (nodes: number): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const base = 10_000 + Math.floor(Math.random() * 9_000)
    const offset = base - 4001
    const ports = Array.from({ length: nodes }, (_, i) => [base + i, 50051 + offset + i, 8080 + offset + i]).flat()
    let ok = true
    for (const p of ports) if (!await portFree(p)) { ok = false; break }
    if (ok) return base
  }
  throw new Error('no free port range found')
}

/** Pids of the live children of `parent` (Linux /proc), with their command lines. */
function childrenOf (parent: number): Array<{ pid: number, args: string[] }> {
  const out: Array<{ pid: number, args: string[] }> = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(fields[1]) !== parent || fields[0] === 'Z') continue
      out.push({ pid: Number(d), args: readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0') })
    } catch { /* gone meanwhile */ }
  }
  return out
}

function nodePid (upPid: number, name: string): number | undefined {
  return childrenOf(upPid).find(c => c.args.some((a, i) => a === name && c.args[i - 1] === '--name'))?.pid
}

function alive (pid: number): boolean {
  return existsSync(`/proc/${pid}`) && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
}

test('voike up: a node killed with SIGKILL is reported and restarted, jobs stay exact, Ctrl-C exits 0', { timeout: 420_000 }, async (t) => {
  assert.equal(process.platform, 'linux', 'this test reads /proc')
  const data = await mkdtemp(join(tmpdir(), 'voike-up-'))
  const base = await freeBasePort(3)
  const offset = base - 4001
  const api = `127.0.0.1:${50051 + offset}`
  const http = `127.0.0.1:${8080 + offset}`
  // Its own process group, as a terminal would run it: Ctrl-C is a SIGINT to the group.
  const up = spawn(process.execPath, [CLI_PATH, 'up', '--nodes', '3', '--base-port', String(base), '--data', data, '--max-restarts', '1'], {
    detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VOIKE_THREADS: '1', VOIKE_LOG_LEVEL: 'warn' }
  })
  let out = ''
  up.stdout.on('data', (d: Buffer) => { out += d.toString() })
  up.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<number | string>(resolve => up.once('exit', (code, sig) => { resolve(code ?? sig ?? 'unknown') }))
  const seen = new Set<number>()
  t.after(async () => {
    if (up.exitCode === null && up.signalCode === null) { try { process.kill(-up.pid!, 'SIGKILL') } catch { /* gone */ } }
    for (const pid of seen) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
    await rm(data, { recursive: true, force: true })
  })
  const track = (): void => { for (const c of childrenOf(up.pid!)) seen.add(c.pid) }
  await waitFor(() => { track(); return /Serving\./.test(out) }, `the grid to serve; output:\n${out}`, 180_000, 100)
  track()
  const first = nodePid(up.pid!, 'node-1')
  assert.ok(first !== undefined, 'node-1 is a child of voike up')
  assert.match(out, new RegExp(`node-1\\s+pid ${first}\\b`), 'voike up prints each node\'s pid')

  // A client waits on a job; a node dies under it.
  const submitted = await postJson<JobView>(http, '/grid/jobs', { kind: 'fib', n: 300_000, segments: 24 })
  assert.ok(submitted.status >= 200 && submitted.status < 300, JSON.stringify(submitted.body))
  const watching = runCli(['job', 'watch', submitted.body.id, '--json', '--api', api], {}, 240_000)
  process.kill(first, 'SIGKILL')
  const watched = await watching
  assert.equal(watched.code, 0, watched.stderr)
  // NDJSON: progress objects, then the job.
  const job = JSON.parse(watched.stdout.trim().split('\n').at(-1) ?? '') as JobView
  assert.equal(job.status, 'succeeded')
  assert.deepEqual(job.result, expectedFib(300_000))

  // Reported, restarted under a new pid, and back in the cluster.
  await waitFor(() => /node-1 \(pid \d+\) died \(SIGKILL\); restarting in \d+ ms \(restart 1 of 1/.test(out), `the death reported; output:\n${out}`, 30_000, 100)
  const restarted = await waitFor(() => { track(); return /node-1 restarted \(pid (\d+)\)/.exec(out) ?? undefined }, `node-1 restarted; output:\n${out}`, 120_000, 100)
  const second = Number(restarted[1])
  assert.notEqual(second, first)
  assert.equal(nodePid(up.pid!, 'node-1'), second)
  await waitFor(async () => (await getJson<Array<{ status: string }>>(http, '/mesh/nodes')).body.filter(m => m.status === 'alive').length === 3, 'three alive members', 60_000, 200)

  // The README's done-when, on the healed grid.
  const again = await runCli(['job', 'submit', 'fib', '--n', '300000', '--segments', '24', '--wait', '--json', '--api', api], {}, 240_000)
  assert.equal(again.code, 0, again.stderr)
  assert.deepEqual((JSON.parse(again.stdout) as JobView).result, expectedFib(300_000))

  // Past --max-restarts within the window: that node is given up, the others keep serving.
  process.kill(second, 'SIGKILL')
  await waitFor(() => /node-1 \(pid \d+\) died \(SIGKILL\); it died 2 times within 60 s: giving up on it, the other nodes keep running/.test(out), `giving up reported; output:\n${out}`, 30_000, 100)
  const small = await runCli(['job', 'submit', 'fib', '--n', '100000', '--segments', '8', '--wait', '--json', '--api', api], {}, 240_000)
  assert.equal(small.code, 0, small.stderr)
  assert.deepEqual((JSON.parse(small.stdout) as JobView).result, expectedFib(100_000))
  assert.equal(up.exitCode, null, 'voike up keeps running')

  // Ctrl-C: every node stopped, exit 0.
  track()
  const children = childrenOf(up.pid!).map(c => c.pid)
  assert.equal(children.length, 2, 'genesis and node-2 still run')
  process.kill(-up.pid!, 'SIGINT')
  assert.equal(await exited, 0, out)
  for (const pid of children) assert.ok(!alive(pid), `node pid ${pid} still runs after voike up exited`)
})

test('voike up: its nodes stop by themselves when voike up is killed without stopping them', { timeout: 120_000 }, async (t) => {
  const data = await mkdtemp(join(tmpdir(), 'voike-up-'))
  const base = await freeBasePort(1)
  const up = spawn(process.execPath, [CLI_PATH, 'up', '--nodes', '1', '--base-port', String(base), '--data', data], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VOIKE_THREADS: '1', VOIKE_LOG_LEVEL: 'warn' }
  })
  let out = ''
  up.stdout.on('data', (d: Buffer) => { out += d.toString() })
  up.stderr.on('data', (d: Buffer) => { out += d.toString() })
  let genesis: number | undefined
  t.after(async () => {
    up.kill('SIGKILL')
    if (genesis !== undefined) { try { process.kill(genesis, 'SIGKILL') } catch { /* gone */ } }
    await rm(data, { recursive: true, force: true })
  })
  await waitFor(() => /Serving\./.test(out), `the grid to serve; output:\n${out}`, 90_000, 100)
  genesis = nodePid(up.pid!, 'genesis')
  assert.ok(genesis !== undefined)
  up.kill('SIGKILL')
  await waitFor(() => !alive(genesis!), `genesis (pid ${genesis}) to stop after voike up died`, 30_000, 100)
})
