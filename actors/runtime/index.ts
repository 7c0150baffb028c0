/**
 * VOIKE actor runtime: mailboxes, asks and supervision. No networking here: remote delivery goes
 * through an injected Transport, and the node feeds incoming envelopes to `receiveRemote`.
 */
export { createActorSystem, MAX_ASK_TIMEOUT_MS } from './system.js'
export type {
  Actor, ActorSystem, ActorSystemOptions, AskOptions, MessageContext, SpawnOptions
} from './types.js'
export {
  envelopeProblem, isValidActorName, isValidPeerId,
  MAX_ACTOR_NAME_LENGTH, MAX_ASK_ID, MAX_ERROR_MESSAGE_LENGTH, MAX_PEER_ID_LENGTH
} from './envelope.js'
export type { ActorRef, Envelope, Transport } from './envelope.js'
export { ActorError, ActorErrorCodes, ReplyError, MAX_REPLY_CODE_LENGTH } from './errors.js'
export type { ActorErrorCode } from './errors.js'
export { Mailbox, MAX_MAILBOX_CAPACITY } from './mailbox.js'
export { DEFAULT_SUPERVISION, resolveSupervision, RestartTracker } from './supervisor.js'
export type { SupervisionOptions, SupervisionPolicy, CrashDecision } from './supervisor.js'
export { OTHER_ACTOR_LABEL } from './metrics.js'
export { createLoopbackTransports } from './loopback.js'
export type { LoopbackNetwork, LoopbackOptions, LoopbackStats } from './loopback.js'
export { spawnServices } from './service.js'
export type { ServiceActor } from './service.js'
