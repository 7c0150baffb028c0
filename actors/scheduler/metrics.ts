/**
 * The scheduler's metric families, registered on the node's registry (never the global one).
 * Every node runs a scheduler, and each counts only the jobs it coordinates, so a Prometheus
 * scraping any subset of nodes sees the jobs those nodes coordinated (sum over nodes for the grid):
 * - voike_jobs_submitted_total{kind}: jobs accepted (stored) by this coordinator;
 * - voike_jobs_finished_total{kind,status}: jobs ended here, status succeeded|failed|cancelled
 *   (submitted and finished are two families: summing one never double counts);
 * - voike_jobs_running{kind}, voike_jobs_queued{kind}: jobs this node coordinates now;
 * - voike_job_duration_seconds{kind}: creation to end of finished jobs;
 * - voike_tasks_total{kind,status}: segment tasks by *task* kind (`fib-segment`) and the outcome
 *   the coordinator saw (ok|error|timeout|busy|lost|ignored); the runs themselves are counted
 *   where they happen (the worker pool's voike_worker_tasks_total);
 * - voike_jobs_fenced_total{kind}: jobs this node stopped coordinating because a write found that
 *   another node had claimed them meanwhile (it took this node for gone);
 * - voike_tasks_in_flight{peer_id}: tasks sent to a peer and not answered (read at scrape time, so
 *   the series of a peer that is gone disappears with it).
 * Series of every registered kind and every known status exist from the start at 0, so `rate()`
 * and `increase()` work before the first event.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { JobKind } from './kinds.js'

export type TaskOutcome = 'ok' | 'error' | 'timeout' | 'busy' | 'lost' | 'ignored'
export const TASK_OUTCOMES: readonly TaskOutcome[] = ['ok', 'error', 'timeout', 'busy', 'lost', 'ignored']
export const FINISHED_STATUSES = ['succeeded', 'failed', 'cancelled'] as const
export type FinishedStatus = typeof FINISHED_STATUSES[number]

export interface SchedulerMetrics {
  submitted: (kind: string) => void
  finished: (kind: string, status: FinishedStatus, durationMs: number | undefined) => void
  task: (kind: JobKind<any, any> | undefined, status: TaskOutcome) => void
  fenced: (kind: string) => void
  /** Removes the families from the registry (the scheduler closes). */
  unregister: () => void
}

export interface SchedulerMetricsOptions {
  registry: Registry
  /** The job kinds registered with the scheduler: their series start at 0. */
  kinds: ReadonlyArray<JobKind<any, any>>
  /** Tasks in flight per peer, read at scrape time. */
  inFlightByPeer: () => Iterable<[string, number]>
  /** Job kind names of the jobs placing segments (running) and waiting (queued), read at scrape time. */
  jobs: () => { running: Iterable<string>, queued: Iterable<string> }
}

const NAMES = [
  'voike_jobs_submitted_total', 'voike_jobs_finished_total', 'voike_jobs_running', 'voike_jobs_queued',
  'voike_job_duration_seconds', 'voike_tasks_total', 'voike_jobs_fenced_total', 'voike_tasks_in_flight'
] as const

/** 1 ms … 10 min, roughly ×2.5 per bucket. */
export const JOB_DURATION_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60, 150, 300, 600]

/**
 * The `kind` label of a job kind's tasks: its task kind, as the workers name it (`fib-segment`).
 * A job kind dispatching several task kinds counts its tasks under its own name.
 */
export function taskKindLabel (kind: JobKind<any, any>): string {
  return kind.taskKinds.length === 1 ? kind.taskKinds[0] : kind.name
}

export function registerSchedulerMetrics (o: SchedulerMetricsOptions): SchedulerMetrics {
  const registers = [o.registry]
  const kindNames = o.kinds.map(k => k.name)
  const submitted = new Counter({ name: 'voike_jobs_submitted_total', help: 'Grid jobs accepted by this node as their coordinator, by job kind', labelNames: ['kind'] as const, registers })
  const finished = new Counter({ name: 'voike_jobs_finished_total', help: 'Grid jobs this node coordinated that ended, by job kind and final status (succeeded, failed, cancelled)', labelNames: ['kind', 'status'] as const, registers })
  const duration = new Histogram({ name: 'voike_job_duration_seconds', help: 'Time from submission to the end of grid jobs coordinated here', labelNames: ['kind'] as const, buckets: JOB_DURATION_BUCKETS_S, registers })
  const tasks = new Counter({ name: 'voike_tasks_total', help: 'Segment tasks of jobs coordinated here, by task kind and the outcome this coordinator saw', labelNames: ['kind', 'status'] as const, registers })
  const fenced = new Counter({ name: 'voike_jobs_fenced_total', help: 'Jobs dropped by this node because another node claimed them (a takeover while this node was cut off)', labelNames: ['kind'] as const, registers })
  const byState = (which: 'running' | 'queued') => function (this: Gauge<'kind'>): void {
    const counts = new Map<string, number>(kindNames.map(k => [k, 0]))
    for (const kind of o.jobs()[which]) counts.set(kind, (counts.get(kind) ?? 0) + 1)
    this.reset()
    for (const [kind, n] of counts) this.set({ kind }, n)
  }
  new Gauge({ name: 'voike_jobs_running', help: 'Jobs this node coordinates that are placing segments, by job kind', labelNames: ['kind'] as const, registers, collect: byState('running') }) // eslint-disable-line no-new
  new Gauge({ name: 'voike_jobs_queued', help: 'Jobs this node coordinates that wait for a free job slot, by job kind', labelNames: ['kind'] as const, registers, collect: byState('queued') }) // eslint-disable-line no-new
  new Gauge({ // eslint-disable-line no-new
    name: 'voike_tasks_in_flight',
    help: 'Tasks sent by this coordinator to a peer and not answered yet',
    // peer_id, as in voike_node_info and the PerfWatch and trust families: one name per idea.
    labelNames: ['peer_id'] as const,
    registers,
    collect () {
      // reset first: peers that are gone (or idle and forgotten) must not keep a stale series.
      this.reset()
      for (const [peer, n] of o.inFlightByPeer()) this.set({ peer_id: peer }, n)
    }
  })
  for (const kind of o.kinds) {
    submitted.inc({ kind: kind.name }, 0)
    fenced.inc({ kind: kind.name }, 0)
    duration.zero({ kind: kind.name })
    for (const status of FINISHED_STATUSES) finished.inc({ kind: kind.name, status }, 0)
    for (const status of TASK_OUTCOMES) tasks.inc({ kind: taskKindLabel(kind), status }, 0)
  }
  return {
    submitted: (kind) => { submitted.inc({ kind }) },
    finished: (kind, status, durationMs) => {
      finished.inc({ kind, status })
      if (durationMs !== undefined) duration.observe({ kind }, Math.max(0, durationMs) / 1000)
    },
    task: (kind, status) => { tasks.inc({ kind: kind === undefined ? 'unknown' : taskKindLabel(kind), status }) },
    fenced: (kind) => { fenced.inc({ kind }) },
    unregister: () => { for (const name of NAMES) o.registry.removeSingleMetric(name) }
  }
}
