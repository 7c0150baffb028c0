/**
 * Flow inputs: checking given values against the INPUTS declarations, file inputs (read through
 * an injectable file system, hashed by content for step keys), and the file system port itself.
 */
import { createReadStream } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { basename } from 'node:path'
import { FlowError } from './errors.js'
import type { InputDecl } from './ast.js'
import { canonical, sha256 } from './values.js'

/** What flows need from a file system; node:fs by default, a fake in tests. */
export interface FlowFs {
  readFile: (path: string, options: { signal?: AbortSignal, maxBytes: number }) => Promise<Uint8Array>
  /** The file in chunks (for streaming LOAD CSV and hashing). */
  readStream: (path: string, options: { signal?: AbortSignal, maxBytes: number }) => AsyncIterable<Uint8Array>
}

function tooBig (path: string, maxBytes: number): FlowError {
  return new FlowError('ERR_LIMIT', `${path} is larger than maxFileBytes (${maxBytes})`)
}

export const nodeFs: FlowFs = {
  async readFile (path, o) {
    const s = await stat(path).catch((e: NodeJS.ErrnoException) => { throw new FlowError('ERR_INPUT', `cannot read ${path}: ${e.code ?? e.message}`) })
    if (s.size > o.maxBytes) throw tooBig(path, o.maxBytes)
    return await readFile(path, { signal: o.signal })
  },
  readStream (path, o) {
    return (async function * () {
      let total = 0
      const rs = createReadStream(path, { highWaterMark: 1 << 20, signal: o.signal })
      try {
        for await (const chunk of rs as AsyncIterable<Buffer>) {
          total += chunk.length
          if (total > o.maxBytes) throw tooBig(path, o.maxBytes)
          yield chunk
        }
      } catch (e) {
        const err = e as NodeJS.ErrnoException
        if (err.code === 'ENOENT' || err.code === 'EACCES' || err.code === 'EISDIR') throw new FlowError('ERR_INPUT', `cannot read ${path}: ${err.code}`)
        throw e
      } finally { rs.destroy() }
    })()
  }
}

/** A file input: a path read through FlowFs, or bytes given directly. */
export class FileValue {
  private hash: string | null = null
  constructor (readonly name: string, readonly path: string | null, readonly content: Uint8Array | null, private readonly fs: FlowFs) {}

  chunks (o: { signal?: AbortSignal, maxBytes: number }): AsyncIterable<Uint8Array> {
    if (this.content !== null) {
      if (this.content.length > o.maxBytes) throw tooBig(this.name, o.maxBytes)
      const c = this.content
      return (async function * () { yield c })()
    }
    return this.fs.readStream(this.path!, o)
  }

  async bytes (o: { signal?: AbortSignal, maxBytes: number }): Promise<Uint8Array> {
    if (this.content !== null) {
      if (this.content.length > o.maxBytes) throw tooBig(this.name, o.maxBytes)
      return this.content
    }
    return await this.fs.readFile(this.path!, o)
  }

  /** SHA-256 of the content (memoized: one run reads a file for its key once). */
  async sha256 (o: { signal?: AbortSignal, maxBytes: number }): Promise<string> {
    if (this.hash !== null) return this.hash
    const h = createHash('sha256')
    for await (const c of this.chunks(o)) h.update(c)
    this.hash = h.digest('hex')
    return this.hash
  }

  toJSON (): Record<string, unknown> { return { file: this.name, path: this.path } }
  toText (): string { return this.path ?? this.name }
}

const TYPE_HINT: Record<string, string> = {
  file: 'a path, {path}, or {content}',
  text: 'a string',
  number: 'a number',
  bool: 'true or false',
  json: 'any JSON value',
  table: 'an array of objects',
  blob: 'a blob id string'
}

function bad (d: InputDecl, got: unknown): FlowError {
  return new FlowError('ERR_INPUT', `input ${d.name} (${d.type}, line ${d.line}) needs ${TYPE_HINT[d.type]!}, got ${JSON.stringify(got)?.slice(0, 60) ?? typeof got}`, { line: d.line, col: d.col, text: d.name })
}

