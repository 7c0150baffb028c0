/** Small helpers shared by the actor runtime's tests. */
import assert from 'node:assert/strict'

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

/** Polls `cond` until true or the deadline passes (no fixed sleeps as synchronization). */
export async function waitFor (cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 2))
  }
}
