import { VoikeError } from '../../config/errors.js'

/** Errors of the trust service (bad options). */
export class TrustError extends VoikeError {
  constructor (code: string, message: string, options?: { field?: string, cause?: unknown }) {
    super(code, message, options)
    this.name = 'TrustError'
  }
}
