/**
 * The composition root: the one place that wires config, store, mesh, actors and APIs into a
 * running VOIKE node. Every component gets what it needs here, explicitly.
 */
import { totalmem, availableParallelism } from 'node:os'
import { readFileSync } from 'node:fs'
import { Gauge, type Registry } from 'prom-client'
import { peerIdFromString } from '@libp2p/peer-id'
import type { NodeConfig } from '../config/index.js'
import { createLogger, type Logger } from '../config/logger.js'
import { createMesh, loadOrCreateIdentity, type Mesh } from '../mesh/index.js'
import { createActorSystem, type ActorSystem, type Envelope } from '../actors/runtime/index.js'
import { envelopeProblem } from '../actors/runtime/envelope.js'
import { MemberTable, type MemberRecord } from '../actors/membership/table.js'
import { MEMBERSHIP_ACTOR, parseMember } from '../actors/membership/membership-actor.js'
import { membershipService } from '../actors/membership/service.js'
import { startDetector, type NodeDetector } from './detector.js'
import { spawnServices, type ServiceActor } from '../actors/runtime/service.js'
import { createWorkerPool } from '../actors/worker/pool.js'
import { workerService } from '../actors/worker/service.js'
import { checkTaskKinds, createScheduler, type JobKind, type Scheduler } from '../actors/scheduler/index.js'
import { schedulerService } from '../actors/scheduler/service.js'
import type { TaskModule } from '../actors/worker/task-kinds.js'
import { fibKind } from '../actors/kinds/fib/job.js'
import fibTasks from '../actors/kinds/fib/task.js'
import noopTasks from '../actors/kinds/noop/task.js'
import { createVasmKind } from '../actors/kinds/vasm/job.js'
import { vasmService } from '../actors/kinds/vasm/actor.js'
import { createProgramStore, type ProgramStore } from '../actors/kinds/vasm/programs.js'
import vasmTasks from '../actors/kinds/vasm/task.js'
import { createStore, type MemberStore } from '../store/index.js'
import { startHttp, type HttpServer } from './http.js'
import { startGrpc, type GrpcServer } from './grpc.js'
import { createNodeRegistry, registerNodeMetrics } from './node-metrics.js'
import { lockDataDir } from './datadir-lock.js'
import { chaosEnabled } from '../config/chaos.js'
import { createChaos } from '../actors/chaos/index.js'
import { createPerfWatch } from '../actors/perfwatch/perfwatch.js'
import { perfwatchService } from '../actors/perfwatch/service.js'
import { createTrust } from '../actors/trust/trust.js'
import { trustService } from '../actors/trust/service.js'
import { placementWeight } from '../actors/scheduler/weights.js'
import { createSpotCheck } from '../actors/scheduler/spot-check.js'
import { hypermeshRoutes } from './http-hypermesh.js'
import { addHypermeshServices } from './grpc-hypermesh.js'
import { createFlowService } from './flow-service.js'
import { gridPort } from './flow-ports.js'
import { flowRoutes } from './http-flow.js'
import { addFlowService } from './grpc-flow.js'
import { testKindsWarning, type TestKinds } from './kinds-for-tests.js'

export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version

export interface VoikeNode {
  readonly peerId: string
  readonly config: NodeConfig
  readonly p2p: string[]
  readonly api: string
  readonly http: string
  readonly table: MemberTable
  readonly registry: Registry
  /** The node's actor system: for embedding VOIKE (benches, tests, tools) next to its own actors. */
  readonly system: ActorSystem
  /** Announces the leave (unless `announce: false`), stops APIs, actors, mesh and store. */
  stop: (options?: { announce?: boolean }) => Promise<void>
  /** What a stop in progress is doing now (e.g. `store close`), for a report when it hangs; undefined when idle. */
  stopStep: () => string | undefined
}

export interface StartOptions {
  logger?: Logger
  /** Membership timer period. Default 1000 ms. */
  tickMs?: number
  /** Give up joining the seeds after this long. Default 60 000 ms. */
  joinTimeoutMs?: number
  /**
   * The node can no longer do its job (a critical actor gave up after repeated crashes). The CLI
   * stops the process with status 1 so that systemd, Docker or Kubernetes restarts it.
   */
  onFatal?: (err: Error) => void
  /** TEST-ONLY job kinds (node/kinds-for-tests.ts, from VOIKE_TEST_KINDS); never in production. */
  testKinds?: TestKinds
}

