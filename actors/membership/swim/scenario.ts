/**
 * The standard simulation run, shared by the npm-test case and bench/swim-sim.ts:
 *
 * 1. formation: members start one by one and join through a random member already in;
 * 2. steady state: traffic per member per second with nothing happening;
 * 3. join: one more member joins through a random member; time until everyone sees it alive and
 *    it sees everyone;
 * 4. failures, all at once: `crashes` members crash for good and `freezes` others freeze for
 *    `freezeMs`, then resume; time to the first suspicion and to "dead at every live member" for
 *    each crash, and what became of each frozen member;
 * 5. settle, then an exact check of every live member's view.
 *
 * False deaths: a member declared dead anywhere although it never crashed and was never frozen
 * (dead verdicts *by* a frozen member about others count too). The target is zero.
 */
import { Simulator, seededRandom, type SimNode } from './sim.js'
import { detectionBounds, resolveOptions, type DetectionBounds, type SwimOptions } from './options.js'
import type { SwimEvent } from './members.js'

export interface ScenarioOptions {
  seed: number
  members: number
  lossRate: number
  minDelayMs?: number
  maxDelayMs?: number
  crashes: number
  freezes: number
  freezeMs: number
  /** Formation: members started per virtual second. Default 50. */
  joinsPerSecond?: number
  swim?: Partial<SwimOptions>
  /** Quiet time after formation before traffic is measured (late anti-entropy settles). Default 30 000 ms. */
  settleBeforeSteadyMs?: number
  /** Length of the traffic measurement. Default 10 000 ms. */
  steadyWindowMs?: number
  /** Time after the failures converged before the final exact check. Default 20 000 ms. */
  settleAfterMs?: number
  /** Virtual time allowed for each phase before it counts as not converged. Default 300 000 ms. */
  phaseLimitMs?: number
}

export interface CrashReport { id: string, firstSuspectMs: number | null, deadEverywhereMs: number | null }
export interface FreezeReport {
  id: string
  freezeMs: number
  suspected: boolean
  firstSuspectMs: number | null
  declaredDead: boolean
  /** From resume until every live member sees it alive again (null: never). */
  aliveEverywhereAfterResumeMs: number | null
}

export interface ScenarioReport {
  seed: number
  members: number
  lossRate: number
  delayMs: [number, number]
  probeIntervalMs: number
  formation: { ms: number | null, periods: number | null }
  steady: { windowMs: number, msgsPerMemberPerSec: number, bytesPerMemberPerSec: number }
  join: { convergedMs: number | null, periods: number | null, log2N: number }
  crashes: CrashReport[]
  freezes: FreezeReport[]
  /** Periods until every crash was dead everywhere. */
  crashConvergedPeriods: number | null
  falseDeaths: number
  falseDeathSamples: string[]
  /** Join attempts that failed (each was retried with other seeds, as a node does). */
  joinFailures: string[]
  finalViewErrors: string[]
  protocolErrors: number
  bounds: DetectionBounds
  virtualMs: number
  messagesDelivered: number
  cpuMs: number
}

