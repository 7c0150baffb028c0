/**
 * The worker side of job kinds: task kinds, registered by module. A task kind is a synchronous or
 * async function of a structured-cloneable payload to a structured-cloneable (and msgpack-
 * encodable) value; it validates its own payload and throws errors with a `code`.
 *
 * Task kinds run inside Piscina threads, which cannot receive functions from the main thread, so
 * a kind's worker side is a *module*: its default export is a TaskModule naming its own URL. The
 * composition root gives the pool the modules; the pool registers their kinds on the main thread
 * (the worker actor rejects unknown kinds early and decides batching from them) and passes the
 * URLs to every thread, which imports the same modules (thread.ts). One list, both sides.
 */
export interface TaskKind {
  /** 1..64 characters `[a-z0-9_-]`, unique across modules (`fib-segment`). */
  readonly name: string
  /**
   * True for tiny tasks, which the worker actor packs many to one Piscina task (per-message
   * overhead dominates them). False for heavy ones, sent one per Piscina task so that all
   * threads share the work.
   */
  readonly batchable: boolean
  readonly run: (payload: unknown) => unknown
}

export interface TaskModule {
  /** The module's own URL (`import.meta.url`): threads import it to get the same kinds. */
  readonly url: string
  readonly kinds: readonly TaskKind[]
}

export type TaskRegistry = ReadonlyMap<string, TaskKind>

const TASK_NAME_RE = /^[a-z0-9_-]{1,64}$/

/** The kinds of `modules` by name; throws TypeError on a malformed module or a repeated name. */
export function createTaskRegistry (modules: readonly TaskModule[]): TaskRegistry {
  if (!Array.isArray(modules)) throw new TypeError('task modules: an array is needed')
  const map = new Map<string, TaskKind>()
  for (const m of modules) {
    if (typeof m !== 'object' || m === null || typeof m.url !== 'string' || !Array.isArray(m.kinds)) {
      throw new TypeError('task modules: each needs { url, kinds } (the default export of a task module)')
    }
    for (const k of m.kinds) {
      if (typeof k !== 'object' || k === null || typeof k.name !== 'string' || !TASK_NAME_RE.test(k.name)) {
        throw new TypeError(`task module ${m.url}: each kind needs a name matching ${TASK_NAME_RE.source}`)
      }
      if (typeof k.run !== 'function' || typeof k.batchable !== 'boolean') {
        throw new TypeError(`task kind ${k.name}: run must be a function and batchable a boolean`)
      }
      if (map.has(k.name)) throw new TypeError(`task kinds: ${k.name} is registered twice`)
      map.set(k.name, k)
    }
  }
  return map
}

/** Imports task modules by URL (inside a thread) and registers their kinds. */
export async function loadTaskModules (urls: readonly string[]): Promise<TaskRegistry> {
  const modules: TaskModule[] = []
  for (const url of urls) {
    const mod = await import(url) as { default?: TaskModule }
    if (mod.default === undefined) throw new TypeError(`task module ${url} has no default export`)
    modules.push(mod.default)
  }
  return createTaskRegistry(modules)
}
