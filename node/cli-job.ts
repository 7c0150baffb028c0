/**
 * `voike job submit|get|watch|cancel|list`: the grid's jobs through a node's gRPC API.
 *
 *   voike job submit KIND [--n N --segments S | --params JSON] [--wait] [--json]
 *   voike job get ID [--json]
 *   voike job watch ID [--json]          --json: NDJSON, one progress object per change, then the job
 *   voike job cancel ID [--json]         exit 0 when the job is (or was already) cancelled, 1 when it had ended otherwise
 *   voike job list [--status S] [--limit N] [--json]   the cluster's jobs, from any node
 *
 * With --json a job is printed as the HTTP API gives it (GET /grid/jobs/:id). While waiting,
 * Ctrl-C leaves the job running and says how to cancel it (exit 130).
 */
import { TERMINAL_STATUSES, type JobView } from '../actors/scheduler/api.js'
import type { VoikeClient } from './client.js'
import { clientFrom, clientOptions, failWith, intFlag, parse, UsageError } from './cli-common.js'
import { formatJob, formatJobList, formatMissing, jobJson, progressLine, type NodeNames } from './format.js'
import { joinSignedValues, vasmSubmitParams, VASM_SUBMIT_OPTIONS } from './vasm-job.js'

/** Exit status of a command that waited for a job: 1 when it failed or was cancelled. */
function jobExit (job: JobView): number {
  return job.status === 'failed' || job.status === 'cancelled' ? 1 : 0
}

/** peerId → name from the member list; empty (short ids only) when it cannot be read. */
async function nodeNames (client: VoikeClient): Promise<NodeNames> {
  try {
    return new Map((await client.listNodes()).flatMap(m => m.name === undefined ? [] : [[m.peerId, m.name] as const]))
  } catch { return new Map() }
}

async function printJob (client: VoikeClient, job: JobView, json: boolean): Promise<void> {
  process.stdout.write(json ? jobJson(job) : formatJob(job, await nodeNames(client)))
}

/** Ctrl-C while waiting: the job goes on; say so, with the command that would stop it. */
function onInterrupt (id: string): () => void {
  const handler = (): void => {
    process.stderr.write(`\njob ${id} keeps running; \`voike job cancel ${id}\`\n`)
    process.exit(130)
  }
  process.once('SIGINT', handler)
  return () => { process.off('SIGINT', handler) }
}

type Progress = { id: string, status: string, segmentsDone: number, segmentsTotal: number }

/**
 * Waits for the job to end. On a terminal (stderr) a progress bar with elapsed time and an
 * estimate, redrawn every 500 ms; with `ndjson`, one JSON line per progress change on stdout.
 */
async function waitFor (client: VoikeClient, id: string, mode: { bar: boolean, ndjson: boolean, announce?: boolean }): Promise<JobView> {
  const stopInterrupt = onInterrupt(id)
  // After the handler: a Ctrl-C right after this line still gets the message.
  if (mode.announce === true) process.stderr.write(`job ${id} submitted\n`)
  const startedMs = performance.now()
  const tty = mode.bar && process.stderr.isTTY === true
  let last: Progress | undefined
  let baseline: number | undefined
  const draw = (): void => {
    if (last !== undefined && last.segmentsTotal > 0) process.stderr.write(`\r${progressLine(last, performance.now() - startedMs, 30, baseline)}`)
  }
  const timer = tty ? setInterval(draw, 500) : undefined
  timer?.unref()
  try {
    return await client.watchJob(id, (p) => {
      const now: Progress = { id: p.id, status: p.status, segmentsDone: p.segmentsDone, segmentsTotal: p.segmentsTotal }
      if (last !== undefined && last.status === now.status && last.segmentsDone === now.segmentsDone && last.segmentsTotal === now.segmentsTotal) return
      baseline ??= now.segmentsDone
      last = now
      if (mode.ndjson) process.stdout.write(JSON.stringify(now) + '\n')
      if (tty) draw()
    })
  } finally {
    if (timer !== undefined) clearInterval(timer)
    if (tty && last !== undefined) process.stderr.write('\n')
    stopInterrupt()
  }
}

