/**
 * What createScheduler is given, checked up front with errors naming the option.
 */
import type { Registry } from 'prom-client'
import type { Logger } from '../../config/logger.js'
import type { JobStore } from '../../store/types.js'
import type { MemberTable } from '../membership/table.js'
import type { ActorSystem } from '../runtime/types.js'
import { invalidOption } from './errors.js'
import type { JobKind } from './kinds.js'
import type { SchedulerLimits } from './limits.js'
import type { ResultPolicy } from './policy.js'
import type { JobRetention } from '../../config/retention.js'
import type { TaskOutcome } from './metrics.js'

export interface SchedulerDeps {
  /** The node's actor system; `system.peerId` is this coordinator's id. */
  system: ActorSystem
  /** Jobs and segments live here; several nodes may share it (PostgreSQL). */
  store: JobStore
  /** The member view: who is alive, with how many cores. This node counts even when absent. */
  table: MemberTable
  /** Where the voike_jobs_* / voike_tasks_* families are registered (removed by close()). */
  registry: Registry
  /** The job kinds this node runs (the composition root registers them; actors/kinds/). */
  kinds: ReadonlyArray<JobKind<any, any>>
  /** What a valid answer does to its segment (policy.ts). Default firstValidWins. */
  resultPolicy?: ResultPolicy
  /** The actor segment tasks go to when a kind names none. Default WORKER_ACTOR (`worker`). */
  targetActor?: string
  /** Default silentLogger. */
  logger?: Logger
  limits?: SchedulerLimits
  /** Which ended jobs to prune, from the store and memory (retention.ts). Default: none pruned. */
  retention?: JobRetention
  /** Told every counted task outcome with the peer it concerns (trust's failure-rate signal). */
  onTaskOutcome?: (peerId: string, outcome: TaskOutcome) => void
  /** Peers that must get no work (distrusted); never applied to this node. Default none. */
  excluded?: (peerId: string) => boolean
  /** A peer's placement weight in [0, 1] (weights.ts); scales its credits. Default 1. */
  peerWeight?: (peerId: string) => number
}

export function checkDeps (deps: SchedulerDeps): void {
  if (typeof deps !== 'object' || deps === null) throw invalidOption('deps', 'must be an object')
  const { system, store, table, registry } = deps
  if (typeof system?.tell !== 'function' || typeof system.ask !== 'function' || typeof system.ref !== 'function') throw invalidOption('system', 'must be an ActorSystem')
  if (typeof store?.createJob !== 'function' || typeof store.updateSegments !== 'function' || typeof store.listUnfinishedJobs !== 'function') throw invalidOption('store', 'must be a JobStore')
  if (typeof table?.alive !== 'function' || typeof table.onChange !== 'function') throw invalidOption('table', 'must be a MemberTable')
  if (table.selfId !== system.peerId) throw invalidOption('table', `selfId (${table.selfId}) must be the system's peerId (${system.peerId})`)
  if (typeof (registry as { registerMetric?: unknown })?.registerMetric !== 'function') throw invalidOption('registry', 'must be a prom-client Registry')
  if (!Array.isArray(deps.kinds)) throw invalidOption('kinds', 'must be an array of job kinds')
  if (deps.resultPolicy !== undefined && typeof deps.resultPolicy?.decide !== 'function') throw invalidOption('resultPolicy', 'must be a ResultPolicy')
  if (deps.targetActor !== undefined && (typeof deps.targetActor !== 'string' || deps.targetActor.length === 0)) throw invalidOption('targetActor', 'must be an actor name')
  for (const f of ['onTaskOutcome', 'excluded', 'peerWeight'] as const) if (deps[f] !== undefined && typeof deps[f] !== 'function') throw invalidOption(f, 'must be a function')
}
