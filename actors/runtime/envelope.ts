/**
 * What crosses the wire between actor systems, and the seam (`Transport`) through which it
 * crosses. The node encodes envelopes with msgpack, so keys are one or two letters.
 *
 * `actors/` never talks to libp2p: the node injects a Transport and calls
 * `ActorSystem.receiveRemote` for every envelope that arrives.
 */

import { MAX_REPLY_CODE_LENGTH } from './errors.js'

export type Envelope =
  /** tell; `f` = sender actor name on the sending peer */
  | { k: 't', to: string, b: unknown, f?: string }
  /** ask; `id` unique per sending system among its pending asks */
  | { k: 'a', to: string, id: number, b: unknown, f?: string }
  /** ask reply ok */
  | { k: 'o', id: number, b: unknown }
  /** ask reply error */
  | { k: 'e', id: number, e: { code: string, message: string } }

export interface Transport {
  /**
   * Send to a remote peer. May throw synchronously (e.g. code ERR_PEER_UNREACHABLE /
   * ERR_QUEUE_FULL). Delivery is best-effort, in order per peer.
   */
  send (peerId: string, env: Envelope): void
}

/** Location-transparent address of an actor. */
export interface ActorRef {
  readonly peerId: string
  readonly name: string
}

/** Longest actor name: names are metric labels and cross the wire in every envelope. */
export const MAX_ACTOR_NAME_LENGTH = 128
/** Longest peer id accepted (libp2p peer ids are ~52 characters). */
export const MAX_PEER_ID_LENGTH = 256
/** Longest error message sent in an 'e' reply; longer ones are truncated. */
export const MAX_ERROR_MESSAGE_LENGTH = 1024
/** Largest ask id accepted on the wire (ids wrap well below it). */
export const MAX_ASK_ID = 0xffff_ffff

/**
 * Actor names: 1..128 characters, letters, digits and `_ . : @ / -`, not starting with a
 * punctuation other than `_`. Kept plain so they are safe as metric labels and log fields.
 */
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.:@/-]{0,127}$/

export function isValidActorName (name: unknown): name is string {
  return typeof name === 'string' && NAME_RE.test(name)
}

export function isValidPeerId (peerId: unknown): peerId is string {
  return typeof peerId === 'string' && peerId.length > 0 && peerId.length <= MAX_PEER_ID_LENGTH
}

function isAskId (id: unknown): id is number {
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 && id <= MAX_ASK_ID
}

/** `f` is optional; msgpack may turn an absent value into null or undefined. */
function isOptionalName (f: unknown): boolean {
  return f === undefined || f === null || isValidActorName(f)
}

/**
 * Checks an envelope that came from the network. Returns the reason it is malformed, or
 * undefined when it is well-formed. Never throws, whatever `env` is.
 */
export function envelopeProblem (env: unknown): string | undefined {
  if (typeof env !== 'object' || env === null || Array.isArray(env)) return 'not an object'
  const e = env as Record<string, unknown>
  switch (e.k) {
    case 't':
      if (!isValidActorName(e.to)) return 'bad "to"'
      if (!isOptionalName(e.f)) return 'bad "f"'
      return undefined
    case 'a':
      if (!isValidActorName(e.to)) return 'bad "to"'
      if (!isAskId(e.id)) return 'bad "id"'
      if (!isOptionalName(e.f)) return 'bad "f"'
      return undefined
    case 'o':
      return isAskId(e.id) ? undefined : 'bad "id"'
    case 'e': {
      if (!isAskId(e.id)) return 'bad "id"'
      const err = e.e as Record<string, unknown> | null | undefined
      if (typeof err !== 'object' || err === null) return 'bad "e"'
      if (typeof err.code !== 'string' || err.code.length === 0 || err.code.length > MAX_REPLY_CODE_LENGTH) return 'bad "e.code"'
      if (typeof err.message !== 'string') return 'bad "e.message"'
      return undefined
    }
    default:
      return 'bad "k"'
  }
}

export function truncateMessage (message: string): string {
  return message.length <= MAX_ERROR_MESSAGE_LENGTH ? message : message.slice(0, MAX_ERROR_MESSAGE_LENGTH - 1) + '…'
}
