/**
 * The step cache (results of successful steps by step key) and run records (for resume). Both
 * are ports: the executor takes any implementation; these in-memory ones are bounded LRUs, and
 * node/ backs them with the store.
 */
import assert from 'node:assert/strict'
import { FlowError } from './errors.js'

export interface CachedStep {
  /** The step's value (JSON). */
  value: unknown
  op: string
  rowsOut: number | null
  sizeBytes: number
  createdAtMs: number
}

export interface StepCache {
  get: (key: string) => Promise<CachedStep | undefined>
  put: (key: string, entry: CachedStep) => Promise<void>
}

export interface StepRecord {
  status: 'succeeded' | 'reused' | 'failed' | 'skipped' | 'cancelled' | 'not-needed' | 'pending' | 'running'
  key: string
  /** Present for succeeded and reused steps whose value is JSON and within maxRecordValueBytes. */
  value?: unknown
  error?: Record<string, unknown>
}

export interface RunRecord {
  runId: string
  flow: string
  planHash: string
  status: 'running' | 'succeeded' | 'failed' | 'cancelled'
  startedAtMs: number
  finishedAtMs: number | null
  /** Run this one resumed, if any. */
  resumedFrom: string | null
  steps: Record<string, StepRecord>
}

export interface RunStore {
  get: (runId: string) => Promise<RunRecord | undefined>
  put: (record: RunRecord) => Promise<void>
}

export interface MemoryCacheOptions {
  /** Entries kept; the least recently used goes first. */
  maxEntries?: number
  /** Sum of entry sizes kept. */
  maxBytes?: number
  /** A bigger entry is not kept at all. */
  maxEntryBytes?: number
}

class Lru<V> {
  private readonly map = new Map<string, { v: V, size: number }>()
  private bytes = 0
  constructor (readonly maxEntries: number, readonly maxBytes: number) {}
  get (k: string): V | undefined {
    const e = this.map.get(k)
    if (e === undefined) return undefined
    this.map.delete(k)
    this.map.set(k, e)
    return e.v
  }

  set (k: string, v: V, size: number): void {
    const old = this.map.get(k)
    if (old !== undefined) { this.bytes -= old.size; this.map.delete(k) }
    this.map.set(k, { v, size })
    this.bytes += size
    while (this.map.size > this.maxEntries || this.bytes > this.maxBytes) {
      const first = this.map.keys().next().value as string
      this.bytes -= this.map.get(first)!.size
      this.map.delete(first)
    }
    assert.ok(this.bytes >= 0)
  }

  get size (): number { return this.map.size }
}

function positive (name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt
  if (!Number.isInteger(v) || v < 1) throw new FlowError('ERR_BAD_OPTION', `${name} must be a positive integer, got ${String(v)}`)
  return v
}

export class MemoryStepCache implements StepCache {
  private readonly lru: Lru<CachedStep>
  readonly maxEntryBytes: number
  constructor (o: MemoryCacheOptions = {}) {
    this.lru = new Lru(positive('maxEntries', o.maxEntries, 1000), positive('maxBytes', o.maxBytes, 256 << 20))
    this.maxEntryBytes = positive('maxEntryBytes', o.maxEntryBytes, 32 << 20)
  }

  async get (key: string): Promise<CachedStep | undefined> { return this.lru.get(key) }
  async put (key: string, e: CachedStep): Promise<void> {
    if (e.sizeBytes > this.maxEntryBytes) return
    this.lru.set(key, e, e.sizeBytes)
  }

  get size (): number { return this.lru.size }
}

export class MemoryRunStore implements RunStore {
  private readonly lru: Lru<RunRecord>
  constructor (o: { maxRuns?: number } = {}) { this.lru = new Lru(positive('maxRuns', o.maxRuns, 200), Number.MAX_SAFE_INTEGER) }
  async get (runId: string): Promise<RunRecord | undefined> { const r = this.lru.get(runId); return r === undefined ? undefined : structuredClone(r) }
  async put (r: RunRecord): Promise<void> { this.lru.set(r.runId, structuredClone(r), 1) }
}
