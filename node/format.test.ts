/**
 * What people read (node/format.ts): nodes named one way (name and short peer id), durations
 * rounded one way (ms, one decimal), aligned tables, the progress line with elapsed time and an
 * estimate. The demo of `voike up` prints its segment table with formatSegments.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { formatJobList, formatMembers, formatMs, formatSegments, nodeLabel, progressLine, roundMs } from './format.js'
import type { JobView } from '../actors/scheduler/api.js'

const A = '12D3KooWHgK3YkmHoeDsujVgSyHnSCcQParUdDk2b9tn2Cbf1Nwn'
const B = '12D3KooWQmx1vR9y8mz1Ug4gzkhnQ3D6t4ZgZEoJqFqYyWAbCdEf'
const names = new Map([[A, 'genesis'], [B, 'node-4002']])

function job (over: Partial<JobView> = {}): JobView {
  return {
    id: 'Cbf1Nwn2-abc', kind: 'fib', status: 'succeeded', error: null, result: { n: 10 }, params: { n: 10, segments: 2 },
    coordinator: A, createdAtMs: Date.UTC(2026, 0, 2, 3, 4, 5), finishedAtMs: Date.UTC(2026, 0, 2, 3, 4, 6), segmentsDone: 2, segmentsTotal: 2,
    segments: [
      { index: 0, start: 0, end: 7, status: 'done', node: A, attempts: 1, lost: 0, ms: 0.43673199999830103 },
      { index: 1, start: 7, end: 10, status: 'done', node: B, attempts: 2, lost: 1, ms: 1210.46 }
    ],
    ...over
  }
}

describe('format', () => {
  it('names a node by name and short peer id, or the short id alone', () => {
    assert.equal(nodeLabel(A, names), 'genesis (…2Cbf1Nwn)')
    assert.equal(nodeLabel(B, new Map()), '…yWAbCdEf')
    assert.equal(nodeLabel(null, names), '-')
  })

  it('rounds durations one way: ms with one decimal', () => {
    assert.equal(formatMs(0.43673199999830103), '0.4 ms')
    assert.equal(formatMs(1210.46), '1210.5 ms')
    assert.equal(formatMs(null), '-')
    assert.equal(roundMs(0.46), 0.5)
    assert.equal(roundMs(2), 2)
  })

  it('segment tables (job get, job submit, the demo) name nodes and round ms', () => {
    const lines = formatSegments(job(), names).trimEnd().split('\n')
    assert.match(lines[0], /^segment\s+range\s+node\s+attempts\s+lost\s+ms$/)
    assert.match(lines[1], /^\s+0\s+\[0, 7\)\s+genesis \(…2Cbf1Nwn\)\s+1\s+0\s+0\.4$/)
    assert.match(lines[2], /^\s+1\s+\[7, 10\)\s+node-4002 \(…yWAbCdEf\)\s+2\s+1\s+1210\.5$/)
    assert.equal(lines[1].indexOf('genesis'), lines[2].indexOf('node-4002'))
  })

  it('job lists have a header and aligned columns', () => {
    const jobs = [job(), job({ id: 'x', kind: 'vasm', status: 'running', coordinator: B, segmentsDone: 1 })]
    const lines = formatJobList(jobs, names).trimEnd().split('\n')
    assert.match(lines[0], /^ID\s+KIND\s+STATUS\s+SEGMENTS\s+CREATED\s+COORDINATOR$/)
    for (const h of ['KIND', 'STATUS', 'SEGMENTS', 'CREATED', 'COORDINATOR']) {
      const at = lines[0].indexOf(h)
      for (const l of lines.slice(1)) assert.notEqual(l[at], ' ', `${h} column in ${JSON.stringify(l)}`)
    }
    assert.ok(lines[2].endsWith('node-4002 (…yWAbCdEf)'))
    assert.equal(formatJobList([], names), 'ID  KIND  STATUS  SEGMENTS  CREATED  COORDINATOR\n')
  })

  it('members are listed by name and short id', () => {
    const text = formatMembers([
      { peerId: A, name: 'genesis', status: 'alive', cores: 2, isGenesis: true, addrs: ['/ip4/127.0.0.1/tcp/4001'] },
      { peerId: B, status: 'dead', cores: 4, isGenesis: false, addrs: [] }
    ])
    assert.match(text, /^NODE\s+STATUS\s+CORES\s+ROLE\s+ADDRESS\n/)
    assert.match(text, /genesis \(…2Cbf1Nwn\)\s+alive\s+2\s+genesis\s+\/ip4/)
    assert.match(text, /…yWAbCdEf\s+dead\s+4\s+node\s+-/)
  })

  it('the progress line shows elapsed time and an estimate of what is left', () => {
    assert.equal(progressLine({ segmentsDone: 0, segmentsTotal: 4 }, 1500, 8), '[        ] 0/4 segments  elapsed 1500.0 ms')
    assert.equal(progressLine({ segmentsDone: 1, segmentsTotal: 4 }, 1000, 8), '[##      ] 1/4 segments  elapsed 1000.0 ms  ~3000.0 ms left')
    assert.equal(progressLine({ segmentsDone: 4, segmentsTotal: 4 }, 2000, 8), '[########] 4/4 segments  elapsed 2000.0 ms')
  })
})
