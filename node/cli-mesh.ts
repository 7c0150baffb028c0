/**
 * `voike mesh nodes`: the cluster's members as a node sees them.
 */
import { clientFrom, clientOptions, failWith, parse, UsageError } from './cli-common.js'
import { formatMembers } from './format.js'

export async function runMesh (args: string[]): Promise<number> {
  const [sub, ...rest] = args
  if (sub !== 'nodes') throw new UsageError(`unknown mesh command ${JSON.stringify(sub ?? '')}; expected nodes`)
  const { values } = parse(rest, clientOptions)
  const client = clientFrom(values)
  try {
    const nodes = await client.listNodes()
    if (values.json === true) process.stdout.write(JSON.stringify(nodes) + '\n')
    else process.stdout.write(formatMembers(nodes))
    return 0
  } catch (err) { return await failWith(err, client) } finally { client.close() }
}
