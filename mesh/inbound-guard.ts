/**
 * Admission of inbound connections that are not upgraded yet (TCP accepted, Noise and Yamux not
 * negotiated): who may hold one of the listener's handshake slots.
 *
 * Why: libp2p's connection manager has one global pool of pending inbound connections
 * (`maxIncomingPendingConnections`). One client holding that many raw sockets open, sending
 * nothing, kept every new member out until libp2p's upgrade timeout freed them, and a client
 * reopening them kept members out for good. libp2p has no per-address bound on that pool and no
 * reserve for known peers, so this module adds both through libp2p's own hook, the connection
 * gater (`denyInboundConnection` runs right after the connection manager accepted the socket,
 * `denyInboundUpgradedConnection` right after the upgrade completed):
 *
 *  - one remote address (an IPv4 address, or an IPv6 /64, the block one subscriber gets) may hold
 *    at most `maxPendingInboundPerAddr` pending slots; addresses of cluster members (`setKnownAddrs`) at
 *    most `maxPendingInboundPerKnownAddr`;
 *  - `reservedPendingInbound` slots of the pool are only for members' addresses, so many hostile
 *    addresses together still cannot keep the cluster's own peers out.
 *
 * Closing idle handshakes is libp2p's `inboundUpgradeTimeout` (set by the mesh); this module only
 * tells a timeout from another failure, for the metric.
 *
 * Limits of the approach: a member is recognized by IP, so a hostile client on a member's host
 * shares that host's allowance; an address that joins for the first time has no reserve.
 */
import assert from 'node:assert/strict'
import { isIPv4, isIPv6 } from 'node:net'
import { performance } from 'node:perf_hooks'
import type { ConnectionGater, MultiaddrConnection } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { Counter, Gauge, type Registry } from 'prom-client'
import { silentLogger, type Logger } from '../config/logger.js'
import { MeshError } from './errors.js'

/** Why an inbound connection was refused or closed before it was upgraded (the metric's label). */
export type InboundRejectReason =
  /** Its remote address already held its share of pending slots. */
  | 'addr_limit'
  /** Every pending slot open to its address was taken. */
  | 'pool_full'
  /** The handshake did not complete within the upgrade timeout. */
  | 'handshake_timeout'
  /** The handshake failed sooner: wrong protocol, bad bytes, or the remote went away. */
  | 'handshake_failed'

export const INBOUND_REJECT_REASONS: readonly InboundRejectReason[] = ['addr_limit', 'pool_full', 'handshake_timeout', 'handshake_failed']

/** Most distinct member addresses `setKnownAddrs` takes; a cluster this large needs another design. */
export const MAX_KNOWN_ADDRS = 16_384

/** Key for a remote whose address is not IP (never expected over TCP): all such share one allowance. */
const NON_IP_KEY = 'non-ip'

/**
 * A close this close to the upgrade timeout is the timeout: libp2p starts its timer a moment
 * before the gater sees the connection, so the measured age can fall short by microseconds.
 */
const TIMEOUT_SLACK_MS = 50

export interface PendingLimits {
  /** Pending inbound connections held at once, all addresses together. */
  maxPendingInbound: number
  /** Of `maxPendingInbound`, slots only members' addresses may take. Less than `maxPendingInbound`. */
  reservedPendingInbound: number
  /** Pending connections one address that is not a member's may hold. */
  maxPendingInboundPerAddr: number
  /** Pending connections one member address may hold (several members may share a host). */
  maxPendingInboundPerKnownAddr: number
}

/**
 * The bookkeeping, pure (no sockets, no clock): counts per address key and in all, and decides.
 * `admit` counts the connection when it returns undefined; `release` must follow exactly once.
 */
export class PendingInboundPolicy {
  private readonly perKey = new Map<string, number>()
  private total = 0
  private unknownTotal = 0

  constructor (readonly limits: PendingLimits) {
    validateLimits(limits)
  }

  get pending (): number { return this.total }
  get pendingUnknown (): number { return this.unknownTotal }
  pendingFrom (key: string): number { return this.perKey.get(key) ?? 0 }

  admit (key: string, known: boolean): InboundRejectReason | undefined {
    const l = this.limits
    const fromKey = this.pendingFrom(key)
    if (fromKey >= (known ? l.maxPendingInboundPerKnownAddr : l.maxPendingInboundPerAddr)) return 'addr_limit'
    if (this.total >= l.maxPendingInbound) return 'pool_full'
    if (!known && this.unknownTotal >= l.maxPendingInbound - l.reservedPendingInbound) return 'pool_full'
    this.perKey.set(key, fromKey + 1)
    this.total++
    if (!known) this.unknownTotal++
    return undefined
  }

