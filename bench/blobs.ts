/**
 * BlobGrid core figures on one core: Reed-Solomon 4+2 encode and decode, SHA-256, the chunk
 * store's durable put and verified get on the local disk, rendezvous placement.
 *
 *   node dist/bench/blobs.js [--mib 64] [--repeats 3] [--dir PATH]
 *
 * Prints one JSON object on stdout; each figure is the median of `repeats` rounds (all rounds
 * under `rounds`). MB = 10^6 bytes; rates count *data* bytes (parity is extra work, not extra
 * throughput). Target from issue 13: encode ≥ 200 MB/s.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir, cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { createReedSolomon, type MaybeShard } from '../actors/blobs/reed-solomon.js'
import { openChunkStore } from '../actors/blobs/chunk-store.js'
import { owners } from '../actors/blobs/rendezvous.js'

const CHUNK = 1 << 20
const ENCODE_TARGET_MBPS = 200

function flag (name: string, fallback: number): number {
  const i = process.argv.indexOf(name)
  if (i === -1) return fallback
  const v = Number(process.argv[i + 1])
  if (!Number.isInteger(v) || v < 1 || v > 4096) {
    process.stderr.write(`blobs bench: ${name} must be an integer in 1..4096\n`)
    process.exit(2)
  }
  return v
}

function median (xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

const mbps = (bytes: number, ms: number): number => Math.round(bytes / 1e6 / (ms / 1000))

function timeMs (fn: () => void): number {
  const t = process.hrtime.bigint()
  fn()
  return Number(process.hrtime.bigint() - t) / 1e6
}

async function timeMsAsync (fn: () => Promise<void>): Promise<number> {
  const t = process.hrtime.bigint()
  await fn()
  return Number(process.hrtime.bigint() - t) / 1e6
}

async function main (): Promise<void> {
  const mib = flag('--mib', 64)
  const repeats = flag('--repeats', 3)
  const dirIdx = process.argv.indexOf('--dir')
  const baseDir = dirIdx === -1 ? tmpdir() : process.argv[dirIdx + 1]
  const total = mib << 20
  const chunks = Array.from({ length: total / CHUNK }, () => new Uint8Array(randomBytes(CHUNK)))
  const rs = createReedSolomon({ dataShards: 4, parityShards: 2 })
  // Shards as the shard actor holds them: one split per chunk, kept for the decode rounds.
  const stripes = chunks.map((c) => rs.split(c))

  const rounds: Record<string, number[]> = { encode: [], splitEncode: [], decode2Lost: [], sha256: [], storePut: [], storeGet: [], ownersPerSec: [] }
  for (let r = 0; r < repeats; r++) {
    // encode: parity of ready data shards (the codec's loop alone).
    rounds.encode.push(mbps(total, timeMs(() => { for (const s of stripes) rs.encode(s) })))
    // split + encode: allocate shards, copy the chunk in, encode (what a put does per chunk).
    rounds.splitEncode.push(mbps(total, timeMs(() => { for (const c of chunks) rs.split(c) })))
    // decode with two data shards lost (the worst case: both need the inverted matrix).
    rounds.decode2Lost.push(mbps(total, timeMs(() => {
      for (const s of stripes) {
        const lost: MaybeShard[] = s.slice()
        lost[0] = null
        lost[2] = null
        rs.reconstruct(lost, { dataOnly: true })
      }
    })))
    rounds.sha256.push(mbps(total, timeMs(() => { for (const c of chunks) createHash('sha256').update(c).digest() })))

    const dir = await mkdtemp(join(baseDir, 'voike-blobs-bench-'))
    try {
      const store = await openChunkStore({ dir, quotaBytes: total * 2 })
      const hashes: string[] = []
      rounds.storePut.push(mbps(total, await timeMsAsync(async () => { for (const c of chunks) hashes.push(await store.put(c)) })))
      rounds.storeGet.push(mbps(total, await timeMsAsync(async () => { for (const h of hashes) await store.get(h) })))
      await store.close()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }

    const members = Array.from({ length: 10 }, (_, i) => `peer-${i}`)
    const keys = 20_000
    const ms = timeMs(() => { for (let i = 0; i < keys; i++) owners(`key-${i}-${r}`, members, 6) })
    rounds.ownersPerSec.push(Math.round(keys / (ms / 1000)))
  }

  const encode = median(rounds.encode)
  const out = {
    bench: 'blobs',
    dataMiB: mib,
    chunkSizeBytes: CHUNK,
    repeats,
    cpus: cpus().length,
    loadAverage1m: loadavg()[0],
    rs: '4+2',
    encodeMBps: encode,
    splitEncodeMBps: median(rounds.splitEncode),
    decode2LostMBps: median(rounds.decode2Lost),
    sha256MBps: median(rounds.sha256),
    storePutMBps: median(rounds.storePut),
    storeGetVerifiedMBps: median(rounds.storeGet),
    ownersPerSec10Members6Owners: median(rounds.ownersPerSec),
    targets: { encodeMBps: ENCODE_TARGET_MBPS, encodeMet: encode >= ENCODE_TARGET_MBPS },
    rounds
  }
  process.stdout.write(JSON.stringify(out, null, 2) + '\n')
}

main().catch((e) => {
  process.stderr.write(`blobs bench failed: ${(e as Error).stack ?? String(e)}\n`)
  process.exit(1)
})
