/**
 * The standard gRPC services a real node serves (health, reflection v1 and v1alpha) and the
 * structured error details, checked from outside: with Python grpcio (Debian python3-grpcio)
 * when it is importable, else with a Node client (the test name says which). Plus the Watch
 * side (SERVING → NOT_SERVING on SIGTERM) and the bounds, with grpc-js.
 */
import './polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { credentials, loadPackageDefinition, Server, ServerCredentials, status as Status, type Client, type ClientDuplexStream, type ClientReadableStream, type GrpcObject, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'
import { Cluster, type NodeProc } from './testkit.js'
import { loadVoikeProto } from './proto.js'
import { decodeStatus, encodeStatus, statusDetailsOf, BAD_REQUEST_TYPE_URL, MAX_DETAIL_CHARS } from './grpc-errors.js'
import { addHealth, HEALTH_PROTO_PATH } from './grpc-health.js'
import { addReflection, reflectionProtoPath, voikeServiceNames, withProtocMapEntries } from './grpc-reflection.js'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import descriptor from 'protobufjs/ext/descriptor/index.js'

const PROBE_PY = fileURLToPath(new URL('../../node/grpc-probe.py', import.meta.url))
const EXPECTED_SERVICES = ['grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection', 'voike.v1.Grid', 'voike.v1.Mesh']
const GRID_METHODS = ['CancelJob', 'GetJob', 'ListJobs', 'SubmitJob', 'WatchJob']

interface ProbeResult {
  client: string
  health: Record<string, string>
  unknown: string
  services: Record<'v1' | 'v1alpha', string[]>
  grid_methods: string[]
  bad_request: { code: string, message: string, status_code?: number, violations: Array<{ field: string, description: string }>, type_urls: string[] } | null
}

/**
 * A python3 that imports grpc and protobuf (Debian's lives in /usr/bin, not in pyenv shims).
 * VOIKE_TEST_PYTHON names another one, or `none` to use the Node client.
 */
function findPython (): string | undefined {
  if (process.env.VOIKE_TEST_PYTHON === 'none') return undefined
  for (const cmd of [process.env.VOIKE_TEST_PYTHON, '/usr/bin/python3', 'python3']) {
    if (cmd === undefined || cmd === '') continue
    const r = spawnSync(cmd, ['-c', 'import grpc, google.protobuf'], { stdio: 'ignore', timeout: 30_000 })
    if (r.status === 0) return cmd
  }
  return undefined
}

async function runPython (python: string, api: string): Promise<ProbeResult> {
  return await new Promise((resolve, reject) => {
    const p = spawn(python, [PROBE_PY, api], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    p.stdout.on('data', (d: Buffer) => { out += d.toString() })
    p.stderr.on('data', (d: Buffer) => { err += d.toString() })
    const t = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`grpc-probe.py did not finish; stderr: ${err}`)) }, 60_000)
    p.on('exit', (code) => {
      clearTimeout(t)
      if (code !== 0) reject(new Error(`grpc-probe.py exited ${String(code)}: ${err}`))
      else resolve(JSON.parse(out) as ProbeResult)
    })
  })
}

// ---- the Node client (fallback probe, and the Watch test) ------------------------------------

function healthClient (api: string): Client & Record<string, any> {
  const pkg = loadPackageDefinition(loadSync(HEALTH_PROTO_PATH, { keepCase: true, enums: String, defaults: true }))
  const Health = ((pkg.grpc as GrpcObject).health as GrpcObject).v1 as GrpcObject
  return new (Health.Health as ServiceClientConstructor)(api, credentials.createInsecure())
}

function reflectionClient (api: string, version: 'v1' | 'v1alpha'): Client & Record<string, any> {
  const pkg = loadPackageDefinition(loadSync(reflectionProtoPath(version), { keepCase: true, oneofs: true, defaults: true }))
  const Refl = ((pkg.grpc as GrpcObject).reflection as GrpcObject)[version] as GrpcObject
  return new (Refl.ServerReflection as ServiceClientConstructor)(api, credentials.createInsecure())
}

