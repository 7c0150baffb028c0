/**
 * The membership actor, `membership` on every node.
 *
 * Joining: a new node asks any member (a seed) `join`; that member records it, announces it to
 * the others (`joined`) and answers with the member list; everyone then connects directly.
 * Genesis persists the registry in its store, so a restarted Genesis knows its cluster.
 * Leaving: a node stopping on SIGTERM tells every member `leave`; Genesis re-announces it.
 * Failure: a lost connection makes a member `suspect`; it is redialled every tick and declared
 * `dead` after `suspectTimeoutMs` without a connection. A member that comes back is `alive`.
 */
import type { Actor, ActorSystem, MessageContext } from '../index.js'
import { ReplyError } from '../index.js'
import type { Logger } from '../../config/logger.js'
import { silentLogger } from '../../config/logger.js'
import type { Store } from '../../node/store/types.js'
import { MemberTable, MAX_MEMBERS, type MemberRecord } from './table.js'

export const MEMBERSHIP_ACTOR = 'membership'

export type MembershipMessage =
  | { type: 'join', member: MemberRecord }
  | { type: 'joined', member: MemberRecord }
  | { type: 'leave', peerId: string }
  | { type: 'left', peerId: string }
  | { type: 'merge', members: MemberRecord[] }
  | { type: 'peer-up', peerId: string }
  | { type: 'peer-down', peerId: string }
  | { type: 'tick' }
  | { type: 'list' }

export interface MembershipDeps {
  table: MemberTable
  /** Present on Genesis only: where the registry persists. */
  store?: Store
  /** Connects to a member at one of its addresses (the mesh's dial). */
  connect: (peerId: string, addrs: string[]) => Promise<void>
  isConnected: (peerId: string) => boolean
  /** Declared dead after this long suspect. Default 5000 ms. */
  suspectTimeoutMs?: number
  /** Dead, not left, members are redialled this often, for at most `deadRetryForMs`. Default 5000 ms. */
  deadRetryEveryMs?: number
  /** Default 10 minutes. */
  deadRetryForMs?: number
  logger?: Logger
  now?: () => number
}

const MAX_ADDRS = 16

/** Validates a member record that came from the network; returns a clean copy. */
export function parseMember (value: unknown): MemberRecord {
  const m = value as Partial<MemberRecord> | null
  const fail = (field: string): never => { throw new ReplyError('ERR_INVALID_MEMBER', `member.${field} is missing or invalid`) }
  if (typeof m !== 'object' || m === null) return fail('(object)')
  if (typeof m.peerId !== 'string' || m.peerId.length === 0 || m.peerId.length > 256) fail('peerId')
  if (!Array.isArray(m.addrs) || m.addrs.length > MAX_ADDRS || !m.addrs.every(a => typeof a === 'string' && a.length < 512)) fail('addrs')
  if (!Number.isInteger(m.cores) || (m.cores as number) < 1 || (m.cores as number) > 4096) fail('cores')
  if (typeof m.memoryBytes !== 'number' || m.memoryBytes < 0) fail('memoryBytes')
  if (typeof m.version !== 'string' || m.version.length > 64) fail('version')
  if (typeof m.startedAtMs !== 'number') fail('startedAtMs')
  return {
    peerId: m.peerId as string,
    addrs: (m.addrs as string[]).slice(),
    cores: m.cores as number,
    memoryBytes: m.memoryBytes as number,
    version: m.version as string,
    startedAtMs: m.startedAtMs as number,
    status: m.status === 'suspect' || m.status === 'dead' ? m.status : 'alive',
    lastSeenMs: typeof m.lastSeenMs === 'number' ? m.lastSeenMs : 0,
    leftAtMs: typeof m.leftAtMs === 'number' ? m.leftAtMs : null,
    isGenesis: m.isGenesis === true,
    // Older members do not send it: unknown host, never grouped with others.
    host: typeof m.host === 'string' && m.host.length <= 128 ? m.host : ''
  }
}

