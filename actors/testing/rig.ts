/**
 * The test rig shared by every test under actors/ and node/: conditions awaited with a deadline
 * (never fixed sleeps), gates, error-code assertions, and the task modules a test pool runs.
 * Not a test file itself: its name must not match node --test's patterns (`*.test.js`, `test-*`,
 * `*-test.js`, `*_test.js`, `test.js`, `test/`), or `node --test dist/` would run it.
 */
import assert from 'node:assert/strict'
import fibTasks from '../kinds/fib/task.js'
import noopTasks from '../kinds/noop/task.js'
import type { TaskModule } from '../worker/task-kinds.js'

/**
 * Why the PostgreSQL tests are skipped (node:test prints it, and the summary counts them) when
 * there is no database to run them on.
 */
export const PG_SKIP_REASON = 'VOIKE_TEST_DATABASE_URL is not set: PostgreSQL tests need a database (e.g. postgres://postgres@127.0.0.1:5432/test)'

/** The skip option of a PostgreSQL test: the reason when VOIKE_TEST_DATABASE_URL is unset, else false. */
export function pgSkip (): string | false {
  const url = process.env.VOIKE_TEST_DATABASE_URL
  return url === undefined || url === '' ? PG_SKIP_REASON : false
}

/** The task modules of the built-in kinds, as the composition root registers them. */
export const TEST_TASKS: readonly TaskModule[] = [noopTasks, fibTasks]

/** A promise opened from outside: lets a test hold an actor inside receive until it says so. */
export function gate (): { promise: Promise<void>, open: () => void } {
  let open!: () => void
  const promise = new Promise<void>(resolve => { open = resolve })
  return { promise, open }
}

/** Awaits `p`, which must reject with an error carrying `code`; returns that error. */
export async function rejectsWithCode (p: Promise<unknown>, code: string): Promise<Error> {
  try {
    await p
  } catch (err) {
    assert.equal((err as { code?: string }).code, code, `expected ${code}, got ${String((err as Error).message)}`)
    return err as Error
  }
  assert.fail(`expected rejection with ${code}`)
}

/**
 * Polls `fn` every `everyMs` until it returns something other than undefined, null or false, and
 * returns that. A throw counts as "not yet" (the last one is named on timeout): conditions often
 * read state that is not there yet.
 */
export async function waitFor<T> (
  fn: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  what: string, timeoutMs = 30_000, everyMs = 5
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v !== undefined && v !== null && v !== false) return v
    } catch (err) { lastError = err }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError !== undefined ? ` (last error: ${(lastError as Error).message})` : ''}`)
    }
    await new Promise(resolve => setTimeout(resolve, everyMs))
  }
}
