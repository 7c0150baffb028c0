/**
 * What every client command of the CLI shares: argument parsing, the usage error, the client
 * from `--api` / `--api-key`, and how failures become messages and exit statuses.
 * Exit status: 0 ok; 1 a job failed or was cancelled, a runtime failure, an unreachable node or a
 * missing or wrong API key; 2 bad input (bad flags, bad parameters, unknown job).
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

export interface ParsedArgs { values: Record<string, string | boolean | string[] | undefined>, positionals: string[] }

/** A word starting with a minus and a digit (`-1`, `-2.5`, `-5:10`): a flag's value, never a flag. */
const NEGATIVE_NUMBER_RE = /^-\d/

/**
 * `--n -1` as `--n=-1`: node's parseArgs takes any argument starting with `-` for a flag and
 * calls `--n -1` ambiguous, so the user never hears what is wrong with -1 itself.
 */
export function joinNegativeValues (args: readonly string[], options: ParseArgsConfig['options']): string[] {
  const out: string[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    const name = a.startsWith('--') && !a.includes('=') ? a.slice(2) : undefined
    if (name !== undefined && options?.[name]?.type === 'string' && i + 1 < args.length && NEGATIVE_NUMBER_RE.test(args[i + 1])) {
      out.push(`${a}=${args[++i]}`)
    } else out.push(a)
  }
  return out
}

export function parse (args: string[], options: ParseArgsConfig['options']): ParsedArgs {
  try {
    return parseArgs({ args: joinNegativeValues(args, options), options, allowPositionals: true, strict: true }) as ParsedArgs
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

export const clientOptions = { api: { type: 'string' as const }, 'api-key': { type: 'string' as const }, json: { type: 'boolean' as const } }

export function clientFrom (values: Record<string, unknown>): VoikeClient {
  const api = (values.api as string | undefined) ?? process.env.VOIKE_API ?? '127.0.0.1:50051'
  try { parseHostPort(api, '--api') } catch (err) { throw new UsageError((err as Error).message) }
  const key = (values['api-key'] as string | undefined) ?? process.env.VOIKE_API_KEY
  return createClient({ address: api, apiKey: key === '' ? undefined : key })
}

export function intFlag (values: Record<string, unknown>, name: string): number {
  const v = values[name]
  if (v === undefined) throw new UsageError(`--${name} is required`)
  if (typeof v !== 'string' || !/^-?\d+$/.test(v)) throw new UsageError(`--${name} must be an integer, got ${JSON.stringify(v)}`)
  return Number(v)
}

const CONNECTION_FAILURE_RE = /^(No connection established|Connection dropped|Failed to connect|failed to connect|Name resolution failed|Call cancelled)/

/** grpc-js's text for a failed connection, without its boilerplate ("Resolution note:", dates, "Error: "). */
export function connectionReason (details: string): string {
  const last = /Last error: (?:Error: )?(.*?)(?: \(\d{4}-\d\d-\d\dT[^)]*\))?\.?(?: Resolution note:.*)?$/s.exec(details)?.[1]
  const text = (last ?? details).replace(/\.?\s*Resolution note:.*$/s, '').trim()
  return text === '' ? 'no answer' : text
}

/** Whether `address` answers HTTP like a node's HTTP port (GET /health), within 2 s. */
async function isHttpPort (address: string): Promise<boolean> {
  try {
    const res = await fetch(`http://${address}/health`, { signal: AbortSignal.timeout(2000) })
    const body = await res.json() as { status?: unknown, peerId?: unknown }
    return typeof body.peerId === 'string'
  } catch { return false }
}

/**
 * A client call failed: says what happened and exits. INVALID_ARGUMENT (3) and NOT_FOUND (5)
 * are the caller's input (2); UNAUTHENTICATED (16) and an unreachable node are not (1). An
 * address that answers HTTP is the node's HTTP port given as `--api`: said so.
 */
export async function failWith (err: unknown, client: { address: string }): Promise<never> {
  const e = err as { code?: number, details?: string, message: string }
  const details = e.details ?? e.message
  if (e.code === 3 || e.code === 5) exitWith(2, `voike: ${details}`)
  if (e.code === 16) exitWith(1, `voike: ${details.startsWith('unauthenticated') ? details : `unauthenticated: ${details}`}; pass --api-key KEY or set VOIKE_API_KEY`)
  if (e.code === 14 && CONNECTION_FAILURE_RE.test(details)) {
    if (await isHttpPort(client.address)) {
      exitWith(1, `voike: ${client.address} is a node's HTTP port (it answered GET /health); --api takes the node's gRPC address, the "api" of its ready line (default 127.0.0.1:50051)`)
    }
    exitWith(1, `voike: cannot reach the node's gRPC API at ${client.address} (--api): ${connectionReason(details)}`)
  }
  exitWith(1, `voike: ${details.replace(/\.?\s*Resolution note:\s*$/, '')}`)
}

/**
 * The reader of stdout or stderr went away (`voike job list | head -1`): writes fail with EPIPE.
 * A client command ends quietly then (its output has nowhere to go; exit status as set so far,
 * else 0); a long-running process (`exit: false`: a node, `voike up`) keeps running and drops the
 * output rather than dying of an unhandled error.
 */
export function quietOnBrokenPipe (opts: { exit: boolean }): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err
      if (opts.exit) process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0)
    })
  }
}
