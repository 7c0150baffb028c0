/**
 * The membership actor, `membership` on every node.
 *
 * Joining: a new node asks any member (a seed) `join`; that member records it, announces it to
 * the others (`joined`) and answers with the member list; everyone then connects directly.
 * Genesis persists the registry in its store, so a restarted Genesis knows its cluster.
 * Leaving: a node stopping on SIGTERM tells every member `leave`; Genesis re-announces it.
 * Failure: a lost connection makes a member `suspect`; it is redialled every tick and declared
 * `dead` after `suspectTimeoutMs` without a connection. A member that comes back is `alive`.
 * With `detector` set (the node runs SWIM, swim-actor.ts), statuses follow the detector's
 * verdicts (`detected`) instead of connections; connections are then only kept up (dialled).
 */
import type { Actor, ActorSystem, MessageContext } from '../runtime/index.js'
import { ReplyError } from '../runtime/index.js'
import type { Logger } from '../../config/logger.js'
import { silentLogger } from '../../config/logger.js'
import type { MemberStore } from '../../store/types.js'
import { MemberTable, MAX_MEMBERS, type MemberRecord } from './table.js'
import type { DetectedMessage } from './detector-bridge.js'

export const MEMBERSHIP_ACTOR = 'membership'
/** The local sender name `detected` messages must come from (the swim actor's). */
export const DETECTOR_SENDER = 'swim'

export type MembershipMessage =
  | { type: 'join', member: MemberRecord }
  | { type: 'joined', member: MemberRecord }
  | { type: 'leave', peerId: string }
  | { type: 'left', peerId: string, startedAtMs?: number }
  | { type: 'hello', member: MemberRecord }
  | { type: 'merge', members: MemberRecord[] }
  | { type: 'peer-up', peerId: string }
  | { type: 'peer-down', peerId: string }
  | { type: 'tick' }
  | { type: 'list' }
  | DetectedMessage

export interface MembershipDeps {
  table: MemberTable
  /** Present on Genesis only: where the registry persists. */
  store?: MemberStore
  /** Connects to a member at one of its addresses (the mesh's dial). */
  connect: (peerId: string, addrs: string[]) => Promise<void>
  isConnected: (peerId: string) => boolean
  /** Declared dead after this long suspect. Default 5000 ms. */
  suspectTimeoutMs?: number
  /** Dead, not left, members are redialled this often, for at most `deadRetryForMs`. Default 5000 ms. */
  deadRetryEveryMs?: number
  /** Past `deadRetryForMs`, dead members are still redialled, this rarely. Default 60 000 ms. */
  deadRetrySlowEveryMs?: number
  /** Default 10 minutes. */
  deadRetryForMs?: number
  /** Members that left or were dead this long are forgotten (table and store). Default 24 h. */
  forgetAfterMs?: number
  /** Every this many ticks, ask one alive member for its list, to learn members missed. Default 10. */
  syncEveryTicks?: number
  /** Tells a well-formed peer id from garbage (injected: actors/ does not know libp2p). */
  isValidPeerId?: (peerId: string) => boolean
  /**
   * True when a failure detector (SWIM) decides statuses: they then change only on `detected`
   * messages; connections and hellos only add records and keep links up. Default false.
   */
  detector?: boolean
  logger?: Logger
  now?: () => number
}

const MAX_ADDRS = 16

/** libp2p peer ids as text: base58btc multihashes (Qm…, 12D3Koo…, 16Uiu2…) or base32 CIDs (b…). */
const PEER_ID_RE = /^(?:[1-9A-HJ-NP-Za-km-z]{40,100}|b[a-z2-7]{50,120})$/
export const looksLikePeerId = (peerId: string): boolean => PEER_ID_RE.test(peerId)

/** Validates a member record that came from the network; returns a clean copy. */
/** A node name as config/ accepts it (`--name`). */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/

