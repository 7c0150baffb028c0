/**
 * A data dir belongs to one running node: a second process given the same --data exits 2 naming
 * the dir; a node killed with SIGKILL leaves a stale lock the next start takes over. And an
 * impostor with a live member's identity (a copied key) cannot move that member to its address.
 */
import './polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { copyFile, readFile, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { DataDirLockedError, LOCK_FILE_NAME, lockDataDir, processStartTicks, staleReason, type LockHolder } from './datadir-lock.js'
import { CLI_PATH, Cluster, getJson, p2pPort, runCli, waitFor, type NodeProc } from './testkit.js'

interface Member { peerId: string, status: string, addrs: string[] }

const portOf = (addr: string | undefined): number => Number(addr?.split('/')[4])

async function memberSeenBy (node: NodeProc, peerId: string): Promise<Member | undefined> {
  const res = await getJson<Member[]>(node.ready.http, '/mesh/nodes')
  return res.body.find(m => m.peerId === peerId)
}

test('a second node on a data dir in use exits 2 naming it; a SIGKILLed node\'s lock is taken over', { timeout: 180_000 }, async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const g = await c.start('genesis')
  const a = await c.start('node')
  await c.waitAlive(g, 2)
  for (const role of ['node', 'genesis'] as const) {
    const args = [role, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--http', '127.0.0.1:0', '--data', a.dataDir, '--threads', '1']
    if (role === 'node') args.push('--genesis', g.ready.p2p[0])
    const second = await runCli(args, {}, 60_000)
    assert.equal(second.code, 2, `voike ${role} on a data dir in use: ${second.stderr}`)
    assert.ok(second.stderr.includes(a.dataDir), `the message names the dir: ${second.stderr}`)
    assert.match(second.stderr, new RegExp(`in use by .*pid ${a.proc.pid}`))
  }
  // The real node was not disturbed: alive, at its own address.
  const seen = await memberSeenBy(g, a.ready.peerId)
  assert.equal(seen?.status, 'alive')
  assert.equal(portOf(seen?.addrs[0]), p2pPort(a))

  // Killed without a chance to clean up: the next start on the dir takes the stale lock.
  await c.kill(a, 'SIGKILL')
  const back = await c.restart(a, 'node')
  assert.equal(back.ready.peerId, a.ready.peerId)
  // Stopped cleanly: the lock is released, and a start after it works too.
  assert.equal(await c.kill(back, 'SIGTERM'), 0)
  const again = await c.restart(back, 'node')
  assert.equal(again.ready.peerId, a.ready.peerId)
})

test('a member\'s identity used from another address does not replace the live member\'s address', { timeout: 180_000 }, async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const g = await c.start('genesis')
  const a = await c.start('node')
  await c.waitAlive(g, 2)
  // A copy of a's key in another dir: not a data dir in use, the same peer id.
  const copy = await c.tempDir()
  await copyFile(join(a.dataDir, 'peer.key'), join(copy, 'peer.key'))
  // Not waited for: its join's answer may well go to the real member's connection.
  const impostor = spawn(process.execPath, [CLI_PATH, 'node', '--genesis', g.ready.p2p[0], '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--http', '127.0.0.1:0', '--data', copy, '--name', 'impostor', '--threads', '1'], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VOIKE_LOG_LEVEL: 'info' }
  })
  const gone = new Promise(resolve => impostor.once('exit', resolve))
  t.after(async () => { impostor.kill('SIGKILL'); await gone })
  let log = ''
  impostor.stderr.on('data', (d: Buffer) => { log += d.toString() })
  const listening = await waitFor(() => /"msg":"mesh started","peerId":"([^"]+)","addrs":\["([^"]+)"/.exec(log) ?? undefined, 'the impostor to listen', 60_000, 50)
  assert.equal(listening[1], a.ready.peerId)
  const impostorPort = portOf(listening[2])
  // Genesis heard of the impostor's address...
  await waitFor(async () => (await memberSeenBy(g, a.ready.peerId))?.addrs.some(x => portOf(x) === impostorPort), 'genesis to hear the impostor\'s address', 60_000, 100)
  // ... and still lists the live member first, at its own address.
  assert.equal(portOf((await memberSeenBy(g, a.ready.peerId))?.addrs[0]), p2pPort(a))
  impostor.kill('SIGKILL')
  await gone
  // After the impostor is gone: alive, at its own address, reachable there.
  await waitFor(async () => {
    const m = await memberSeenBy(g, a.ready.peerId)
    return m?.status === 'alive' && portOf(m.addrs[0]) === p2pPort(a)
  }, 'the member alive at its own address', 30_000, 200)
  const r = await runCli(['job', 'submit', 'fib', '--n', '5000', '--segments', '4', '--wait', '--json', '--api', g.ready.api])
  assert.equal(r.code, 0, r.stderr)
})

