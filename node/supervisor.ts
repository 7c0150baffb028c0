/**
 * Supervision of `voike up`'s nodes: a child that dies is reported and started again with the
 * same arguments (same ports and data dir, so the same peer id at the same address) after a
 * backoff; a child that keeps dying is given up, alone: the others keep running.
 *
 * `decideRestart` is the policy, pure (like actors/scheduler/placement.ts); `Supervisor` owns the
 * processes. Children run in their own process group, so a terminal's Ctrl-C reaches `voike up`
 * only, which stops them in order; and they stop by themselves when `voike up` goes away without
 * stopping them (their stdin, a pipe from us, closes: see VOIKE_STOP_WITH_PARENT in cli.ts).
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { ConfigError } from '../config/index.js'

export interface RestartPolicy {
  /** Restarts of one child allowed within `windowMs`; one more death and it is given up. 0..100. */
  maxRestarts: number
  /** The window the restarts are counted in, ms. */
  windowMs: number
  /** Delay before the first restart; doubled for each restart already in the window, ms. */
  initialBackoffMs: number
  /** The longest delay, ms. */
  maxBackoffMs: number
}

export const DEFAULT_RESTART_POLICY: Readonly<RestartPolicy> = { maxRestarts: 5, windowMs: 60_000, initialBackoffMs: 500, maxBackoffMs: 10_000 }
export const MAX_RESTARTS_LIMIT = 100

export type RestartDecision =
  | { action: 'restart', delayMs: number, restart: number }
  | { action: 'give-up', deaths: number }

/**
 * What to do about a child that just died at `nowMs`, given when it was restarted before
 * (`restartsAtMs`, any order). Only restarts within the window count.
 */
export function decideRestart (restartsAtMs: readonly number[], nowMs: number, policy: RestartPolicy): RestartDecision {
  const recent = restartsAtMs.filter(t => nowMs - t < policy.windowMs).length
  if (recent >= policy.maxRestarts) return { action: 'give-up', deaths: recent + 1 }
  const delayMs = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * 2 ** recent)
  return { action: 'restart', delayMs, restart: recent + 1 }
}

export function checkRestartPolicy (p: RestartPolicy): RestartPolicy {
  const int = (v: number, name: string, min: number, max: number): void => {
    if (!Number.isInteger(v) || v < min || v > max) throw new ConfigError(name, `expected an integer ${min}-${max}, got ${String(v)}`)
  }
  int(p.maxRestarts, '--max-restarts', 0, MAX_RESTARTS_LIMIT)
  int(p.windowMs, 'restart window', 1, 24 * 3600_000)
  int(p.initialBackoffMs, 'restart backoff', 0, 3600_000)
  int(p.maxBackoffMs, 'restart backoff', p.initialBackoffMs, 3600_000)
  return p
}

/** The ready line a node prints (cli.ts). */
export interface Ready { peerId: string, p2p: string[], api: string, http: string }

export interface ChildSpec {
  name: string
  /** Arguments after the CLI script, e.g. ['node', '--genesis', …]. */
  args: string[]
}

export interface SupervisorOptions {
  /** The CLI script every child runs (`node <cli> …args`). */
  cli: string
  env: NodeJS.ProcessEnv
  policy: RestartPolicy
  /** A node not ready this long after a start is killed (and counts as a death). */
  readyTimeoutMs: number
  /** Between the stop signal and SIGKILL. */
  stopGraceMs: number
  /** Where the supervisor reports deaths, restarts and give-ups (one line each, no newline). */
  report: (line: string) => void
  /** Each child's stderr and stray stdout lines, prefixed with its name. */
  forward: (line: string) => void
  /** No child is left (every one was given up). */
  onAllGone: () => void
}

interface Slot {
  spec: ChildSpec
  proc: ChildProcess | undefined
  /** When the child was restarted (for the window). */
  restartsAtMs: number[]
  timer: NodeJS.Timeout | undefined
  gaveUp: boolean
}

export class Supervisor {
  private readonly slots = new Map<string, Slot>()
  private stopping = false
  private supervising = false

  constructor (private readonly o: SupervisorOptions) {}