async function unary<T> (client: Client & Record<string, any>, method: string, req: unknown): Promise<T> {
  return await new Promise((resolve, reject) => {
    client[method](req, { deadline: Date.now() + 10_000 }, (err: ServiceError | null, res: T) => { if (err !== null) reject(err); else resolve(res) })
  })
}

async function reflect (client: Client & Record<string, any>, request: Record<string, unknown>): Promise<Record<string, any>> {
  return await new Promise((resolve, reject) => {
    const call: ClientDuplexStream<unknown, Record<string, any>> = client.ServerReflectionInfo({ deadline: Date.now() + 10_000 })
    call.once('data', (res) => { resolve(res); call.end() })
    call.once('error', reject)
    call.write(request)
  })
}

async function runNodeProbe (api: string): Promise<ProbeResult> {
  const health = healthClient(api)
  const clients: Client[] = [health]
  try {
    const out: ProbeResult = { client: 'node @grpc/grpc-js', health: {}, unknown: 'OK', services: { v1: [], v1alpha: [] }, grid_methods: [], bad_request: null }
    for (const s of ['', 'voike.v1.Mesh', 'voike.v1.Grid']) out.health[s] = (await unary<{ status: string }>(health, 'Check', { service: s })).status
    await unary(health, 'Check', { service: 'no.such.Service' }).catch((err: ServiceError) => { out.unknown = Status[err.code] })
    for (const version of ['v1', 'v1alpha'] as const) {
      const refl = reflectionClient(api, version)
      clients.push(refl)
      const res = await reflect(refl, { list_services: '*' })
      out.services[version] = (res.list_services_response.service as Array<{ name: string }>).map(s => s.name).sort()
      if (version === 'v1') {
        const file = await reflect(refl, { file_containing_symbol: 'voike.v1.Grid' })
        const bytes = Buffer.concat((file.file_descriptor_response.file_descriptor_proto as Uint8Array[]).map(b => Buffer.from(b)))
        // No protobuf runtime here: the method names are in the descriptor's bytes.
        out.grid_methods = GRID_METHODS.filter(m => bytes.includes(m))
      }
    }
    const grid = new (loadVoikeProto().Grid)(api, credentials.createInsecure()) as Client & Record<string, any>
    clients.push(grid)
    await unary(grid, 'SubmitJob', { kind: 'fib', paramsJson: JSON.stringify({ n: -1, segments: 1 }) }).catch((err: ServiceError) => {
      const d = statusDetailsOf(err)
      out.bad_request = { code: Status[err.code], message: err.details, status_code: d?.code, violations: d?.violations ?? [], type_urls: d === undefined ? [] : [...(d.violations.length > 0 ? [BAD_REQUEST_TYPE_URL] : []), ...d.otherTypes] }
    })
    return out
  } finally {
    for (const c of clients) c.close()
  }
}

const python = findPython()
const via = python !== undefined ? `Python grpcio (${python}), an outside client` : 'the Node client (fallback: no python3 importing grpc; apt-get install python3-grpcio)'

test(`gRPC health per service, reflection v1 and v1alpha, and BadRequest error details, seen by ${via}`, { timeout: 120_000 }, async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const g = await c.start('genesis')
  const r = python !== undefined ? await runPython(python, g.ready.api) : await runNodeProbe(g.ready.api)
  t.diagnostic(`client: ${r.client}`)
  assert.deepEqual(r.health, { '': 'SERVING', 'voike.v1.Mesh': 'SERVING', 'voike.v1.Grid': 'SERVING' })
  assert.equal(r.unknown, 'NOT_FOUND')
  // The standard services and every service of the shipped protos (voike.v1.*), nothing else.
  for (const version of ['v1', 'v1alpha'] as const) {
    assert.deepEqual(r.services[version].filter(s => !s.startsWith('voike.v1.') || EXPECTED_SERVICES.includes(s)), EXPECTED_SERVICES, version)
    assert.deepEqual(r.services[version].filter(s => s.startsWith('voike.v1.')), voikeServiceNames(), version)
  }
  assert.deepEqual(r.grid_methods, GRID_METHODS)
  assert.ok(r.bad_request !== null, 'SubmitJob with n = -1 must fail')
  assert.equal(r.bad_request.code, 'INVALID_ARGUMENT')
  assert.match(r.bad_request.message, /\bn\b/)
  assert.equal(r.bad_request.status_code, Status.INVALID_ARGUMENT)
  assert.deepEqual(r.bad_request.type_urls, [BAD_REQUEST_TYPE_URL])
  assert.deepEqual(r.bad_request.violations, [{ field: 'n', description: r.bad_request.message }])
})

