/**
 * The ports flows/ declares, implemented on the node: `GridPort` over the scheduler's
 * `GridService` (a RUN JOB step's value is the finished job as `GET /grid/jobs/:id` shows it),
 * `StepCache` and `RunStore` over the store's `FlowStore` (bounded; shared by every process on
 * the same store, so an unchanged flow's results are reused across restarts and nodes sharing
 * PostgreSQL), and the file system a run on the node may read (`sandboxFs`).
 */
import { resolve as resolvePath, sep } from 'node:path'
import type { Logger } from '../config/logger.js'
import { resolveInts, type IntTable } from '../config/options.js'
import { VoikeError } from '../config/errors.js'
import type { GridService, JobView } from '../actors/scheduler/api.js'
import type { FlowStore } from '../store/index.js'
import {
  FlowError, nodeFs,
  type CachedStep, type FlowFs, type GridJob, type GridPort, type RunRecord, type RunStore, type StepCache
} from '../flows/index.js'

/** The job as its JSON (the very object the HTTP API returns for it). */
function asGridJob (j: JobView): GridJob {
  return JSON.parse(JSON.stringify(j)) as GridJob
}

export function gridPort (grid: GridService): GridPort {
  return {
    submit: async (kind, params, { signal }) => {
      signal.throwIfAborted()
      return asGridJob(await grid.submit(kind, params))
    },
    wait: async (jobId, { signal }) => asGridJob(await grid.watch(jobId, () => {}, signal)),
    cancel: async (jobId) => { await grid.cancel(jobId) }
  }
}

export interface FlowCacheLimits {
  /** Step results kept (least recently used evicted). */
  cacheMaxEntries: number
  /** Sum of kept results' JSON sizes. */
  cacheMaxBytes: number
  /** A bigger result is not cached. */
  cacheMaxEntryBytes: number
  /** Run records kept (for --resume and /flow/runs/:id). */
  maxRuns: number
}

export const FLOW_CACHE_LIMITS: IntTable<keyof FlowCacheLimits> = {
  cacheMaxEntries: { default: 10_000, min: 1, max: 1_000_000 },
  cacheMaxBytes: { default: 512 << 20, min: 1024, max: 64 * 1024 ** 3 },
  cacheMaxEntryBytes: { default: 32 << 20, min: 1, max: 1024 ** 3 },
  maxRuns: { default: 1000, min: 1, max: 1_000_000 }
}

export function cacheLimits (given: Partial<FlowCacheLimits> | undefined): FlowCacheLimits {
  return resolveInts(FLOW_CACHE_LIMITS, given, (name, why) => new VoikeError('ERR_INVALID_OPTION', `flow cache ${name} ${why}`, { field: name }), { strict: true })
}

/**
 * The cache is an optimization: a store failure while reading is a miss and while writing is a
 * skipped entry (both logged), never a failed step.
 */
export function storeStepCache (store: FlowStore, limits: FlowCacheLimits, log: Logger): StepCache {
  const bounds = { maxEntries: limits.cacheMaxEntries, maxBytes: limits.cacheMaxBytes }
  return {
    get: async (key): Promise<CachedStep | undefined> => {
      try {
        const r = await store.getFlowStep(key)
        if (r === null) return undefined
        return { value: JSON.parse(r.valueJson), op: r.op, rowsOut: r.rowsOut, sizeBytes: r.valueJson.length, createdAtMs: r.createdAtMs }
      } catch (err) {
        log.warn('flow cache read failed; running the step', { key, err })
        return undefined
      }
    },
    put: async (key, e) => {
      if (e.sizeBytes > limits.cacheMaxEntryBytes) return
      try {
        const valueJson = JSON.stringify(e.value) ?? 'null'
        await store.putFlowStep({ key, op: e.op, valueJson, rowsOut: e.rowsOut, createdAtMs: e.createdAtMs }, bounds)
      } catch (err) {
        log.warn('flow cache write failed; result not cached', { key, err })
      }
    }
  }
}

/** Run records: reading fails loudly (a resume must not silently start over); a failed write is logged. */
export function storeRunStore (store: FlowStore, limits: FlowCacheLimits, log: Logger): RunStore {
  return {
    get: async (runId) => {
      const r = await store.getFlowRun(runId)
      return r === null ? undefined : JSON.parse(r.recordJson) as RunRecord
    },
    put: async (rec) => {
      try {
        await store.putFlowRun({ runId: rec.runId, flow: rec.flow, planHash: rec.planHash, status: rec.status, startedAtMs: rec.startedAtMs, finishedAtMs: rec.finishedAtMs, recordJson: JSON.stringify(rec) }, { maxRuns: limits.maxRuns })
      } catch (err) {
        log.warn('flow run record not written', { runId: rec.runId, err })
      }
    }
  }
}

/**
 * What a run on the node may read: the files sent with the request (absolute virtual paths under
 * `base`), and real files under `roots` (a watched flow's folder). Anything else is refused:
 * a caller of the API must not read the node's disk through `LOAD CSV FROM "/etc/..."`.
 */
export function sandboxFs (o: { base: string, files: ReadonlyMap<string, Uint8Array>, roots: readonly string[] }): FlowFs {
  const find = (path: string, maxBytes: number): { bytes: Uint8Array } | { real: string } => {
    const abs = resolvePath(o.base, path)
    const sent = o.files.get(abs)
    if (sent !== undefined) {
      if (sent.length > maxBytes) throw new FlowError('ERR_LIMIT', `${path} is larger than maxFileBytes (${maxBytes})`)
      return { bytes: sent }
    }
    if (o.roots.some(r => abs.startsWith(r.endsWith(sep) ? r : r + sep))) return { real: abs }
    throw new FlowError('ERR_INPUT', `cannot read ${path}: not sent with the run`, { hint: 'a run on a node reads only the files sent with it (voike flow run sends the flow\'s files and @inputs) and its watched flows\' folder' })
  }
  return {
    readFile: async (path, ro) => {
      const f = find(path, ro.maxBytes)
      return 'bytes' in f ? f.bytes : await nodeFs.readFile(f.real, ro)
    },
    readStream: (path, ro) => {
      const f = find(path, ro.maxBytes)
      if ('bytes' in f) { const b = f.bytes; return (async function * () { yield b })() }
      return nodeFs.readStream(f.real, ro)
    }
  }
}
