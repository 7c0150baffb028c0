/**
 * A worker pool that lies (VOIKE_CHAOS_CORRUPT_RESULTS): it wraps the real pool and corrupts a
 * seeded fraction of the successful task results (corrupt.ts) before the worker actor sends them,
 * once `after` successful results were sent honest (VOIKE_CHAOS_CORRUPT_AFTER: a node that earns
 * trust first). Everything else is the real pool's.
 */
import type { Counter } from 'prom-client'
import type { WorkerPool } from '../worker/pool.js'
import { corruptValue } from './corrupt.js'

export function corruptingPool (pool: WorkerPool, fraction: number, random: () => number, counter?: Counter<'action'>, after = 0): WorkerPool {
  let honest = 0
  const maybe = (value: unknown): unknown => {
    if (honest < after) { honest++; return value }
    if (fraction <= 0 || random() >= fraction) return value
    const c = corruptValue(value)
    if (c.changed) counter?.inc({ action: 'corrupt' })
    return c.value
  }
  return {
    ...pool,
    run: async (kind, payload, options) => {
      const r = await pool.run(kind, payload, options)
      return { ...r, value: maybe(r.value) }
    },
    runBatch: async (tasks, options) => {
      const results = await pool.runBatch(tasks, options)
      return results.map(r => r.ok ? { ...r, value: maybe(r.value) } : r)
    }
  }
}