/** The statuses a Watch stream sends, until it ends. */
function watch (client: Client & Record<string, any>, service: string): { statuses: string[], ended: Promise<number>, firstSeen: Promise<void> } {
  const statuses: string[] = []
  const call: ClientReadableStream<{ status: string }> = client.Watch({ service })
  let seen!: () => void
  const firstSeen = new Promise<void>(resolve => { seen = resolve })
  call.on('data', (m) => { statuses.push(m.status); seen() })
  const ended = new Promise<number>(resolve => {
    call.on('error', (err: ServiceError) => { resolve(err.code) })
    call.on('end', () => { resolve(Status.OK) })
  })
  return { statuses, ended, firstSeen }
}

test('gRPC health Watch: SERVING while up, NOT_SERVING as soon as the node stops (SIGTERM); unknown names SERVICE_UNKNOWN', { timeout: 120_000 }, async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const g: NodeProc = await c.start('genesis')
  const client = healthClient(g.ready.api)
  t.after(() => { client.close() })
  const all = watch(client, '')
  const grid = watch(client, 'voike.v1.Grid')
  const unknown = watch(client, 'no.such.Service')
  await Promise.all([all.firstSeen, grid.firstSeen, unknown.firstSeen])
  assert.deepEqual(all.statuses, ['SERVING'])
  assert.deepEqual(grid.statuses, ['SERVING'])
  assert.deepEqual(unknown.statuses, ['SERVICE_UNKNOWN'])
  g.proc.kill('SIGTERM')
  await Promise.all([all.ended, grid.ended])
  assert.deepEqual(all.statuses, ['SERVING', 'NOT_SERVING'], 'the last word of a stopping node is NOT_SERVING')
  assert.deepEqual(grid.statuses, ['SERVING', 'NOT_SERVING'])
  await g.exited
})

test('gRPC errors: the field at fault travels as google.rpc.BadRequest; errors without a field carry no details', { timeout: 120_000 }, async (t) => {
  const c = new Cluster()
  t.after(async () => { await c.stopAll() })
  const g = await c.start('genesis')
  const grid = new (loadVoikeProto().Grid)(g.ready.api, credentials.createInsecure()) as Client & Record<string, any>
  t.after(() => { grid.close() })
  const fail = async (method: string, req: unknown): Promise<ServiceError> => await unary(grid, method, req).then(() => assert.fail(`${method} succeeded`), (err: ServiceError) => err)
  for (const [method, req, field] of [
    ['SubmitJob', { kind: 'fib', paramsJson: '{"n":10,"segments":0}' }, 'segments'],
    ['SubmitJob', { kind: 'nope', paramsJson: '{}' }, 'kind'],
    ['SubmitJob', { kind: 'fib', paramsJson: '{not json' }, 'params_json'],
    ['ListJobs', { status: 'sleeping' }, 'status']
  ] as const) {
    const err = await fail(method, req)
    assert.equal(err.code, Status.INVALID_ARGUMENT, `${method} ${JSON.stringify(req)}: ${err.details}`)
    const d = statusDetailsOf(err)
    assert.ok(d !== undefined, `${method} ${JSON.stringify(req)}: no grpc-status-details-bin`)
    assert.equal(d.code, Status.INVALID_ARGUMENT)
    assert.equal(d.message, err.details)
    assert.deepEqual(d.violations.map(v => v.field), [field])
  }
  const missing = await fail('GetJob', { id: 'j_doesnotexist' })
  assert.equal(statusDetailsOf(missing), undefined, `${Status[missing.code]} names no field, so it has no BadRequest`)
})

