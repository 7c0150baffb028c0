/**
 * Phi-accrual failure detector for one peer (Hayashibara et al. 2004, as Akka implements it).
 *
 * The detector keeps a bounded window of heartbeat inter-arrival times. At time t, with Δt the
 * silence since the last heartbeat, it answers φ = −log10(1 − F(Δt)), F being the CDF of a normal
 * distribution with the window's mean (plus `acceptableHeartbeatPauseMs`) and standard deviation
 * (at least `minStdDeviationMs`). φ = 1 means a 10 % chance that the silence is normal, φ = 8 one in
 * 10^8. The caller suspects the peer when φ exceeds its threshold.
 *
 * Numerics: the normal CDF has no closed form and 1 − F(Δt) underflows long before φ gets large.
 * Akka (and we) use the logistic approximation of the normal CDF (Bowling et al. 2009,
 * "A logistic approximation to the cumulative normal distribution", max error 1.4e-4):
 *   F(y) ≈ 1 / (1 + e^(−y·(1.5976 + 0.070566·y²))),   y = (Δt − mean) / σ
 * and compute 1 − F directly as e/(1 + e) (with e = e^(−y·(…))) in the upper tail, so φ stays finite
 * and monotonic in Δt instead of jumping to Infinity when F rounds to 1.
 *
 * No I/O, no clock: every call takes the caller's `nowMs`.
 */
import assert from 'node:assert/strict'

export interface PhiOptions {
  /** Expected heartbeat period; also the first-heartbeat estimate's mean. Default 1000 ms. */
  heartbeatIntervalMs: number
  /** φ above this means "suspect". Default 8 (Akka). */
  threshold: number
  /** Floor of the standard deviation, so perfectly regular heartbeats do not make φ razor-sharp. Default 100 ms. */
  minStdDeviationMs: number
  /** Silence tolerated on top of the mean before φ rises (GC pauses, network hiccups). Default 3000 ms. */
  acceptableHeartbeatPauseMs: number
  /** Most inter-arrival samples kept (oldest dropped first). Default 1000. */
  maxSampleSize: number
  /**
   * Before any interval was measured the window holds two samples, mean ± mean/4, with this mean
   * (Akka's first-heartbeat estimate). Default = heartbeatIntervalMs.
   */
  firstHeartbeatEstimateMs: number
}

export const PHI_DEFAULTS: Readonly<PhiOptions> = Object.freeze({
  heartbeatIntervalMs: 1000,
  threshold: 8,
  minStdDeviationMs: 100,
  acceptableHeartbeatPauseMs: 3000,
  maxSampleSize: 1000,
  firstHeartbeatEstimateMs: 1000
})

/** φ is capped here: −log10 of the smallest positive double is ~323, beyond that it is noise. */
export const MAX_PHI = 300

/** φ for a silence `deltaMs` under a normal(mean, std) model, via the logistic approximation. */
export function phiOf (deltaMs: number, meanMs: number, stdMs: number): number {
  assert(stdMs > 0, 'std must be positive')
  const y = (deltaMs - meanMs) / stdMs
  const e = Math.exp(-y * (1.5976 + 0.070566 * y * y))
  // Upper tail: 1 − F = e / (1 + e), computed without the cancellation of 1 − F.
  const tail = deltaMs > meanMs ? e / (1 + e) : 1 - 1 / (1 + e)
  if (!(tail > 0)) return MAX_PHI
  return Math.min(MAX_PHI, -Math.log10(tail))
}

/**
 * The silence after which φ reaches `threshold` for a given mean and σ (bisection on the monotonic
 * phiOf). This is the detector's detection bound: with regular 1 s heartbeats and the defaults it is
 * ≈ 1000 + 3000 + 5.22 × 100 ≈ 4.52 s after the last heartbeat.
 */
export function silenceToReachPhi (threshold: number, meanMs: number, stdMs: number): number {
  let lo = 0
  let hi = meanMs + 100 * stdMs
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2
    if (phiOf(mid, meanMs, stdMs) >= threshold) hi = mid
    else lo = mid
  }
  return hi
}

/** Fixed-capacity ring of samples with running sums, so mean and variance are O(1). */
class IntervalWindow {
  private readonly samples: Float64Array
  private start = 0
  private count = 0
  private sum = 0
  private sumSq = 0

  constructor (readonly capacity: number) {
    this.samples = new Float64Array(capacity)
  }

  add (x: number): void {
    if (this.count === this.capacity) {
      const old = this.samples[this.start]
      this.sum -= old
      this.sumSq -= old * old
      this.samples[this.start] = x
      this.start = (this.start + 1) % this.capacity
    } else {
      this.samples[(this.start + this.count) % this.capacity] = x
      this.count++
    }
    this.sum += x
    this.sumSq += x * x
  }

