/**
 * HTTP routes of PerfWatch and trust, mounted by node/http.ts (behind the API key):
 * - GET /hypermesh/status: this node and every member: latest summary, load score, RTT, advisories;
 * - GET /hypermesh/routes: alive peers ranked by measured RTT and load (cost = rtt × (1 + 2·load));
 * - GET /hypermesh/events[?limit=N]: advisory events, oldest first;
 * - GET /trust/status: per peer `peerId`, `trust`, `trusted`, each signal and its evidence;
 * - GET /trust/events[?limit=N]: trust events (distrusted / recovered), oldest first.
 */
import type { PerfWatch } from '../actors/perfwatch/perfwatch.js'
import type { Trust } from '../actors/trust/trust.js'

export interface HypermeshApi { perfwatch: PerfWatch, trust: Trust }

export type ExtraGet = (path: string, url: URL) => { status: number, body: unknown } | undefined

const MAX_LIMIT = 100_000

function limitOf (url: URL): { limit?: number, error?: { status: number, body: unknown } } {
  const text = url.searchParams.get('limit')
  if (text === null) return {}
  const n = Number(text)
  if (!/^\d{1,6}$/.test(text) || n < 1 || n > MAX_LIMIT) {
    return { error: { status: 400, body: { error: { code: 'ERR_INVALID_ARGUMENT', message: `limit must be an integer 1-${MAX_LIMIT}`, field: 'limit' } } } }
  }
  return { limit: n }
}

export function hypermeshRoutes (api: HypermeshApi): ExtraGet {
  return (path, url) => {
    switch (path) {
      case '/hypermesh/status': return { status: 200, body: api.perfwatch.status() }
      case '/hypermesh/routes': return { status: 200, body: api.perfwatch.routes() }
      case '/trust/status': return { status: 200, body: api.trust.status() }
      case '/hypermesh/events':
      case '/trust/events': {
        const { limit, error } = limitOf(url)
        if (error !== undefined) return error
        return { status: 200, body: path === '/trust/events' ? api.trust.events(limit) : api.perfwatch.events(limit) }
      }
      default: return undefined
    }
  }
}
