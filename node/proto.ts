/**
 * Loads the shipped `proto/voike/v1/voike.proto` (used by the server, the CLI and tests).
 * proto-loader turns snake_case fields into camelCase and int64 into JS numbers.
 */
import { fileURLToPath } from 'node:url'
import { loadPackageDefinition, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'

export const PROTO_PATH = fileURLToPath(new URL('../../proto/voike/v1/voike.proto', import.meta.url))

let cached: { Mesh: ServiceClientConstructor, Grid: ServiceClientConstructor } | undefined

export function loadVoikeProto (): { Mesh: ServiceClientConstructor, Grid: ServiceClientConstructor } {
  if (cached !== undefined) return cached
  const def = loadSync(PROTO_PATH, { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true })
  const pkg = (loadPackageDefinition(def).voike as GrpcObject).v1 as GrpcObject
  cached = { Mesh: pkg.Mesh as ServiceClientConstructor, Grid: pkg.Grid as ServiceClientConstructor }
  return cached
}
