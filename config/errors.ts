/** A configuration problem. `source` names the flag or environment variable at fault. */
export class ConfigError extends Error {
  readonly code = 'ERR_INVALID_CONFIG'
  readonly source: string
  constructor (source: string, message: string) {
    super(`${source}: ${message}`)
    this.name = 'ConfigError'
    this.source = source
  }
}
