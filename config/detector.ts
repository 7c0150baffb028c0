/**
 * Failure-detector timings (issue 11 item 1): flags > environment > defaults, validated here so a
 * bad value is a ConfigError naming the flag or variable (the CLI exits 2). The node maps them to
 * the SWIM core's options (actors/membership/swim/options.ts, which re-checks them). The takeover
 * delay that follows the dead verdict is `takeoverAfterMs` in index.ts. The README ("Failure detection") lists the bounds they give.
 */
import { ConfigError } from './errors.js'

export interface DetectorConfig {
  /** One member probed per period; the unit of the suspicion timeout. Default 1000 ms. */
  probeIntervalMs: number
  /** A direct probe unanswered this long goes indirect. Default 500 ms; must be < probeIntervalMs. */
  probeTimeoutMs: number
  /** Members asked to probe on our behalf (SWIM's k). Default 3. */
  indirectProbes: number
  /** Minimum suspicion timeout = this × max(1, log10 N) × probeIntervalMs (Lifeguard). Default 4. */
  suspicionMult: number
  /** φ above this is own evidence against a member (Akka). Default 8. */
  phiThreshold: number
  /** Heartbeats to each monitored member this often (Akka). Default 1000 ms. */
  heartbeatIntervalMs: number
  /** Heartbeat silence tolerated on top of the mean interval (Akka). Default 3000 ms. */
  acceptablePauseMs: number
}

/** Flag → environment variable (merged into NODE_FLAGS). */
export const DETECTOR_FLAGS = {
  'probe-interval-ms': 'VOIKE_PROBE_INTERVAL_MS',
  'probe-timeout-ms': 'VOIKE_PROBE_TIMEOUT_MS',
  'indirect-probes': 'VOIKE_INDIRECT_PROBES',
  'suspicion-mult': 'VOIKE_SUSPICION_MULT',
  'phi-threshold': 'VOIKE_PHI_THRESHOLD',
  'heartbeat-interval-ms': 'VOIKE_HEARTBEAT_INTERVAL_MS',
  'acceptable-pause-ms': 'VOIKE_ACCEPTABLE_PAUSE_MS'
} as const

export type DetectorFlag = keyof typeof DETECTOR_FLAGS

export const DETECTOR_DEFAULTS: Readonly<DetectorConfig> = {
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  indirectProbes: 3,
  suspicionMult: 4,
  phiThreshold: 8,
  heartbeatIntervalMs: 1000,
  acceptablePauseMs: 3000
}

/** Each flag: its field, whether it is an integer, and its range. */
const TABLE: ReadonlyArray<{ flag: DetectorFlag, field: keyof DetectorConfig, integer: boolean, min: number, max: number }> = [
  { flag: 'probe-interval-ms', field: 'probeIntervalMs', integer: true, min: 50, max: 60_000 },
  { flag: 'probe-timeout-ms', field: 'probeTimeoutMs', integer: true, min: 10, max: 59_999 },
  { flag: 'indirect-probes', field: 'indirectProbes', integer: true, min: 0, max: 16 },
  { flag: 'suspicion-mult', field: 'suspicionMult', integer: true, min: 1, max: 100 },
  { flag: 'phi-threshold', field: 'phiThreshold', integer: false, min: 1, max: 100 },
  { flag: 'heartbeat-interval-ms', field: 'heartbeatIntervalMs', integer: true, min: 50, max: 60_000 },
  { flag: 'acceptable-pause-ms', field: 'acceptablePauseMs', integer: true, min: 0, max: 600_000 }
]

/** `pick` returns the raw value of a flag and where it came from (`--flag` or the variable). */
export function parseDetector (pick: (flag: DetectorFlag) => { value: string, source: string } | undefined): DetectorConfig {
  const out: DetectorConfig = { ...DETECTOR_DEFAULTS }
  for (const row of TABLE) {
    const got = pick(row.flag)
    if (got === undefined) continue
    const t = got.value.trim()
    const ok = row.integer ? /^\d+$/.test(t) : /^(\d+(\.\d*)?|\.\d+)$/.test(t)
    if (!ok) throw new ConfigError(got.source, `expected ${row.integer ? 'an integer' : 'a number'}, got ${JSON.stringify(got.value)}`)
    const n = Number(t)
    if (n < row.min || n > row.max) throw new ConfigError(got.source, `${n} is out of range ${row.min}-${row.max}`)
    out[row.field] = n
  }
  if (out.probeTimeoutMs >= out.probeIntervalMs) {
    const src = pick('probe-timeout-ms')?.source ?? pick('probe-interval-ms')?.source ?? '--probe-timeout-ms'
    throw new ConfigError(src, `the probe timeout (${out.probeTimeoutMs} ms) must be below the probe interval (${out.probeIntervalMs} ms)`)
  }
  return out
}
