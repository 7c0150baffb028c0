import '../node/polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  defineBench, figureKey, formatNumber, formatTable, median, medianOrNull, parseCli, pending, percentile,
  runBench, type BenchDefinition, type CliOptions, type SystemSpec
} from './harness.js'
import { PAYLOAD_BYTES, FrameBatcher, U32FrameDecoder, decodeEcho, echoReply, encodeEcho, u32Frame, varintFrame } from './echo.js'

const options = (over: Partial<CliOptions> = {}): CliOptions => ({ ...parseCli([]), ...over })

test('percentile is nearest-rank', { timeout: 120_000 }, () => {
  const s = Array.from({ length: 100 }, (_, i) => i + 1)
  assert.equal(percentile(s, 50), 50)
  assert.equal(percentile(s, 99), 99)
  assert.equal(percentile(s, 100), 100)
  assert.equal(percentile([7], 99), 7)
  assert.equal(percentile([1, 2, 3], 50), 2)
  assert.throws(() => percentile([], 50), { code: 'ERR_NO_SAMPLES' })
  assert.throws(() => percentile([1], 0), { code: 'ERR_BAD_OPTION' })
})

test('median and medianOrNull', { timeout: 120_000 }, () => {
  assert.equal(median([3, 1, 2]), 2)
  assert.equal(median([4, 1, 3, 2]), 2.5)
  assert.equal(medianOrNull([null, 5, null, 1, 3]), 3)
  assert.equal(medianOrNull([null, null]), null)
})

test('parseCli reads flags and names the bad one', { timeout: 120_000 }, () => {
  const o = parseCli(['--quick', '--json', '--only', 'remoteTasks,localTasks', '--repeats', '4', '--threads', '3'])
  assert.equal(o.quick, true)
  assert.equal(o.json, true)
  assert.deepEqual(o.only, ['remoteTasks', 'localTasks'])
  assert.equal(o.repeats, 4)
  assert.equal(o.threads, 3)
  assert.equal(parseCli(['--out', '/tmp/x.json']).jsonPath, '/tmp/x.json')
  assert.throws(() => parseCli(['--fast']), /unknown flag --fast/)
  assert.throws(() => parseCli(['--repeats', '0']), /--repeats/)
  assert.throws(() => parseCli(['--only']), /--only/)
})

test('defineBench rejects inconsistent definitions', { timeout: 120_000 }, () => {
  const base = (): BenchDefinition => ({
    name: 'x', title: 'X', description: '', repeats: 1, quickRepeats: 1,
    metrics: { m: { label: 'm', unit: 'u' } },
    systems: { voike: pending('VOIKE', ['m']) }
  })
  assert.throws(() => defineBench({ ...base(), name: 'Bad-Name' }), { code: 'ERR_BAD_BENCH' })
  assert.throws(() => defineBench({ ...base(), systems: { peer: pending('P', ['m']) } }), /no system named voike/)
  assert.throws(() => defineBench({ ...base(), systems: { voike: pending('VOIKE', ['nope']) } }), /undeclared metric nope/)
  assert.throws(() => defineBench({ ...base(), ratios: [{ key: 'r', metric: 'm', vs: 'ghost' }] }), /unknown system ghost/)
})

/** A system returning scripted values per round and logging the order it was called in. */
function scripted (name: string, order: string[], perRound: Array<Record<string, number>>, closed: string[]): SystemSpec {
  return {
    label: name,
    metrics: Object.keys(perRound[0]!),
    start: async () => ({
      measure: async (ctx) => {
        order.push(`${name}${ctx.round}`)
        if (ctx.round < 0) return { ...perRound[0]!, ...Object.fromEntries(Object.keys(perRound[0]!).map((k) => [k, 1e9])) }
        const v = perRound[ctx.round]
        if (v === undefined) throw new Error(`${name} broke in round ${ctx.round}`)
        return v
      },
      info: () => ({ note: name }),
      close: async () => { closed.push(name) }
    })
  }
}

test('runBench alternates systems, takes medians and per-round ratios, checks targets', { timeout: 120_000 }, async () => {
  const order: string[] = []
  const closed: string[] = []
  const def: BenchDefinition = {
    name: 'sample', title: 'Sample', description: 'd', repeats: 3, quickRepeats: 1, warmupRounds: 1,
    metrics: { perSec: { label: 'throughput', unit: 'msg/s' }, rttUs: { label: 'rtt', unit: 'µs' } },
    systems: {
      voike: scripted('voike', order, [{ perSec: 300, rttUs: 10 }, { perSec: 100, rttUs: 30 }, { perSec: 200, rttUs: 20 }], closed),
      peer: scripted('peer', order, [{ perSec: 100, rttUs: 10 }, { perSec: 100, rttUs: 10 }, { perSec: 100, rttUs: 10 }], closed)
    },
    ratios: [
      { key: 'ratioVsPeer', metric: 'perSec', vs: 'peer', target: { op: '>=', value: 1.5 } },
      { key: 'rttRatioVsPeer', metric: 'rttUs', vs: 'peer', target: { op: '<=', value: 1.5 } },
      { key: 'speedup', metric: 'rttUs', vs: 'peer', invert: true }
    ],
    targets: { rttUs: { op: '<=', value: 25 } }
  }
  const { section, failed } = await runBench(def, options(), () => {})
  assert.equal(failed, false)
  assert.deepEqual(order, ['voike-1', 'peer-1', 'voike0', 'peer0', 'voike1', 'peer1', 'voike2', 'peer2'])
  assert.deepEqual(closed.sort(), ['peer', 'voike'])
  assert.equal(section.voikePerSec, 200)
  assert.deepEqual(section.repeats.voikePerSec, [300, 100, 200])
  assert.equal(section.peerPerSec, 100)
  assert.equal(section.ratioVsPeer, 2)
  assert.deepEqual(section.repeats.speedup, [1, 0.333, 0.5])
  assert.equal(section.speedup, 0.5)
  assert.deepEqual(section.targets.ratioVsPeer, { op: '>=', value: 1.5, met: true })
  assert.deepEqual(section.targets.rttRatioVsPeer, { op: '<=', value: 1.5, met: false })
  assert.deepEqual(section.targets.voikeRttUs, { op: '<=', value: 25, met: true })
  assert.deepEqual(section.systems.peer, { label: 'peer', status: 'measured', info: { note: 'peer' } })
  assert.equal(section.voike, undefined)
  assert.equal((section.config as { repeats: number }).repeats, 3)
})

