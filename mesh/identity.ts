/**
 * The node's persistent Ed25519 identity: `<dataDir>/peer.key` (libp2p protobuf encoding,
 * mode 0600). The same data dir always yields the same peerId, so a restarted Genesis keeps the
 * address members know it by.
 */
import { mkdir, readFile, writeFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { MeshError } from './errors.js'

const KEY_FILE = 'peer.key'
/** An Ed25519 key in protobuf form is 68 bytes; anything far larger is not a key file. */
const MAX_KEY_FILE_BYTES = 4096

export async function loadOrCreateIdentity (dataDir: string): Promise<PrivateKey> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const path = join(dataDir, KEY_FILE)
  let bytes: Buffer | undefined
  try {
    bytes = await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new MeshError('ERR_IDENTITY', `cannot read identity ${path}: ${(err as Error).message}`, { cause: err })
    }
  }
  if (bytes !== undefined) {
    if (bytes.length === 0 || bytes.length > MAX_KEY_FILE_BYTES) throw new MeshError('ERR_IDENTITY', `identity ${path} has an invalid size (${bytes.length} bytes)`)
    try {
      return privateKeyFromProtobuf(bytes)
    } catch (err) {
      throw new MeshError('ERR_IDENTITY', `identity ${path} is not a libp2p private key: ${(err as Error).message}`, { cause: err })
    }
  }
  const key = await generateKeyPair('Ed25519')
  // Write then rename so a crash never leaves a truncated key behind.
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, privateKeyToProtobuf(key), { mode: 0o600 })
  await rename(tmp, path)
  return key
}
