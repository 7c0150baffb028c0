/**
 * Errors of the actor runtime. Programs branch on `code`, never on `message`.
 *
 * Two classes on purpose:
 * - `ActorError`: the runtime's own failures (full mailbox, timeout, crash, ...).
 * - `ReplyError`: an *expected* failure an actor throws on purpose to answer an ask with an error
 *   (validation and the like). It is not a crash: the supervisor leaves the actor alone.
 */
import { VoikeError } from '../../config/errors.js'

/** Codes the runtime itself produces. */
export const ActorErrorCodes = {
  MAILBOX_FULL: 'ERR_MAILBOX_FULL',
  NO_SUCH_ACTOR: 'ERR_NO_SUCH_ACTOR',
  ACTOR_EXISTS: 'ERR_ACTOR_EXISTS',
  ACTOR_CRASHED: 'ERR_ACTOR_CRASHED',
  ACTOR_STOPPED: 'ERR_ACTOR_STOPPED',
  ASK_TIMEOUT: 'ERR_ASK_TIMEOUT',
  ABORTED: 'ERR_ABORTED',
  PEER_GONE: 'ERR_PEER_GONE',
  PEER_UNREACHABLE: 'ERR_PEER_UNREACHABLE',
  QUEUE_FULL: 'ERR_QUEUE_FULL',
  TOO_MANY_ASKS: 'ERR_TOO_MANY_ASKS',
  SYSTEM_STOPPED: 'ERR_SYSTEM_STOPPED',
  /** A reply to a remote ask could not be sent (e.g. the value could not be encoded). */
  REPLY_FAILED: 'ERR_REPLY_FAILED',
  INVALID_NAME: 'ERR_INVALID_NAME',
  INVALID_ARGUMENT: 'ERR_INVALID_ARGUMENT',
  INVALID_OPTION: 'ERR_INVALID_OPTION'
} as const

export type ActorErrorCode = typeof ActorErrorCodes[keyof typeof ActorErrorCodes]

/** A failure of the actor runtime; `code` is stable and meant for programs. */
export class ActorError extends VoikeError {
  constructor (code: string, message: string, options?: { field?: string, cause?: unknown }) {
    super(code, message, options)
    this.name = 'ActorError'
  }
}

/** Longest `code` a ReplyError may carry: it crosses the wire in every error reply. */
export const MAX_REPLY_CODE_LENGTH = 64

/**
 * Thrown by an actor's `receive` to reject an ask with `code`/`message` without being treated as
 * a crash. Remote askers get the same code and message (the message truncated to a bounded size).
 */
export class ReplyError extends VoikeError {
  constructor (code: string, message: string, options?: { field?: string, cause?: unknown }) {
    if (typeof code !== 'string' || code.length === 0 || code.length > MAX_REPLY_CODE_LENGTH) {
      throw new TypeError(`ReplyError code must be a string of 1..${MAX_REPLY_CODE_LENGTH} characters`)
    }
    super(code, message, options)
    this.name = 'ReplyError'
  }
}

/** Codes that, when they come back in a remote 'e' reply, are rebuilt as ActorError (not ReplyError). */
const RUNTIME_CODES: ReadonlySet<string> = new Set(Object.values(ActorErrorCodes))

/** Rebuilds the error a remote peer sent in an 'e' reply (code and message kept verbatim). */
export function errorFromRemote (code: string, message: string): ActorError | ReplyError {
  return RUNTIME_CODES.has(code) ? new ActorError(code, message) : new ReplyError(code, message)
}
