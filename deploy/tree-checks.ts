/**
 * Checks that the Dockerfile and tsconfig.json still describe the tree: CI has no Docker engine,
 * so a folder renamed or added without them would only break `docker build` on a user's machine.
 * Each check returns the problems it found, one sentence each, naming the file and line.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join, posix } from 'node:path'

export interface DockerCopy {
  line: number
  /** The stage copied from (`--from=`), or undefined for the build context. */
  from: string | undefined
  sources: string[]
  dest: string
}

export interface DockerStage {
  name: string | undefined
  workdir: string
  copies: DockerCopy[]
  runs: string[]
}

export interface Dockerfile {
  stages: DockerStage[]
  /** ENTRYPOINT in exec form, e.g. ['node', 'dist/node/cli.js']; [] when absent. */
  entrypoint: string[]
  /** WORKDIR of the last stage (where the entry point runs). */
  finalWorkdir: string
}

/** Joins continuation lines (`\`) and drops comments; keeps each instruction's first line number. */
function instructions (text: string): Array<{ line: number, keyword: string, args: string }> {
  const out: Array<{ line: number, keyword: string, args: string }> = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const start = i
    let body = lines[i].trim()
    if (body === '' || body.startsWith('#')) continue
    while (body.endsWith('\\') && i + 1 < lines.length) body = body.slice(0, -1) + ' ' + lines[++i].trim()
    const m = /^(\w+)\s+(.*)$/s.exec(body)
    if (m !== null) out.push({ line: start + 1, keyword: m[1].toUpperCase(), args: m[2].trim() })
  }
  return out
}

/** COPY arguments: flags, then sources and a destination, in shell or JSON (exec) form. */
function parseCopy (args: string, line: number): DockerCopy {
  let rest = args
  let from: string | undefined
  for (;;) {
    const flag = /^--([a-z-]+)(?:=(\S+))?\s+/.exec(rest)
    if (flag === null) break
    if (flag[1] === 'from') from = flag[2]
    rest = rest.slice(flag[0].length)
  }
  const words = rest.startsWith('[') ? JSON.parse(rest) as string[] : rest.split(/\s+/)
  return { line, from, sources: words.slice(0, -1), dest: words[words.length - 1] }
}

export function parseDockerfile (text: string): Dockerfile {
  const stages: DockerStage[] = []
  let entrypoint: string[] = []
  for (const ins of instructions(text)) {
    if (ins.keyword === 'FROM') {
      const m = /\s+AS\s+(\S+)\s*$/i.exec(ins.args)
      stages.push({ name: m?.[1], workdir: '/', copies: [], runs: [] })
      continue
    }
    const stage = stages[stages.length - 1]
    if (stage === undefined) continue
    if (ins.keyword === 'WORKDIR') stage.workdir = posix.resolve(stage.workdir, ins.args)
    else if (ins.keyword === 'COPY' || ins.keyword === 'ADD') stage.copies.push(parseCopy(ins.args, ins.line))
    else if (ins.keyword === 'RUN') stage.runs.push(ins.args)
    else if (ins.keyword === 'ENTRYPOINT') entrypoint = ins.args.startsWith('[') ? JSON.parse(ins.args) as string[] : ins.args.split(/\s+/)
  }
  return { stages, entrypoint, finalWorkdir: stages[stages.length - 1]?.workdir ?? '/' }
}

interface TsConfig { include?: string[], compilerOptions?: { outDir?: string } }

function readTsConfig (root: string): TsConfig {
  // tsconfig.json may hold comments; ours does not, and a parse error here is worth a failure.
  return JSON.parse(readFileSync(join(root, 'tsconfig.json'), 'utf8')) as TsConfig
}

