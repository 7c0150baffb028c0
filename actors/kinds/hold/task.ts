/**
 * TEST-ONLY. The worker side of the `hold` job kind (job.ts): the `hold-segment` task blocks until
 * the test releases it, so that a fault test kills, cancels or restarts while the work is
 * certainly in flight on a known worker, instead of racing a job that may already be over.
 *
 * Payload `{ token, index, maxHoldMs }`. The task reads its directory from the worker's own
 * environment (VOIKE_TEST_HOLD_DIR, an absolute path), never from the payload: a coordinator
 * must not make a worker touch files anywhere else. In that directory it
 * - writes `<token>.started.<index>.<pid>.<random>` when it starts holding (the test reads these
 *   to know which worker process holds which segment: the worker's own word, not the coordinator's);
 * - polls every HOLD_POLL_MS for `<token>.release`, then answers `index * index + 1`;
 * - gives up after `maxHoldMs` with ERR_HOLD_TIMEOUT (limits on everything: a forgotten test must
 *   not pin a thread forever).
 *
 * Only a node started with VOIKE_TEST_KINDS=hold registers this module (node/kinds-for-tests.ts).
 */
import { randomBytes } from 'node:crypto'
import { access, writeFile } from 'node:fs/promises'
import { isAbsolute, join } from 'node:path'
import type { TaskModule } from '../../worker/task-kinds.js'

export const HOLD_TASK_KIND = 'hold-segment'
/** The environment variable naming the directory of the start markers and release files. */
export const HOLD_DIR_ENV = 'VOIKE_TEST_HOLD_DIR'
/** A token names the files of one job: safe as a file name, no path separators. */
export const HOLD_TOKEN_RE = /^[a-z0-9-]{1,64}$/
/** How often a held task looks for its release file. */
export const HOLD_POLL_MS = 20
/** Longest hold a payload may ask for: 10 min. */
export const MAX_HOLD_MS = 600_000

export interface HoldPayload { token: string, index: number, maxHoldMs: number }

/** The value of segment `index` (what the job's sum adds up). */
export function holdValue (index: number): number {
  return index * index + 1
}

function invalid (message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_INVALID_ARGUMENT' })
}

export function checkHoldPayload (raw: unknown): HoldPayload {
  const p = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>
  if (typeof p.token !== 'string' || !HOLD_TOKEN_RE.test(p.token)) throw invalid(`hold: token must match ${HOLD_TOKEN_RE.source}`)
  if (typeof p.index !== 'number' || !Number.isInteger(p.index) || p.index < 0 || p.index > 4095) throw invalid('hold: index must be an integer 0..4095')
  if (typeof p.maxHoldMs !== 'number' || !Number.isInteger(p.maxHoldMs) || p.maxHoldMs < 1 || p.maxHoldMs > MAX_HOLD_MS) throw invalid(`hold: maxHoldMs must be an integer 1..${MAX_HOLD_MS}`)
  return { token: p.token, index: p.index, maxHoldMs: p.maxHoldMs }
}

export async function holdSegment (raw: unknown): Promise<number> {
  const { token, index, maxHoldMs } = checkHoldPayload(raw)
  const dir = process.env[HOLD_DIR_ENV]
  if (dir === undefined || !isAbsolute(dir)) throw invalid(`hold: ${HOLD_DIR_ENV} must name an absolute directory in the worker's environment`)
  const marker = `${token}.started.${index}.${process.pid}.${randomBytes(4).toString('hex')}`
  await writeFile(join(dir, marker), JSON.stringify({ index, pid: process.pid, atMs: Date.now() }))
  const release = join(dir, `${token}.release`)
  const deadline = Date.now() + maxHoldMs
  for (;;) {
    try {
      await access(release)
      return holdValue(index)
    } catch { /* not released yet */ }
    if (Date.now() >= deadline) throw Object.assign(new Error(`hold: not released within ${maxHoldMs} ms`), { code: 'ERR_HOLD_TIMEOUT' })
    await new Promise(resolve => setTimeout(resolve, HOLD_POLL_MS))
  }
}

const holdTasks: TaskModule = {
  url: import.meta.url,
  kinds: [{ name: HOLD_TASK_KIND, batchable: false, run: holdSegment }]
}
export default holdTasks
