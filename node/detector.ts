/**
 * The failure detector on a node: the SWIM core as the `swim` actor (actors/membership/swim-actor.ts),
 * its verdicts forwarded to the membership actor (the table's one writer), joins through any
 * member, and a restarted Genesis (no seeds) rejoining through the members it had persisted.
 */
import type { NodeConfig } from '../config/index.js'
import type { Logger } from '../config/logger.js'
import type { ActorSystem } from '../actors/runtime/index.js'
import type { MemberRecord, MemberTable } from '../actors/membership/table.js'
import { DETECTOR_SENDER, MEMBERSHIP_ACTOR } from '../actors/membership/membership-actor.js'
import { createSwimService, type SwimService } from '../actors/membership/swim-actor.js'
import { eventToMessage, recordToMeta, swimOptionsFrom, type DetectedMessage } from '../actors/membership/detector-bridge.js'

/** Addresses of this node carried in its SWIM meta (the meta has a byte bound). */
const MAX_META_ADDRS = 4

export interface NodeDetector {
  detector: SwimService
  /** Starts the protocol (after the actors are spawned). */
  start: () => void
  /** Exchanges full state with a member we just joined through. */
  join: (seedId: string) => Promise<void>
  /** Genesis restarted: rejoin through the members it persisted; those that do not answer are dead. */
  rejoinKnown: (connect: (peerId: string, addrs: string[]) => Promise<void>) => void
}

export function startDetector (o: { config: NodeConfig, system: ActorSystem, self: MemberRecord, table: MemberTable, isValidId: (id: string) => boolean, logger: Logger }): NodeDetector {
  const { system, self, table, logger: log } = o
  const tell = (msg: DetectedMessage): void => {
    try { system.tell(system.ref(self.peerId, MEMBERSHIP_ACTOR), msg, DETECTOR_SENDER) } catch (err) { log.warn('membership refused a verdict', { peer: msg.peerId, err }) }
  }
  const detector = createSwimService({
    system,
    // A restart starts at a later incarnation than anything said about the previous run.
    self: { id: self.peerId, addr: self.addrs[0] ?? '', meta: recordToMeta({ ...self, addrs: self.addrs.slice(0, MAX_META_ADDRS) }), incarnation: Date.now() },
    options: swimOptionsFrom(o.config.detector),
    isValidId: o.isValidId,
    onEvent: (ev) => {
      log.info(`detector: ${ev.type}`, { peer: ev.id, state: ev.state, incarnation: ev.incarnation, ...(ev.from !== undefined ? { from: ev.from } : {}) })
      tell(eventToMessage(ev, o.isValidId))
    },
    logger: log
  })
  const { swim } = detector
  return {
    detector,
    start: () => { swim.start() },
    join: async (seedId) => {
      const n = await swim.join([{ id: seedId, addr: '' }])
      log.info('detector joined', { seed: seedId, members: n })
    },
    rejoinKnown: (connect) => {
      const known = table.all().filter(m => m.peerId !== self.peerId && m.leftAtMs === null && m.status !== 'dead')
      if (known.length === 0) return
      void (async () => {
        const reached: string[] = []
        await Promise.all(known.map(async m => {
          try { await connect(m.peerId, m.addrs); reached.push(m.peerId) } catch { /* gone, or not yet back */ }
        }))
        if (reached.length > 0) {
          try {
            await swim.join(reached.map(id => ({ id, addr: '' })))
            log.info('rejoined the members known from the registry', { reached: reached.length, known: known.length })
          } catch (err) { log.warn('rejoin through the known members failed', { err }) }
        }
        // Whoever the detector still does not know did not answer: dead until it comes back.
        for (const m of known) {
          if (swim.member(m.peerId) === undefined) tell({ type: 'detected', peerId: m.peerId, state: 'dead' })
        }
      })().catch((err: unknown) => { log.warn('rejoin failed', { err }) })
    }
  }
}
