/**
 * How flows reach the grid. flows/ declares the port; node/ implements it over the scheduler
 * (GridService). A job object is the contract's `--json` job: at least id, kind, status, error,
 * result; whatever else the grid returns (segments, params, ...) is passed through as the value
 * of a RUN JOB / RUN VASM step.
 */
export type GridJobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled'

export interface GridJob {
  id: string
  kind: string
  status: GridJobStatus
  error: string | null
  result: unknown
  [field: string]: unknown
}

export interface GridPort {
  /** Validates and starts a job; resolves with it as first stored (usually queued). */
  submit: (kind: string, params: Record<string, unknown>, options: { signal: AbortSignal }) => Promise<GridJob>
  /**
   * Resolves with the job once it is succeeded, failed or cancelled. Rejects when `signal`
   * aborts (the job keeps running: the caller cancels it).
   */
  wait: (jobId: string, options: { signal: AbortSignal }) => Promise<GridJob>
  /** Asks the grid to cancel a job; cancelling a finished job is a no-op. */
  cancel: (jobId: string) => Promise<void>
}

export const TERMINAL: ReadonlySet<GridJobStatus> = new Set(['succeeded', 'failed', 'cancelled'])
