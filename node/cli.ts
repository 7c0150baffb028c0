#!/usr/bin/env node
/**
 * `voike`: run nodes (genesis, node, up) and talk to them (mesh, job).
 * Exit status: 0 ok; 1 a job failed or was cancelled, or a runtime failure; 2 bad input.
 */
import './polyfill.js'
import { resolveConfig, ConfigError, NODE_FLAGS, type NodeFlag, type NodeRole } from '../config/index.js'
import { exitWith, parse, quietOnBrokenPipe, UsageError } from './cli-common.js'
import { runJob } from './cli-job.js'
import { runMesh } from './cli-mesh.js'
import { describeStartFailure } from './start-errors.js'
import { runUp } from './up.js'
import { vasmCommand, processIo } from './vasm-cli.js'
import { resolveTestKinds } from './kinds-for-tests.js'

const USAGE = `voike — a distributed actor grid

Nodes:
  voike genesis [--listen MA] [--api H:P] [--http H:P] [--data DIR] [--database-url URL] [--api-key K]
  voike node --genesis ADDR[,ADDR...] [same flags as genesis]
  voike up --nodes N [--demo] [--base-port P] [--data DIR] [--max-restarts K]
                                                  local grid: Genesis + N-1 supervised child processes

Clients (--api HOST:PORT, the node's gRPC address, default 127.0.0.1:50051; --api-key or VOIKE_API_KEY):
  voike mesh nodes [--json]                    the members: name (…short peer id), status, cores, address
  voike job submit fib --n N --segments S [--wait] [--json]
  voike job submit vasm --program FILE [--arg INT]... [--fuel N] [--wait] [--json]
  voike job submit vasm --program FILE --range START:END --segments S --reduce sum|min|max|list|summod:M [--arg INT]... [--wait] [--json]
  voike job submit KIND --params JSON [--wait] [--json]
                                               --wait: prints "job ID submitted" first, then a progress bar;
                                               Ctrl-C leaves the job running (exit 130)
  voike job get ID [--json]                    --json: the job object as GET /grid/jobs/ID gives it
  voike job watch ID [--json]                  --json: NDJSON, one progress object per change, then the job
  voike job cancel ID [--json]                 exit 0 when cancelled (now or before), 1 when it had ended otherwise
  voike job list [--status S] [--limit N] [--json]
                                               the cluster's jobs from any node, newest first; --status one of
                                               queued, running, succeeded, failed, cancelled; --limit 1-1000 (100)

FLOW:
  voike flow parse|plan FILE [--json]                 check and plan a flow (offline)
  voike flow explain FILE|NAME [--input ...] [--no-cache] [--resume RUN_ID] [--json]
  voike flow run FILE|NAME [--input name=value|name=@path]... [--json] [--no-cache] [--resume RUN_ID]
                                                      run on the node (NAME: a flow of its --flows DIR)

VASM (local, no node needed):
  voike vasm asm FILE -o OUT | vasm disasm FILE | vasm verify FILE
  voike vasm run FILE [--arg INT]... [--fuel N] [--engine interp|compiled] [--json]

Exit status: 0 ok; 1 a job failed or was cancelled, a node unreachable, a missing or wrong API key;
2 bad input (flags, parameters, unknown job); 130 interrupted while waiting.
`

/** A node stopping on SIGINT/SIGTERM exits 1 if its stop is not over by then (the README promises 5 s). */
const SHUTDOWN_GRACE_MS = 4500

const nodeOptions = Object.fromEntries(Object.keys(NODE_FLAGS).map(k => [k, { type: 'string' as const }]))

async function runNode (role: NodeRole, args: string[]): Promise<void> {
  const { values, positionals } = parse(args, nodeOptions)
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`)
  const config = resolveConfig(role, values as Partial<Record<NodeFlag, string>>)
  const testKinds = resolveTestKinds(process.env)
  // Imported late so that `voike job …` does not load libp2p.
  const { startNode } = await import('./node.js')
  let node: Awaited<ReturnType<typeof startNode>> | undefined
  const onFatal = (err: Error): void => {
    process.stderr.write(`voike ${role}: fatal: ${err.message}; stopping\n`)
    setTimeout(() => { process.exit(1) }, 4500).unref()
    void (node?.stop() ?? Promise.resolve()).finally(() => { process.exit(1) })
  }
  try {
    node = await startNode(config, { onFatal, testKinds })
  } catch (err) {
    const failure = describeStartFailure(err, config)
    exitWith(failure.code, `voike ${role}: failed to start: ${failure.message}`)
  }
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    // Clean shutdown must finish within 5 s; past that, leave anyway, but say so and fail: a
    // supervisor (and a test) must see that the stop hung, and where.
    setTimeout(() => {
      exitWith(1, `voike: shutdown hung: forced exit ${SHUTDOWN_GRACE_MS} ms after ${signal}, still in step: ${node.stopStep() ?? 'unknown'}`)
    }, SHUTDOWN_GRACE_MS).unref()
    node.stop().then(() => { process.exit(0) }, (err: Error) => { exitWith(1, `voike: shutdown failed: ${err.message}`) })
  }
  process.on('SIGINT', () => { stop('SIGINT') })
  process.on('SIGTERM', () => { stop('SIGTERM') })
  // Under `voike up` (node/supervisor.ts) stdin is a pipe from it: its end means `up` died
  // without stopping us (SIGKILL), and a node nobody supervises any more must not linger.
  if (process.env.VOIKE_STOP_WITH_PARENT === '1') {
    process.stdin.on('end', () => { stop('the end of voike up') })
    process.stdin.on('error', () => { stop('the end of voike up') })
    process.stdin.resume()
  }
  // Last: whoever reads the ready line may signal us at once, so the handlers come first.
  process.stdout.write(JSON.stringify({ event: 'ready', peerId: node.peerId, p2p: node.p2p, api: node.api, http: node.http, role, name: config.name }) + '\n')
}

async function main (argv: string[]): Promise<number | undefined> {
  const [cmd, ...rest] = argv
  quietOnBrokenPipe({ exit: cmd !== 'genesis' && cmd !== 'node' && cmd !== 'up' })
  switch (cmd) {
    case 'genesis': await runNode('genesis', rest); return undefined
    case 'node': await runNode('node', rest); return undefined
    case 'up': return await runUp(rest)
    case 'mesh': return await runMesh(rest)
    case 'job': return await runJob(rest)
    case 'vasm': return await vasmCommand(rest, processIo)
    case 'flow': return await (await import('./flow-main.js')).flowMain(rest)
    case undefined: case 'help': case '--help': case '-h':
      process.stdout.write(USAGE); return 0
    default: throw new UsageError(`unknown command ${JSON.stringify(cmd)}`)
  }
}

main(process.argv.slice(2)).then((code) => {
  if (code !== undefined) process.exitCode = code
}, (err: unknown) => {
  // The message names what is wrong; the whole usage would bury it.
  if (err instanceof ConfigError || err instanceof UsageError) exitWith(2, `voike: ${err.message}\n(\`voike help\` lists the commands and flags)`)
  exitWith(1, `voike: ${(err as Error).stack ?? String(err)}`)
})