/**
 * The job kinds this node runs: each kind's job side (the scheduler). `vasm` shares the node's
 * program store with its worker-side actor (actors/kinds/vasm/actor.ts) ...
 */
function builtinJobKinds (programs: ProgramStore): ReadonlyArray<JobKind<any, any>> {
  return [fibKind, createVasmKind({ programs })]
}
/** ... and the worker side of every kind (plus `noop`, the benches' and tests' empty task). */
const TASK_MODULES: readonly TaskModule[] = [noopTasks, fibTasks, vasmTasks]

/** A libp2p peer id in text form. */
function isPeerId (id: string): boolean {
  if (id.length === 0 || id.length > 128) return false
  try { peerIdFromString(id); return true } catch { return false }
}

/** Starts a node; resolves once it has joined (or, for Genesis, is listening) and serves its APIs. */
export async function startNode (config: NodeConfig, options: StartOptions = {}): Promise<VoikeNode> {
  const log = options.logger ?? createLogger({ level: config.logLevel, base: { node: config.name } })
  const tickMs = options.tickMs ?? 1000
  // Each step is named, so that a stop that hangs can say where (the CLI reports it).
  const cleanups: Array<[string, () => Promise<void>]> = []
  let stepNow: string | undefined
  const cleanup = async (): Promise<void> => {
    for (const [name, fn] of cleanups.reverse()) {
      stepNow = name
      try { await fn() } catch (err) { log.warn('cleanup step failed', { step: name, err }) }
    }
    stepNow = undefined
  }
  const extraJobKinds = options.testKinds?.jobKinds ?? []
  const taskModules = [...TASK_MODULES, ...(options.testKinds?.taskModules ?? [])]
  if (options.testKinds !== undefined) {
    process.stderr.write(testKindsWarning(options.testKinds))
    log.warn('TEST-ONLY job kinds enabled; never in production', { kinds: options.testKinds.names })
  }

  try {
    // First: nothing else may touch the data dir (identity, store) while another node uses it.
    const lock = lockDataDir(config.dataDir)
    const releaseAtExit = (): void => { lock.release() }
    process.once('exit', releaseAtExit)
    cleanups.push(['data dir unlock', async () => { process.off('exit', releaseAtExit); lock.release() }])
    const registry = createNodeRegistry()
    if (options.testKinds !== undefined) registerTestKindsMetric(registry)
    const store = await createStore({ dataDir: config.dataDir, databaseUrl: config.databaseUrl, schema: config.dbSchema, logger: log.child({ component: 'store' }) })
    cleanups.push(['store close', async () => { await store.close() }])
    const privateKey = await loadOrCreateIdentity(config.dataDir)
    // Chaos (VOIKE_CHAOS_*): off unless set, and loud when on.
    const chaos = createChaos(config.chaos, registry)
    cleanups.push(['chaos close', async () => { chaos.close() }])
    if (chaosEnabled(config.chaos)) log.warn('CHAOS ON: this node corrupts, drops or delays on purpose', { chaos: config.chaos })

    let self: MemberRecord | undefined
    let scheduler: Scheduler | undefined
    /** The failure detector (SWIM): the mesh's lost links are its evidence. Set before the mesh delivers. */
    let detector: NodeDetector['detector'] | undefined
    /** Names of the service actors the node cannot live without (set once they are spawned). */
    let critical: ReadonlySet<string> = new Set()
    // The mesh and the actor system refer to each other: the mesh delivers envelopes to the
    // system, the system sends through the mesh. `system` is set before the mesh can deliver.
    let system: ActorSystem | undefined
    const mesh: Mesh = await createMesh({
      privateKey,
      listen: [config.listen],
      maxFrameSizeBytes: config.maxFrameSizeBytes,
      // Seeds are trusted from the start: their handshakes may use the slots kept for members.
      knownAddrs: config.genesis.filter(a => a.startsWith('/')),
      registry,
      logger: log.child({ component: 'mesh' }),
      // A frame that decodes but is no envelope is a bad frame: counted, its stream reset.
      checkMessage: envelopeProblem,
      onMessage: (from, msg) => { system?.receiveRemote(from, msg as Envelope) },
      onPeerConnect: (peerId) => {
        tellMembership({ type: 'peer-up', peerId })
        sayHello(peerId)
      },
      // Frames the mesh had to drop: the scheduler re-places that peer's tasks now, not at timeout.
      onSendFailed: (peerId) => { scheduler?.peerUnreachable(peerId); detector?.swim.reportUnreachable(peerId) },
      onPeerDisconnect: (peerId) => {
        system?.peerDown(peerId)
        detector?.swim.reportUnreachable(peerId)
        tellMembership({ type: 'peer-down', peerId })
      }
    })
    cleanups.push(['mesh stop', async () => { await mesh.stop() }])
    const sys = createActorSystem({
      peerId: mesh.peerId,
      transport: chaos.transport({ send: (peerId, env) => { mesh.send(peerId, env) } }),
      registry,
      logger: log.child({ component: 'actors' }),
      onGiveUp: (name, err) => {
        log.error('actor gave up after repeated crashes', { actor: name, err })
        // Without these the node only pretends to be a member: let its supervisor restart it.
        if (critical.has(name)) options.onFatal?.(new Error(`actor ${name} gave up: ${err.message}`))
      }
    })
    system = sys
    cleanups.push(['actor system shutdown', async () => { await sys.shutdown({ timeoutMs: 2000 }) }])
    /** Each side of a new connection introduces itself (see the membership actor's `hello`). */
    function sayHello (peerId: string): void {
      if (self === undefined) return
      try { system?.tell(system.ref(peerId, MEMBERSHIP_ACTOR), { type: 'hello', member: self }, MEMBERSHIP_ACTOR) } catch (err) { log.debug('hello not sent', { peer: peerId, err }) }
    }
    function tellMembership (msg: unknown): void {
      try { system?.tell(system.ref(mesh.peerId, MEMBERSHIP_ACTOR), msg) } catch (err) { log.warn('membership mailbox refused a message', { err }) }
    }

    const table = new MemberTable(mesh.peerId)
    self = {
      peerId: mesh.peerId,
      addrs: mesh.addrs(),
      cores: availableParallelism(),
      memoryBytes: totalmem(),
      version: VERSION,
      startedAtMs: Date.now(),
      status: 'alive',
      lastSeenMs: Date.now(),
      leftAtMs: null,
      isGenesis: config.role === 'genesis',
      host: config.hostId,
      name: config.name
    }
    table.put(self)
    registerNodeMetrics(registry, { peerId: mesh.peerId, name: config.name, role: config.role, version: VERSION }, table)
    if (config.role === 'genesis') await loadRegistry(store, table, self, log)
    const dt = startDetector({ config, system: sys, self, table, isValidId: isPeerId, logger: log.child({ component: 'swim' }) })
    detector = dt.detector

    // The service actors, composed as a list; at stop their closes run in reverse order.
    const services: ServiceActor[] = [dt.detector.service]
    cleanups.push(['service close', async () => {
      for (const s of [...services].reverse()) {
        stepNow = `service close (${s.name})`
        await s.close?.()
      }
    }])
    services.push(membershipService({
      table,
      store: config.role === 'genesis' ? store : undefined,
      connect: async (peerId, addrs) => { await connectMember(mesh, peerId, addrs) },
      isConnected: (peerId) => { try { return mesh.isConnected(peerId) } catch { return false } },
      isValidPeerId: isPeerId,
      detector: true,
      logger: log.child({ component: 'membership' })
    }))
    const pool = createWorkerPool({ registry, tasks: taskModules, threads: config.threads, logger: log.child({ component: 'pool' }) })
    const workerPool = chaos.pool(pool)
    services.push(workerService({ pool: workerPool, logger: log.child({ component: 'worker' }) }))
    // VASM programs by hash: served to workers as a coordinator, fetched once as a worker.
    const programs = createProgramStore()
    services.push(vasmService({ programs, pool: workerPool, registry, logger: log.child({ component: 'vasm' }) }))
    const kinds = [...builtinJobKinds(programs), ...extraJobKinds]
    // Trust (PTA) and PerfWatch: measured health, load and RTT feed trust and placement.
    const trust = createTrust({ selfId: mesh.peerId, table, store, registry, logger: log.child({ component: 'trust' }), phi: (peer) => dt.detector.swim.phi(peer) })
    await trust.load()
    services.push(trustService(trust))
    const perfwatch = createPerfWatch({
      system: sys, table, registry, logger: log.child({ component: 'perfwatch' }),
      pool: () => pool.stats(),
      onRtt: (peer, ms) => { trust.observeRtt(peer, ms) },
      onSummary: (peer) => { trust.observeHeartbeat(peer) }
    })
    services.push(perfwatchService(perfwatch))
    // Both sides of every job kind are registered before anything runs.
    checkTaskKinds(kinds, pool.taskKinds())
    // Spot checks (VOIKE_SPOT_*): results of new or distrusted peers are run again and compared.
    const { enabled: spotOn, ...spotOptions } = config.spot
    const resultPolicy = spotOn ? createSpotCheck({ selfId: mesh.peerId, trust, registry, logger: log, options: spotOptions }) : undefined
    scheduler = createScheduler({
      system: sys, store, table, registry, kinds, retention: config.jobRetention, logger: log.child({ component: 'scheduler' }), resultPolicy,
      // A dead coordinator's jobs are claimed this long after the detector's verdict.
      limits: { takeoverAfterMs: config.takeoverAfterMs },
      onTaskOutcome: (peer, outcome) => { trust.onTaskOutcome(peer, outcome) },
      excluded: (peer) => !trust.isTrusted(peer),
      peerWeight: (peer) => placementWeight({ status: table.get(peer)?.status ?? 'dead', trusted: trust.isTrusted(peer), load: perfwatch.load(peer), rttMs: perfwatch.rttMs(peer), trust: trust.trust(peer) })
    })
    services.push(schedulerService(scheduler))
    critical = spawnServices(sys, services)
    dt.start()
    const ticker = setInterval(() => {
      tellMembership({ type: 'tick' })
      // Members' addresses may use the pending-handshake slots kept for the cluster (mesh/inbound-guard.ts).
      mesh.setKnownAddrs(table.all().filter(m => m.status !== 'dead').flatMap(m => m.addrs))
    }, tickMs)
    cleanups.push(['membership ticker', async () => { clearInterval(ticker) }])

    if (config.genesis.length > 0) await join(config.genesis, mesh, sys, self, options.joinTimeoutMs ?? 60_000, log, dt.join)
    else dt.rejoinKnown(async (id, addrs) => { await connectMember(mesh, id, addrs) })
    await scheduler.resume()

    // FLOW: runs RUN JOB steps on this node's grid, caches results and run records in the store.
    const flowLog = log.child({ component: 'flow' })
    const flows = createFlowService({ port: gridPort(scheduler.grid), store, flowsDir: config.flowsDir, logger: flowLog })
    cleanups.push(['FLOW close', async () => { flows.close() }])
    await flows.ready
    const http: HttpServer = await startHttp({ host: config.http.host, port: config.http.port, peerId: mesh.peerId, registry, table, grid: scheduler.grid, apiKey: config.apiKey, logger: log.child({ component: 'http' }), health: () => chaosEnabled(config.chaos) ? { chaos: config.chaos } : {}, extraGet: hypermeshRoutes({ perfwatch, trust }), routes: [flowRoutes({ service: flows, logger: flowLog })] })
    cleanups.push(['HTTP close', async () => { await http.close() }])
    const grpc: GrpcServer = await startGrpc({ host: config.api.host, port: config.api.port, table, grid: scheduler.grid, apiKey: config.apiKey, logger: log.child({ component: 'grpc' }), maxMessageBytes: 32 << 20, services: [(server, authorized) => { addHypermeshServices(server, { perfwatch, trust }, authorized) }, (server, authorized) => { addFlowService(server, { service: flows, authorized, logger: flowLog }) }] })
    cleanups.push(['gRPC close', async () => { await grpc.close() }])
    // Joined, resumed and serving both APIs: gRPC health probes may send traffic now.
    grpc.setServing(true)

    let stopping: Promise<void> | undefined
    return {
      peerId: mesh.peerId,
      config,
      p2p: mesh.addrs(),
      api: grpc.address,
      http: http.address,
      table,
      registry,
      system: sys,
      stop: async (opts = {}) => {
        stopping ??= (async () => {
          // Probes and balancers see NOT_SERVING for as long as the leave and the cleanup take.
          grpc.setServing(false)
          stepNow = 'leave announcement'
          if (opts.announce !== false) { dt.detector.swim.leave(); await announceLeave(sys, mesh, table) }
          await cleanup()
        })()
        await stopping
      },
      stopStep: () => stepNow
    }
  } catch (err) {
    await cleanup()
    throw err
  }
}