  /** `known` must be what it was at `admit`, even if the member list changed since. */
  release (key: string, known: boolean): void {
    const fromKey = this.pendingFrom(key)
    assert.ok(fromKey > 0 && this.total > 0, `release without admit for ${key}`)
    if (fromKey === 1) this.perKey.delete(key)
    else this.perKey.set(key, fromKey - 1)
    this.total--
    if (!known) {
      assert.ok(this.unknownTotal > 0, 'unknown pending count underflow')
      this.unknownTotal--
    }
  }
}

function validateLimits (l: PendingLimits): void {
  for (const [name, value] of Object.entries(l)) {
    if (!Number.isInteger(value) || value < 0) throw new MeshError('ERR_INVALID_OPTION', `${name} must be a non-negative integer, got ${value}`)
  }
  if (l.maxPendingInbound < 1) throw new MeshError('ERR_INVALID_OPTION', `maxPendingInbound must be at least 1, got ${l.maxPendingInbound}`)
  if (l.reservedPendingInbound >= l.maxPendingInbound) throw new MeshError('ERR_INVALID_OPTION', `reservedPendingInbound (${l.reservedPendingInbound}) must be less than maxPendingInbound (${l.maxPendingInbound})`)
  if (l.maxPendingInboundPerAddr < 1 || l.maxPendingInboundPerAddr > l.maxPendingInbound - l.reservedPendingInbound) {
    throw new MeshError('ERR_INVALID_OPTION', `maxPendingInboundPerAddr (${l.maxPendingInboundPerAddr}) must be between 1 and maxPendingInbound - reservedPendingInbound (${l.maxPendingInbound - l.reservedPendingInbound})`)
  }
  if (l.maxPendingInboundPerKnownAddr < 1 || l.maxPendingInboundPerKnownAddr > l.maxPendingInbound) {
    throw new MeshError('ERR_INVALID_OPTION', `maxPendingInboundPerKnownAddr (${l.maxPendingInboundPerKnownAddr}) must be between 1 and maxPendingInbound (${l.maxPendingInbound})`)
  }
}

/**
 * The allowance key of an IP address: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its /64.
 * Returns undefined for a string that is not an IP address.
 */
export function addressKey (ip: string): string | undefined {
  const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip
  if (isIPv4(bare)) return bare
  if (!isIPv6(bare)) return undefined
  const groups = expandIPv6(bare.split('%')[0])
  // ::ffff:a.b.c.d is an IPv4 peer seen through a dual-stack socket.
  if (groups.slice(0, 5).every(g => g === 0) && groups[5] === 0xffff) {
    return `${groups[6] >> 8}.${groups[6] & 0xff}.${groups[7] >> 8}.${groups[7] & 0xff}`
  }
  return `${groups.slice(0, 4).map(g => g.toString(16)).join(':')}::/64`
}

/** Eight 16-bit groups of a valid IPv6 address (validated by the caller with isIPv6). */
function expandIPv6 (ip: string): number[] {
  let text = ip
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text)
  if (v4 !== null) {
    const [a, b, c, d] = v4.slice(1).map(Number)
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined]
  const parse = (s: string): number[] => s === '' ? [] : s.split(':').map(h => parseInt(h, 16))
  const left = parse(head)
  const right = tail === undefined ? [] : parse(tail)
  const groups = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right]
  assert.equal(groups.length, 8, `not an IPv6 address: ${ip}`)
  return groups
}

/** The allowance key of a multiaddr's IP component, or undefined when it has none (dns, unix). */
export function multiaddrKey (ma: Multiaddr): string | undefined {
  const ip = ma.getComponents().find(c => c.name === 'ip4' || c.name === 'ip6')?.value
  return ip === undefined ? undefined : addressKey(ip)
}

export interface InboundGuardOptions extends PendingLimits {
  /** libp2p's `inboundUpgradeTimeout`, to tell a timed-out handshake from a failed one. */
  inboundUpgradeTimeoutMs: number
  /** Members' multiaddrs known from the start (see `setKnownAddrs`). */
  knownAddrs?: readonly string[]
  /** `voike_p2p_inbound_rejected_total{reason}` and `voike_p2p_inbound_pending` are registered here. */
  registry: Registry
  logger?: Logger
}

export interface InboundGuard {
  /** Give to libp2p as `connectionGater`. */
  readonly gater: ConnectionGater
  /**
   * Replaces the set of members' addresses (multiaddrs, e.g. every member's listen addrs).
   * Entries without an IP (dns, unix) or that do not parse are skipped and logged; returns how
   * many distinct address keys are known now. Throws ERR_INVALID_OPTION beyond MAX_KNOWN_ADDRS.
   */
  setKnownAddrs: (addrs: readonly string[]) => number
  /** Inbound connections waiting for their upgrade now. */
  pending: () => number
}

