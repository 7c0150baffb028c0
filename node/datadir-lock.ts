/**
 * One running node per data dir. The dir holds the node's identity (its peer id) and embedded
 * store: two processes on it would be one member at two addresses and two writers of one store.
 *
 * The lock is a file, `<dataDir>/voike.lock`, holding `{ pid, startTicks, host, sinceMs }`, made
 * atomically with its content (written to a private file, then hard-linked into place: link
 * fails if the lock exists). A lock whose process is gone is stale and taken over at once, which
 * matters after a SIGKILL (`voike up` restarts the node half a second later). Why not flock(2):
 * Node has no flock without a native addon (fs-ext needs a compiler at install), and a file that
 * names its holder lets the error say who holds the dir.
 *
 * Stale means: same host, and no process with that pid, or one that started at another time
 * (the pid was reused: `startTicks` is field 22 of /proc/<pid>/stat), or the pid is ours but
 * this process holds no such lock (a container restarted: pid 1 again). A lock from another host
 * (a shared volume) is never broken: it cannot be checked. Taking over a stale lock happens under
 * a short-lived `voike.lock.break` file (made with O_EXCL), so two starting nodes cannot both
 * break it and both take it.
 */
import { linkSync, openSync, readFileSync, unlinkSync, writeFileSync, closeSync, mkdirSync, statSync } from 'node:fs'
import { hostname } from 'node:os'
import { join, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import { VoikeError } from '../config/errors.js'

export const LOCK_FILE_NAME = 'voike.lock'
/** A break file older than this was left by a process that died while breaking: removed. */
const BREAK_STALE_MS = 10_000
/** Rounds of (take, find stale, break) before giving up: each break lets one taker win. */
const MAX_ROUNDS = 20
/** How long to wait when another process is breaking the lock right now. */
const BREAK_WAIT_MS = 50
const MAX_LOCK_FILE_BYTES = 4096

export interface LockHolder { pid: number, startTicks: number | null, host: string, sinceMs: number }

export class DataDirLockedError extends VoikeError {
  constructor (readonly dataDir: string, readonly holder: LockHolder | null, why?: string) {
    const who = holder === null
      ? 'another process'
      : `pid ${holder.pid}${holder.host === hostname() ? '' : ` on host ${holder.host}`} since ${new Date(holder.sinceMs).toISOString()}`
    super('ERR_DATA_DIR_LOCKED', `data dir ${dataDir} is in use by ${who}${why === undefined ? '' : ` (${why})`}: stop that node, or give this one another --data`, { field: '--data' })
    this.name = 'DataDirLockedError'
  }
}

export interface DataDirLock {
  readonly path: string
  /** Removes the lock if it is still ours. Idempotent. */
  release: () => void
}

/** Locks held by this process, by lock path: a second node in the same process is refused too. */
const held = new Set<string>()

/** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot; null off Linux. */
export function processStartTicks (pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[19])
    return Number.isSafeInteger(ticks) ? ticks : null
  } catch { return null }
}

function pidAlive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
}

function readHolder (path: string): LockHolder | null | 'missing' {
  let text: string
  try {
    if (statSync(path).size > MAX_LOCK_FILE_BYTES) return null
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing'
    throw err
  }
  try {
    const h = JSON.parse(text) as Partial<LockHolder>
    if (!Number.isSafeInteger(h.pid) || (h.pid as number) <= 0 || typeof h.host !== 'string' || typeof h.sinceMs !== 'number') return null
    return { pid: h.pid as number, startTicks: typeof h.startTicks === 'number' ? h.startTicks : null, host: h.host, sinceMs: h.sinceMs }
  } catch { return null }
}

/** Why the holder no longer holds the dir, or undefined when it still does. */
export function staleReason (h: LockHolder, lockPath: string): string | undefined {
  if (h.host !== hostname()) return undefined
  if (h.pid === process.pid) return held.has(lockPath) ? undefined : 'left by an earlier process with our pid'
  if (!pidAlive(h.pid)) return `pid ${h.pid} is gone`
  const now = processStartTicks(h.pid)
  if (h.startTicks !== null && now !== null && now !== h.startTicks) return `pid ${h.pid} is another process now`
  return undefined
}

/** Takes the lock of `dataDir` (created if missing) or throws DataDirLockedError. */
export function lockDataDir (dataDir: string): DataDirLock {
  const dir = resolve(dataDir)
  mkdirSync(dir, { recursive: true })
  const path = join(dir, LOCK_FILE_NAME)
  const mine: LockHolder = { pid: process.pid, startTicks: processStartTicks(process.pid), host: hostname(), sinceMs: Date.now() }
  const text = JSON.stringify(mine) + '\n'
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`
  writeFileSync(tmp, text, { flag: 'wx', mode: 0o644 })
  try {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      try {
        linkSync(tmp, path)
        held.add(path)
        let released = false
        return {
          path,
          release: () => {
            if (released) return
            released = true
            held.delete(path)
            try { if (readFileSync(path, 'utf8') === text) unlinkSync(path) } catch { /* gone already */ }
          }
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
      const holder = readHolder(path)
      if (holder === 'missing') continue
      if (holder === null) {
        // Unreadable: a lock is written whole (link), so this is not one of ours being made.
        breakStale(path, null, dir)
        continue
      }
      const why = staleReason(holder, path)
      if (why === undefined) throw new DataDirLockedError(dir, holder)
      breakStale(path, holder, dir)
    }
    throw new DataDirLockedError(dir, null, `the lock kept changing over ${MAX_ROUNDS} attempts`)
  } finally {
    try { unlinkSync(tmp) } catch { /* linked and removed, or never made */ }
  }
}

/** Removes the stale lock `judged`, unless it changed meanwhile; under the break file. */
function breakStale (path: string, judged: LockHolder | null, dir: string): void {
  const brk = `${path}.break`
  let fd: number
  try {
    fd = openSync(brk, 'wx')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    // Another process is breaking it right now (let it finish), or died doing so long ago.
    try { if (Date.now() - statSync(brk).mtimeMs > BREAK_STALE_MS) unlinkSync(brk) } catch { /* gone */ }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, BREAK_WAIT_MS)
    return
  }
  try {
    const now = readHolder(path)
    const same = now === 'missing' ? false : judged === null ? now === null : now !== null && now.pid === judged.pid && now.sinceMs === judged.sinceMs && now.startTicks === judged.startTicks
    if (same) unlinkSync(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new DataDirLockedError(dir, judged, `cannot remove the stale lock: ${(err as Error).message}`)
  } finally {
    closeSync(fd)
    try { unlinkSync(brk) } catch { /* gone */ }
  }
}
