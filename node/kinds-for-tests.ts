/**
 * Test-only job kinds, enabled by the environment of a node process, never by a flag:
 *
 *   VOIKE_TEST_KINDS=hold  VOIKE_TEST_HOLD_DIR=/abs/dir  voike genesis ...
 *
 * `hold` (actors/kinds/hold/) is a job whose segments block on their workers until the test
 * creates `<dir>/<token>.release`: fault tests use it to kill, cancel or restart while work is
 * provably in flight. It is the only test kind.
 *
 * Why it cannot be enabled by accident in production: it needs two variables (the list and an
 * existing absolute directory), it is refused outright when NODE_ENV=production (the Docker
 * image sets it), `voike --help` and the flags table do not mention it, and a node that enables it
 * says so at start on stderr (whatever the log level), in its log, and in the metric
 * `voike_test_kinds_enabled` (1), so a dashboard shows it too. Embedders calling startNode get
 * test kinds only when they pass them (StartOptions.testKinds).
 */
import { statSync } from 'node:fs'
import { isAbsolute } from 'node:path'
import { ConfigError } from '../config/index.js'
import type { JobKind } from '../actors/scheduler/index.js'
import type { TaskModule } from '../actors/worker/task-kinds.js'
import { holdKind } from '../actors/kinds/hold/job.js'
import holdTasks, { HOLD_DIR_ENV } from '../actors/kinds/hold/task.js'

export const TEST_KINDS_ENV = 'VOIKE_TEST_KINDS'

export interface TestKinds {
  /** The names enabled (for the warning and the metric). */
  readonly names: readonly string[]
  readonly jobKinds: ReadonlyArray<JobKind<any, any>>
  readonly taskModules: readonly TaskModule[]
}

const AVAILABLE: Record<string, { jobKind: JobKind<any, any>, tasks: TaskModule, check: (env: NodeJS.ProcessEnv) => void }> = {
  hold: {
    jobKind: holdKind,
    tasks: holdTasks,
    check: (env) => {
      const dir = env[HOLD_DIR_ENV]
      if (dir === undefined || dir === '') throw new ConfigError(HOLD_DIR_ENV, `required when ${TEST_KINDS_ENV} includes hold: an absolute directory for the hold markers`)
      if (!isAbsolute(dir)) throw new ConfigError(HOLD_DIR_ENV, `must be an absolute path, got ${JSON.stringify(dir)}`)
      let isDir = false
      try { isDir = statSync(dir).isDirectory() } catch { /* reported below */ }
      if (!isDir) throw new ConfigError(HOLD_DIR_ENV, `${JSON.stringify(dir)} is not an existing directory`)
    }
  }
}

/**
 * The test kinds `env` enables; undefined when VOIKE_TEST_KINDS is unset or empty. Throws
 * ConfigError naming the variable for an unknown kind, a missing hold directory, or
 * NODE_ENV=production.
 */
export function resolveTestKinds (env: NodeJS.ProcessEnv = process.env): TestKinds | undefined {
  const raw = env[TEST_KINDS_ENV]
  if (raw === undefined || raw.trim() === '') return undefined
  if (env.NODE_ENV === 'production') throw new ConfigError(TEST_KINDS_ENV, 'test-only job kinds are refused when NODE_ENV=production')
  const names = [...new Set(raw.split(',').map(s => s.trim()).filter(s => s !== ''))]
  for (const name of names) {
    const kind = AVAILABLE[name]
    if (kind === undefined) throw new ConfigError(TEST_KINDS_ENV, `unknown test kind ${JSON.stringify(name.slice(0, 64))} (known: ${Object.keys(AVAILABLE).join(', ')})`)
    kind.check(env)
  }
  return {
    names,
    jobKinds: names.map(n => AVAILABLE[n].jobKind),
    taskModules: names.map(n => AVAILABLE[n].tasks)
  }
}

/** The line a node enabling test kinds writes to stderr at start, whatever its log level. */
export function testKindsWarning (kinds: TestKinds): string {
  return `voike: WARNING: TEST-ONLY job kinds enabled (${TEST_KINDS_ENV}=${kinds.names.join(',')}); their tasks block on purpose. Never set ${TEST_KINDS_ENV} outside tests.\n`
}
