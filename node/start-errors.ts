/**
 * A node that could not start, told in the user's terms: which flag to change, not the insides
 * of libp2p or gRPC. Today: an address in use (EADDRINUSE) names `--listen`, `--api` or `--http`
 * by the port in the error; anything else keeps its message (first line only: no stack).
 */
import type { NodeConfig } from '../config/index.js'

export interface StartFailure {
  /** Exit status: 2 for a conflict the user fixes with a flag, 1 otherwise. */
  code: number
  message: string
}

export function describeStartFailure (err: unknown, config: Pick<NodeConfig, 'listen' | 'api' | 'http'>): StartFailure {
  const e = err as { code?: unknown, message?: unknown }
  const text = typeof e?.message === 'string' ? e.message : String(err)
  // Another node runs on this --data (datadir-lock.ts): the message names the dir and the holder.
  if (e?.code === 'ERR_DATA_DIR_LOCKED') return { code: 2, message: text }
  if (e?.code === 'EADDRINUSE' || /EADDRINUSE/.test(text)) {
    const flag = flagInUse(text, config)
    if (flag === undefined) return { code: 2, message: 'an address is in use: change --listen, --api or --http (another port, or port 0 for any free one)' }
    return { code: 2, message: `${flag.flag} ${flag.value}: address in use; change ${flag.flag} (another port, or port 0 for any free one)` }
  }
  return { code: 1, message: text.split('\n')[0] }
}

function flagInUse (text: string, config: Pick<NodeConfig, 'listen' | 'api' | 'http'>): { flag: string, value: string } | undefined {
  const listenPort = /\/tcp\/(\d+)/.exec(config.listen)?.[1]
  if (text.includes(config.listen) || (listenPort !== undefined && listenPort !== '0' && text.includes(`/tcp/${listenPort}`))) return { flag: '--listen', value: config.listen }
  // Node's listen error: "listen EADDRINUSE: address already in use 127.0.0.1:8080".
  const port = /EADDRINUSE[^\]\n]*?:(\d+)\b/.exec(text)?.[1]
  if (port === undefined) return undefined
  if (Number(port) === config.api.port) return { flag: '--api', value: `${config.api.host}:${config.api.port}` }
  if (Number(port) === config.http.port) return { flag: '--http', value: `${config.http.host}:${config.http.port}` }
  return undefined
}
