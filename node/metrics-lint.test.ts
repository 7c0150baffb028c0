import './polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { formatProblems, lintMetrics } from './metrics-lint.js'
import { promtoolCheck, findPromtool } from './metrics-check.js'

const CLEAN = `# HELP app_requests_total Requests served
# TYPE app_requests_total counter
app_requests_total{method="get",status="ok"} 3
# HELP app_queue_depth Items waiting
# TYPE app_queue_depth gauge
app_queue_depth 0
# HELP app_busy_ratio Share of time busy
# TYPE app_busy_ratio gauge
app_busy_ratio 0.5
# HELP app_latency_seconds Request latency
# TYPE app_latency_seconds histogram
app_latency_seconds_bucket{le="0.1"} 1
app_latency_seconds_bucket{le="1"} 2
app_latency_seconds_bucket{le="+Inf"} 2
app_latency_seconds_sum 0.6
app_latency_seconds_count 2
`

/** Each bad exposition and a piece of the message the lint must give; `promtool` marks promlint's own rules. */
const BAD: Array<{ what: string, text: string, message: RegExp, promtool: boolean }> = [
  { what: 'gauge ending in _total', text: '# HELP a_total x\n# TYPE a_total gauge\na_total 1\n', message: /non-counter metrics should not have "_total"/, promtool: true },
  { what: 'counter without _total', text: '# HELP a_requests x\n# TYPE a_requests counter\na_requests 1\n', message: /counter metrics should have "_total"/, promtool: true },
  { what: 'no HELP', text: '# TYPE a_total counter\na_total 1\n', message: /no HELP/, promtool: true },
  { what: 'non-base unit', text: '# HELP a_latency_milliseconds x\n# TYPE a_latency_milliseconds gauge\na_latency_milliseconds 1\n', message: /base unit "seconds"/, promtool: true },
  { what: 'abbreviated unit', text: '# HELP a_latency_ms x\n# TYPE a_latency_ms gauge\na_latency_ms 1\n', message: /base unit "seconds"/, promtool: true },
  { what: 'camelCase name', text: '# HELP a_fooBar x\n# TYPE a_fooBar gauge\na_fooBar 1\n', message: /snake_case/, promtool: true },
  { what: 'camelCase label', text: '# HELP a_x x\n# TYPE a_x gauge\na_x{peerId="p"} 1\n', message: /snake_case/, promtool: true },
  { what: 'colon in a name', text: '# HELP a:b x\n# TYPE a:b gauge\na:b 1\n', message: /":"/, promtool: true },
  { what: '_count on a gauge', text: '# HELP a_count x\n# TYPE a_count gauge\na_count 1\n', message: /should not have "_count"/, promtool: true },
  { what: 'type in the name', text: '# HELP a_gauge x\n# TYPE a_gauge gauge\na_gauge 1\n', message: /include type 'gauge'/, promtool: true },
  { what: 'duplicate family', text: '# HELP a x\n# TYPE a gauge\na 1\n# HELP a x\n# TYPE a gauge\na 2\n', message: /twice/, promtool: true },
  { what: 'duplicate sample', text: '# HELP a x\n# TYPE a gauge\na{b="1"} 1\na{b="1"} 2\n', message: /duplicate sample/, promtool: false },
  { what: 'reserved label', text: '# HELP a x\n# TYPE a gauge\na{__b="1"} 1\n', message: /reserved/, promtool: false },
  { what: 'sample with no TYPE', text: 'a 1\n', message: /without a TYPE/, promtool: false },
  { what: 'ratio not ending in _ratio', text: '# HELP pool_utilization x\n# TYPE pool_utilization gauge\npool_utilization 0.5\n', message: /_ratio/, promtool: false },
  { what: 'percent', text: '# HELP cpu_percent x\n# TYPE cpu_percent gauge\ncpu_percent 50\n', message: /ratio/, promtool: false },
  { what: 'histogram without +Inf', text: '# HELP h_seconds x\n# TYPE h_seconds histogram\nh_seconds_bucket{le="1"} 1\nh_seconds_sum 1\nh_seconds_count 1\n', message: /\+Inf/, promtool: false },
  { what: 'histogram not cumulative', text: '# HELP h_seconds x\n# TYPE h_seconds histogram\nh_seconds_bucket{le="1"} 2\nh_seconds_bucket{le="2"} 1\nh_seconds_bucket{le="+Inf"} 2\nh_seconds_sum 1\nh_seconds_count 2\n', message: /cumulative/, promtool: false },
  { what: 'negative counter', text: '# HELP a_total x\n# TYPE a_total counter\na_total -1\n', message: /negative/, promtool: false }
]

test('metrics lint: a clean exposition has no problems', () => {
  assert.deepEqual(lintMetrics(CLEAN), [])
})

for (const bad of BAD) {
  test(`metrics lint: flags ${bad.what}`, () => {
    const problems = lintMetrics(bad.text)
    assert.ok(problems.some(p => bad.message.test(p.message)), `expected ${String(bad.message)}; got:\n${formatProblems(problems)}`)
    assert.ok(problems.every(p => p.metric !== ''), 'each problem names its metric')
  })
}

test('metrics lint: a registry built with prom-client the project way passes', async () => {
  const registry = new Registry()
  new Counter({ name: 'x_events_total', help: 'events', labelNames: ['status'], registers: [registry] }).inc({ status: 'ok' }) // eslint-disable-line no-new
  new Gauge({ name: 'x_pool_utilization_ratio', help: 'busy share', registers: [registry] }).set(0.25) // eslint-disable-line no-new
  new Histogram({ name: 'x_task_duration_seconds', help: 'duration', labelNames: ['kind'], buckets: [0.1, 1], registers: [registry] }).observe({ kind: 'a' }, 0.5) // eslint-disable-line no-new
  const text = await registry.metrics()
  assert.deepEqual(lintMetrics(text), [], formatProblems(lintMetrics(text)))
})

const promtool = findPromtool()
test(`metrics lint agrees with promtool on promlint's rules${promtool === undefined ? ' (skipped: promtool not installed; the Debian package prometheus ships it)' : ''}`, { skip: promtool === undefined ? 'promtool not installed (apt-get install prometheus)' : false, timeout: 60_000 }, async () => {
  assert.equal((await promtoolCheck(CLEAN)).code, 0)
  for (const bad of BAD.filter(b => b.promtool)) {
    const r = await promtoolCheck(bad.text)
    assert.notEqual(r.code, 0, `promtool accepted ${bad.what}: ${r.output}`)
  }
})
