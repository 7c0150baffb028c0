/**
 * Job ids name their coordinator: `<tag>-<random>`, the tag being the last 8 characters of the
 * coordinator's peer id (the short id users see, `…AbCdEfGh`), the random part 16 bytes in
 * base64url. Why in the id: with embedded stores a job lives only in its coordinator's store, so
 * when that node is down no other node has any record of the job. The id alone still tells any
 * node, with no state and no lookup, whose job it is: a read can answer "unavailable: its
 * coordinator X is down" instead of a false "not found" (issue 9, item 10). A remembered
 * job → coordinator map would only help the nodes that happened to serve the job before.
 *
 * The tag is a hint, not an authority: after a takeover (shared PostgreSQL store) the job's
 * coordinator is the one in the store; the tag is only consulted when no node has the job.
 * Ids issued before this format (22 characters, no tag) name no coordinator.
 */
import { randomBytes } from 'node:crypto'

/** Job ids: what the HTTP route and the store accept (ids of any issuer, older ones too). */
export const JOB_ID_RE = /^[A-Za-z0-9_-]{1,64}$/

/** Characters of the coordinator's peer id carried in the id. */
export const COORDINATOR_TAG_CHARS = 8
const TAG_RE = /^([A-Za-z0-9_]{1,8})-[A-Za-z0-9_-]{22}$/

/** The tag of a peer id: its last characters, any outside [A-Za-z0-9] as `_` (ids stay URL-safe). */
export function coordinatorTag (peerId: string): string {
  return peerId.slice(-COORDINATOR_TAG_CHARS).replace(/[^A-Za-z0-9]/g, '_')
}

export function newJobId (coordinator: string): string {
  return `${coordinatorTag(coordinator)}-${randomBytes(16).toString('base64url')}`
}

/** The tag an id carries, or null (an older id, or one this scheme did not issue). */
export function tagOfJobId (id: string): string | null {
  return TAG_RE.exec(id)?.[1] ?? null
}

/** The one member whose peer id has the id's tag; undefined when none or several do. */
export function coordinatorOfJobId<M extends { peerId: string }> (id: string, members: Iterable<M>): M | undefined {
  const tag = tagOfJobId(id)
  if (tag === null) return undefined
  let found: M | undefined
  for (const m of members) {
    if (coordinatorTag(m.peerId) !== tag) continue
    if (found !== undefined) return undefined
    found = m
  }
  return found
}