test('google.rpc.Status encoding: round trip, long texts cut, malformed bytes rejected', () => {
  const bytes = encodeStatus(3, 'n: bad', [{ field: 'n', description: 'n: bad' }, { field: 'segments', description: 'é'.repeat(MAX_DETAIL_CHARS + 10) }])
  const d = decodeStatus(bytes)
  assert.equal(d.code, 3)
  assert.equal(d.message, 'n: bad')
  assert.deepEqual(d.violations.map(v => v.field), ['n', 'segments'])
  assert.equal(d.violations[1].description.length, MAX_DETAIL_CHARS + 1, 'cut to the bound, with an ellipsis')
  assert.throws(() => decodeStatus(bytes.subarray(0, bytes.length - 3)), /truncated/)
})

test('health watches and reflection streams are bounded (RESOURCE_EXHAUSTED past the limit) and close() ends them', { timeout: 60_000 }, async (t) => {
  const server = new Server()
  const health = addHealth(server, { maxWatchers: 2 })
  const reflection = addReflection(server, { maxStreams: 1 })
  const port = await new Promise<number>((resolve, reject) => { server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => { if (err !== null) reject(err); else resolve(p) }) })
  t.after(() => { server.forceShutdown() })
  health.setServing(true)
  const api = `127.0.0.1:${port}`
  const client = healthClient(api)
  const refl = reflectionClient(api, 'v1')
  t.after(() => { client.close(); refl.close() })
  const w1 = watch(client, '')
  const w2 = watch(client, 'voike.v1.Mesh')
  await Promise.all([w1.firstSeen, w2.firstSeen])
  const w3 = watch(client, '')
  assert.equal(await w3.ended, Status.RESOURCE_EXHAUSTED)
  // One reflection stream held open: a second is refused.
  const held: ClientDuplexStream<unknown, Record<string, any>> = refl.ServerReflectionInfo()
  const heldEnded = new Promise<void>(resolve => { held.on('end', resolve); held.on('error', () => { resolve() }) })
  await new Promise<void>(resolve => { held.once('data', () => { resolve() }); held.write({ list_services: '*' }) })
  const refused = await reflect(refl, { list_services: '*' }).then(() => Status.OK, (err: ServiceError) => err.code)
  assert.equal(refused, Status.RESOURCE_EXHAUSTED)
  assert.throws(() => addHealth(new Server(), { maxWatchers: 0 }), /maxWatchers/)
  assert.throws(() => addReflection(new Server(), { maxStreams: 1e9 }), /maxStreams/)
  health.close()
  reflection.close()
  assert.equal(await w1.ended, Status.OK)
  assert.deepEqual(w1.statuses, ['SERVING', 'NOT_SERVING'])
  await heldEnded
})

test('reflection descriptors name map entries as protoc does (FilesEntry), which protoc-based clients require', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'voike-proto-'))
  t.after(async () => { await rm(dir, { recursive: true, force: true }) })
  const path = join(dir, 'm.proto')
  await writeFile(path, 'syntax = "proto3";\npackage t.v1;\nmessage Req { map<string, bytes> files = 1; map<string, int32> file_sizes = 2; }\n')
  const fixed = withProtocMapEntries(loadSync(path, { keepCase: true }))
  const [bytes] = (fixed['t.v1.Req'] as unknown as { fileDescriptorProtos: Uint8Array[] }).fileDescriptorProtos
  const file = descriptor.FileDescriptorProto.decode(bytes) as unknown as { messageType: Array<{ name: string, field: Array<{ name: string, typeName: string }>, nestedType: Array<{ name: string }> }> }
  const req = file.messageType.find(m => m.name === 'Req')
  assert.ok(req !== undefined)
  assert.deepEqual(req.nestedType.map(n => n.name).sort(), ['FileSizesEntry', 'FilesEntry'])
  assert.deepEqual(Object.fromEntries(req.field.map(f => [f.name, f.typeName.split('.').pop()])), { files: 'FilesEntry', file_sizes: 'FileSizesEntry' })
})
