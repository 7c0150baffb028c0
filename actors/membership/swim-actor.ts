/**
 * The `swim` service actor: runs the SWIM core (swim/protocol.ts) on a real node. Probes, acks,
 * heartbeats, ping-reqs, gossip and syncs travel as actor messages between the `swim` actors of
 * the nodes (msgpack over the existing actor streams); the sender passed to `handle` is the peer
 * id the transport authenticated (Noise), never a field of the message.
 *
 * The core's verdicts (alive, suspect, dead, left) go to `onEvent`; the node turns them into the
 * member table's status (detector-bridge.ts). The member record (cores, addrs, name…) rides in
 * the SWIM meta, so a member learned by gossip alone has everything the table needs.
 */
import type { Actor, ActorSystem, MessageContext } from '../runtime/index.js'
import type { ServiceActor } from '../runtime/service.js'
import type { Logger } from '../../config/logger.js'
import { silentLogger } from '../../config/logger.js'
import { createSwim, type Swim, type SwimEvent, type SwimOptions } from './swim/protocol.js'

export const SWIM_ACTOR = 'swim'

export interface SwimActorDeps {
  system: ActorSystem
  self: { id: string, addr: string, meta: Record<string, unknown>, incarnation: number }
  options: Partial<SwimOptions>
  isValidId: (id: string) => boolean
  onEvent: (ev: SwimEvent) => void
  logger?: Logger
}

export interface SwimService {
  readonly swim: Swim
  readonly service: ServiceActor
}

/** Builds the SWIM core and the actor that feeds it; `swim.start()` is the caller's (after spawn). */
export function createSwimService (deps: SwimActorDeps): SwimService {
  const log = deps.logger ?? silentLogger
  const { system } = deps
  const swim = createSwim({
    self: deps.self,
    clock: {
      now: Date.now,
      // Unref'd: the detector alone must not keep a stopping process alive.
      setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
      clearTimeout: (h) => { clearTimeout(h as NodeJS.Timeout) }
    },
    random: Math.random,
    options: deps.options,
    isValidId: deps.isValidId,
    // The actor system queues (and dials, through the mesh) per peer; a refused send is a lost
    // packet to SWIM, which its probes and retransmissions already tolerate.
    send: (to, msg) => {
      if (to.id === '') return // every seed is dialled and known by id before the join
      system.tell(system.ref(to.id, SWIM_ACTOR), msg, SWIM_ACTOR)
    },
    onEvent: deps.onEvent,
    onError: (err) => { log.error('failure detector internal error', { err }) }
  })
  const factory = (): Actor => ({
    receive (msg: unknown, ctx: MessageContext): undefined {
      const from = ctx.sender?.peerId
      // Local messages have no authenticated sender: only peers speak SWIM to us.
      if (from === undefined || from === system.peerId) return undefined
      swim.handle(from, msg)
      return undefined
    }
  })
  return {
    swim,
    service: {
      name: SWIM_ACTOR,
      // Heartbeats from many peers at once: a mailbox a burst cannot fill in one period.
      spawnOptions: { mailboxCapacity: 8192 },
      factory,
      critical: true,
      // The protocol state lives in `swim`, outside the actor instance.
      stateSurvivesRestart: true,
      close: async () => { swim.stop() }
    }
  }
}