export function parseMember (value: unknown, isValidPeerId: (id: string) => boolean = looksLikePeerId): MemberRecord {
  const m = value as Partial<MemberRecord> | null
  const fail = (field: string): never => { throw new ReplyError('ERR_INVALID_MEMBER', `member.${field} is missing or invalid`) }
  if (typeof m !== 'object' || m === null) return fail('(object)')
  if (typeof m.peerId !== 'string' || !isValidPeerId(m.peerId)) fail('peerId')
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
    host: typeof m.host === 'string' && m.host.length <= 128 ? m.host : '',
    // Older members do not send a name; a bad one is dropped rather than refusing the member.
    ...(typeof m.name === 'string' && NAME_RE.test(m.name) ? { name: m.name } : {})
  }
}

/**
 * The addresses kept for a member when a record of it arrives (join, hello, announcement). A
 * live member keeps its own addresses first: a second process with its identity (a copied key)
 * or an old announcement must not move it to an address that may not answer; the new ones are
 * kept after them (dials try each in order). A member that is not live (suspect, dead, left, or
 * unknown) takes the new addresses first: it restarted, maybe on another port. At most MAX_ADDRS.
 */
export function mergeAddrs (known: MemberRecord | undefined, incoming: readonly string[]): string[] {
  const live = known !== undefined && known.status === 'alive' && known.leftAtMs === null
  const ordered = live ? [...known.addrs, ...incoming] : [...incoming, ...(known?.addrs ?? [])]
  return [...new Set(ordered)].slice(0, MAX_ADDRS)
}

