/**
 * Checks a `/metrics` exposition the way a Prometheus user would: `promtool check metrics`
 * (Debian package `prometheus`) when it is installed, and the built-in lint (metrics-lint.ts,
 * the same rules plus the project's) always. For tests and tools; not used by a running node.
 */
import { spawn, spawnSync } from 'node:child_process'
import { formatProblems, lintMetrics } from './metrics-lint.js'

/** The promtool command, or undefined when none answers `--version`. VOIKE_PROMTOOL overrides. */
export function findPromtool (): string | undefined {
  const cmd = process.env.VOIKE_PROMTOOL ?? 'promtool'
  const r = spawnSync(cmd, ['--version'], { stdio: 'ignore', timeout: 10_000 })
  return r.status === 0 ? cmd : undefined
}

/** Runs `promtool check metrics` on the text (stdin); its exit code and output. */
export async function promtoolCheck (text: string, cmd = findPromtool() ?? 'promtool', timeoutMs = 30_000): Promise<{ code: number | null, output: string }> {
  return await new Promise((resolve, reject) => {
    const p = spawn(cmd, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] })
    let output = ''
    p.stdout.on('data', (d: Buffer) => { output += d.toString() })
    p.stderr.on('data', (d: Buffer) => { output += d.toString() })
    const t = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`promtool did not finish in ${timeoutMs} ms`)) }, timeoutMs)
    p.on('error', (err) => { clearTimeout(t); reject(err) })
    p.on('exit', (code) => { clearTimeout(t); resolve({ code, output }) })
    p.stdin.on('error', () => { /* promtool may exit before reading everything */ })
    p.stdin.end(text)
  })
}

/** Every complaint about the text: promtool's (when installed) and the lint's; empty when clean. */
export async function checkExposition (text: string): Promise<string[]> {
  const out: string[] = []
  const problems = lintMetrics(text)
  if (problems.length > 0) out.push(`lint:\n${formatProblems(problems)}`)
  const promtool = findPromtool()
  if (promtool !== undefined) {
    const r = await promtoolCheck(text, promtool)
    if (r.code !== 0) out.push(`promtool check metrics exited ${String(r.code)}:\n${r.output}`)
  }
  return out
}
