/**
 * A job's `verification`: how far its result was checked, in the job object users see (JobView,
 * `voike job get`). Pure functions over the segments' states; no I/O.
 *
 * - `verified`: every segment was compared with another run (spot checks, spot-check.ts) or run
 *   by the coordinator itself (a coordinator trusts itself);
 * - `unverified`: some segments were accepted on the word of one peer (a reliable peer's segment
 *   not sampled for a check, a policy that compares nothing, or a kind that is not deterministic);
 *   `uncheckedBy` lists them per peer, so that if that peer is caught later the job can be marked;
 * - `suspect`: a peer that alone vouched for some segments of the finished job has since been
 *   caught returning a wrong result; `suspectSegments` are those segments, and the result may be
 *   wrong. (Segments of unfinished jobs are run again instead: the scheduler does not finish a job
 *   on a caught peer's word.)
 *
 * The coordinator persists the object with the job's end (jobs.verification, store migration 7)
 * and updates it when a peer is caught; a job still running shows it as computed so far.
 */
export type VerificationStatus = 'verified' | 'unverified' | 'suspect'

export interface JobVerification {
  status: VerificationStatus
  /** Why, in words. */
  reason: string
  /** Segments compared with another run. */
  checkedSegments: number
  /** Segments (indexes) accepted on the word of one peer other than the coordinator, by peer. */
  uncheckedBy: Record<string, number[]>
  /** Segments accepted from a peer caught lying since: their values may be wrong. */
  suspectSegments: number[]
  /** The caught peers. */
  caughtPeers: string[]
}

/** What verificationOf reads of a segment. */
export interface SegmentCheck {
  readonly index: number
  readonly status: string
  readonly node: string | null
  /** Compared with another run (unknown, e.g. read back after a restart = false). */
  readonly checked: boolean
}

export function verificationOf (kind: { name: string, deterministic: boolean }, coordinator: string, segs: readonly SegmentCheck[]): JobVerification {
  let checked = 0
  let done = 0
  const uncheckedBy: Record<string, number[]> = {}
  for (const s of segs) {
    if (s.status !== 'done') continue
    done++
    if (s.checked) { checked++; continue }
    if (s.node === null || s.node === coordinator) continue
    ;(uncheckedBy[s.node] ??= []).push(s.index)
  }
  const peers = Object.keys(uncheckedBy).sort()
  const unchecked = peers.reduce((n, p) => n + uncheckedBy[p].length, 0)
  const base = { checkedSegments: checked, uncheckedBy, suspectSegments: [], caughtPeers: [] }
  if (unchecked === 0) {
    return { status: 'verified', reason: `${done} of ${segs.length} segments done, each compared with another run (${checked}) or run by the coordinator (${done - checked})`, ...base }
  }
  const why = kind.deterministic ? 'not sampled for a spot check' : `kind ${kind.name} is not deterministic: its results are never compared`
  return { status: 'unverified', reason: `${unchecked} of ${segs.length} segments accepted on one peer's word (${why}): ${peers.join(', ')}`, ...base }
}

/**
 * The verification after `peer` was caught returning a wrong result: the segments it alone
 * vouched for become suspect. Undefined when it vouched for none (nothing changes).
 */
export function markCaught (v: JobVerification, peer: string): JobVerification | undefined {
  const touched = v.uncheckedBy[peer]
  if (touched === undefined || touched.length === 0 || v.caughtPeers.includes(peer)) return undefined
  const suspectSegments = [...new Set([...v.suspectSegments, ...touched])].sort((a, b) => a - b)
  const caughtPeers = [...v.caughtPeers, peer].sort()
  return {
    ...v,
    status: 'suspect',
    reason: `segments ${suspectSegments.join(', ')} were accepted unchecked from ${caughtPeers.join(', ')}, caught returning wrong results since: the result may be wrong (submit the job again)`,
    suspectSegments,
    caughtPeers
  }
}

/** A verification read back from the store or another node (it crossed a boundary); undefined when unusable. */
export function parseVerification (raw: unknown): JobVerification | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined
  const v = raw as Record<string, unknown>
  if (v.status !== 'verified' && v.status !== 'unverified' && v.status !== 'suspect') return undefined
  if (typeof v.reason !== 'string' || !Number.isInteger(v.checkedSegments)) return undefined
  const ints = (x: unknown): x is number[] => Array.isArray(x) && x.every(i => Number.isInteger(i))
  if (!ints(v.suspectSegments) || !Array.isArray(v.caughtPeers) || !v.caughtPeers.every(p => typeof p === 'string')) return undefined
  if (typeof v.uncheckedBy !== 'object' || v.uncheckedBy === null || !Object.values(v.uncheckedBy).every(ints)) return undefined
  return v as unknown as JobVerification
}