test('the lock: held, released, refused in-process, stale after its pid is gone or reused, never across hosts', async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const dir = await c.tempDir()
  const path = join(dir, LOCK_FILE_NAME)
  const lock = lockDataDir(dir)
  assert.equal(JSON.parse(await readFile(path, 'utf8')).pid, process.pid)
  assert.throws(() => lockDataDir(dir), (e: DataDirLockedError) => e.code === 'ERR_DATA_DIR_LOCKED' && e.field === '--data' && e.message.includes(dir) && e.message.includes(`pid ${process.pid}`))
  lock.release()
  lock.release()
  await assert.rejects(readFile(path), { code: 'ENOENT' })

  const write = async (h: object): Promise<void> => { await writeFile(path, JSON.stringify(h)) }
  const takes = (): void => { lockDataDir(dir).release() }
  // A dead pid: a child that has exited.
  const child = spawn(process.execPath, ['-e', ''])
  await new Promise(resolve => child.once('exit', resolve))
  await write({ pid: child.pid, startTicks: null, host: hostname(), sinceMs: 1 })
  takes()
  // A live pid that started at another time than the lock says: reused.
  await write({ pid: process.ppid, startTicks: (processStartTicks(process.ppid) ?? 0) + 1, host: hostname(), sinceMs: 1 })
  takes()
  // Our own pid, but we hold no such lock: a container restarted (pid 1 again).
  await write({ pid: process.pid, startTicks: processStartTicks(process.pid), host: hostname(), sinceMs: 1 })
  takes()
  // Unreadable: broken.
  await writeFile(path, 'garbage')
  takes()
  // A live process: held.
  await write({ pid: process.ppid, startTicks: processStartTicks(process.ppid), host: hostname(), sinceMs: 1 })
  assert.throws(() => lockDataDir(dir), new RegExp(`in use by pid ${process.ppid} since`))
  assert.equal(staleReason(JSON.parse(await readFile(path, 'utf8')) as LockHolder, path), undefined)
  // Another host: cannot be checked, never broken.
  await write({ pid: 1, startTicks: null, host: 'elsewhere.example', sinceMs: 1 })
  assert.throws(() => lockDataDir(dir), /in use by pid 1 on host elsewhere\.example/)
})

test('the lock: of several processes racing for a stale lock, exactly one takes it', { timeout: 120_000 }, async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const dir = await c.tempDir()
  await writeFile(join(dir, LOCK_FILE_NAME), JSON.stringify({ pid: 2 ** 22 + 12345, startTicks: null, host: hostname(), sinceMs: 1 }))
  const module = new URL('./datadir-lock.js', import.meta.url).href
  // Each racer holds what it took until told to exit, so a winner cannot release before the others try.
  const script = `import(${JSON.stringify(module)}).then(m => { try { m.lockDataDir(${JSON.stringify(dir)}); console.log('took') } catch (e) { console.log(e.code) } process.stdin.resume(); process.stdin.on('end', () => process.exit(0)) })`
  const racers = Array.from({ length: 6 }, () => spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] }))
  const answers = await Promise.all(racers.map(async p => await new Promise<string>((resolve) => {
    let out = ''
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('\n')) resolve(out.trim()) })
  })))
  for (const p of racers) p.stdin.end()
  await Promise.all(racers.map(async p => await new Promise(resolve => { if (p.exitCode !== null) resolve(undefined); else p.once('exit', resolve) })))
  assert.equal(answers.filter(a => a === 'took').length, 1, answers.join(', '))
  assert.equal(answers.filter(a => a === 'ERR_DATA_DIR_LOCKED').length, racers.length - 1, answers.join(', '))
})
