/**
 * What people read, in one place so that it reads the same everywhere (the CLI and `voike up`'s
 * demo): a node is its name and short peer id (`node-4002 (…AbCdEfGh)`), a duration is ms with
 * one decimal, tables have a header and aligned columns. Pure functions returning text.
 */
import type { JobView, MissingMember } from '../actors/scheduler/api.js'

/** peerId → node name, from the member list (ListNodes). */
export type NodeNames = ReadonlyMap<string, string>

/** Characters of a peer id shown (its tail, which is what differs between peers). */
export const SHORT_ID_CHARS = 8

export function shortId (peerId: string | null): string {
  return peerId === null ? '-' : peerId.length > 16 ? `…${peerId.slice(-SHORT_ID_CHARS)}` : peerId
}

/** `node-4002 (…AbCdEfGh)`, or `…AbCdEfGh` when the name is unknown, `-` for no node. */
export function nodeLabel (peerId: string | null, names: NodeNames): string {
  if (peerId === null) return '-'
  const name = names.get(peerId)
  return name === undefined || name === '' ? shortId(peerId) : `${name} (${shortId(peerId)})`
}

/** A duration rounded the one way every output uses: ms with one decimal (JSON carries the same). */
export function roundMs (ms: number): number {
  return Math.round(ms * 10) / 10
}

/** `1210.5 ms`; `-` when there is none. */
export function formatMs (ms: number | null): string {
  return ms === null ? '-' : `${roundMs(ms).toFixed(1)} ms`
}

/** Rows of cells as text: a header row, then columns padded to their widest cell (`right`: right-aligned columns). */
export function table (rows: string[][], right: ReadonlySet<number> = new Set()): string {
  const widths: number[] = []
  for (const row of rows) row.forEach((cell, i) => { widths[i] = Math.max(widths[i] ?? 0, cell.length) })
  return rows.map(row => row.map((cell, i) => {
    if (i === row.length - 1 && !right.has(i)) return cell
    return right.has(i) ? cell.padStart(widths[i]) : cell.padEnd(widths[i])
  }).join('  ')).join('\n') + '\n'
}

/** The segment table of `job get`, `job submit --wait` and the demo. */
export function formatSegments (job: JobView, names: NodeNames): string {
  const rows = [['segment', 'range', 'node', 'attempts', 'lost', 'ms']]
  for (const s of job.segments) {
    const range = typeof s.start === 'number' && typeof s.end === 'number' ? `[${s.start}, ${s.end})` : '-'
    rows.push([String(s.index), range, nodeLabel(s.node, names), String(s.attempts), String(s.lost ?? 0), s.ms === null ? '-' : roundMs(s.ms).toFixed(1)])
  }
  return table(rows, new Set([0, 3, 4, 5]))
}

export function formatJob (job: JobView, names: NodeNames): string {
  const lines = [`job ${job.id}  ${job.kind}  ${job.status}  ${job.segmentsDone}/${job.segmentsTotal} segments  coordinator ${nodeLabel(job.coordinator, names)}`]
  if (job.finishedAtMs !== null) lines.push(`took ${formatMs(job.finishedAtMs - job.createdAtMs)}`)
  if (job.error !== null) lines.push(`error: ${job.error}`)
  let text = lines.join('\n') + '\n'
  if (job.segments.length > 0) text += formatSegments(job, names)
  if (job.result !== null) text += `result: ${JSON.stringify(job.result)}\n`
  if (job.verification !== undefined) text += `verification: ${job.verification.status} (${job.verification.reason})\n`
  return text
}

/** `voike job list`: a header and aligned columns. */
export function formatJobList (jobs: readonly JobView[], names: NodeNames): string {
  const rows = [['ID', 'KIND', 'STATUS', 'SEGMENTS', 'CREATED', 'COORDINATOR']]
  for (const j of jobs) {
    rows.push([j.id, j.kind, j.status, `${j.segmentsDone}/${j.segmentsTotal}`, new Date(j.createdAtMs).toISOString().replace(/\.\d{3}Z$/, 'Z'), nodeLabel(j.coordinator, names)])
  }
  return table(rows)
}

const MISSING_REASONS: Record<MissingMember['reason'], string> = {
  suspect: 'is suspect', dead: 'is dead', left: 'has left', 'no answer': 'did not answer', truncated: 'sent only part of its jobs'
}

/** What a partial list lacks, one line (stderr). */
export function formatMissing (missing: readonly MissingMember[]): string {
  const who = missing.map(m => `${nodeLabel(m.peerId, new Map(m.name === undefined ? [] : [[m.peerId, m.name]]))} ${MISSING_REASONS[m.reason]}`)
  return `partial list: ${who.join('; ')}\n`
}

export interface MemberLine { peerId: string, name?: string, status: string, cores: number, isGenesis: boolean, addrs: string[] }

/** `voike mesh nodes`. */
export function formatMembers (nodes: readonly MemberLine[]): string {
  const names = new Map(nodes.flatMap(n => n.name === undefined ? [] : [[n.peerId, n.name] as const]))
  const rows = [['NODE', 'STATUS', 'CORES', 'ROLE', 'ADDRESS']]
  for (const n of nodes) rows.push([nodeLabel(n.peerId, names), n.status, String(n.cores), n.isGenesis ? 'genesis' : 'node', n.addrs[0] ?? '-'])
  return table(rows, new Set([2]))
}

/**
 * One line of the progress bar: done/total, the time since the watch began, and (once a segment
 * has finished since then) an estimate of what is left at the rate so far. Segments are cut to
 * cost about the same, so the rate is a fair guide.
 */
export function progressLine (p: { segmentsDone: number, segmentsTotal: number }, elapsedMs: number, width = 30, baselineDone = 0): string {
  const total = Math.max(p.segmentsTotal, 0)
  const filled = total === 0 ? 0 : Math.round(width * p.segmentsDone / total)
  let line = `[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${p.segmentsDone}/${total} segments  elapsed ${formatMs(elapsedMs)}`
  const gained = p.segmentsDone - baselineDone
  if (gained > 0 && p.segmentsDone < total) line += `  ~${formatMs(elapsedMs * (total - p.segmentsDone) / gained)} left`
  return line
}

/** The contract's `--json` job object: every field of the job as the HTTP API gives it. */
export function jobJson (job: JobView): string {
  return JSON.stringify(job) + '\n'
}
