/**
 * Child processes for the benchmarks: every system under test runs its servers in a separate
 * Node process (a "peer"), started here and always killed at the end, also on error and on
 * SIGINT/SIGTERM. Peers talk to the bench process with JSON lines on stdout (one object a line,
 * `{"event":"ready",...}` once listening) and exit by themselves when their stdin closes, so a
 * bench process that dies abruptly (SIGKILL) leaves nothing behind either.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { dirname, join } from 'node:path'

/** Grace between SIGTERM and SIGKILL when stopping a peer. */
const KILL_GRACE_MS = 2_000
/** Longest stdout line a peer may print (a JSON event); longer means a bug, not data. */
const MAX_LINE_CHARS = 1 << 20
/** Events kept while nobody waits for them; older ones are dropped. */
const MAX_BUFFERED_EVENTS = 1_000
/** The end of a peer's stderr kept for the error that reports its exit. */
const STDERR_TAIL_CHARS = 4_096

export class BenchError extends Error {
  readonly code: string
  constructor (code: string, message: string) {
    super(message)
    this.name = 'BenchError'
    this.code = code
  }
}

/** One JSON object a peer printed, with the bench-process time (performance.now()) it arrived. */
export interface PeerEvent {
  readonly event: string
  readonly atMs: number
  readonly [key: string]: unknown
}

export interface PeerOptions {
  /** Default: the bench process's environment. */
  env?: NodeJS.ProcessEnv
  /**
   * `forward` (default) copies the peer's stderr to ours as it comes, each line prefixed with
   * the peer's name; `capture` only keeps it for the error that reports the peer's exit (a test
   * that makes a peer fail on purpose must not print the failure into the test output).
   */
  stderr?: 'forward' | 'capture'
}

interface Waiter {
  predicate: (e: PeerEvent) => boolean
  resolve: (e: PeerEvent) => void
  reject: (err: Error) => void
}

const live = new Set<PeerProcess>()

/** A child process speaking JSON lines on stdout. */
export class PeerProcess {
  readonly name: string
  readonly child: ChildProcess
  /** performance.now() just before spawn(). */
  readonly spawnedAtMs: number
  private readonly events: PeerEvent[] = []
  private readonly waiters = new Set<Waiter>()
  private partial = ''
  private exitError: Error | null = null
  /** The last STDERR_TAIL_CHARS of the peer's stderr. */
  private stderrTail = ''
  readonly exited: Promise<void>

  constructor (name: string, command: string, args: string[], options: PeerOptions = {}) {
    this.name = name
    this.spawnedAtMs = performance.now()
    this.child = spawn(command, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: options.env ?? process.env
    })
    live.add(this)
    this.child.stdout!.setEncoding('utf8')
    this.child.stdout!.on('data', (chunk: string) => { this.onData(chunk) })
    const forward = (options.stderr ?? 'forward') === 'forward'
    this.child.stderr!.setEncoding('utf8')
    this.child.stderr!.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-STDERR_TAIL_CHARS)
      if (forward) process.stderr.write(chunk.split('\n').filter(l => l !== '').map(l => `[${this.name}] ${l}\n`).join(''))
    })
    // The pipe to the child's stdin stays open while we live: closing it tells the peer to exit.
    this.child.stdin!.on('error', () => {})
    this.exited = new Promise<void>((resolve) => {
      // 'exit' normally; 'error' alone when the process could not be spawned at all.
      const finish = (err: Error): void => {
        if (this.exitError !== null) return
        live.delete(this)
        this.exitError = err
        for (const w of this.waiters) w.reject(err)
        this.waiters.clear()
        resolve()
      }
      // 'close', not 'exit': it comes after the child's stdout is drained, so a last event printed
      // just before exiting is always seen before waiters are failed.
      this.child.once('close', (code, signal) => {
        const said = this.stderrTail.trim()
        finish(new BenchError('ERR_PEER_EXITED', `peer ${this.name} exited (code ${String(code)}, signal ${String(signal)})${said === '' ? '' : `; its stderr ended with:\n${said}`}`))
      })
      this.child.once('error', (err) => {
        if (this.child.pid === undefined) finish(new BenchError('ERR_PEER_SPAWN', `peer ${this.name}: ${err.message}`))
      })
    })
  }

  get pid (): number {
    if (this.child.pid === undefined) throw new BenchError('ERR_PEER_SPAWN', `peer ${this.name} has no pid`)
    return this.child.pid
  }

  private onData (chunk: string): void {
    const atMs = performance.now()
    this.partial += chunk
    if (this.partial.length > MAX_LINE_CHARS) {
      // A runaway line is a peer bug; drop it rather than grow without bound.
      process.stderr.write(`[${this.name}] dropped an output line over ${MAX_LINE_CHARS} chars\n`)
      this.partial = ''
      return
    }
    let nl: number
    while ((nl = this.partial.indexOf('\n')) >= 0) {
      const line = this.partial.slice(0, nl).trim()
      this.partial = this.partial.slice(nl + 1)
      if (line.length === 0) continue
      let obj: unknown
      try { obj = JSON.parse(line) } catch { process.stderr.write(`[${this.name}] ${line}\n`); continue }
      if (obj === null || typeof obj !== 'object' || typeof (obj as { event?: unknown }).event !== 'string') {
        process.stderr.write(`[${this.name}] ${line}\n`)
        continue
      }
      this.dispatch({ ...(obj as { event: string }), atMs })
    }
  }

  private dispatch (e: PeerEvent): void {
    for (const w of this.waiters) {
      if (w.predicate(e)) { this.waiters.delete(w); w.resolve(e); return }
    }
    this.events.push(e)
    if (this.events.length > MAX_BUFFERED_EVENTS) this.events.shift()
  }

  /** The first event (already received or future) matching `predicate`; rejects on exit or timeout. */
  async waitFor (predicate: (e: PeerEvent) => boolean, timeoutMs: number, what: string): Promise<PeerEvent> {
    const i = this.events.findIndex(predicate)
    if (i >= 0) return this.events.splice(i, 1)[0]!
    if (this.exitError !== null) throw this.exitError
    return await new Promise<PeerEvent>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter)
        reject(new BenchError('ERR_PEER_TIMEOUT', `peer ${this.name}: no ${what} within ${timeoutMs} ms`))
      }, timeoutMs)
      const waiter: Waiter = {
        predicate,
        resolve: (e) => { clearTimeout(timer); resolve(e) },
        reject: (err) => { clearTimeout(timer); reject(err) }
      }
      this.waiters.add(waiter)
    })
  }

  /** Waits for the event named `event` (e.g. 'ready'). */
  async waitForEvent (event: string, timeoutMs: number): Promise<PeerEvent> {
    return await this.waitFor((e) => e.event === event, timeoutMs, `"${event}" event`)
  }

  /** SIGTERM, then SIGKILL after a grace period; resolves once the process is gone. */
  async kill (): Promise<void> {
    if (this.exitError !== null || this.child.exitCode !== null || this.child.signalCode !== null) {
      await this.exited
      return
    }
    this.child.stdin!.end()
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => { this.child.kill('SIGKILL') }, KILL_GRACE_MS)
    await this.exited
    clearTimeout(timer)
  }
}