  get size (): number { return this.count }
  get mean (): number { return this.count === 0 ? 0 : this.sum / this.count }
  /** Population variance; clamped at 0 against floating-point drift of the running sums. */
  get variance (): number {
    if (this.count === 0) return 0
    const m = this.mean
    return Math.max(0, this.sumSq / this.count - m * m)
  }
}

export function validatePhiOptions (o: PhiOptions, where = 'phi'): void {
  const positive = (name: keyof PhiOptions): void => {
    const v = o[name]
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw Object.assign(new RangeError(`${where}.${name} must be a positive finite number, got ${String(v)}`), { code: 'ERR_INVALID_OPTION' })
    }
  }
  positive('heartbeatIntervalMs')
  positive('threshold')
  positive('minStdDeviationMs')
  positive('firstHeartbeatEstimateMs')
  positive('maxSampleSize')
  if (!Number.isInteger(o.maxSampleSize) || o.maxSampleSize < 2 || o.maxSampleSize > 100_000) {
    throw Object.assign(new RangeError(`${where}.maxSampleSize must be an integer in [2, 100000], got ${o.maxSampleSize}`), { code: 'ERR_INVALID_OPTION' })
  }
  if (typeof o.acceptableHeartbeatPauseMs !== 'number' || !Number.isFinite(o.acceptableHeartbeatPauseMs) || o.acceptableHeartbeatPauseMs < 0) {
    throw Object.assign(new RangeError(`${where}.acceptableHeartbeatPauseMs must be a finite number ≥ 0, got ${String(o.acceptableHeartbeatPauseMs)}`), { code: 'ERR_INVALID_OPTION' })
  }
}

export class PhiAccrualDetector {
  private readonly opts: PhiOptions
  private readonly window: IntervalWindow
  private lastArrivalMs: number | undefined

  constructor (options: Partial<PhiOptions> = {}) {
    const o: PhiOptions = { ...PHI_DEFAULTS, ...options }
    if (options.firstHeartbeatEstimateMs === undefined && options.heartbeatIntervalMs !== undefined) {
      o.firstHeartbeatEstimateMs = options.heartbeatIntervalMs
    }
    validatePhiOptions(o)
    this.opts = o
    this.window = new IntervalWindow(o.maxSampleSize)
    // Akka's bootstrap: two samples around the estimate, so the first silences are judged sanely.
    const sd = o.firstHeartbeatEstimateMs / 4
    this.window.add(o.firstHeartbeatEstimateMs - sd)
    this.window.add(o.firstHeartbeatEstimateMs + sd)
  }

  /** Records a heartbeat that arrived at `nowMs`. Arrivals earlier than the last one are ignored. */
  heartbeat (nowMs: number): void {
    if (this.lastArrivalMs !== undefined) {
      if (nowMs < this.lastArrivalMs) return
      this.window.add(nowMs - this.lastArrivalMs)
    }
    this.lastArrivalMs = nowMs
  }

  /**
   * Our own process stalled (a GC pause, SIGSTOP) until `nowMs`: the peer's heartbeats could not be
   * read meanwhile, so that silence is ours, not theirs. Restarts the silence clock without adding
   * a sample.
   */
  excuseSilenceUntil (nowMs: number): void {
    if (this.lastArrivalMs !== undefined && nowMs > this.lastArrivalMs) this.lastArrivalMs = nowMs
  }

  /** φ at `nowMs`; 0 until the first heartbeat (nothing to judge yet). */
  phi (nowMs: number): number {
    if (this.lastArrivalMs === undefined) return 0
    const delta = Math.max(0, nowMs - this.lastArrivalMs)
    return phiOf(delta, this.meanMs, this.stdDeviationMs)
  }

  isAvailable (nowMs: number): boolean { return this.phi(nowMs) < this.opts.threshold }

  /** The mean the model uses: measured mean + acceptable pause. */
  get meanMs (): number { return this.window.mean + this.opts.acceptableHeartbeatPauseMs }
  get stdDeviationMs (): number { return Math.max(Math.sqrt(this.window.variance), this.opts.minStdDeviationMs) }
  get sampleCount (): number { return this.window.size }
  get lastHeartbeatMs (): number | undefined { return this.lastArrivalMs }
  get threshold (): number { return this.opts.threshold }

  /** When, with the current statistics, φ will reach the threshold (undefined before any heartbeat). */
  suspectAtMs (): number | undefined {
    if (this.lastArrivalMs === undefined) return undefined
    return this.lastArrivalMs + silenceToReachPhi(this.opts.threshold, this.meanMs, this.stdDeviationMs)
  }
}
