/**
 * gRPC server reflection, both versions clients use: `grpc.reflection.v1.ServerReflection`
 * (grpcurl ≥ 1.8.8, Postman, newer gateways) and `grpc.reflection.v1alpha.ServerReflection`
 * (older grpcurl, Evans, most tools). `grpcurl -plaintext HOST:PORT list` then shows
 * voike.v1.Mesh, voike.v1.Grid, grpc.health.v1.Health and the reflection services, and
 * `describe` / calls work without the .proto files. No API key needed: the schema is public
 * (it ships in the npm package), the calls it describes still need the key.
 *
 * Answers come from grpc-node's `@grpc/reflection` (its ReflectionV1Implementation indexes the
 * files and answers each request; v1 and v1alpha messages are identical). The streams are
 * handled here, bounded: at most `maxStreams` open at once (RESOURCE_EXHAUSTED beyond), reading
 * pauses while the client does not read the answers (so memory stays bounded by the transport's
 * flow control), and close() ends every open stream.
 */
import { readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { loadPackageDefinition, status as Status, type GrpcObject, type Server, type ServerDuplexStream, type ServiceClientConstructor } from '@grpc/grpc-js'
import { loadSync, type PackageDefinition } from '@grpc/proto-loader'
import descriptor from 'protobufjs/ext/descriptor/index.js'
import { ReflectionV1Implementation } from '@grpc/reflection/build/src/implementations/reflection-v1.js'
import { PROTO_PATH } from './proto.js'
import { HEALTH_PROTO_PATH } from './grpc-health.js'

export interface ReflectionOptions {
  /** Most reflection streams open at once. Default 64; 1 … 4096. */
  maxStreams?: number
}

export interface Reflection {
  close: () => void
}

/** The reflection protos shipped inside @grpc/reflection (v1 and v1alpha); clients and tests load them too. */
export function reflectionProtoPath (version: 'v1' | 'v1alpha'): string {
  const main = createRequire(import.meta.url).resolve('@grpc/reflection')
  // main is build/src/index.js; the package keeps its protos in build/proto.
  return join(dirname(main), '..', 'proto', 'grpc', 'reflection', version, 'reflection.proto')
}

/** Most .proto files described (the shipped `proto/voike/v1/` holds a few). */
const MAX_PROTO_FILES = 64

/** Every shipped `proto/voike/v1/*.proto` (voike.proto and the files beside it), sorted. */
export function voikeProtoFiles (): string[] {
  const dir = dirname(PROTO_PATH)
  const files = readdirSync(dir).filter(f => f.endsWith('.proto')).sort().map(f => join(dir, f))
  if (files.length > MAX_PROTO_FILES) throw new Error(`${dir} holds ${files.length} .proto files (at most ${MAX_PROTO_FILES})`)
  return files
}

/** The full names of the services in those files (`voike.v1.Grid`, ...): what health answers for. */
export function voikeServiceNames (): string[] {
  const def = loadSync(voikeProtoFiles(), { keepCase: true })
  // proto-loader lists messages and enums with a `format`; services are maps of methods.
  return Object.entries(def).filter(([, v]) => !('format' in v)).map(([name]) => name).sort()
}

/** proto-loader options the reflection implementation expects its requests in (oneof names, enums as strings). */
const REFLECTION_LOADER_OPTIONS = { longs: String, enums: String, bytes: Array, defaults: true, oneofs: true }

export function addReflection (server: Server, options: ReflectionOptions = {}): Reflection {
  const maxStreams = options.maxStreams ?? 64
  if (!Number.isInteger(maxStreams) || maxStreams < 1 || maxStreams > 4096) {
    throw Object.assign(new RangeError(`maxStreams: an integer 1-4096, got ${String(maxStreams)}`), { code: 'ERR_INVALID_OPTION' })
  }
  const v1Path = reflectionProtoPath('v1')
  const v1alphaPath = reflectionProtoPath('v1alpha')
  // Everything this server serves, so that `list` and `describe` cover all of it.
  const described = withProtocMapEntries(loadSync([...voikeProtoFiles(), HEALTH_PROTO_PATH, v1Path, v1alphaPath], { keepCase: true }))
  const impl = new ReflectionV1Implementation(described)
  const streams = new Set<ServerDuplexStream<unknown, unknown>>()
  let closed = false

  const handler = (stream: ServerDuplexStream<unknown, unknown>): void => {
    if (closed || streams.size >= maxStreams) {
      stream.emit('error', { code: Status.RESOURCE_EXHAUSTED, details: closed ? 'the server is stopping' : `too many reflection streams (${maxStreams})` })
      return
    }
    streams.add(stream)
    const forget = (): void => { streams.delete(stream) }
    stream.once('close', forget)
    stream.once('cancelled', forget)
    stream.on('data', (request: Parameters<ReflectionV1Implementation['handleServerReflectionRequest']>[0]) => {
      // Backpressure: stop reading while the answers are not being read.
      if (!stream.write(impl.handleServerReflectionRequest(request))) {
        stream.pause()
        stream.once('drain', () => { stream.resume() })
      }
    })
    stream.once('end', () => { stream.end() })
  }

  for (const [path, version] of [[v1Path, 'v1'], [v1alphaPath, 'v1alpha']] as const) {
    const pkg = loadPackageDefinition(loadSync(path, REFLECTION_LOADER_OPTIONS))
    const service = (((pkg.grpc as GrpcObject).reflection as GrpcObject)[version] as GrpcObject).ServerReflection as ServiceClientConstructor
    server.addService(service.service, { ServerReflectionInfo: handler })
  }
  return {
    close: () => {
      closed = true
      for (const s of [...streams]) s.end()
      streams.clear()
    }
  }
}

// ---- map entries as protoc names them -----------------------------------------------------

interface MessageDesc { name: string, field?: Array<{ name: string, typeName?: string }>, nestedType?: MessageDesc[], options?: { mapEntry?: boolean } }

/**
 * protobufjs (behind proto-loader) names the entry type of a map field after the field
 * (`map<string, bytes> files` → `Files`); protoc names it `FilesEntry`, and protoc-based clients
 * (Go's and Python's protobuf, so grpcurl and grpcio) refuse the whole file otherwise ("map_entry
 * should not be set explicitly"). The descriptors reflection hands out are rewritten once, here.
 */
export function withProtocMapEntries (def: PackageDefinition): PackageDefinition {
  const fixed = new Map<string, Buffer>()
  const fix = (bytes: Uint8Array): Buffer => {
    const key = Buffer.from(bytes).toString('base64')
    let out = fixed.get(key)
    if (out === undefined) {
      const file = descriptor.FileDescriptorProto.decode(bytes) as unknown as { messageType?: MessageDesc[] }
      for (const m of file.messageType ?? []) renameMapEntries(m)
      out = Buffer.from(descriptor.FileDescriptorProto.encode(file as unknown as Record<string, unknown>).finish())
      fixed.set(key, out)
    }
    return out
  }
  const result: PackageDefinition = {}
  for (const [name, entry] of Object.entries(def)) {
    const protos = (entry as { fileDescriptorProtos?: unknown }).fileDescriptorProtos
    result[name] = Array.isArray(protos) ? { ...entry, fileDescriptorProtos: protos.map(fix) } as typeof entry : entry
  }
  return result
}

function renameMapEntries (m: MessageDesc): void {
  for (const nested of m.nestedType ?? []) {
    renameMapEntries(nested)
    if (nested.options?.mapEntry !== true) continue
    const old = nested.name
    const field = (m.field ?? []).find(f => f.typeName === old || (f.typeName ?? '').endsWith(`.${old}`))
    if (field === undefined) continue
    // protoc: the field name in CamelCase, plus `Entry` (`file_names` → `FileNamesEntry`).
    const name = `${field.name.split('_').map(p => p.charAt(0).toUpperCase() + p.slice(1)).join('')}Entry`
    if (name === old) continue
    nested.name = name
    for (const f of m.field ?? []) {
      if (f.typeName === old) f.typeName = name
      else if (f.typeName?.endsWith(`.${old}`) === true) f.typeName = `${f.typeName.slice(0, -old.length)}${name}`
    }
  }
}
