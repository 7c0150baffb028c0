/**
 * `voike flow ...` as the CLI runs it: parse, plan offline; run and explain on a node (gRPC,
 * `--api HOST:PORT`, default VOIKE_API or 127.0.0.1:50051; `--api-key` or VOIKE_API_KEY).
 * Ctrl-C cancels the run on the node (and its grid jobs); a second Ctrl-C leaves at once.
 */
import { parseHostPort } from '../config/index.js'
import { FlowError } from '../flows/index.js'
import { flowCommand } from './flow-cli.js'
import { remoteRunner } from './flow-remote.js'

export async function flowMain (argv: readonly string[]): Promise<number> {
  const args = [...argv]
  let apiKey = process.env.VOIKE_API_KEY
  const k = args.findIndex(a => a === '--api-key' || a.startsWith('--api-key='))
  if (k >= 0) {
    apiKey = args[k].includes('=') ? args[k].slice('--api-key='.length) : args[k + 1]
    args.splice(k, args[k].includes('=') ? 1 : 2)
  }
  const ac = new AbortController()
  let interrupts = 0
  const onSigint = (): void => {
    if (++interrupts > 1) process.exit(130)
    process.stderr.write('\nvoike flow: cancelling the run (Ctrl-C again to leave now)…\n')
    ac.abort(new Error('interrupted'))
  }
  process.on('SIGINT', onSigint)
  const runners: Array<{ close: () => void }> = []
  try {
    return await flowCommand(args, {
      stdout: (t) => { process.stdout.write(t) },
      stderr: (t) => { process.stderr.write(t) },
      isTTY: process.stderr.isTTY === true,
      signal: ac.signal
    }, {
      runner: ({ api }) => {
        const address = api ?? process.env.VOIKE_API ?? '127.0.0.1:50051'
        try { parseHostPort(address, '--api') } catch (e) { throw new FlowError('ERR_BAD_OPTION', (e as Error).message) }
        const r = remoteRunner({ address, apiKey })
        runners.push(r)
        return r
      }
    })
  } finally {
    process.off('SIGINT', onSigint)
    for (const r of runners) r.close()
  }
}
