/**
 * A small structured logger: one JSON line per record on stderr. stdout is reserved for the
 * node's ready line and for CLI output, so scripts can parse it.
 *
 * Components receive a Logger (never a global); `child` adds fixed fields such as the component.
 */
import { errorFields } from './errors.js'

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'

export interface Logger {
  debug: (msg: string, fields?: Record<string, unknown>) => void
  info: (msg: string, fields?: Record<string, unknown>) => void
  warn: (msg: string, fields?: Record<string, unknown>) => void
  error: (msg: string, fields?: Record<string, unknown>) => void
  child: (fields: Record<string, unknown>) => Logger
}

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 }

export interface LoggerOptions {
  /** Records below this level are dropped. Default `info`. */
  level?: LogLevel
  /** Fields added to every record (for example `{ node: 'genesis' }`). */
  base?: Record<string, unknown>
  /** Where lines go. Default: process.stderr. */
  write?: (line: string) => void
}

export function createLogger (options: LoggerOptions = {}): Logger {
  const min = LEVELS[options.level ?? 'info']
  const base = options.base ?? {}
  const write = options.write ?? ((line: string) => { process.stderr.write(line) })
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (LEVELS[level] < min) return
    const record: Record<string, unknown> = { t: new Date().toISOString(), level, ...base, msg }
    if (fields !== undefined) {
      // Errors keep their code, field and causes (errorFields): the cause is often the real story.
      for (const [k, v] of Object.entries(fields)) record[k] = v instanceof Error ? errorFields(v) : v
    }
    write(JSON.stringify(record, (_k, v) => typeof v === 'bigint' ? v.toString() : v) + '\n')
  }
  return {
    debug: (m, f) => { emit('debug', m, f) },
    info: (m, f) => { emit('info', m, f) },
    warn: (m, f) => { emit('warn', m, f) },
    error: (m, f) => { emit('error', m, f) },
    child: (fields) => createLogger({ ...options, base: { ...base, ...fields } })
  }
}

/** A logger that drops everything: the default for library users and unit tests. */
export const silentLogger: Logger = createLogger({ level: 'silent' })