/** Genesis reloads the registry it persisted: everyone is suspect until they answer again. */
async function loadRegistry (store: MemberStore, table: MemberTable, self: MemberRecord, log: Logger): Promise<void> {
  const known = await store.listMembers()
  for (const m of known) {
    if (m.peerId === self.peerId) continue
    table.put({ ...m, status: m.leftAtMs !== null || m.status === 'dead' ? 'dead' : 'suspect' })
  }
  await store.upsertMember(self)
  log.info('registry loaded', { members: known.length })
}

/** Joins through the first seed that answers; retries all seeds with backoff until the timeout. */
/** Dials a member at the first of its addresses that answers. */
async function connectMember (mesh: Mesh, peerId: string, addrs: string[]): Promise<void> {
  await mesh.addPeerAddrs(peerId, addrs)
  for (const addr of addrs) {
    try { await mesh.dial(addr.includes('/p2p/') ? addr : `${addr}/p2p/${peerId}`); return } catch { /* try the next address */ }
  }
  throw new Error(`no address of ${peerId} answered`)
}

/**
 * Joins through the first seed (any member) that answers, then syncs the failure detector's
 * state with that seed (`detectorJoin`); retries all seeds with backoff until the timeout.
 */
async function join (seeds: string[], mesh: Mesh, sys: ActorSystem, self: MemberRecord, timeoutMs: number, log: Logger, detectorJoin: (seedId: string) => Promise<void>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let backoffMs = 100
  let lastError: unknown
  while (Date.now() < deadline) {
    for (const seed of seeds) {
      try {
        const seedId = await mesh.dial(seed)
        const reply = await sys.ask<{ members: unknown[] }>(sys.ref(seedId, MEMBERSHIP_ACTOR), { type: 'join', member: self }, { timeoutMs: 5000, from: MEMBERSHIP_ACTOR })
        const members = reply.members.map(m => parseMember(m, isPeerId))
        sys.tell(sys.ref(mesh.peerId, MEMBERSHIP_ACTOR), { type: 'merge', members })
        await detectorJoin(seedId)
        log.info('joined', { seed, members: members.length })
        return
      } catch (err) {
        lastError = err
        log.warn('join attempt failed', { seed, err })
      }
    }
    await new Promise(resolve => setTimeout(resolve, backoffMs))
    backoffMs = Math.min(backoffMs * 2, 2000)
  }
  throw Object.assign(new Error(`could not join through ${seeds.join(', ')} within ${timeoutMs} ms: ${(lastError as Error)?.message ?? 'no answer'}`), { code: 'ERR_JOIN_TIMEOUT' })
}

async function announceLeave (sys: ActorSystem, mesh: Mesh, table: MemberTable): Promise<void> {
  for (const m of table.all()) {
    if (m.peerId === mesh.peerId || m.status === 'dead') continue
    try { sys.tell(sys.ref(m.peerId, MEMBERSHIP_ACTOR), { type: 'leave', peerId: mesh.peerId }, MEMBERSHIP_ACTOR) } catch { /* best effort */ }
  }
  await mesh.flush(1000)
}

/** 1 on a node running TEST-ONLY job kinds (node/kinds-for-tests.ts): visible on every dashboard. */
function registerTestKindsMetric (registry: Registry): void {
  const g = new Gauge({ name: 'voike_test_kinds_enabled', help: 'TEST-ONLY job kinds are enabled on this node (VOIKE_TEST_KINDS); never in production', registers: [registry] })
  g.set(1)
}
