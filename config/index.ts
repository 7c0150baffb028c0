/**
 * One typed, validated node configuration, resolved from flags > environment > defaults.
 *
 * Names follow ../shared/spec/contract.md. Every problem is a ConfigError naming the flag (or
 * the environment variable, when the value came from there); the CLI turns it into exit 2.
 */
import { availableParallelism, hostname } from 'node:os'
import { createHash } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { ConfigError } from './errors.js'
import type { LogLevel } from './logger.js'
import { DEFAULT_JOB_RETENTION, parseJobRetention, type JobRetention } from './retention.js'
import { parseChaos, type ChaosConfig } from './chaos.js'
import { DETECTOR_FLAGS, parseDetector, type DetectorConfig } from './detector.js'
import { parseSpot, type SpotConfig } from './spot.js'

export { ConfigError } from './errors.js'
export type { JobRetention } from './retention.js'

export type NodeRole = 'genesis' | 'node'

export interface HostPort { host: string, port: number }

export interface NodeConfig {
  /** `genesis` bootstraps and keeps the cluster registry; `node` joins through seeds. */
  role: NodeRole
  /** Human name of this node; default `genesis` or `node-<listen port|pid>`. Names the data dir. */
  name: string
  /** libp2p listen multiaddr (`--listen`, VOIKE_LISTEN). */
  listen: string
  /** gRPC listen address (`--api`, VOIKE_API). */
  api: HostPort
  /** HTTP listen address (`--http`, VOIKE_HTTP). */
  http: HostPort
  /** Identity key and embedded store live here (`--data`, VOIKE_DATA_DIR). */
  dataDir: string
  /** PostgreSQL connection string; absent = embedded SQLite (`--database-url`, DATABASE_URL). */
  databaseUrl: string | undefined
  /** PostgreSQL schema holding VOIKE's tables (`--db-schema`, VOIKE_DB_SCHEMA). */
  dbSchema: string
  /** When set, every API call but /health and /metrics must carry it (`--api-key`, VOIKE_API_KEY). */
  apiKey: string | undefined
  /** Seeds to join through: multiaddrs or host:port (`--genesis`, VOIKE_GENESIS). */
  genesis: string[]
  /** Worker pool threads (`--threads`, VOIKE_THREADS); default: available cores. */
  threads: number
  /** Largest p2p frame accepted or sent (`--max-frame-bytes`, VOIKE_MAX_FRAME_BYTES). */
  maxFrameSizeBytes: number
  /** `--log-level`, VOIKE_LOG_LEVEL. */
  logLevel: LogLevel
  /**
   * Which machine this node runs on (`--host-id`, VOIKE_HOST_ID); default: derived from the host
   * name and /etc/machine-id. Nodes with the same host id share cores when jobs are placed.
   */
  hostId: string
  /** Ended jobs kept: by age and/or count (`--job-retention`, VOIKE_JOB_RETENTION; config/retention.ts). */
  jobRetention: JobRetention
  /** Chaos settings (VOIKE_CHAOS_*, config/chaos.ts); all zero = off. */
  chaos: ChaosConfig
  /**
   * A folder of `NAME.flow` files the node watches and runs by name (`--flows`, VOIKE_FLOWS_DIR);
   * absolute; undefined when none.
   */
  flowsDir: string | undefined
  /** Failure-detector timings (config/detector.ts). */
  detector: DetectorConfig
  /**
   * With a shared PostgreSQL store, the jobs of a coordinator the failure detector declared dead
   * are claimed this long after the verdict (at once when it left) by the lowest alive member
   * (`--takeover-after-ms`, VOIKE_TAKEOVER_AFTER_MS). Default 3000; 0..86 400 000.
   */
  takeoverAfterMs: number
  /** Spot checks of results (VOIKE_SPOT_*, config/spot.ts). */
  spot: SpotConfig
}

/** Flags the node accepts, with their environment variable. */
export const NODE_FLAGS = {
  listen: 'VOIKE_LISTEN',
  api: 'VOIKE_API',
  http: 'VOIKE_HTTP',
  data: 'VOIKE_DATA_DIR',
  'database-url': 'DATABASE_URL',
  'db-schema': 'VOIKE_DB_SCHEMA',
  'api-key': 'VOIKE_API_KEY',
  genesis: 'VOIKE_GENESIS',
  name: 'VOIKE_NODE_NAME',
  threads: 'VOIKE_THREADS',
  'max-frame-bytes': 'VOIKE_MAX_FRAME_BYTES',
  'log-level': 'VOIKE_LOG_LEVEL',
  'host-id': 'VOIKE_HOST_ID',
  'job-retention': 'VOIKE_JOB_RETENTION',
  flows: 'VOIKE_FLOWS_DIR',
  'takeover-after-ms': 'VOIKE_TAKEOVER_AFTER_MS',
  ...DETECTOR_FLAGS
} as const

