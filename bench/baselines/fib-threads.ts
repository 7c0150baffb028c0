/**
 * The machine's own limit for split Fibonacci: the same cost-balanced segments the grid's `fib`
 * job cuts (`splitFib`), run by the same kernel (`fibSegment`) on N bare worker threads in one
 * process (node:worker_threads, no pool library, no actors, no store, no network). Each thread
 * takes the next segment in index order as soon as it finishes one, so no thread idles while
 * segments remain. The threads live as long as the pool (warm, like the grid's pools).
 */
import { Worker } from 'node:worker_threads'
import assert from 'node:assert/strict'
import { combineFib, splitFib, type FibResult, type FibSegmentResult } from '../../actors/kinds/fib/arith.js'

const WORKER_URL = new URL('./fib-threads-worker.js', import.meta.url)
/** Bounds: the thread count and one run's length. */
const MAX_THREADS = 256
const RUN_TIMEOUT_MS = 600_000

export interface BareFibThreads {
  readonly threads: number
  /** fib(n) cut into `segments` segments, run on the threads; resolves with the combined result. */
  run: (n: number, segments: number) => Promise<FibResult>
  close: () => Promise<void>
}

export function startBareFibThreads (threads: number): BareFibThreads {
  assert.ok(Number.isInteger(threads) && threads >= 1 && threads <= MAX_THREADS, `threads must be an integer in 1..${MAX_THREADS}`)
  const workers = Array.from({ length: threads }, () => new Worker(WORKER_URL))
  let running = false
  return {
    threads,
    run: async (n, segments) => {
      assert.ok(!running, 'one run at a time')
      running = true
      const spans = splitFib(n, segments)
      const results: Array<FibSegmentResult | undefined> = new Array(spans.length)
      let next = 0
      let done = 0
      try {
        return await new Promise<FibResult>((resolve, reject) => {
          const timer = setTimeout(() => { reject(new Error(`bare fib threads: no result within ${RUN_TIMEOUT_MS} ms`)) }, RUN_TIMEOUT_MS)
          const cleanup = (): void => {
            clearTimeout(timer)
            for (const w of workers) { w.removeAllListeners('message'); w.removeAllListeners('error') }
          }
          const feed = (w: Worker): void => {
            if (next >= spans.length) return
            const id = next++
            w.postMessage({ id, start: spans[id]!.start, end: spans[id]!.end, last: id === spans.length - 1 })
          }
          for (const w of workers) {
            w.on('message', (m: { id: number, result: FibSegmentResult }) => {
              results[m.id] = m.result
              done++
              if (done === spans.length) {
                cleanup()
                try { resolve(combineFib(n, results as FibSegmentResult[])) } catch (err) { reject(err) }
                return
              }
              feed(w)
            })
            w.on('error', (err) => { cleanup(); reject(err) })
            feed(w)
          }
        })
      } finally {
        running = false
      }
    },
    close: async () => { await Promise.all(workers.map(async (w) => await w.terminate())) }
  }
}