export function createMembershipActor (deps: MembershipDeps): () => Actor<MembershipMessage> {
  const { table } = deps
  const log = deps.logger ?? silentLogger
  const now = deps.now ?? Date.now
  const suspectTimeoutMs = deps.suspectTimeoutMs ?? 5000
  const deadRetryEveryMs = deps.deadRetryEveryMs ?? 5000
  const deadRetryForMs = deps.deadRetryForMs ?? 10 * 60_000
  /** When each member became suspect or dead, and when we last tried to reach it (not persisted). */
  const downSinceMs = new Map<string, number>()
  const lastDialMs = new Map<string, number>()
  const dialing = new Set<string>()

  const persist = async (m: MemberRecord): Promise<void> => {
    if (deps.store === undefined) return
    try { await deps.store.upsertMember({ ...m }) } catch (err) { log.error('cannot persist member', { peer: m.peerId, err }) }
  }

  const dial = (m: MemberRecord): void => {
    if (dialing.has(m.peerId) || m.peerId === table.selfId) return
    dialing.add(m.peerId)
    lastDialMs.set(m.peerId, now())
    deps.connect(m.peerId, m.addrs).then(
      () => { /* peer-up arrives through the mesh's connect event */ },
      (err: Error) => { log.debug('member not reachable', { peer: m.peerId, err }) }
    ).finally(() => { dialing.delete(m.peerId) })
  }

  const broadcast = (system: ActorSystem, msg: MembershipMessage, except: Set<string>): void => {
    for (const m of table.all()) {
      if (m.status === 'dead' || except.has(m.peerId) || m.peerId === table.selfId) continue
      try { system.tell(system.ref(m.peerId, MEMBERSHIP_ACTOR), msg, MEMBERSHIP_ACTOR) } catch (err) {
        log.debug('announce failed', { peer: m.peerId, err })
      }
    }
  }

  /** Records a member learned from a join or an announcement; returns it as stored. */
  const learn = async (incoming: MemberRecord, status: MemberRecord['status']): Promise<MemberRecord> => {
    if (table.get(incoming.peerId) === undefined && table.size >= MAX_MEMBERS) {
      throw new ReplyError('ERR_CLUSTER_FULL', `the cluster already has ${MAX_MEMBERS} members`)
    }
    const m: MemberRecord = { ...incoming, status, lastSeenMs: now(), leftAtMs: status === 'alive' ? null : incoming.leftAtMs }
    table.put(m)
    if (status === 'alive') downSinceMs.delete(m.peerId)
    await persist(m)
    return m
  }

  const markDown = async (peerId: string, status: 'suspect' | 'dead', left = false): Promise<void> => {
    const m = table.setStatus(peerId, status, now(), left)
    if (m === undefined) return
    if (!downSinceMs.has(peerId)) downSinceMs.set(peerId, now())
    log.info(left ? 'member left' : `member ${status}`, { peer: peerId })
    await persist(m)
  }

  const markUp = async (peerId: string): Promise<void> => {
    const m = table.get(peerId)
    if (m === undefined || m.leftAtMs !== null) return
    downSinceMs.delete(peerId)
    const changed = table.setStatus(peerId, 'alive', now())
    if (changed !== undefined) {
      log.info('member alive', { peer: peerId })
      await persist(changed)
    }
  }

  const tick = async (): Promise<void> => {
    const t = now()
    for (const m of table.all()) {
      if (m.peerId === table.selfId || m.leftAtMs !== null) continue
      const connected = deps.isConnected(m.peerId)
      if (m.status !== 'alive' && connected) { await markUp(m.peerId); continue }
      if (m.status === 'alive' && !connected) { await markDown(m.peerId, 'suspect'); dial(m); continue }
      const since = downSinceMs.get(m.peerId) ?? t
      if (!downSinceMs.has(m.peerId) && m.status !== 'alive') downSinceMs.set(m.peerId, t)
      if (m.status === 'suspect') {
        if (t - since >= suspectTimeoutMs) await markDown(m.peerId, 'dead')
        else dial(m)
      } else if (m.status === 'dead' && t - since < deadRetryForMs && t - (lastDialMs.get(m.peerId) ?? 0) >= deadRetryEveryMs) {
        dial(m)
      }
    }
  }

  return () => ({
    async receive (msg: MembershipMessage, ctx: MessageContext): Promise<unknown> {
      switch (msg?.type) {
        case 'join': {
          const joiner = parseMember(msg.member)
          if (ctx.sender !== undefined && ctx.sender.peerId !== joiner.peerId) {
            throw new ReplyError('ERR_INVALID_MEMBER', 'member.peerId must be the joining peer itself')
          }
          const m = await learn(joiner, 'alive')
          log.info('member joined', { peer: m.peerId, addrs: m.addrs })
          broadcast(ctx.system, { type: 'joined', member: m }, new Set([m.peerId]))
          return { members: table.all() }
        }
        case 'joined': {
          const m = parseMember(msg.member)
          if (m.peerId === table.selfId) return
          const known = table.get(m.peerId)
          await learn(m, known?.status === 'alive' || deps.isConnected(m.peerId) ? 'alive' : 'suspect')
          if (!deps.isConnected(m.peerId)) dial(m)
          return
        }
        case 'merge': {
          if (!Array.isArray(msg.members)) return
          for (const raw of msg.members.slice(0, MAX_MEMBERS)) {
            const m = parseMember(raw)
            if (m.peerId === table.selfId) continue
            const status = deps.isConnected(m.peerId) ? 'alive' : m.status === 'alive' ? 'suspect' : m.status
            await learn(m, status)
            if (status === 'suspect') { downSinceMs.set(m.peerId, now()); dial(m) }
          }
          return
        }
        case 'leave':
        case 'left': {
          if (typeof msg.peerId !== 'string' || msg.peerId === table.selfId) return
          if (msg.type === 'leave' && ctx.sender !== undefined && ctx.sender.peerId !== msg.peerId) return // only a node may announce its own leave
          const wasKnown = table.get(msg.peerId)?.leftAtMs === null
          await markDown(msg.peerId, 'dead', true)
          if (wasKnown && deps.store !== undefined) broadcast(ctx.system, { type: 'left', peerId: msg.peerId }, new Set([msg.peerId]))
          return
        }
        case 'peer-up': await markUp(msg.peerId); return
        case 'peer-down': {
          const m = table.get(msg.peerId)
          if (m !== undefined && m.status === 'alive' && m.leftAtMs === null && !deps.isConnected(msg.peerId)) {
            await markDown(msg.peerId, 'suspect')
            dial(m)
          }
          return
        }
        case 'tick': await tick(); return
        case 'list': return table.all()
        default:
          throw new ReplyError('ERR_UNKNOWN_MESSAGE', `membership: unknown message type ${JSON.stringify((msg as { type?: unknown })?.type)}`)
      }
    }
  })
}