/** The folder a glob starts from: `node/**\/*.ts` → `node`. */
export function globRoot (glob: string): string {
  const parts = glob.split('/')
  const i = parts.findIndex(p => /[*?[{]/.test(p))
  return (i < 0 ? parts : parts.slice(0, i)).join('/') || '.'
}

/** Top-level folders holding TypeScript sources (not node_modules, dist or hidden ones). */
export function sourceFolders (root: string): string[] {
  const hasTs = (dir: string): boolean => readdirSync(dir, { withFileTypes: true }).some(e =>
    e.isDirectory() ? e.name !== 'node_modules' && hasTs(join(dir, e.name)) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
  return readdirSync(root, { withFileTypes: true })
    .filter(e => e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules' && e.name !== 'dist' && hasTs(join(root, e.name)))
    .map(e => e.name)
    .sort()
}

/** tsconfig.json's include: every glob's folder exists, and every source folder is included. */
export function checkTsConfig (root: string): string[] {
  const problems: string[] = []
  const include = readTsConfig(root).include ?? []
  const roots = include.map(globRoot)
  for (const [i, r] of roots.entries()) {
    if (!existsSync(join(root, r))) problems.push(`tsconfig.json: include[${i}] ${JSON.stringify(include[i])}: folder ${r}/ does not exist`)
  }
  for (const dir of sourceFolders(root)) {
    if (!roots.some(r => r === '.' || r === dir || r.startsWith(`${dir}/`))) problems.push(`tsconfig.json: include lists no glob for the source folder ${dir}/`)
  }
  return problems
}

/**
 * The Dockerfile: every build-context COPY source exists; every `--from` source is made in that
 * stage (copied there, node_modules by `npm ci`, the compiler's outDir by the build); every
 * folder tsconfig.json compiles is copied into the stage that builds; the entry point's script
 * is compiled from a source that exists.
 */
export function checkDockerfile (root: string): string[] {
  const problems: string[] = []
  const df = parseDockerfile(readFileSync(join(root, 'Dockerfile'), 'utf8'))
  const ts = readTsConfig(root)
  const outDir = (ts.compilerOptions?.outDir ?? 'dist').replace(/^\.\//, '').replace(/\/$/, '')
  for (const stage of df.stages) {
    for (const c of stage.copies) {
      if (c.from !== undefined) continue
      for (const src of c.sources) {
        if (/[*?[]/.test(src)) problems.push(`Dockerfile:${c.line}: COPY ${src}: wildcards are not checked; name the paths`)
        else if (!existsSync(join(root, src))) problems.push(`Dockerfile:${c.line}: COPY ${src}: no such file or folder in the build context`)
      }
    }
  }
  const made = (stage: DockerStage): string[] => {
    const paths = stage.copies.map(c => posix.resolve(stage.workdir, c.dest.endsWith('/') && c.sources.length === 1 ? posix.join(c.dest, posix.basename(c.sources[0])) : c.dest))
    if (stage.runs.some(r => /\bnpm (ci|install)\b/.test(r))) paths.push(posix.join(stage.workdir, 'node_modules'))
    // `npm ci` runs the `prepare` script, which compiles (package.json).
    if (stage.runs.some(r => /\bnpm (ci|install|run build)\b|\btsc\b/.test(r))) paths.push(posix.join(stage.workdir, outDir))
    return paths
  }
  for (const stage of df.stages) {
    for (const c of stage.copies) {
      if (c.from === undefined) continue
      const src = df.stages.find(s => s.name === c.from)
      if (src === undefined) { problems.push(`Dockerfile:${c.line}: COPY --from=${c.from}: no stage of that name`); continue }
      const have = made(src)
      for (const s of c.sources) {
        const p = posix.resolve(src.workdir, s)
        if (!have.some(h => p === h || p.startsWith(`${h}/`))) problems.push(`Dockerfile:${c.line}: COPY --from=${c.from} ${s}: stage ${c.from} does not make it`)
      }
    }
  }
  const builder = df.stages.find(s => made(s).includes(posix.join(s.workdir, outDir)))
  if (builder === undefined) {
    problems.push('Dockerfile: no stage compiles the sources (npm ci / tsc)')
  } else {
    const copied = builder.copies.filter(c => c.from === undefined).map(c => ({ c, dest: posix.resolve(builder.workdir, c.dest) }))
    for (const dir of (ts.include ?? []).map(globRoot)) {
      const want = posix.resolve(builder.workdir, dir)
      const ok = copied.some(({ c, dest }) => (c.sources.includes(dir) && (dest === want || c.sources.length > 1)) || c.sources.includes('.'))
      if (!ok) problems.push(`Dockerfile: the build stage does not COPY ${dir}/, which tsconfig.json compiles`)
    }
  }
  const script = df.entrypoint.find(w => w.endsWith('.js'))
  if (script !== undefined) {
    const rel = posix.relative(posix.join(df.finalWorkdir, outDir), posix.resolve(df.finalWorkdir, script))
    const source = rel.replace(/\.js$/, '.ts')
    if (rel.startsWith('..') || !existsSync(join(root, source)) || !statSync(join(root, source)).isFile()) {
      problems.push(`Dockerfile: ENTRYPOINT ${script} is not compiled from any source (looked for ${source})`)
    }
  }
  return problems
}
