/**
 * Hot reload: watches a folder of `.flow` files. A changed file is parsed and planned again after
 * a short quiet period (editors write in several steps); when it plans, it becomes the flow's
 * new version; when not, the old version stays and the errors are kept for /flow/plans and the
 * log. A run takes the version current when it starts and keeps it (runs record the plan hash).
 * A flow is named by its file name without `.flow`.
 */
import { watch as fsWatch, type FSWatcher } from 'node:fs'
import { readdir, readFile, stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { FlowError, FlowErrors } from './errors.js'
import { planSource, type Planned } from './planner.js'

export interface FlowVersion {
  name: string
  file: string
  source: string
  planned: Planned
  /** Counts the valid versions loaded for this name, from 1. */
  version: number
  loadedAtMs: number
}

export interface FlowEntry {
  name: string
  file: string
  /** The version new runs use; null when the file never planned. */
  current: FlowVersion | null
  /** The last load's errors when it failed (the current version stays). */
  error: { message: string, errors: Array<Record<string, unknown>>, atMs: number } | null
}

export interface WatchOptions {
  /** A new valid version is in place. */
  onChange?: (v: FlowVersion) => void
  /** A load failed; the previous version (if any) stays. */
  onError?: (name: string, err: Error) => void
  /** A file was removed (its flow is gone). */
  onRemove?: (name: string) => void
  /** Quiet time after the last change before reloading. Default 50. */
  debounceMs?: number
  /** Files watched at most. Default 1000. */
  maxFiles?: number
  /** Bytes of one flow file. Default 1 MiB. */
  maxFileBytes?: number
}

export interface FlowWatcher {
  /** Resolves once the folder's files were loaded the first time. */
  ready: Promise<void>
  get: (name: string) => FlowVersion | undefined
  list: () => FlowEntry[]
  close: () => void
}

const FLOW_FILE = /^[A-Za-z0-9_.-]+\.flow$/

export function watchFlows (dir: string, o: WatchOptions = {}): FlowWatcher {
  const debounceMs = o.debounceMs ?? 50
  const maxFiles = o.maxFiles ?? 1000
  const maxFileBytes = o.maxFileBytes ?? 1 << 20
  if (!Number.isInteger(debounceMs) || debounceMs < 0 || debounceMs > 60_000) throw new FlowError('ERR_BAD_OPTION', `debounceMs must be in 0..60000, got ${String(o.debounceMs)}`)
  const entries = new Map<string, FlowEntry>()
  const timers = new Map<string, NodeJS.Timeout>()
  let closed = false

  const load = async (file: string): Promise<void> => {
    const name = basename(file, '.flow')
    const path = join(dir, file)
    let source: string
    try {
      const s = await stat(path)
      if (s.size > maxFileBytes) throw new FlowError('ERR_LIMIT', `${file} is larger than maxFileBytes (${maxFileBytes})`)
      source = await readFile(path, 'utf8')
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        if (entries.delete(name)) o.onRemove?.(name)
        return
      }
      return fail(name, path, e as Error)
    }
    if (closed) return
    let entry = entries.get(name)
    if (entry === undefined) {
      if (entries.size >= maxFiles) return fail(name, path, new FlowError('ERR_LIMIT', `more than maxFiles (${maxFiles}) flows in ${dir}`))
      entry = { name, file: path, current: null, error: null }
      entries.set(name, entry)
    }
    if (entry.current !== null && entry.current.source === source && entry.error === null) return
    try {
      const planned = planSource(source)
      const v: FlowVersion = { name, file: path, source, planned, version: (entry.current?.version ?? 0) + 1, loadedAtMs: Date.now() }
      entry.current = v
      entry.error = null
      o.onChange?.(v)
    } catch (e) {
      fail(name, path, e as Error)
    }
  }

  const fail = (name: string, path: string, e: Error): void => {
    let entry = entries.get(name)
    if (entry === undefined) { entry = { name, file: path, current: null, error: null }; entries.set(name, entry) }
    const errors = e instanceof FlowErrors ? e.errors.map(x => x.toJSON()) : [e instanceof FlowError ? e.toJSON() : { message: e.message }]
    entry.error = { message: `${basename(path)}: ${e.message}`, errors, atMs: Date.now() }
    o.onError?.(name, e)
  }

  const schedule = (file: string): void => {
    if (closed || !FLOW_FILE.test(file)) return
    clearTimeout(timers.get(file))
    timers.set(file, setTimeout(() => { timers.delete(file); void load(file) }, debounceMs))
  }

  let watcher: FSWatcher | null = null
  const ready = (async () => {
    watcher = fsWatch(dir, { persistent: false }, (_event, file) => { if (file !== null) schedule(file.toString()) })
    watcher.on('error', (e) => o.onError?.('', e))
    const files = (await readdir(dir)).filter(f => FLOW_FILE.test(f)).sort()
    for (const f of files) await load(f)
  })()

  return {
    ready,
    get: (name) => entries.get(name)?.current ?? undefined,
    list: () => [...entries.values()].map(e => ({ ...e })),
    close: () => {
      closed = true
      for (const t of timers.values()) clearTimeout(t)
      timers.clear()
      watcher?.close()
    }
  }
}
