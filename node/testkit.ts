/**
 * Test harness for real multi-process clusters on 127.0.0.1: spawns `voike` processes with port
 * 0, reads their ready lines, waits on conditions (never fixed sleeps) and kills every child at
 * the end. Used by the node tests and the benches.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { pgSkip, waitFor as rigWaitFor } from '../actors/testing/rig.js'
export { PG_SKIP_REASON, pgSkip } from '../actors/testing/rig.js'

export const CLI_PATH = fileURLToPath(new URL('./cli.js', import.meta.url))

export interface ReadyLine { event: 'ready', peerId: string, p2p: string[], api: string, http: string }

export interface NodeProc {
  name: string
  proc: ChildProcess
  ready: ReadyLine
  dataDir: string
  stderr: () => string
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>
}

export interface ClusterOptions {
  /** Extra environment for every node (e.g. DATABASE_URL). */
  env?: Record<string, string>
  /** Worker threads per node. Default 1: tests run several nodes on 2 cores. */
  threads?: number
}

/** The TCP port of a node's first p2p address. */
export function p2pPort (node: NodeProc): number {
  return Number(node.ready.p2p[0].split('/')[4])
}

/** The rig's waitFor (actors/testing/rig.ts), polling less often: these conditions ask other processes. */
export async function waitFor<T> (fn: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 30_000, everyMs = 25): Promise<T> {
  return await rigWaitFor(fn, what, timeoutMs, everyMs)
}

export async function getJson<T = unknown> (http: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number, body: T }> {
  const res = await fetch(`http://${http}${path}`, { headers, signal: AbortSignal.timeout(10_000) })
  const text = await res.text()
  let body: unknown = text
  try { body = JSON.parse(text) } catch { /* metrics are text */ }
  return { status: res.status, body: body as T }
}

