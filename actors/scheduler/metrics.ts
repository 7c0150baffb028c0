/**
 * The scheduler's metric families, registered on the node's registry (never the global one):
 * - voike_jobs_total{kind,status}: jobs submitted (`submitted`) and ended (succeeded|failed|cancelled);
 * - voike_job_duration_seconds{kind}: creation to end of finished jobs;
 * - voike_tasks_total{kind,status}: task outcomes as the scheduler saw them
 *   (ok|error|timeout|busy|lost|ignored);
 * - voike_jobs_fenced_total{kind}: jobs this node stopped coordinating because a write found that
 *   another node had claimed them meanwhile (it took this node for gone);
 * - voike_tasks_in_flight{peer}: tasks sent to a peer and not answered (read at scrape time, so
 *   the series of a peer that is gone disappears with it).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

export type TaskOutcome = 'ok' | 'error' | 'timeout' | 'busy' | 'lost' | 'ignored'

export interface SchedulerMetrics {
  jobs: Counter<'kind' | 'status'>
  duration: Histogram<'kind'>
  tasks: Counter<'kind' | 'status'>
  fenced: Counter<'kind'>
  /** Removes the families from the registry (the scheduler closes). */
  unregister: () => void
}

const NAMES = ['voike_jobs_total', 'voike_job_duration_seconds', 'voike_tasks_total', 'voike_jobs_fenced_total', 'voike_tasks_in_flight'] as const

/** 1 ms … 10 min, roughly ×2.5 per bucket. */
export const JOB_DURATION_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60, 150, 300, 600]

export function registerSchedulerMetrics (registry: Registry, inFlightByPeer: () => Iterable<[string, number]>): SchedulerMetrics {
  const registers = [registry]
  const jobs = new Counter({ name: 'voike_jobs_total', help: 'Grid jobs submitted to and ended on this coordinator, by kind and status', labelNames: ['kind', 'status'] as const, registers })
  const duration = new Histogram({ name: 'voike_job_duration_seconds', help: 'Time from submission to the end of grid jobs coordinated here', labelNames: ['kind'] as const, buckets: JOB_DURATION_BUCKETS_S, registers })
  const tasks = new Counter({ name: 'voike_tasks_total', help: 'Segment tasks by worker task kind and outcome, as seen by this coordinator', labelNames: ['kind', 'status'] as const, registers })
  const fenced = new Counter({ name: 'voike_jobs_fenced_total', help: 'Jobs dropped by this node because another node claimed them (a takeover while this node was cut off)', labelNames: ['kind'] as const, registers })
  new Gauge({
    name: 'voike_tasks_in_flight',
    help: 'Tasks sent by this coordinator to a peer and not answered yet',
    labelNames: ['peer'] as const,
    registers,
    collect () {
      // reset first: peers that are gone (or idle and forgotten) must not keep a stale series.
      this.reset()
      for (const [peer, n] of inFlightByPeer()) this.set({ peer }, n)
    }
  })
  return {
    jobs,
    duration,
    tasks,
    fenced,
    unregister: () => { for (const name of NAMES) registry.removeSingleMetric(name) }
  }
}
