/**
 * The Dockerfile and tsconfig.json follow the tree (CI has no Docker engine to find out), and
 * `.ci/docker-build` builds the image only when a Docker engine answers.
 */
import '../node/polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { checkDockerfile, checkTsConfig, globRoot, parseDockerfile } from './tree-checks.js'

/** The repository (this file is dist/deploy/dockerfile.test.js). */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

test('every COPY source in the Dockerfile exists and every stage copy is made', () => {
  assert.deepEqual(checkDockerfile(ROOT), [])
})

test('tsconfig.json includes every source folder, and every folder it includes exists', () => {
  assert.deepEqual(checkTsConfig(ROOT), [])
})

test('the checks catch a missing folder, an uncopied source folder and a stage that makes nothing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'voike-tree-'))
  try {
    for (const d of ['node', 'store', 'extra']) {
      await mkdir(join(dir, d))
      await writeFile(join(dir, d, 'a.ts'), 'export {}\n')
    }
    await writeFile(join(dir, 'node', 'cli.ts'), 'export {}\n')
    await writeFile(join(dir, 'package.json'), '{}')
    await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { outDir: 'dist' }, include: ['node/**/*.ts', 'store/**/*.ts', 'gone/**/*.ts'] }))
    await writeFile(join(dir, 'Dockerfile'), [
      'FROM node:20 AS build', 'WORKDIR /app', 'COPY package.json ./', 'COPY node ./node', 'COPY vasm ./vasm', 'RUN npm ci',
      'FROM node:20-slim', 'WORKDIR /app', 'COPY --from=build /app/dist ./dist', 'COPY --from=build /app/proto ./proto',
      'COPY --from=nowhere /x ./x', 'ENTRYPOINT ["node", "dist/node/missing.js"]'
    ].join('\n'))
    assert.deepEqual(checkTsConfig(dir), [
      'tsconfig.json: include[2] "gone/**/*.ts": folder gone/ does not exist',
      'tsconfig.json: include lists no glob for the source folder extra/'
    ])
    assert.deepEqual(checkDockerfile(dir), [
      'Dockerfile:5: COPY vasm: no such file or folder in the build context',
      'Dockerfile:10: COPY --from=build /app/proto: stage build does not make it',
      'Dockerfile:11: COPY --from=nowhere: no stage of that name',
      'Dockerfile: the build stage does not COPY store/, which tsconfig.json compiles',
      'Dockerfile: the build stage does not COPY gone/, which tsconfig.json compiles',
      'Dockerfile: ENTRYPOINT dist/node/missing.js is not compiled from any source (looked for node/missing.ts)'
    ])
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('the Dockerfile parser: continuations, flags, exec form, stages', () => {
  const df = parseDockerfile('# c\nFROM a AS b\nWORKDIR /app\nCOPY --chown=x:y one \\\n  two ./\nRUN npm ci\nFROM c\nWORKDIR /w\nCOPY --from=b ["/app/one", "./one"]\nENTRYPOINT ["node", "x.js"]\n')
  assert.equal(df.stages.length, 2)
  assert.deepEqual(df.stages[0].copies[0], { line: 4, from: undefined, sources: ['one', 'two'], dest: './' })
  assert.deepEqual(df.stages[1].copies[0], { line: 9, from: 'b', sources: ['/app/one'], dest: './one' })
  assert.deepEqual(df.entrypoint, ['node', 'x.js'])
  assert.equal(df.finalWorkdir, '/w')
  assert.equal(globRoot('actors/**/*.ts'), 'actors')
  assert.equal(globRoot('a/b/*.ts'), 'a/b')
})

/** Runs .ci/docker-build with a fake `docker` first on PATH; returns its output and the fake's calls. */
async function dockerBuild (infoAnswers: boolean): Promise<{ code: number, out: string, calls: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'voike-docker-'))
  try {
    const log = join(dir, 'calls')
    await writeFile(log, '')
    await writeFile(join(dir, 'docker'), `#!/bin/sh\necho "$*" >> ${JSON.stringify(log)}\nif [ "$1" = info ]; then exit ${infoAnswers ? 0 : 1}; fi\nexit 0\n`)
    await chmod(join(dir, 'docker'), 0o755)
    const { code, out } = await new Promise<{ code: number, out: string }>((resolve) => {
      execFile('bash', [join(ROOT, '.ci', 'docker-build')], { env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` }, timeout: 30_000 }, (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, out: stdout + stderr })
      })
    })
    return { code, out, calls: (await readFile(log, 'utf8')).split('\n').filter(l => l !== '') }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

test('.ci/run builds the image only when a Docker engine answers', { timeout: 60_000 }, async () => {
  assert.ok(existsSync(join(ROOT, '.ci', 'docker-build')), '.ci/docker-build is missing')
  assert.match(await readFile(join(ROOT, '.ci', 'run'), 'utf8'), /^[^#\n]*\.ci\/docker-build/m, '.ci/run does not run .ci/docker-build')
  const none = await dockerBuild(false)
  assert.equal(none.code, 0, none.out)
  assert.match(none.out, /skipped: no Docker engine answers/)
  assert.deepEqual(none.calls, ['info'])
  const engine = await dockerBuild(true)
  assert.equal(engine.code, 0, engine.out)
  assert.equal(engine.calls[0], 'info')
  assert.match(engine.calls[1], /^build -t \S+ \S+$/)
  assert.match(engine.calls[2], /^run --rm \S+ help$/)
})
