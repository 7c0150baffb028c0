/**
 * `voike job submit|get|watch|cancel|list`: the grid's jobs through a node's gRPC API.
 */
import type { JobView } from '../actors/scheduler/api.js'
import { clientFrom, clientOptions, grpcExit, intFlag, parse, UsageError } from './cli-common.js'
import { formatJob, jobJson, progressBar } from './format.js'

function printJob (job: JobView, json: boolean): void {
  process.stdout.write(json ? jobJson(job) : formatJob(job))
}

function jobExit (job: JobView): number {
  return job.status === 'failed' || job.status === 'cancelled' ? 1 : 0
}

export async function runJob (args: string[]): Promise<number> {
  const [sub, ...rest] = args
  if (sub === 'submit') {
    const { values, positionals } = parse(rest, { ...clientOptions, n: { type: 'string' }, segments: { type: 'string' }, wait: { type: 'boolean' }, params: { type: 'string' } })
    const kind = positionals[0]
    if (kind === undefined) throw new UsageError('job submit needs a kind, e.g. `voike job submit fib --n 1000 --segments 4`')
    let params: Record<string, unknown>
    if (values.params !== undefined) {
      try { params = JSON.parse(values.params as string) } catch (err) { throw new UsageError(`--params is not JSON: ${(err as Error).message}`) }
    } else if (kind === 'fib') {
      params = { n: intFlag(values, 'n'), segments: values.segments === undefined ? 1 : intFlag(values, 'segments') }
    } else {
      params = {}
    }
    const client = clientFrom(values)
    try {
      let job = await client.submitJob(kind, params)
      if (values.wait === true) {
        const bar = progressBar()
        job = await client.watchJob(job.id, values.json === true ? undefined : bar)
        if (values.json !== true) bar.done()
      }
      printJob(job, values.json === true)
      return values.wait === true ? jobExit(job) : 0
    } catch (err) { grpcExit(err) } finally { client.close() }
  }
  if (sub === 'get' || sub === 'watch' || sub === 'cancel') {
    const { values, positionals } = parse(rest, clientOptions)
    const id = positionals[0]
    if (id === undefined) throw new UsageError(`job ${sub} needs a job id`)
    const client = clientFrom(values)
    try {
      let job: JobView
      if (sub === 'get') job = await client.getJob(id)
      else if (sub === 'cancel') job = await client.cancelJob(id)
      else {
        const bar = progressBar()
        job = await client.watchJob(id, values.json === true ? undefined : bar)
        if (values.json !== true) bar.done()
      }
      printJob(job, values.json === true)
      return sub === 'get' ? 0 : jobExit(job)
    } catch (err) { grpcExit(err) } finally { client.close() }
  }
  if (sub === 'list') {
    const { values } = parse(rest, { ...clientOptions, limit: { type: 'string' }, status: { type: 'string' } })
    const client = clientFrom(values)
    try {
      const jobs = await client.listJobs({ limit: values.limit === undefined ? undefined : intFlag(values, 'limit'), status: values.status as string | undefined })
      if (values.json === true) process.stdout.write(JSON.stringify(jobs.map(j => ({ id: j.id, kind: j.kind, status: j.status, error: j.error, result: j.result, createdAtMs: j.createdAtMs }))) + '\n')
      else for (const j of jobs) process.stdout.write(`${j.id}  ${j.kind.padEnd(6)}  ${j.status.padEnd(9)}  ${j.segmentsDone}/${j.segmentsTotal}  ${new Date(j.createdAtMs).toISOString()}\n`)
      return 0
    } catch (err) { grpcExit(err) } finally { client.close() }
  }
  throw new UsageError(`unknown job command ${JSON.stringify(sub ?? '')}; expected submit, get, watch, cancel or list`)
}