/** Absolute path of a compiled bench script, e.g. script('baselines/raw-tcp.js'). */
export function script (relative: string): string {
  return join(dirname(fileURLToPath(import.meta.url)), relative)
}

/** Starts `node <dist/bench/relative> ...args` as a peer. */
export function spawnNodePeer (name: string, relative: string, args: string[] = [], options: PeerOptions = {}): PeerProcess {
  return new PeerProcess(name, process.execPath, [script(relative), ...args], options)
}

/** Starts a peer and waits for its ready event; kills it if it never gets ready. */
export async function startPeer (name: string, relative: string, args: string[] = [],
  timeoutMs = 30_000): Promise<{ peer: PeerProcess, ready: PeerEvent }> {
  const peer = spawnNodePeer(name, relative, args)
  try {
    const ready = await peer.waitForEvent('ready', timeoutMs)
    return { peer, ready }
  } catch (err) {
    await peer.kill()
    throw err
  }
}

/** Kills every peer still running. */
export async function killAllPeers (): Promise<void> {
  await Promise.all([...live].map(async (p) => { await p.kill() }))
}

/** Number of peers still running (the bench checks it is 0 at the end). */
export function livePeerCount (): number {
  return live.size
}

let cleanupInstalled = false

/**
 * Makes sure peers die with the bench process: on SIGINT/SIGTERM they are killed and the process
 * exits; on any other exit the survivors get SIGKILL synchronously.
 */
export function installCleanupHandlers (): void {
  if (cleanupInstalled) return
  cleanupInstalled = true
  const onSignal = (signal: NodeJS.Signals): void => {
    process.stderr.write(`\nbench: ${signal}, stopping peers...\n`)
    killAllPeers().finally(() => { process.exit(signal === 'SIGINT' ? 130 : 143) })
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  process.once('exit', () => {
    for (const p of live) p.child.kill('SIGKILL')
  })
}

/** Resident set size of a process in bytes (Linux /proc, else `ps`). */
export async function rssBytesOf (pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8')
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
    if (m !== null) return Number(m[1]) * 1024
  } catch { /* not Linux: fall back to ps */ }
  const out = await new Promise<string>((resolve, reject) => {
    execFile('ps', ['-o', 'rss=', '-p', String(pid)], (err, stdout) => {
      if (err !== null) reject(new BenchError('ERR_RSS', `cannot read RSS of pid ${pid}: ${err.message}`))
      else resolve(stdout)
    })
  })
  const kb = Number(out.trim())
  if (!Number.isFinite(kb) || kb <= 0) throw new BenchError('ERR_RSS', `cannot read RSS of pid ${pid}`)
  return kb * 1024
}

// ---- peer side -------------------------------------------------------------------------------

/** Prints one event line on stdout (the peer → bench channel). */
export function emit (event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(JSON.stringify({ event, ...fields }) + '\n')
}

/**
 * Peer side: runs `shutdown` and exits when the bench process goes away (stdin closes) or sends
 * SIGTERM/SIGINT. Shutdown is bounded so a stuck close cannot keep the peer alive.
 */
export function exitWithParent (shutdown: () => Promise<void>, graceMs = 1_500): void {
  let stopping = false
  const stop = (): void => {
    if (stopping) return
    stopping = true
    const hard = setTimeout(() => { process.exit(0) }, graceMs)
    hard.unref()
    shutdown().catch(() => {}).finally(() => { process.exit(0) })
  }
  process.stdin.on('end', stop)
  process.stdin.on('close', stop)
  process.stdin.on('error', stop)
  process.stdin.resume()
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}

/** `--name value` from argv (peer CLIs are tiny; no parser dependency). */
export function argValue (argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}

/** True when the module with this `import.meta.url` is the script node was started with. */
export function isMain (moduleUrl: string): boolean {
  const entry = process.argv[1]
  return entry !== undefined && pathToFileURL(entry).href === moduleUrl
}
