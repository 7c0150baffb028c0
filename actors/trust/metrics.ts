/**
 * Trust's metric families (removed at close):
 * - voike_trust_score{peer_id}: each judged peer's trust in [0, 1] (read at scrape time);
 * - voike_trust_events_total{reason}: trust events by reason (the dominant signal of a
 *   `distrusted` event: mismatch|failure|heartbeat|rttDrift; `recovered`), every reason from 0.
 */
import { Counter, Gauge, type Registry } from 'prom-client'

export interface TrustMetrics {
  events: Counter<'reason'>
  unregister: () => void
}

export const TRUST_EVENT_REASONS = ['mismatch', 'failure', 'heartbeat', 'rttDrift', 'recovered'] as const

export function registerTrustMetrics (registry: Registry, peers: () => ReadonlyMap<string, { trust: number }>): TrustMetrics {
  const registers = [registry]
  new Gauge({ // eslint-disable-line no-new
    name: 'voike_trust_score',
    help: 'Trust of each peer judged by this node (1 - anomaly; below 0.65 it gets no work)',
    labelNames: ['peer_id'] as const,
    registers,
    collect () {
      this.reset()
      for (const [peer, st] of peers()) this.set({ peer_id: peer }, st.trust)
    }
  })
  const events = new Counter({ name: 'voike_trust_events_total', help: 'Trust events (a peer distrusted, by dominant signal, or recovered)', labelNames: ['reason'] as const, registers })
  for (const reason of TRUST_EVENT_REASONS) events.inc({ reason }, 0)
  return {
    events,
    unregister: () => { for (const name of ['voike_trust_score', 'voike_trust_events_total']) registry.removeSingleMetric(name) }
  }
}
