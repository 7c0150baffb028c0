/**
 * Thread entry of the bare-threads fib baseline (fib-threads.ts): runs `fibSegment` (the grid's
 * own kernel) for each { id, start, end, last } message and posts { id, result } back.
 */
import '../../node/polyfill.js'
import { parentPort } from 'node:worker_threads'
import { fibSegment, type FibSegmentParams } from '../../actors/kinds/fib/arith.js'

const port = parentPort
if (port === null) throw new Error('fib-threads-worker must run as a worker thread')
port.on('message', (m: FibSegmentParams & { id: number }) => {
  port.postMessage({ id: m.id, result: fibSegment({ start: m.start, end: m.end, last: m.last }) })
})
