/**
 * Peer for local tasks: bare Piscina 5 running no-op tasks (an integer in, the same out) with
 * N calls in flight, with the same thread count as VOIKE's worker pool. Measured in a fresh child
 * process per round, so heap state and other benches' clients do not leak into it.
 *
 *   node dist/bench/baselines/piscina.js measure --threads 2 --concurrent-tasks-per-worker 4 \
 *        --in-flight 64 --duration-ms 1000 --warmup-ms 300
 *     → {"event":"result","perSec":N}
 */
import '../../node/polyfill.js'
import { Piscina } from 'piscina'
import { BenchError, argValue, emit, isMain } from '../proc.js'
import { measureThroughput } from '../echo.js'
import { script } from '../proc.js'

export interface PiscinaMeasureOptions {
  /** Worker threads (min = max, so all start up front). */
  threads: number
  /** Piscina's concurrentTasksPerWorker (its default is 1). */
  concurrentTasksPerWorker: number
  inFlight: number
  durationMs: number
  warmupMs: number
}

function checkOptions (o: object): void {
  for (const [k, v] of Object.entries(o)) {
    if (!Number.isInteger(v) || v < (k === 'warmupMs' ? 0 : 1)) throw new BenchError('ERR_BAD_OPTION', `${k} must be a positive integer, got ${v}`)
  }
}

/** Runs `fn` with a bare pool of the no-op worker (min = max threads) and one checked call. */
async function withPool<T> (o: { threads: number, concurrentTasksPerWorker: number }, fn: (call: () => Promise<void>) => Promise<T>): Promise<T> {
  const pool = new Piscina<number, number>({
    filename: script('baselines/piscina-worker.js'),
    minThreads: o.threads,
    maxThreads: o.threads,
    concurrentTasksPerWorker: o.concurrentTasksPerWorker,
    idleTimeout: 60_000
  })
  let next = 0
  try {
    return await fn(async () => {
      const i = next++ & 0x3fffffff
      const r = await pool.run(i)
      if (r !== i) throw new BenchError('ERR_BAD_ECHO', `task ${i} returned ${r}`)
    })
  } finally {
    await pool.destroy()
  }
}

/** Tasks per second through a bare Piscina pool, in this process. */
export async function measurePiscina (o: PiscinaMeasureOptions): Promise<number> {
  checkOptions(o)
  return await withPool(o, async (call) => await measureThroughput(call, { inFlight: o.inFlight, durationMs: o.durationMs, warmupMs: o.warmupMs }))
}

/**
 * Runs exactly `tasks` no-op tasks, `inFlight` at a time, each checked to return its own input;
 * resolves with how many came back right (= tasks, or it throws). What a test checks: function,
 * not speed.
 */
export async function runPiscinaNoops (o: { threads: number, concurrentTasksPerWorker: number, inFlight: number, tasks: number }): Promise<number> {
  checkOptions(o)
  return await withPool(o, async (call) => {
    let started = 0
    let ok = 0
    const loop = async (): Promise<void> => {
      while (started < o.tasks) {
        started++
        await call()
        ok++
      }
    }
    await Promise.all(Array.from({ length: Math.min(o.inFlight, o.tasks) }, loop))
    return ok
  })
}

function intArg (argv: string[], name: string): number {
  const v = Number(argValue(argv, name))
  if (!Number.isInteger(v)) throw new BenchError('ERR_USAGE', `piscina.js measure needs ${name} INT`)
  return v
}

async function main (argv: string[]): Promise<void> {
  if (argv[0] !== 'measure') throw new BenchError('ERR_USAGE', 'usage: piscina.js measure --threads N ...')
  const perSec = await measurePiscina({
    threads: intArg(argv, '--threads'),
    concurrentTasksPerWorker: intArg(argv, '--concurrent-tasks-per-worker'),
    inFlight: intArg(argv, '--in-flight'),
    durationMs: intArg(argv, '--duration-ms'),
    warmupMs: intArg(argv, '--warmup-ms')
  })
  emit('result', { perSec })
}

if (isMain(import.meta.url)) {
  // Die with the bench process even mid-measurement.
  process.stdin.on('end', () => { process.exit(0) })
  process.stdin.resume()
  main(process.argv.slice(2)).then(() => { process.exit(0) }, (err: unknown) => {
    process.stderr.write(`piscina: ${String(err)}\n`)
    process.exit(1)
  })
}