test('runBench: pending ours gives null figures; a failing peer is recorded, closed and skipped', { timeout: 120_000 }, async () => {
  const order: string[] = []
  const closed: string[] = []
  const def: BenchDefinition = {
    name: 'other', title: 'Other', description: 'd', repeats: 3, quickRepeats: 2,
    metrics: { perSec: { label: 'throughput', unit: 'msg/s' } },
    systems: {
      voike: pending('VOIKE', ['perSec']),
      flaky: scripted('flaky', order, [{ perSec: 5 }], closed),
      steady: scripted('steady', order, [{ perSec: 7 }, { perSec: 9 }], closed)
    },
    ratios: [{ key: 'ratioVsSteady', metric: 'perSec', vs: 'steady', target: { op: '>=', value: 1 } }]
  }
  const { section, failed } = await runBench(def, options({ quick: true }), () => {})
  assert.equal(failed, true)
  assert.deepEqual(order, ['flaky0', 'steady0', 'flaky1', 'steady1'])
  assert.deepEqual(closed.sort(), ['flaky', 'steady'])
  assert.equal(section.voike, 'pending integration')
  assert.equal(section.voikePerSec, null)
  assert.deepEqual(section.repeats.voikePerSec, [null, null])
  assert.equal(section.flakyPerSec, 5)
  assert.equal(section.steadyPerSec, 8)
  assert.equal(section.ratioVsSteady, null)
  assert.deepEqual(section.targets.ratioVsSteady, { op: '>=', value: 1, met: null })
  assert.equal(section.systems.flaky!.status, 'failed')
  assert.match((section.errors as Record<string, string>).flaky!, /broke in round 1/)
  const table = formatTable({ meta: {}, sections: { other: section }, definitions: [def], failed })
  assert.match(table, /\| Other: throughput \(msg\/s\) \| pending \| flaky 5\.00; steady 8\.00 \| ×— vs steady \| ≥ 1× steady \| pending \|/)
})

test('figureKey and formatNumber', { timeout: 120_000 }, () => {
  assert.equal(figureKey('rawLibp2p', 'rttP50Us'), 'rawLibp2pRttP50Us')
  assert.equal(formatNumber(40532), '40.5k')
  assert.equal(formatNumber(206000), '206k')
  assert.equal(formatNumber(145.3), '145')
  assert.equal(formatNumber(3.14159), '3.14')
  assert.equal(formatNumber(null), '—')
})

test('echo messages are exactly 100 bytes and survive the round trip', { timeout: 120_000 }, () => {
  for (const id of [2 ** 24, 2 ** 31, 2 ** 32 - 1]) {
    const bytes = encodeEcho(id)
    assert.equal(bytes.length, PAYLOAD_BYTES)
    assert.equal(decodeEcho(echoReply(bytes)).i, id)
  }
  assert.throws(() => decodeEcho(encodeEcho(2 ** 24).subarray(0, 1)))
})

test('frame codecs split coalesced and fragmented input', { timeout: 120_000 }, () => {
  const payloads = [encodeEcho(2 ** 24), encodeEcho(2 ** 24 + 1), new Uint8Array(300).fill(7)]
  const stream = Buffer.concat(payloads.map(u32Frame))
  const got: Buffer[] = []
  const d = new U32FrameDecoder()
  for (let i = 0; i < stream.length; i += 37) d.push(stream.subarray(i, i + 37), (f) => got.push(Buffer.from(f)))
  assert.deepEqual(got.map((b) => [...b]), payloads.map((p) => [...p]))
  const v = varintFrame(new Uint8Array(300))
  assert.deepEqual([...v.subarray(0, 2)], [0xac, 0x02])
  assert.equal(v.length, 302)
})

test('FrameBatcher coalesces and waits for drain', { timeout: 120_000 }, async () => {
  const sent: number[] = []
  let release!: () => void
  let accept = false
  const b = new FrameBatcher((buf) => { sent.push(buf.length); return accept }, async () => {
    await new Promise<void>((resolve) => { release = resolve })
  })
  b.push(new Uint8Array(3), false)
  b.push(new Uint8Array(4), false)
  b.flush()
  assert.deepEqual(sent, [7])
  b.push(new Uint8Array(5), false)
  b.flush() // blocked until drain
  assert.deepEqual(sent, [7])
  accept = true
  release()
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(sent, [7, 5])
})