  /** Starts a child; resolves with its ready line, rejects if it exits or times out first. */
  async start (spec: ChildSpec): Promise<Ready> {
    assert.ok(!this.slots.has(spec.name), `child ${spec.name} started twice`)
    const slot: Slot = { spec, proc: undefined, restartsAtMs: [], timer: undefined, gaveUp: false }
    this.slots.set(spec.name, slot)
    return await this.launch(slot)
  }

  /** From now on, deaths are restarted (before, a failing start fails `voike up`). */
  supervise (): void { this.supervising = true }

  pid (name: string): number | undefined { return this.slots.get(name)?.proc?.pid }

  /** Names of the children that are running or about to be restarted. */
  running (): string[] { return [...this.slots.values()].filter(s => !s.gaveUp).map(s => s.spec.name) }

  private async launch (slot: Slot): Promise<Ready> {
    const { name, args } = slot.spec
    const proc = spawn(process.execPath, [this.o.cli, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      env: { VOIKE_LOG_LEVEL: 'warn', ...this.o.env, VOIKE_STOP_WITH_PARENT: '1' }
    })
    slot.proc = proc
    // A node that is slow to read its stdin must not see EPIPE: it never reads it anyway.
    proc.stdin?.on('error', () => {})
    createInterface({ input: proc.stderr! }).on('line', (l) => { if (l !== '') this.o.forward(`[${name}] ${l}`) })
    const ready = new Promise<Ready>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`${name} was not ready within ${this.o.readyTimeoutMs} ms`))
        proc.kill('SIGKILL')
      }, this.o.readyTimeoutMs)
      createInterface({ input: proc.stdout! }).on('line', (line) => {
        let evt: (Ready & { event?: string }) | undefined
        try { evt = JSON.parse(line) as Ready & { event?: string } } catch { /* not an event */ }
        if (evt?.event === 'ready') { clearTimeout(timer); resolve(evt) } else if (line !== '') this.o.forward(`[${name}] ${line}`)
      })
      proc.once('exit', (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`${name} exited with ${describeExit(code, signal)} before it was ready`))
        this.onExit(slot, proc, code, signal)
      })
    })
    ready.catch(() => {})
    return await ready
  }

  private onExit (slot: Slot, proc: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (slot.proc !== proc || this.stopping || !this.supervising) return
    const head = `${slot.spec.name} (pid ${proc.pid ?? '?'}) died (${describeExit(code, signal)})`
    const d = decideRestart(slot.restartsAtMs, Date.now(), this.o.policy)
    if (d.action === 'give-up') {
      slot.gaveUp = true
      slot.proc = undefined
      const others = this.running().length
      this.o.report(`${head}; it died ${d.deaths} times within ${formatWindow(this.o.policy.windowMs)}: giving up on it, ${others > 0 ? 'the other nodes keep running' : 'no node is left'}`)
      if (others === 0) this.o.onAllGone()
      return
    }
    this.o.report(`${head}; restarting in ${d.delayMs} ms (restart ${d.restart} of ${this.o.policy.maxRestarts} within ${formatWindow(this.o.policy.windowMs)})`)
    slot.timer = setTimeout(() => {
      slot.timer = undefined
      if (this.stopping) return
      slot.restartsAtMs.push(Date.now())
      // Its exit, if it fails again, comes back through onExit.
      this.launch(slot).then(
        () => { this.o.report(`${slot.spec.name} restarted (pid ${slot.proc?.pid ?? '?'})`) },
        (err: Error) => { this.o.report(`${slot.spec.name} did not come back: ${err.message}`) }
      )
    }, d.delayMs)
  }

  /** Stops every child (`signal`, then SIGKILL after the grace); no restarts from now on. */
  async stop (signal: NodeJS.Signals): Promise<void> {
    this.stopping = true
    await Promise.all([...this.slots.values()].map(async (slot) => {
      if (slot.timer !== undefined) clearTimeout(slot.timer)
      const p = slot.proc
      if (p === undefined || p.exitCode !== null || p.signalCode !== null) return
      const exited = new Promise<void>(resolve => p.once('exit', () => { resolve() }))
      p.kill(signal)
      const t = setTimeout(() => { p.kill('SIGKILL') }, this.o.stopGraceMs)
      await exited
      clearTimeout(t)
    }))
  }
}

function describeExit (code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? signal : `status ${code ?? '?'}`
}

function formatWindow (ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`
}