export type NodeFlag = keyof typeof NODE_FLAGS

const MAX_THREADS = 256
const MIN_FRAME_BYTES = 1024
const MAX_FRAME_BYTES = 64 * 1024 * 1024
/** Bounds of takeoverAfterMs (actors/scheduler/limits.ts); the default counts from the detector's dead verdict. */
const MAX_TAKEOVER_AFTER_MS = 86_400_000
const DEFAULT_TAKEOVER_AFTER_MS = 3000
const LOG_LEVELS: LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent']

/**
 * Resolves the configuration. `flags` holds the raw flag strings given on the command line.
 * Throws ConfigError on the first invalid value.
 */
export function resolveConfig (role: NodeRole, flags: Partial<Record<NodeFlag, string>>, env: NodeJS.ProcessEnv = process.env): NodeConfig {
  const pick = (flag: NodeFlag): { value: string, source: string } | undefined => {
    const f = flags[flag]
    if (f !== undefined) return { value: f, source: `--${flag}` }
    const e = env[NODE_FLAGS[flag]]
    if (e !== undefined && e !== '') return { value: e, source: NODE_FLAGS[flag] }
    return undefined
  }

  const listenIn = pick('listen') ?? { value: '/ip4/127.0.0.1/tcp/4001', source: '--listen' }
  const listen = parseListen(listenIn.value, listenIn.source)
  const apiIn = pick('api') ?? { value: '127.0.0.1:50051', source: '--api' }
  const httpIn = pick('http') ?? { value: '127.0.0.1:8080', source: '--http' }
  const nameIn = pick('name')
  const name = nameIn !== undefined ? parseName(nameIn.value, nameIn.source) : defaultName(role, listen.port)
  const dataIn = pick('data')
  const genesisIn = pick('genesis')
  const genesis = genesisIn !== undefined ? parseSeeds(genesisIn.value, genesisIn.source) : []
  if (role === 'node' && genesis.length === 0) {
    throw new ConfigError('--genesis', 'required: give host:port or a multiaddr of a member (or set VOIKE_GENESIS)')
  }
  const urlIn = pick('database-url')
  const threadsIn = pick('threads')
  const frameIn = pick('max-frame-bytes')
  const levelIn = pick('log-level')
  const schemaIn = pick('db-schema')
  const keyIn = pick('api-key')
  const hostIn = pick('host-id')
  const retentionIn = pick('job-retention')
  const flowsIn = pick('flows')
  const takeoverIn = pick('takeover-after-ms')

  return {
    role,
    name,
    listen: listen.addr,
    api: parseHostPort(apiIn.value, apiIn.source),
    http: parseHostPort(httpIn.value, httpIn.source),
    dataDir: resolve(dataIn?.value ?? join('.voike', name)),
    databaseUrl: urlIn !== undefined ? parseDatabaseUrl(urlIn.value, urlIn.source) : undefined,
    dbSchema: schemaIn !== undefined ? parseIdentifier(schemaIn.value, schemaIn.source) : 'public',
    apiKey: keyIn !== undefined ? parseApiKey(keyIn.value, keyIn.source) : undefined,
    genesis,
    threads: threadsIn !== undefined ? parseInteger(threadsIn.value, threadsIn.source, 1, MAX_THREADS) : Math.min(availableParallelism(), MAX_THREADS),
    maxFrameSizeBytes: frameIn !== undefined ? parseInteger(frameIn.value, frameIn.source, MIN_FRAME_BYTES, MAX_FRAME_BYTES) : 4 * 1024 * 1024,
    logLevel: levelIn !== undefined ? parseLogLevel(levelIn.value, levelIn.source) : 'info',
    hostId: hostIn !== undefined ? parseName(hostIn.value, hostIn.source) : defaultHostId(),
    jobRetention: retentionIn !== undefined ? parseJobRetention(retentionIn.value, retentionIn.source) : { ...DEFAULT_JOB_RETENTION },
    chaos: parseChaos(env, name),
    flowsDir: flowsIn !== undefined ? parseDir(flowsIn.value, flowsIn.source) : undefined,
    detector: parseDetector(pick),
    takeoverAfterMs: takeoverIn !== undefined ? parseInteger(takeoverIn.value, takeoverIn.source, 0, MAX_TAKEOVER_AFTER_MS) : DEFAULT_TAKEOVER_AFTER_MS,
    spot: parseSpot(env)
  }
}

