/**
 * The node's persistent store: members, jobs and their segments. One async interface, two
 * backends: embedded SQLite under the node's data dir, or PostgreSQL when a database URL is given
 * (several nodes may share it). Schema migrations are applied when the store opens.
 */
import { silentLogger } from '../config/logger.js'
import { resolveInts, type IntTable } from '../config/options.js'
import { StoreError } from './errors.js'
import { checkSchemaName } from './schema.js'
import { openSqliteStore } from './sqlite.js'
import type { Store, StoreOptions } from './types.js'

export * from './types.js'
export type { TrustRecord, TrustStore } from './trust.js'
export { MAX_TRUST_BATCH, MAX_TRUST_RECORDS } from './trust.js'
export { StoreError } from './errors.js'
export * from './flows.js'
export type { StoreErrorCode } from './errors.js'
export { LATEST_VERSION as STORE_SCHEMA_VERSION, checkSchemaName } from './schema.js'
export { SQLITE_FILE_NAME } from './sqlite.js'

const DEFAULT_POOL_MAX = 4
const DEFAULT_QUERY_TIMEOUT_MS = 30_000

function invalidOption (name: string, why: string): StoreError {
  return new StoreError('ERR_INVALID_OPTION', `store option ${name} ${why}`, { field: name })
}

const OPTION_TABLE: IntTable<'poolMax' | 'queryTimeoutMs'> = {
  poolMax: { default: DEFAULT_POOL_MAX, min: 1, max: 64 },
  queryTimeoutMs: { default: DEFAULT_QUERY_TIMEOUT_MS, min: 100, max: 600_000 }
}

/**
 * Opens the store: PostgreSQL when `databaseUrl` is set, else SQLite in `dataDir`. Options are
 * all validated before anything is opened. Rejects with ERR_INVALID_OPTION, ERR_STORE_OPEN or
 * ERR_STORE_MIGRATE.
 */
export async function createStore (options: StoreOptions): Promise<Store> {
  if (options === null || typeof options !== 'object') throw invalidOption('options', 'must be an object')
  const logger = (options.logger ?? silentLogger).child({ component: 'store' })
  const schema = checkSchemaName(options.schema ?? 'public')
  const { poolMax, queryTimeoutMs } = resolveInts(OPTION_TABLE, { poolMax: options.poolMax, queryTimeoutMs: options.queryTimeoutMs }, invalidOption)
  const { databaseUrl, dataDir } = options
  if (databaseUrl !== undefined) {
    if (typeof databaseUrl !== 'string' || !/^postgres(ql)?:\/\//.test(databaseUrl)) {
      // Never echo the URL: it may carry a password.
      throw invalidOption('databaseUrl', 'must be a postgres:// or postgresql:// URL')
    }
    // Loaded only when asked for: most nodes run on the embedded store and need not carry pg.
    const { openPostgresStore } = await import('./postgres.js')
    const store = await openPostgresStore({ databaseUrl, schema, poolMax, queryTimeoutMs, logger })
    logger.info('store opened', { kind: 'postgres', schema })
    return store
  }
  if (typeof dataDir !== 'string' || dataDir.length === 0) {
    throw invalidOption('dataDir', 'must be a non-empty path when databaseUrl is not set')
  }
  const store = openSqliteStore({ dataDir, busyTimeoutMs: queryTimeoutMs, logger })
  logger.info('store opened', { kind: 'sqlite', dataDir })
  return store
}
