/**
 * The standard gRPC health service, `grpc.health.v1.Health` (Check, Watch; List too), as
 * Kubernetes gRPC probes, load balancers, grpcurl and `grpc_health_probe` expect. It answers for
 * the whole server (`""`) and per service (`voike.v1.Mesh`, `voike.v1.Grid`, every service of
 * the shipped protos, see grpc.ts): NOT_SERVING until
 * the node is ready, SERVING once it is, NOT_SERVING again as soon as it starts stopping (so a
 * probe or a balancer drains it before the port closes). Unknown names: Check answers NOT_FOUND,
 * Watch SERVICE_UNKNOWN, per the protocol. No API key needed (like HTTP /health).
 *
 * The service itself is grpc-node's `grpc-health-check`; this module bounds it: at most
 * `maxWatchers` open Watch streams (further ones fail with RESOURCE_EXHAUSTED), and close()
 * ends every open Watch so the server's graceful shutdown does not wait for probe streams.
 */
import { status as Status, type Server, type ServerWritableStream } from '@grpc/grpc-js'
import { HealthImplementation, protoPath as HEALTH_PROTO_PATH, type ServingStatusMap } from 'grpc-health-check'

export { HEALTH_PROTO_PATH }

/** The names health answers for by default: the server as a whole and the core VOIKE services. */
export const HEALTH_SERVICES: readonly string[] = ['', 'voike.v1.Mesh', 'voike.v1.Grid']

export interface HealthOptions {
  /** Names to answer for (`""` is the whole server). Default HEALTH_SERVICES; at most 256. */
  services?: readonly string[]
  /** Most Watch streams open at once. Default 256; 1 … 65 536. */
  maxWatchers?: number
}

export interface Health {
  /** SERVING (true) or NOT_SERVING (false) for every name; open Watch streams get the change. */
  setServing: (serving: boolean) => void
  /** Ends every open Watch stream (after a last NOT_SERVING). */
  close: () => void
}

type WatchHandler = (call: ServerWritableStream<unknown, unknown>) => void

export function addHealth (server: Server, options: HealthOptions = {}): Health {
  const maxWatchers = options.maxWatchers ?? 256
  if (!Number.isInteger(maxWatchers) || maxWatchers < 1 || maxWatchers > 65_536) {
    throw Object.assign(new RangeError(`maxWatchers: an integer 1-65536, got ${String(maxWatchers)}`), { code: 'ERR_INVALID_OPTION' })
  }
  const services = [...new Set(options.services ?? HEALTH_SERVICES)]
  if (services.length > 256 || services.some(s => typeof s !== 'string' || s.length > 256)) {
    throw Object.assign(new RangeError('services: at most 256 names of at most 256 characters'), { code: 'ERR_INVALID_OPTION' })
  }
  const initial: ServingStatusMap = Object.fromEntries(services.map(s => [s, 'NOT_SERVING']))
  const impl = new HealthImplementation(initial)
  const watches = new Set<ServerWritableStream<unknown, unknown>>()
  let closed = false

  /** The package's Watch, behind a bound and a register of open streams. */
  const boundWatch = (watch: WatchHandler): WatchHandler => (call) => {
    if (closed || watches.size >= maxWatchers) {
      call.emit('error', { code: Status.RESOURCE_EXHAUSTED, details: closed ? 'the server is stopping' : `too many health watches (${maxWatchers})` })
      return
    }
    watches.add(call)
    const forget = (): void => { watches.delete(call) }
    call.once('cancelled', forget)
    call.once('close', forget)
    call.once('finish', forget)
    watch(call)
  }
  impl.addToServer({
    addService: (service, implementation) => {
      // The package names its handlers after the proto's methods, lower-cased (`watch`).
      const handlers: Record<string, unknown> = { ...implementation }
      for (const name of ['watch', 'Watch']) {
        if (typeof handlers[name] === 'function') handlers[name] = boundWatch(handlers[name] as WatchHandler)
      }
      server.addService(service as Parameters<Server['addService']>[0], handlers as Parameters<Server['addService']>[1])
    }
  })

  let current = false
  // The package tells watchers on every setStatus; the protocol sends only changes.
  const set = (serving: boolean): void => {
    if (serving === current) return
    current = serving
    for (const s of services) impl.setStatus(s, serving ? 'SERVING' : 'NOT_SERVING')
  }
  return {
    setServing: (serving) => { if (!closed) set(serving) },
    close: () => {
      if (closed) return
      set(false)
      closed = true
      for (const call of [...watches]) call.end()
      watches.clear()
    }
  }
}
