import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runScenario } from './scenario.js'

// Seeded: the same seed gives the same run. Override with SWIM_SIM_SEED to explore others.
const SEED = Number(process.env.SWIM_SIM_SEED ?? 20_250_611)

test(`200 simulated members, 2% loss, 1-40 ms delays, 3 crashes and a freeze (seed ${SEED})`, { timeout: 60_000 }, async () => {
  console.log(`swim simulation seed: ${SEED} (rerun with SWIM_SIM_SEED=${SEED})`)
  const r = await runScenario({
    seed: SEED,
    members: 200,
    lossRate: 0.02,
    minDelayMs: 1,
    maxDelayMs: 40,
    crashes: 3,
    freezes: 1,
    freezeMs: 3000,
    joinsPerSecond: 100,
    settleBeforeSteadyMs: 2000,
    steadyWindowMs: 3000,
    settleAfterMs: 10_000
  })
  const brief = { formation: r.formation, join: r.join, crashes: r.crashes, freezes: r.freezes, falseDeaths: r.falseDeaths, cpuMs: r.cpuMs }
  console.log(JSON.stringify(brief))
  assert.equal(r.protocolErrors, 0)
  assert.notEqual(r.formation.ms, null, 'the cluster formed')
  assert.notEqual(r.join.convergedMs, null, 'the join converged')
  assert.ok((r.join.periods as number) <= r.join.log2N, `join converged in ${r.join.periods} periods (log2 N = ${r.join.log2N})`)
  assert.equal(r.falseDeaths, 0, r.falseDeathSamples.join('\n'))
  for (const c of r.crashes) {
    assert.ok(c.firstSuspectMs !== null && c.firstSuspectMs <= r.bounds.suspectMs, `${c.id} suspected after ${c.firstSuspectMs} ms (bound ${r.bounds.suspectMs})`)
    assert.ok(c.deadEverywhereMs !== null && c.deadEverywhereMs <= r.bounds.deadMs, `${c.id} dead everywhere after ${c.deadEverywhereMs} ms (bound ${r.bounds.deadMs})`)
  }
  for (const f of r.freezes) {
    assert.equal(f.declaredDead, false, `${f.id} frozen ${f.freezeMs} ms must not die`)
    assert.notEqual(f.aliveEverywhereAfterResumeMs, null, `${f.id} is alive everywhere after resuming`)
  }
  assert.deepEqual(r.finalViewErrors, [])
})