export function createMembershipActor (deps: MembershipDeps): () => Actor<MembershipMessage> {
  const { table } = deps
  const log = deps.logger ?? silentLogger
  const now = deps.now ?? Date.now
  const suspectTimeoutMs = deps.suspectTimeoutMs ?? 5000
  const deadRetryEveryMs = deps.deadRetryEveryMs ?? 5000
  const deadRetryForMs = deps.deadRetryForMs ?? 10 * 60_000
  const deadRetrySlowEveryMs = deps.deadRetrySlowEveryMs ?? 60_000
  const forgetAfterMs = deps.forgetAfterMs ?? 24 * 3600_000
  const syncEveryTicks = deps.syncEveryTicks ?? 10
  const validId = deps.isValidPeerId ?? looksLikePeerId
  const parse = (v: unknown): MemberRecord => parseMember(v, validId)
  const detector = deps.detector === true
  /** With a detector, a record learned from a peer keeps the status the detector gave it. */
  const statusFor = (peerId: string, otherwise: MemberRecord['status']): MemberRecord['status'] =>
    detector ? (table.get(peerId)?.leftAtMs === null ? table.get(peerId)?.status ?? 'alive' : 'alive') : otherwise
  let ticks = 0
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
    const known = table.get(incoming.peerId)
    const addrs = mergeAddrs(known, incoming.addrs)
    if (known !== undefined && addrs[0] !== incoming.addrs[0] && incoming.addrs.length > 0) {
      log.warn('a live member announced from another address: keeping its own first', { peer: incoming.peerId, addrs: known.addrs, announced: incoming.addrs })
    }
    const m: MemberRecord = { ...incoming, addrs, status, lastSeenMs: now(), leftAtMs: status === 'alive' ? null : incoming.leftAtMs }
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

  /** With a detector: keep links to live members up, redial dead ones now and then. */
  const keepLinks = (t: number): void => {
    for (const m of table.all()) {
      if (m.peerId === table.selfId || m.leftAtMs !== null) continue
      if (m.status !== 'dead') { if (!deps.isConnected(m.peerId)) dial(m); continue }
      const since = downSinceMs.get(m.peerId) ?? t
      const every = t - since < deadRetryForMs ? deadRetryEveryMs : deadRetrySlowEveryMs
      if (t - (lastDialMs.get(m.peerId) ?? 0) >= every && !deps.isConnected(m.peerId)) dial(m)
    }
  }

  /** A verdict of the failure detector, with the member's record from its gossip. */
  const detected = async (msg: DetectedMessage): Promise<void> => {
    if (typeof msg.peerId !== 'string' || msg.peerId === table.selfId) return
    const known = table.get(msg.peerId)
    const rec = msg.member !== undefined ? parse(msg.member) : undefined
    if (msg.state === 'alive') {
      // New, restarted (a later startedAtMs) or back from the dead: the record from its gossip.
      if (rec !== undefined && (known === undefined || known.leftAtMs !== null || rec.startedAtMs > known.startedAtMs)) {
        await learn(rec, 'alive')
        log.info('member alive', { peer: rec.peerId })
        if (!deps.isConnected(rec.peerId)) dial(rec)
        return
      }
      if (known !== undefined && known.leftAtMs !== null) return
      await markUp(msg.peerId)
      return
    }
    if (known === undefined) {
      // Suspect or dead on first sight (learned from a sync): recorded so the APIs show it.
      if (rec !== undefined && msg.state === 'suspect') await learn(rec, 'suspect')
      return
    }
    await markDown(msg.peerId, msg.state === 'suspect' ? 'suspect' : 'dead', msg.state === 'left')
  }

  const tick = async (): Promise<void> => {
    const t = now()
    if (detector) { keepLinks(t); await forgetOld(t); return }
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
      } else if (m.status === 'dead') {
        // Never give up on a member that did not leave: a long partition must heal by itself.
        const every = t - since < deadRetryForMs ? deadRetryEveryMs : deadRetrySlowEveryMs
        if (t - (lastDialMs.get(m.peerId) ?? 0) >= every) dial(m)
      }
    }
    await forgetOld(t)
  }

  /** Drops members that left or stayed dead past forgetAfterMs, so the table cannot fill up with ghosts. */
  const forgetOld = async (t: number): Promise<void> => {
    for (const m of table.all()) {
      if (m.peerId === table.selfId || m.status !== 'dead') continue
      const since = m.leftAtMs ?? downSinceMs.get(m.peerId) ?? t
      if (t - since < forgetAfterMs) continue
      table.remove(m.peerId)
      downSinceMs.delete(m.peerId)
      lastDialMs.delete(m.peerId)
      if (deps.store !== undefined) {
        try { await deps.store.deleteMember(m.peerId) } catch (err) { log.error('cannot forget member', { peer: m.peerId, err }) }
      }
      log.info('member forgotten', { peer: m.peerId })
    }
  }

  /** Anti-entropy: now and then, learn the members another member knows and we do not. */
  const sync = (system: ActorSystem): void => {
    const others = table.alive().filter(m => m.peerId !== table.selfId)
    if (others.length === 0) return
    const peer = others[Math.floor(Math.random() * others.length)]
    system.ask<unknown[]>(system.ref(peer.peerId, MEMBERSHIP_ACTOR), { type: 'list' }, { timeoutMs: 5000, from: MEMBERSHIP_ACTOR }).then((list) => {
      if (!Array.isArray(list)) return
      const unknown: MemberRecord[] = []
      for (const raw of list.slice(0, MAX_MEMBERS)) {
        try {
          const m = parse(raw)
          if (table.get(m.peerId) === undefined && m.status !== 'dead') unknown.push(m)
        } catch { /* one bad record does not spoil the rest */ }
      }
      if (unknown.length > 0) system.tell(system.ref(table.selfId, MEMBERSHIP_ACTOR), { type: 'merge', members: unknown })
    }, (err: Error) => { log.debug('member list sync failed', { peer: peer.peerId, err }) })
  }

  return () => ({
    async receive (msg: MembershipMessage, ctx: MessageContext): Promise<unknown> {
      switch (msg?.type) {
        case 'join': {
          const joiner = parse(msg.member)
          if (ctx.sender === undefined || ctx.sender.peerId !== joiner.peerId) {
            throw new ReplyError('ERR_INVALID_MEMBER', 'member.peerId must be the joining peer itself')
          }
          const m = await learn(joiner, 'alive')
          log.info('member joined', { peer: m.peerId, addrs: m.addrs })
          broadcast(ctx.system, { type: 'joined', member: m }, new Set([m.peerId]))
          return { members: table.all() }
        }
        case 'joined': {
          const m = parse(msg.member)
          if (m.peerId === table.selfId) return
          const known = table.get(m.peerId)
          // An old announcement must not resurrect a member that left after it was made.
          if (known?.leftAtMs != null && m.startedAtMs <= known.startedAtMs) return
          await learn(m, statusFor(m.peerId, known?.status === 'alive' || deps.isConnected(m.peerId) ? 'alive' : 'suspect'))
          if (!deps.isConnected(m.peerId)) dial(m)
          return
        }
        case 'merge': {
          if (!Array.isArray(msg.members)) return
          for (const raw of msg.members.slice(0, MAX_MEMBERS)) {
            let m: MemberRecord
            try { m = parse(raw) } catch { continue }
            if (m.peerId === table.selfId) continue
            const known = table.get(m.peerId)
            if (known !== undefined && (known.status === 'alive' || deps.isConnected(m.peerId))) continue // never downgrade a member we reach
            if (known?.leftAtMs != null && m.startedAtMs <= known.startedAtMs) continue
            const status = detector ? (known?.status ?? m.status) : deps.isConnected(m.peerId) ? 'alive' : m.status === 'alive' ? 'suspect' : m.status
            await learn(m, status)
            if (status === 'suspect' && !detector) { downSinceMs.set(m.peerId, now()); dial(m) }
            if (detector && status !== 'dead' && !deps.isConnected(m.peerId)) dial(m)
          }
          return
        }
        case 'leave':
        case 'left': {
          if (typeof msg.peerId !== 'string' || msg.peerId === table.selfId) return
          const known = table.get(msg.peerId)
          if (known === undefined) return
          // Only a node announces its own leave; only Genesis re-announces one, and only for the
          // incarnation it saw leave (a restarted node has a later startedAtMs).
          if (msg.type === 'leave' && ctx.sender?.peerId !== msg.peerId) return
          if (msg.type === 'left') {
            if (ctx.sender === undefined || table.get(ctx.sender.peerId)?.isGenesis !== true) return
            if (typeof msg.startedAtMs === 'number' && msg.startedAtMs < known.startedAtMs) return
          }
          const wasKnown = known.leftAtMs === null
          await markDown(msg.peerId, 'dead', true)
          if (wasKnown && deps.store !== undefined) broadcast(ctx.system, { type: 'left', peerId: msg.peerId, startedAtMs: known.startedAtMs }, new Set([msg.peerId]))
          return
        }
        case 'peer-up': if (!detector) await markUp(msg.peerId); return
        case 'peer-down': {
          const m = table.get(msg.peerId)
          // With a detector the lost link is its evidence (the node reports it there); we redial.
          if (detector) { if (m !== undefined && m.status !== 'dead' && m.leftAtMs === null) dial(m); return }
          if (m !== undefined && m.status === 'alive' && m.leftAtMs === null && !deps.isConnected(msg.peerId)) {
            await markDown(msg.peerId, 'suspect')
            dial(m)
          }
          return
        }
        case 'hello': {
          // Sent by each side of every new connection: how a restarted member that had left, or
          // a member that joined through someone else while we were away, becomes known again.
          const m = parse(msg.member)
          if (ctx.sender?.peerId !== m.peerId || m.peerId === table.selfId) return
          const known = table.get(m.peerId)
          if (known?.leftAtMs != null && m.startedAtMs <= known.startedAtMs) return // the incarnation that left
          const isNew = known === undefined || known.leftAtMs !== null
          const stored = await learn(m, isNew ? 'alive' : statusFor(m.peerId, 'alive'))
          if (isNew) {
            log.info('member (re)appeared', { peer: m.peerId })
            broadcast(ctx.system, { type: 'joined', member: stored }, new Set([m.peerId]))
          }
          return
        }
        case 'tick':
          await tick()
          if (++ticks % syncEveryTicks === 0) sync(ctx.system)
          return
        case 'list': return table.all()
        case 'detected':
          // Only this node's detector speaks for it (a remote tell may come without a sender).
          if (detector && ctx.sender?.peerId === table.selfId && ctx.sender.name === DETECTOR_SENDER) await detected(msg)
          return
        default:
          throw new ReplyError('ERR_UNKNOWN_MESSAGE', `membership: unknown message type ${JSON.stringify((msg as { type?: unknown })?.type)}`)
      }
    }
  })
}