export async function runScenario (so: ScenarioOptions): Promise<ScenarioReport> {
  const cpu0 = process.cpuUsage()
  const opts = resolveOptions(so.swim)
  const limit = so.phaseLimitMs ?? 300_000
  const crashed = new Set<string>()
  const frozenEver = new Set<string>()
  const falseDeaths: string[] = []
  const suspectAt = new Map<string, number>()
  const deadSeenBy = new Map<string, number>()
  let sim!: Simulator
  const onEvent = (observer: string, ev: SwimEvent): void => {
    if (ev.type === 'suspect' && !suspectAt.has(ev.id)) suspectAt.set(ev.id, sim.now)
    if (ev.type === 'dead') {
      deadSeenBy.set(ev.id, (deadSeenBy.get(ev.id) ?? 0) + 1)
      if (!crashed.has(ev.id) && !frozenEver.has(ev.id)) {
        falseDeaths.push(`${ev.id} declared dead by ${observer} at ${sim.now} ms (from ${ev.from ?? '?'})`)
      }
    }
  }
  sim = new Simulator({ seed: so.seed, lossRate: so.lossRate, minDelayMs: so.minDelayMs, maxDelayMs: so.maxDelayMs, swim: so.swim, onEvent })
  const rnd = seededRandom(so.seed ^ 0x5bd1e995)
  const pick = <T>(xs: T[]): T => xs[Math.min(xs.length - 1, Math.floor(rnd() * xs.length))]
  const name = (i: number): string => `m${String(i).padStart(5, '0')}`
  const periods = (ms: number | null): number | null => ms === null ? null : Math.round(ms / opts.probeIntervalMs * 10) / 10
  const joinFailures: string[] = []
  /** Joins through up to 3 random members, tried in turn (as a node configured with 3 seeds). */
  const joinVia = (n: SimNode): void => {
    const others = sim.running().filter(x => x !== n)
    const seeds = new Map<string, SimNode>()
    for (let i = 0; i < 3 && seeds.size < others.length; i++) { const s = pick(others); seeds.set(s.id, s) }
    n.swim.join([...seeds.values()].map(s => ({ id: s.id, addr: s.addr }))).catch((err: Error) => {
      // As a node does: log it and try again with other seeds.
      joinFailures.push(`${n.id} at ${Math.round(sim.now)} ms: ${err.message}`)
      if (!n.crashed) retry.push(n)
    })
  }
  const retry: SimNode[] = []
  /** Lets join outcomes (promise callbacks) run, and retries failed joins. */
  const settle = async (): Promise<void> => {
    await new Promise(resolve => setImmediate(resolve))
    for (const n of retry.splice(0)) joinVia(n)
  }
  const runUntilTrue = async (cond: () => boolean, limitMs: number, stepMs: number): Promise<boolean> => {
    const end = sim.now + limitMs
    while (sim.now < end) {
      if (cond()) return true
      sim.runFor(Math.min(stepMs, end - sim.now))
      await settle()
    }
    return cond()
  }

  // 1. formation
  const t0 = sim.now
  sim.add(name(0))
  const gap = 1000 / (so.joinsPerSecond ?? 50)
  for (let i = 1; i < so.members; i++) {
    sim.runFor(gap)
    await settle()
    joinVia(sim.add(name(i)))
  }
  const everyoneSeesEveryone = (): boolean => {
    const n = sim.live().length
    return sim.live().every(x => { const c = x.swim.stats().members; return c.alive === n && c.suspect === 0 })
  }
  const formed = await runUntilTrue(everyoneSeesEveryone, limit, 200)
  const formationMs = formed ? sim.now - t0 : null

  // 2. steady state
  await runUntilTrue(() => false, so.settleBeforeSteadyMs ?? 30_000, 1000)
  const windowMs = so.steadyWindowMs ?? 10_000
  const before = snapshotTraffic(sim)
  sim.runFor(windowMs)
  const after = snapshotTraffic(sim)
  const n0 = sim.live().length
  const steady = {
    windowMs,
    msgsPerMemberPerSec: round((after.msgs - before.msgs) / n0 / (windowMs / 1000)),
    bytesPerMemberPerSec: round((after.bytes - before.bytes) / n0 / (windowMs / 1000))
  }

  // 3. one more member joins
  const joiner = sim.add(name(so.members))
  const tJoin = sim.now
  joinVia(joiner)
  const joinConverged = await runUntilTrue(() => {
    const live = sim.live()
    const c = joiner.swim.stats().members
    return c.alive === live.length && live.every(x => x.swim.member(joiner.id)?.state === 'alive')
  }, limit, 100)
  const joinMs = joinConverged ? sim.now - tJoin : null

  // 4. crashes and freezes at once
  const candidates = sim.live().filter(x => x !== joiner)
  const victims: SimNode[] = []
  while (victims.length < so.crashes + so.freezes && candidates.length > 0) {
    victims.push(candidates.splice(Math.floor(rnd() * candidates.length), 1)[0])
  }
  const crashVictims = victims.slice(0, so.crashes)
  const freezeVictims = victims.slice(so.crashes)
  const tFail = sim.now
  suspectAt.clear()
  for (const v of crashVictims) { crashed.add(v.id); sim.crash(v.id) }
  for (const v of freezeVictims) { frozenEver.add(v.id); sim.freeze(v.id, so.freezeMs) }
  const crashReports = new Map<string, CrashReport>(crashVictims.map(v => [v.id, { id: v.id, firstSuspectMs: null, deadEverywhereMs: null }]))
  const freezeReports = new Map<string, FreezeReport>(freezeVictims.map(v => [v.id, {
    id: v.id, freezeMs: so.freezeMs, suspected: false, firstSuspectMs: null, declaredDead: false, aliveEverywhereAfterResumeMs: null
  }]))
  const update = (): boolean => {
    const live = sim.live()
    let done = true
    for (const r of crashReports.values()) {
      if (r.firstSuspectMs === null && suspectAt.has(r.id)) r.firstSuspectMs = (suspectAt.get(r.id) as number) - tFail
      if (r.deadEverywhereMs === null) {
        if (live.every(x => x.swim.member(r.id)?.state === 'dead')) r.deadEverywhereMs = sim.now - tFail
        else done = false
      }
    }
    for (const r of freezeReports.values()) {
      if (suspectAt.has(r.id) && r.firstSuspectMs === null) { r.suspected = true; r.firstSuspectMs = (suspectAt.get(r.id) as number) - tFail }
      if ((deadSeenBy.get(r.id) ?? 0) > 0) r.declaredDead = true
      if (r.aliveEverywhereAfterResumeMs === null) {
        const resumed = sim.now >= tFail + r.freezeMs
        if (resumed && live.every(x => x.id === r.id || x.swim.member(r.id)?.state === 'alive')) {
          r.aliveEverywhereAfterResumeMs = sim.now - tFail - r.freezeMs
        } else done = false
      }
    }
    return done
  }
  await runUntilTrue(update, limit, 50)
  const deadTimes = [...crashReports.values()].map(r => r.deadEverywhereMs)
  const crashConvergedPeriods = deadTimes.length === 0 || deadTimes.some(t => t === null) ? null : periods(Math.max(...(deadTimes as number[])))

  // 5. settle, then check every view exactly
  await runUntilTrue(() => false, so.settleAfterMs ?? 20_000, 1000)
  const finalViewErrors = checkViews(sim, crashed)

  const cpu = process.cpuUsage(cpu0)
  return {
    seed: so.seed,
    members: so.members,
    lossRate: so.lossRate,
    delayMs: [sim.minDelayMs, sim.maxDelayMs],
    probeIntervalMs: opts.probeIntervalMs,
    formation: { ms: formationMs, periods: periods(formationMs) },
    steady,
    join: { convergedMs: joinMs, periods: periods(joinMs), log2N: round(Math.log2(so.members + 1)) },
    crashes: [...crashReports.values()],
    freezes: [...freezeReports.values()],
    crashConvergedPeriods,
    falseDeaths: falseDeaths.length,
    falseDeathSamples: falseDeaths.slice(0, 10),
    joinFailures: joinFailures.slice(0, 10),
    finalViewErrors: finalViewErrors.slice(0, 10),
    protocolErrors: sim.errors.length,
    bounds: detectionBounds(opts, so.members + 1),
    virtualMs: sim.now,
    messagesDelivered: sim.messagesDelivered,
    cpuMs: Math.round((cpu.user + cpu.system) / 1000)
  }
}

function snapshotTraffic (sim: Simulator): { msgs: number, bytes: number } {
  let msgs = 0
  let bytes = 0
  for (const n of sim.all()) { msgs += n.msgsSent; bytes += n.bytesSent }
  return { msgs, bytes }
}

/** Every live member sees every other live member alive and every crashed one dead. */
function checkViews (sim: Simulator, crashed: Set<string>): string[] {
  const errors: string[] = []
  const live = sim.live()
  for (const x of live) {
    for (const y of live) {
      if (x === y) continue
      const s = x.swim.member(y.id)?.state
      if (s !== 'alive') errors.push(`${x.id} sees live ${y.id} as ${s ?? 'unknown'}`)
    }
    for (const id of crashed) {
      const s = x.swim.member(id)?.state
      if (s !== 'dead') errors.push(`${x.id} sees crashed ${id} as ${s ?? 'unknown'}`)
    }
  }
  return errors
}

function round (x: number): number {
  return Math.round(x * 100) / 100
}
