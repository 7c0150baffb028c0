/**
 * PerfWatch's metric families (read at scrape time from its state; removed at close):
 * - voike_perfwatch_process_cpu_ratio (of one core), voike_perfwatch_host_cpu_ratio (of all cores): the last window;
 * - voike_perfwatch_rss_bytes, voike_perfwatch_heap_used_bytes;
 * - voike_perfwatch_event_loop_delay_p50_seconds, voike_perfwatch_event_loop_delay_p99_seconds: the last
 *   window (two gauges: a `quantile` label belongs to summaries);
 * - voike_perfwatch_load_score{peer_id}: every member's load score (this node's included);
 * - voike_perfwatch_rtt_seconds{peer_id}: smoothed measured RTT to each peer;
 * - voike_perfwatch_dropped_total{reason}: summaries and pongs dropped as garbage, by reason;
 * - voike_perfwatch_advisories_total{reason}: advisories raised (this node's and peers').
 */
import { Counter, Gauge, type Registry } from 'prom-client'
import type { PerfSample } from './measure.js'

export interface PerfWatchMetrics {
  advisories: Counter<'reason'>
  unregister: () => void
}

interface View {
  self: PerfSample | null
  peers: ReadonlyMap<string, { load: number | null, rttMs: number | undefined }>
  dropped: ReadonlyMap<string, number>
  selfLoad: number | undefined
}

const NAMES = [
  'voike_perfwatch_process_cpu_ratio', 'voike_perfwatch_host_cpu_ratio', 'voike_perfwatch_rss_bytes',
  'voike_perfwatch_heap_used_bytes', 'voike_perfwatch_event_loop_delay_p50_seconds', 'voike_perfwatch_event_loop_delay_p99_seconds', 'voike_perfwatch_load_score',
  'voike_perfwatch_rtt_seconds', 'voike_perfwatch_dropped_total', 'voike_perfwatch_advisories_total'
] as const

export function registerPerfWatchMetrics (registry: Registry, view: () => View, selfId?: string): PerfWatchMetrics {
  const registers = [registry]
  const simple = (name: string, help: string, pick: (s: PerfSample) => number): void => {
    new Gauge({ name, help, registers, collect () { const s = view().self; if (s !== null) this.set(pick(s)) } }) // eslint-disable-line no-new
  }
  // Ratios, not percents (Prometheus base units): 0.5 is half a core.
  simple('voike_perfwatch_process_cpu_ratio', 'CPU of this node process (all threads) over the last PerfWatch window, as a share of one core (may exceed 1)', s => s.processCpuPct / 100)
  simple('voike_perfwatch_host_cpu_ratio', "Busy share of the host's cores over the last PerfWatch window (0-1)", s => s.hostCpuPct / 100)
  simple('voike_perfwatch_rss_bytes', 'Resident set size of this node process', s => s.rssBytes)
  simple('voike_perfwatch_heap_used_bytes', 'V8 heap used by this node process', s => s.heapUsedBytes)
  simple('voike_perfwatch_event_loop_delay_p50_seconds', 'Median event-loop delay over the last PerfWatch window', s => s.loopP50Ms / 1000)
  simple('voike_perfwatch_event_loop_delay_p99_seconds', '99th percentile of the event-loop delay over the last PerfWatch window', s => s.loopP99Ms / 1000)
  new Gauge({ // eslint-disable-line no-new
    name: 'voike_perfwatch_load_score',
    help: 'Load score of each member (0 idle .. 1 saturated), from its latest PerfWatch summary',
    labelNames: ['peer_id'] as const,
    registers,
    collect () {
      this.reset()
      const v = view()
      if (v.selfLoad !== undefined && selfId !== undefined) this.set({ peer_id: selfId }, v.selfLoad)
      for (const [peer, st] of v.peers) if (st.load !== null) this.set({ peer_id: peer }, st.load)
    }
  })
  new Gauge({ // eslint-disable-line no-new
    name: 'voike_perfwatch_rtt_seconds',
    help: 'Smoothed round-trip time to each peer, measured over the actor streams',
    labelNames: ['peer_id'] as const,
    registers,
    collect () {
      this.reset()
      for (const [peer, st] of view().peers) if (st.rttMs !== undefined) this.set({ peer_id: peer }, st.rttMs / 1000)
    }
  })
  new Counter({ // eslint-disable-line no-new
    name: 'voike_perfwatch_dropped_total',
    help: 'PerfWatch messages dropped as garbage or unwanted, by reason',
    labelNames: ['reason'] as const,
    registers,
    collect () {
      this.reset()
      for (const [reason, n] of view().dropped) this.inc({ reason }, n)
    }
  })
  const advisories = new Counter({ name: 'voike_perfwatch_advisories_total', help: 'PerfWatch advisories raised, by reason', labelNames: ['reason'] as const, registers })
  for (const reason of ['event-loop-p99', 'pool-saturated', 'memory']) advisories.inc({ reason }, 0)
  return {
    advisories,
    unregister: () => { for (const name of NAMES) registry.removeSingleMetric(name) }
  }
}
