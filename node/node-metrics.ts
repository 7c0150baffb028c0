/**
 * The node's own metric families and its registry, set up for `promtool check metrics`:
 * - Node.js defaults from prom-client, less the three gauges it names `nodejs_active_*_total`
 *   (a `_total` name says counter; the same numbers are `sum(nodejs_active_handles)`,
 *   `sum(nodejs_active_requests)` and `sum(nodejs_active_resources)` over their `type` label);
 * - voike_node_info{peer_id,name,role,version} = 1: joins peer-labelled series (`peer_id` in
 *   voike_tasks_in_flight, voike_perfwatch_*, voike_trust_score) to names and scrape targets;
 * - voike_build_info{version,node} = 1: the VOIKE version and the Node.js version running it;
 * - voike_mesh_members{status}: members this node knows, by status.
 */
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client'
import type { MemberTable } from '../actors/membership/table.js'

/** prom-client's default gauges whose names end in `_total`: not registered (see above). */
export const DROPPED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'] as const

/** A registry with the Node.js process metrics, minus the gauges misnamed as counters. */
export function createNodeRegistry (): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  for (const name of DROPPED_DEFAULT_METRICS) registry.removeSingleMetric(name)
  return registry
}

export interface NodeInfo {
  peerId: string
  name: string
  role: string
  version: string
}

export function registerNodeMetrics (registry: Registry, info: NodeInfo, table: MemberTable): void {
  const registers = [registry]
  new Gauge({ name: 'voike_node_info', help: 'Always 1; labels name this node (join peer-labelled series on peer_id)', labelNames: ['peer_id', 'name', 'role', 'version'] as const, registers }) // eslint-disable-line no-new
    .set({ peer_id: info.peerId, name: info.name, role: info.role, version: info.version }, 1)
  new Gauge({ name: 'voike_build_info', help: 'Always 1; the VOIKE version and the Node.js version (node) this node runs', labelNames: ['version', 'node'] as const, registers }) // eslint-disable-line no-new
    .set({ version: info.version, node: process.version }, 1)
  new Gauge({ // eslint-disable-line no-new
    name: 'voike_mesh_members',
    help: 'Members of the cluster known to this node, by status',
    labelNames: ['status'],
    registers,
    collect () {
      const counts = { alive: 0, suspect: 0, dead: 0 }
      for (const m of table.all()) counts[m.status]++
      for (const [status, n] of Object.entries(counts)) this.set({ status }, n)
    }
  })
}