/** A stable id of this machine: host name and machine id, hashed (neither is sent as such). */
function defaultHostId (): string {
  let machineId = ''
  try { machineId = readFileSync('/etc/machine-id', 'utf8').trim() } catch { /* not Linux, or no systemd */ }
  return createHash('sha256').update(`${hostname()}\n${machineId}`).digest('hex').slice(0, 16)
}

function defaultName (role: NodeRole, listenPort: number): string {
  if (role === 'genesis') return 'genesis'
  return listenPort !== 0 ? `node-${listenPort}` : `node-${process.pid}`
}

export function parseHostPort (value: string, source: string): HostPort {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value.trim())
  if (m === null) throw new ConfigError(source, `expected host:port, got ${JSON.stringify(value)}`)
  const port = Number(m[2])
  if (port > 65535) throw new ConfigError(source, `port ${port} is out of range 0-65535`)
  return { host: m[1].replace(/^\[|\]$/g, ''), port }
}

function parseListen (value: string, source: string): { addr: string, port: number } {
  let ma
  try {
    ma = multiaddr(value.trim())
  } catch (err) {
    throw new ConfigError(source, `not a multiaddr: ${JSON.stringify(value)} (${(err as Error).message})`)
  }
  const parts = ma.getComponents()
  const tcp = parts.find(p => p.name === 'tcp')
  const ip = parts.find(p => p.name === 'ip4' || p.name === 'ip6')
  if (tcp === undefined || ip === undefined) {
    throw new ConfigError(source, `expected /ip4/<addr>/tcp/<port> (or ip6), got ${JSON.stringify(value)}`)
  }
  return { addr: ma.toString(), port: Number(tcp.value) }
}

/** A seed is a full multiaddr (`/ip4/.../tcp/.../p2p/...`) or `host:port`, which becomes `/ip4|dns/host/tcp/port`. */
export function parseSeeds (value: string, source: string): string[] {
  const seeds = value.split(',').map(s => s.trim()).filter(s => s !== '')
  if (seeds.length === 0) throw new ConfigError(source, 'no seed address given')
  if (seeds.length > 64) throw new ConfigError(source, `at most 64 seeds, got ${seeds.length}`)
  return seeds.map(seed => {
    if (seed.startsWith('/')) {
      try { return multiaddr(seed).toString() } catch (err) {
        throw new ConfigError(source, `not a multiaddr: ${JSON.stringify(seed)} (${(err as Error).message})`)
      }
    }
    const { host, port } = parseHostPort(seed, source)
    if (port === 0) throw new ConfigError(source, `seed ${seed} needs a real port, not 0`)
    const proto = /^\d+\.\d+\.\d+\.\d+$/.test(host) ? 'ip4' : host.includes(':') ? 'ip6' : 'dns'
    return `/${proto}/${host}/tcp/${port}`
  })
}

function parseInteger (value: string, source: string, min: number, max: number): number {
  if (!/^\d+$/.test(value.trim())) throw new ConfigError(source, `expected an integer, got ${JSON.stringify(value)}`)
  const n = Number(value)
  if (n < min || n > max) throw new ConfigError(source, `${n} is out of range ${min}-${max}`)
  return n
}

function parseName (value: string, source: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(value)) throw new ConfigError(source, `a name is 1-64 of [A-Za-z0-9_.-], got ${JSON.stringify(value)}`)
  return value
}

function parseIdentifier (value: string, source: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(value)) throw new ConfigError(source, `a schema name is [a-z_][a-z0-9_]* (at most 63), got ${JSON.stringify(value)}`)
  return value
}

function parseDatabaseUrl (value: string, source: string): string {
  let url: URL
  try { url = new URL(value) } catch { throw new ConfigError(source, 'not a URL (expected postgres://user@host:port/db)') }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError(source, `expected a postgres:// URL, got protocol ${url.protocol}`)
  }
  return value
}

function parseApiKey (value: string, source: string): string {
  if (value.length < 8 || value.length > 256) throw new ConfigError(source, 'an API key is 8-256 characters')
  return value
}

/** An existing folder (watched from start: a typo must not leave the node watching nothing). */
function parseDir (value: string, source: string): string {
  const dir = resolve(value)
  let isDir = false
  try { isDir = statSync(dir).isDirectory() } catch (err) {
    throw new ConfigError(source, `cannot use ${JSON.stringify(value)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  if (!isDir) throw new ConfigError(source, `${JSON.stringify(value)} is not a folder`)
  return dir
}

function parseLogLevel (value: string, source: string): LogLevel {
  if (!(LOG_LEVELS as string[]).includes(value)) throw new ConfigError(source, `expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(value)}`)
  return value as LogLevel
}
