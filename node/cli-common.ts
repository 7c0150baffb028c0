/**
 * What every client command of the CLI shares: argument parsing, the usage error, the client
 * from `--api` / `--api-key`, and how gRPC errors become exit statuses.
 * Exit status: 0 ok; 1 a job failed or was cancelled, or a runtime failure; 2 bad input.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { parseHostPort } from '../config/index.js'
import { createClient, type VoikeClient } from './client.js'

/** Bad command-line input: exit 2 with the message. */
export class UsageError extends Error {}

export function exitWith (code: number, message?: string): never {
  if (message !== undefined) process.stderr.write(message.endsWith('\n') ? message : message + '\n')
  process.exit(code)
}

export type ParsedArgs = { values: Record<string, string | boolean | string[] | undefined>, positionals: string[] }

export function parse (args: string[], options: ParseArgsConfig['options']): ParsedArgs {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true }) as ParsedArgs
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

export const clientOptions = { api: { type: 'string' as const }, 'api-key': { type: 'string' as const }, json: { type: 'boolean' as const } }

export function clientFrom (values: Record<string, unknown>): VoikeClient {
  const api = (values.api as string | undefined) ?? process.env.VOIKE_API ?? '127.0.0.1:50051'
  try { parseHostPort(api, '--api') } catch (err) { throw new UsageError((err as Error).message) }
  return createClient({ address: api, apiKey: (values['api-key'] as string | undefined) ?? process.env.VOIKE_API_KEY })
}

/** gRPC errors: INVALID_ARGUMENT (3) and NOT_FOUND (5) are the caller's input → exit 2. */
export function grpcExit (err: unknown): never {
  const e = err as { code?: number, details?: string, message: string }
  const message = e.details ?? e.message
  if (e.code === 3 || e.code === 5 || e.code === 16) exitWith(2, `voike: ${message}`)
  if (e.code === 14) exitWith(1, `voike: cannot reach the node's API: ${message}`)
  exitWith(1, `voike: ${message}`)
}

export function intFlag (values: Record<string, unknown>, name: string): number {
  const v = values[name]
  if (v === undefined) throw new UsageError(`--${name} is required`)
  if (typeof v !== 'string' || !/^-?\d+$/.test(v)) throw new UsageError(`--${name} must be an integer, got ${JSON.stringify(v)}`)
  return Number(v)
}
