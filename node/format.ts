/**
 * How the CLI (and `voike up`'s demo) prints jobs, members and progress for people. Pure
 * functions returning text, except the progress bar, which writes to stderr on a terminal.
 */
import type { JobView } from '../actors/scheduler/api.js'

export function shortId (peerId: string | null): string {
  return peerId === null ? '-' : peerId.length > 16 ? `…${peerId.slice(-8)}` : peerId
}

/** The contract's `--json` job object. */
export function jobJson (job: JobView): string {
  const { id, kind, status, error, result, segments } = job
  return JSON.stringify({ id, kind, status, error, result, segments: segments.map(s => ({ index: s.index, start: s.start, end: s.end, node: s.node, attempts: s.attempts, ms: s.ms })) }) + '\n'
}

export function formatJob (job: JobView): string {
  const lines = [`job ${job.id}  ${job.kind}  ${job.status}  ${job.segmentsDone}/${job.segmentsTotal} segments`]
  if (job.error !== null) lines.push(`error: ${job.error}`)
  if (job.segments.length > 0) {
    lines.push('segment  range                 node        attempts  ms')
    for (const s of job.segments) {
      lines.push(`${String(s.index).padStart(7)}  ${`[${s.start}, ${s.end})`.padEnd(20)}  ${shortId(s.node).padEnd(10)}  ${String(s.attempts).padStart(8)}  ${s.ms === null ? '-' : s.ms.toFixed(1)}`)
    }
  }
  if (job.result !== null) lines.push(`result: ${JSON.stringify(job.result)}`)
  return lines.join('\n') + '\n'
}

export function formatMembers (nodes: Array<{ peerId: string, status: string, cores: number, isGenesis: boolean, addrs: string[] }>): string {
  const lines = ['peer                                                   status   cores  role     address']
  for (const n of nodes) lines.push(`${n.peerId.padEnd(53)}  ${n.status.padEnd(7)}  ${String(n.cores).padStart(5)}  ${(n.isGenesis ? 'genesis' : 'node').padEnd(7)}  ${n.addrs[0] ?? '-'}`)
  return lines.join('\n') + '\n'
}

export function progressBar (): ((p: { segmentsDone: number, segmentsTotal: number }) => void) & { done: () => void } {
  const tty = process.stderr.isTTY === true
  const fn = (p: { segmentsDone: number, segmentsTotal: number }): void => {
    if (!tty || p.segmentsTotal === 0) return
    const width = 30
    const filled = Math.round(width * p.segmentsDone / p.segmentsTotal)
    process.stderr.write(`\r[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${p.segmentsDone}/${p.segmentsTotal} segments`)
  }
  return Object.assign(fn, { done: () => { if (tty) process.stderr.write('\n') } })
}
