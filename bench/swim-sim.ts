/**
 * The SWIM membership protocol simulated in one process (the real protocol code on a virtual clock
 * and a lossy fake network): formation, a join, crashes and a freeze; prints one JSON report.
 *
 *   node dist/bench/swim-sim.js [--members 1000] [--loss 0.01] [--seed S] [--crashes 3]
 *                               [--freezes 1] [--freeze-ms 3000] [--max-delay-ms 20] [--joins-per-sec 50]
 *
 * Targets (issue 11): convergence after a join or a crash within O(log N) protocol periods, zero
 * false deaths at 1 % loss, crashes dead everywhere within the documented bound (`bounds.deadMs`).
 */
import { runScenario } from '../actors/membership/swim/scenario.js'

function parseArgs (argv: string[]): Map<string, string> {
  const out = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--')) throw new Error(`argument ${i + 1}: expected --name value, got ${a}`)
    const v = argv[i + 1]
    if (v === undefined) throw new Error(`argument ${a}: missing value`)
    out.set(a.slice(2), v)
    i++
  }
  return out
}

function num (args: Map<string, string>, name: string, dflt: number, min: number, max: number): number {
  const raw = args.get(name)
  args.delete(name)
  if (raw === undefined) return dflt
  const v = Number(raw)
  if (!Number.isFinite(v) || v < min || v > max) throw new Error(`--${name}: expected a number in [${min}, ${max}], got ${raw}`)
  return v
}

async function main (): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  const members = num(args, 'members', 1000, 3, 10_000)
  const report = await runScenario({
    members: Math.floor(members),
    lossRate: num(args, 'loss', 0.01, 0, 0.5),
    seed: Math.floor(num(args, 'seed', Date.now() % 1_000_000, 0, 2 ** 31)),
    crashes: Math.floor(num(args, 'crashes', 3, 0, members - 2)),
    freezes: Math.floor(num(args, 'freezes', 1, 0, 10)),
    freezeMs: num(args, 'freeze-ms', 3000, 0, 600_000),
    maxDelayMs: num(args, 'max-delay-ms', 20, 1, 10_000),
    joinsPerSecond: num(args, 'joins-per-sec', 50, 1, 10_000)
  })
  if (args.size > 0) throw new Error(`unknown option(s): ${[...args.keys()].map(k => `--${k}`).join(', ')}`)
  process.stdout.write(JSON.stringify(report, null, 2) + '\n')
  const ok = report.falseDeaths === 0 && report.finalViewErrors.length === 0 && report.protocolErrors === 0
  process.exitCode = ok ? 0 : 1
}

main().catch((err: Error) => {
  process.stderr.write(`swim-sim: ${err.message}\n`)
  process.exitCode = 2
})