/** Checks `given` against the declarations; missing optional inputs are null. */
export function normalizeInputs (decls: readonly InputDecl[], given: Record<string, unknown>, fs: FlowFs): Map<string, unknown> {
  const out = new Map<string, unknown>()
  const declared = new Set(decls.map(d => d.name))
  for (const k of Object.keys(given)) {
    if (!declared.has(k)) throw new FlowError('ERR_INPUT', `unknown input ${JSON.stringify(k)}`, { hint: decls.length === 0 ? 'this flow declares no inputs' : `inputs are ${[...declared].join(', ')}` })
  }
  for (const d of decls) {
    const v = given[d.name]
    if (v === undefined || v === null) {
      if (!d.optional) throw new FlowError('ERR_INPUT', `missing input ${d.name} (${d.type}, declared on line ${d.line})`, { line: d.line, col: d.col, text: d.name, hint: `pass --input ${d.name}=${d.type === 'file' ? '@path' : 'value'}` })
      out.set(d.name, null)
      continue
    }
    out.set(d.name, checkInput(d, v, fs))
  }
  return out
}

function checkInput (d: InputDecl, v: unknown, fs: FlowFs): unknown {
  switch (d.type) {
    case 'file': {
      if (v instanceof FileValue) return v
      if (typeof v === 'string') return new FileValue(basename(v), v, null, fs)
      if (v instanceof Uint8Array) return new FileValue(d.name, null, v, fs)
      if (typeof v === 'object' && v !== null) {
        const o = v as { path?: unknown, content?: unknown, name?: unknown }
        const name = typeof o.name === 'string' ? o.name : d.name
        if (typeof o.path === 'string') return new FileValue(basename(o.path), o.path, null, fs)
        if (typeof o.content === 'string') return new FileValue(name, null, Buffer.from(o.content, 'utf8'), fs)
        if (o.content instanceof Uint8Array) return new FileValue(name, null, o.content, fs)
      }
      throw bad(d, v)
    }
    case 'text': case 'blob': if (typeof v !== 'string') throw bad(d, v); return v
    case 'number': if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(d, v); return v
    case 'bool': if (typeof v !== 'boolean') throw bad(d, v); return v
    case 'json': return v
    case 'table':
      if (!Array.isArray(v) || v.some(r => typeof r !== 'object' || r === null || Array.isArray(r))) throw bad(d, v)
      return v
  }
}

/** An input's part of step keys: files by content, other values by canonical JSON. */
export async function inputKey (v: unknown, o: { signal?: AbortSignal, maxBytes: number }): Promise<string> {
  if (v instanceof FileValue) return 'file:' + await v.sha256(o)
  return 'value:' + sha256(canonical(v))
}

/** Turns a CLI `name=value` into a typed input value (`name=@path` reads the file for non-file types). */
export async function inputFromCli (d: InputDecl, raw: string, fs: FlowFs, maxBytes: number): Promise<unknown> {
  let text = raw
  if (raw.startsWith('@')) {
    if (d.type === 'file') return raw.slice(1)
    text = Buffer.from(await fs.readFile(raw.slice(1), { maxBytes })).toString('utf8')
  } else if (d.type === 'file') {
    return raw
  }
  switch (d.type) {
    case 'text': case 'blob': return text
    case 'number': {
      const n = Number(text.trim())
      if (text.trim() === '' || !Number.isFinite(n)) throw new FlowError('ERR_INPUT', `input ${d.name} needs a number, got ${JSON.stringify(text)}`)
      return n
    }
    case 'bool':
      if (text.trim() === 'true') return true
      if (text.trim() === 'false') return false
      throw new FlowError('ERR_INPUT', `input ${d.name} needs true or false, got ${JSON.stringify(text)}`)
    case 'json': case 'table':
      try { return JSON.parse(text) } catch (e) { throw new FlowError('ERR_INPUT', `input ${d.name} is not valid JSON: ${(e as Error).message}`) }
  }
}
