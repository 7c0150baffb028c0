/**
 * The `flow` section of `npm run bench`: FLOW's figures with a real grid. On the 3-node local grid
 * (as `voike up --nodes 3` runs it), 8 independent small RUN JOB steps against the same 8 run one
 * at a time (bench/flow.ts parallelVsSequential: the executor in this process, its GridPort over
 * the Genesis's gRPC API); plus the executor's per-step overhead and LOAD CSV + FILTER + GROUP
 * throughput (bench/flow.ts, in-process).
 * Targets (issue 12): parallel ≤ 0.6 × sequential; overhead ≤ 1 ms/step; CSV ≥ 50 MB/s.
 */
import type { Session, SystemSpec } from './harness.js'
import { parallelVsSequential, runFlowBench } from './flow.js'
import { Resources, threeNodeGrid } from './voike.js'
import type { VoikeClient } from '../node/client.js'
import type { GridJob, GridPort } from '../flows/index.js'

export const FLOW_METRICS = ['parallelMs', 'sequentialMs', 'parallelVsSequential', 'overheadMsPerStep', 'csvMBps'] as const

/** A GridPort through a node's gRPC API (the jobs' JSON as the API gives it). */
export function clientGridPort (client: VoikeClient): GridPort {
  const json = (j: unknown): GridJob => JSON.parse(JSON.stringify(j)) as GridJob
  return {
    submit: async (kind, params) => json(await client.submitJob(kind, params)),
    wait: async (id, { signal }) => json(await client.watchJob(id, undefined, signal)),
    cancel: async (id) => { await client.cancelJob(id) }
  }
}

export const voikeFlow: SystemSpec = {
  label: 'VOIKE FLOW, 3-node grid',
  metrics: FLOW_METRICS,
  start: async (options): Promise<Session> => {
    const res = new Resources()
    try {
      const { client } = await threeNodeGrid(res)
      const port = clientGridPort(client)
      let last: Record<string, unknown> = {}
      return {
        measure: async () => {
          const pvs = await parallelVsSequential(port, { jobs: 8, repeats: 1 })
          const local = await runFlowBench({ quick: options.quick, csvMb: options.quick ? 20 : 100, repeats: 1 })
          last = { overhead: local.overhead, csv: local.csv }
          return {
            parallelMs: pvs.parallelMs,
            sequentialMs: pvs.sequentialMs,
            parallelVsSequential: pvs.ratio,
            overheadMsPerStep: Math.max(local.overhead.independentMsPerStep, local.overhead.chainedMsPerStep),
            csvMBps: local.csv.flowMBps
          }
        },
        info: () => last,
        close: async () => { client.close(); await res.close() }
      }
    } catch (err) {
      await res.close()
      throw err
    }
  }
}
