/**
 * Chaos for one node, from its validated settings (config/chaos.ts): the wrappers the composition
 * root puts around its transport and worker pool, one seeded random stream per wrapper (so each
 * repeats with the node's seed), and voike_chaos_actions_total{action} (drop|delay|corrupt).
 * With every setting at 0 the wrappers return what they are given: no cost when off.
 */
import { Counter, type Registry } from 'prom-client'
import type { ChaosConfig } from '../../config/chaos.js'
import type { Transport } from '../runtime/envelope.js'
import type { WorkerPool } from '../worker/pool.js'
import { corruptingPool } from './pool.js'
import { seededRandom } from './rng.js'
import { chaosTransport } from './transport.js'

export interface NodeChaos {
  transport: (inner: Transport) => Transport
  pool: (inner: WorkerPool) => WorkerPool
  close: () => void
}

export function createChaos (c: ChaosConfig, registry: Registry): NodeChaos {
  const on = c.corruptResults > 0 || c.drop > 0 || c.delayMs > 0
  const counter = on ? new Counter({ name: 'voike_chaos_actions_total', help: 'Chaos applied by this node (VOIKE_CHAOS_*), by action', labelNames: ['action'] as const, registers: [registry] }) : undefined
  for (const action of ['drop', 'delay', 'corrupt']) counter?.inc({ action }, 0)
  const closers: Array<() => void> = []
  return {
    transport: (inner) => {
      if (c.drop <= 0 && c.delayMs <= 0) return inner
      const t = chaosTransport(inner, { drop: c.drop, delayMs: c.delayMs, random: seededRandom(c.seed), counter })
      closers.push(() => { t.close() })
      return t
    },
    pool: (inner) => c.corruptResults > 0 ? corruptingPool(inner, c.corruptResults, seededRandom(c.seed ^ 0x5bd1e995), counter, c.corruptAfter) : inner,
    close: () => { for (const fn of closers) fn() }
  }
}