export async function postJson<T = unknown> (http: string, path: string, payload: unknown, headers: Record<string, string> = {}): Promise<{ status: number, body: T }> {
  const res = await fetch(`http://${http}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof payload === 'string' ? payload : JSON.stringify(payload), signal: AbortSignal.timeout(10_000) })
  const text = await res.text()
  let body: unknown = text
  try { body = JSON.parse(text) } catch { /* not JSON */ }
  return { status: res.status, body: body as T }
}

/** Runs the CLI to completion: for client commands and config errors. */
export async function runCli (args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return await new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI_PATH, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    p.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const t = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`voike ${args.join(' ')} did not finish in ${timeoutMs} ms; stderr: ${stderr}`)) }, timeoutMs)
    p.on('exit', (code) => { clearTimeout(t); resolve({ code, stdout, stderr }) })
  })
}

export class Cluster {
  readonly nodes: NodeProc[] = []
  private readonly dirs: string[] = []
  constructor (readonly options: ClusterOptions = {}) {}

  async tempDir (): Promise<string> {
    const d = await mkdtemp(join(tmpdir(), 'voike-test-'))
    this.dirs.push(d)
    return d
  }

  /** Starts `voike genesis` (role 'genesis') or `voike node --genesis <seed>`; resolves at its ready line. */
  async start (role: 'genesis' | 'node', opts: { seed?: string, dataDir?: string, name?: string, extraArgs?: string[], env?: Record<string, string> } = {}): Promise<NodeProc> {
    const dataDir = opts.dataDir ?? await this.tempDir()
    const name = opts.name ?? (role === 'genesis' ? 'genesis' : `node-${this.nodes.length}`)
    const args = [role, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--http', '127.0.0.1:0', '--data', dataDir, '--name', name, '--threads', String(this.options.threads ?? 1)]
    if (role === 'node') args.push('--genesis', opts.seed ?? this.genesis().ready.p2p[0])
    args.push(...(opts.extraArgs ?? []))
    const proc = spawn(process.execPath, [CLI_PATH, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, VOIKE_LOG_LEVEL: process.env.VOIKE_TEST_LOG_LEVEL ?? 'warn', ...this.options.env, ...opts.env }
    })
    let err = ''
    proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); if (err.length > 1_000_000) err = err.slice(-500_000) })
    const exited = new Promise<number | string>(resolve => proc.once('exit', (code, sig) => { resolve(code ?? sig ?? 'unknown') }))
    const ready = await new Promise<ReadyLine>((resolve, reject) => {
      const lines = createInterface({ input: proc.stdout! })
      const timer = setTimeout(() => { reject(new Error(`${name} not ready in 60 s; stderr:\n${err}`)) }, 60_000)
      lines.on('line', (line) => {
        try {
          const evt = JSON.parse(line) as ReadyLine
          if (evt.event === 'ready') { clearTimeout(timer); resolve(evt) }
        } catch { /* not ours */ }
      })
      void exited.then((code) => { clearTimeout(timer); reject(new Error(`${name} exited (${code}) before ready; stderr:\n${err}`)) })
    })
    const node: NodeProc = { name, proc, ready, dataDir, stderr: () => err, exited }
    this.nodes.push(node)
    return node
  }

  /**
   * Starts `old`'s successor after it exited: same role, data dir (so same identity and store)
   * and p2p port, so that members reach it where they knew it.
   */
  async restart (old: NodeProc, role: 'genesis' | 'node', opts: { name?: string, extraArgs?: string[] } = {}): Promise<NodeProc> {
    return await this.start(role, { dataDir: old.dataDir, name: opts.name ?? old.name, extraArgs: ['--listen', `/ip4/127.0.0.1/tcp/${p2pPort(old)}`, ...(opts.extraArgs ?? [])] })
  }

  genesis (): NodeProc {
    const g = this.nodes.find(n => n.name === 'genesis' && n.proc.exitCode === null && n.proc.signalCode === null)
    if (g === undefined) throw new Error('no running genesis')
    return g
  }

  async members (node: NodeProc): Promise<Array<{ peerId: string, status: string, leftAtMs: number | null }>> {
    const res = await getJson<Array<{ peerId: string, status: string, leftAtMs: number | null }>>(node.ready.http, '/mesh/nodes')
    if (res.status !== 200) throw new Error(`/mesh/nodes answered ${res.status}`)
    return res.body
  }

  async waitAlive (node: NodeProc, count: number, timeoutMs = 30_000): Promise<void> {
    await waitFor(async () => (await this.members(node)).filter(m => m.status === 'alive').length === count, `${count} alive members seen by ${node.name}`, timeoutMs)
  }

  async kill (node: NodeProc, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | string> {
    if (node.proc.exitCode === null && node.proc.signalCode === null) node.proc.kill(signal)
    return await node.exited
  }

  async stopAll (): Promise<void> {
    await Promise.all(this.nodes.map(async n => await this.kill(n, 'SIGKILL')))
    await Promise.all(this.dirs.map(async d => await rm(d, { recursive: true, force: true })))
  }
}

/**
 * The stores every store-touching test runs against: embedded always, PostgreSQL when configured.
 * Without VOIKE_TEST_DATABASE_URL the PostgreSQL variant is still declared, with `skip` set to the
 * reason, so that the test runner reports it as skipped instead of the test not existing.
 */
export function storeVariants (): Array<{ name: string, skip: string | false, env: () => Record<string, string> }> {
  const url = process.env.VOIKE_TEST_DATABASE_URL
  return [
    { name: 'embedded', skip: false, env: () => ({}) },
    { name: 'postgres', skip: pgSkip(), env: () => ({ DATABASE_URL: url as string, VOIKE_DB_SCHEMA: pgSchemaName() }) }
  ]
}

/** A fresh PostgreSQL schema name for one test (dropped by dropSchema). */
export function pgSchemaName (): string {
  return `t_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
}

/** Drops the PostgreSQL schema a variant's env created (no-op for the embedded store). */
export async function dropSchema (env: Record<string, string>): Promise<void> {
  if (env.DATABASE_URL === undefined || env.VOIKE_DB_SCHEMA === undefined) return
  const client = new pg.Client({ connectionString: env.DATABASE_URL })
  await client.connect()
  try { await client.query(`DROP SCHEMA IF EXISTS "${env.VOIKE_DB_SCHEMA}" CASCADE`) } finally { await client.end() }
}