interface PendingEntry { key: string, known: boolean, startedMs: number }

export function createInboundGuard (options: InboundGuardOptions): InboundGuard {
  const log = options.logger ?? silentLogger
  const policy = new PendingInboundPolicy({
    maxPendingInbound: options.maxPendingInbound,
    reservedPendingInbound: options.reservedPendingInbound,
    maxPendingInboundPerAddr: options.maxPendingInboundPerAddr,
    maxPendingInboundPerKnownAddr: options.maxPendingInboundPerKnownAddr
  })
  if (!Number.isInteger(options.inboundUpgradeTimeoutMs) || options.inboundUpgradeTimeoutMs <= 0) {
    throw new MeshError('ERR_INVALID_OPTION', `inboundUpgradeTimeoutMs must be a positive integer, got ${options.inboundUpgradeTimeoutMs}`)
  }
  const pendingConns = new Map<MultiaddrConnection, PendingEntry>()
  let knownKeys = new Set<string>()

  const rejected = new Counter({
    name: 'voike_p2p_inbound_rejected_total',
    help: 'Inbound p2p connections refused or closed before their handshake completed, by reason',
    labelNames: ['reason'],
    registers: [options.registry]
  })
  for (const reason of INBOUND_REJECT_REASONS) rejected.labels(reason).inc(0)
  new Gauge({ // eslint-disable-line no-new
    name: 'voike_p2p_inbound_pending',
    help: 'Inbound p2p connections accepted and still in their handshake',
    registers: [options.registry],
    collect () { this.set(policy.pending) }
  })

  const settle = (maConn: MultiaddrConnection, upgraded: boolean): void => {
    const entry = pendingConns.get(maConn)
    if (entry === undefined) return
    pendingConns.delete(maConn)
    policy.release(entry.key, entry.known)
    assert.equal(policy.pending, pendingConns.size)
    if (upgraded) return
    const ageMs = performance.now() - entry.startedMs
    const reason: InboundRejectReason = ageMs >= options.inboundUpgradeTimeoutMs - TIMEOUT_SLACK_MS ? 'handshake_timeout' : 'handshake_failed'
    rejected.labels(reason).inc()
    log.debug('inbound handshake ended without a connection', { remote: maConn.remoteAddr.toString(), reason, ageMs: Math.round(ageMs) })
  }

  const gater: ConnectionGater = {
    denyInboundConnection (maConn) {
      // A socket already gone has nothing to hold; without this its close would never be seen.
      if (maConn.status !== 'open') return true
      const key = multiaddrKey(maConn.remoteAddr) ?? NON_IP_KEY
      const known = knownKeys.has(key)
      const reason = policy.admit(key, known)
      if (reason !== undefined) {
        rejected.labels(reason).inc()
        log.debug('inbound connection refused', { remote: maConn.remoteAddr.toString(), reason, pending: policy.pending, fromAddr: policy.pendingFrom(key) })
        return true
      }
      pendingConns.set(maConn, { key, known, startedMs: performance.now() })
      // Every way a handshake ends without a connection (timeout, failure, shutdown) closes it.
      maConn.addEventListener('close', () => { settle(maConn, false) }, { once: true })
      return false
    },
    denyInboundUpgradedConnection (_peerId, maConn) {
      settle(maConn, true)
      return false
    }
  }

  const setKnownAddrs = (addrs: readonly string[]): number => {
    if (!Array.isArray(addrs)) throw new MeshError('ERR_INVALID_OPTION', 'knownAddrs must be an array of multiaddr strings')
    const keys = new Set<string>()
    const skipped: string[] = []
    for (const addr of addrs) {
      let key: string | undefined
      try { key = multiaddrKey(multiaddr(addr)) } catch { key = undefined }
      if (key === undefined) { skipped.push(String(addr).slice(0, 200)); continue }
      keys.add(key)
      if (keys.size > MAX_KNOWN_ADDRS) throw new MeshError('ERR_INVALID_OPTION', `knownAddrs holds more than ${MAX_KNOWN_ADDRS} distinct addresses`)
    }
    if (skipped.length > 0) log.debug('known addresses without an IP skipped', { skipped: skipped.slice(0, 8), count: skipped.length })
    knownKeys = keys
    return keys.size
  }
  setKnownAddrs(options.knownAddrs ?? [])

  return { gater, setKnownAddrs, pending: () => policy.pending }
}