async function submitParams (kind: string, values: Record<string, unknown>): Promise<Record<string, unknown> | string> {
  if (values.params !== undefined) {
    if (values.n !== undefined || values.segments !== undefined || values.program !== undefined) throw new UsageError('give --params or the kind\'s flags, not both')
    return values.params as string // sent as given: the node checks it (size, depth, fields)
  }
  if (kind === 'fib') return { n: intFlag(values, 'n'), segments: values.segments === undefined ? 1 : intFlag(values, 'segments') }
  if (kind === 'vasm') {
    try { return await vasmSubmitParams(values) } catch (err) { throw new UsageError((err as Error).message) }
  }
  return {}
}

async function submit (rest: string[]): Promise<number> {
  const { values, positionals } = parse(joinSignedValues(rest), { ...clientOptions, ...VASM_SUBMIT_OPTIONS, n: { type: 'string' }, segments: { type: 'string' }, wait: { type: 'boolean' }, params: { type: 'string' } })
  const kind = positionals[0]
  if (kind === undefined) throw new UsageError('job submit needs a kind, e.g. `voike job submit fib --n 1000 --segments 4`')
  const params = await submitParams(kind, values)
  const json = values.json === true
  const client = clientFrom(values)
  try {
    let job = typeof params === 'string' ? await client.submitJobJson(kind, params) : await client.submitJob(kind, params)
    if (values.wait !== true) {
      await printJob(client, job, json)
      return 0
    }
    // The id first, so that whatever happens next the user can find the job.
    job = await waitFor(client, job.id, { bar: !json, ndjson: false, announce: true })
    await printJob(client, job, json)
    return jobExit(job)
  } catch (err) { return await failWith(err, client) } finally { client.close() }
}

async function cancel (client: VoikeClient, id: string, json: boolean): Promise<number> {
  // What it was before tells "cancelled now" from "already cancelled" and "had already ended".
  const before = await client.getJob(id)
  const job = TERMINAL_STATUSES.has(before.status) ? before : await client.cancelJob(id)
  await printJob(client, job, json)
  if (job.status === 'cancelled') {
    process.stderr.write(before.status === 'cancelled' ? `job ${id} was already cancelled\n` : `job ${id} cancelled\n`)
    return 0
  }
  process.stderr.write(`job ${id} had already ${job.status} before the cancel; nothing to cancel\n`)
  return 1
}

async function oneJob (sub: 'get' | 'watch' | 'cancel', rest: string[]): Promise<number> {
  const { values, positionals } = parse(rest, clientOptions)
  const id = positionals[0]
  if (id === undefined) throw new UsageError(`job ${sub} needs a job id`)
  const json = values.json === true
  const client = clientFrom(values)
  try {
    if (sub === 'cancel') return await cancel(client, id, json)
    if (sub === 'get') {
      await printJob(client, await client.getJob(id), json)
      return 0
    }
    const job = await waitFor(client, id, { bar: !json, ndjson: json })
    await printJob(client, job, json)
    return jobExit(job)
  } catch (err) { return await failWith(err, client) } finally { client.close() }
}

async function list (rest: string[]): Promise<number> {
  const { values } = parse(rest, { ...clientOptions, limit: { type: 'string' }, status: { type: 'string' } })
  const limit = values.limit === undefined ? undefined : intFlag(values, 'limit')
  const client = clientFrom(values)
  try {
    const page = await client.listJobsPage({ limit, status: values.status as string | undefined })
    // Members down are not in the member list any more, but the list names them.
    const names = new Map([...page.missing.flatMap(m => m.name === undefined ? [] : [[m.peerId, m.name] as const]), ...await nodeNames(client)])
    if (values.json === true) process.stdout.write(JSON.stringify(page.jobs) + '\n')
    else process.stdout.write(formatJobList(page.jobs, names))
    if (page.partial) process.stderr.write(formatMissing(page.missing.map(m => ({ ...m, name: m.name ?? names.get(m.peerId) }))))
    return 0
  } catch (err) { return await failWith(err, client) } finally { client.close() }
}

export async function runJob (args: string[]): Promise<number> {
  const [sub, ...rest] = args
  switch (sub) {
    case 'submit': return await submit(rest)
    case 'get': case 'watch': case 'cancel': return await oneJob(sub, rest)
    case 'list': return await list(rest)
    default: throw new UsageError(`unknown job command ${JSON.stringify(sub ?? '')}; expected submit, get, watch, cancel or list`)
  }
}
