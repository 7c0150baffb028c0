/**
 * Prometheus metrics of an actor system, registered on the injected registry.
 *
 * The hot path never touches prom-client: each actor holds a plain `ActorStats` object (cached
 * once per actor name) and bumps its number fields; every metric copies those numbers in its
 * `collect()` callback at scrape time. prom-client's own `labels().inc()` hashes the label set on
 * every call, which would cost more than delivering the message.
 *
 * Label cardinality is bounded: at most `maxActorLabels` distinct actor names get their own
 * series; further names share the series `actor="_other"`.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { ActorError, ActorErrorCodes } from './errors.js'

export interface ActorStats {
  /** Messages delivered to this actor's local mailbox. */
  in: number
  /** Messages sent to an actor of this name (any peer) by tell/ask. */
  out: number
  restarts: number
  giveups: number
}

export const OTHER_ACTOR_LABEL = '_other'

export type AskStatus = 'ok' | 'error' | 'timeout'
/** 100 µs … 60 s: local asks take microseconds, remote ones milliseconds, timeouts seconds. */
export const ASK_DURATION_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

export interface ActorMetrics {
  /** The stats object for an actor name (same object every time): cache it. */
  statsFor: (name: string) => ActorStats
  deadLetter: () => void
  badEnvelope: () => void
  /** An ask to the actor `target` settled after `ms` (ok, error, or timeout). */
  askDone: (target: string, ms: number, status: AskStatus) => void
  readonly deadLetters: number
  readonly badEnvelopes: number
}

export interface ActorMetricsOptions {
  registry: Registry
  /** Current mailbox depths, read at scrape time. */
  depths: () => Iterable<[name: string, depth: number]>
  /** Distinct actor label values before falling back to `_other`. */
  maxActorLabels: number
}

const METRIC_NAMES = [
  'voike_actor_messages_total',
  'voike_actor_mailbox_depth',
  'voike_actor_restarts_total',
  'voike_actor_dead_letters_total',
  'voike_actor_giveups_total',
  'voike_actor_bad_envelopes_total',
  'voike_actor_ask_duration_seconds'
]

export function createActorMetrics (options: ActorMetricsOptions): ActorMetrics {
  const { registry, depths, maxActorLabels } = options
  for (const name of METRIC_NAMES) {
    if (registry.getSingleMetric(name) !== undefined) {
      throw new ActorError(ActorErrorCodes.INVALID_OPTION, `registry already has ${name}: use one registry per actor system`)
    }
  }
  const stats = new Map<string, ActorStats>()
  const other: ActorStats = { in: 0, out: 0, restarts: 0, giveups: 0 }
  let deadLetters = 0
  let badEnvelopes = 0

  const statsFor = (name: string): ActorStats => {
    let s = stats.get(name)
    if (s === undefined) {
      if (stats.size >= maxActorLabels) return other
      s = { in: 0, out: 0, restarts: 0, giveups: 0 }
      stats.set(name, s)
    }
    return s
  }
  // Every series, the `_other` one only once it has been used.
  function * allStats (): Iterable<[string, ActorStats]> {
    yield * stats
    if (other.in + other.out + other.restarts + other.giveups > 0) yield [OTHER_ACTOR_LABEL, other]
  }

  /* eslint-disable no-new -- registering is the side effect we want */
  new Counter({
    name: 'voike_actor_messages_total',
    help: 'Actor messages: direction "in" = delivered to a local mailbox, "out" = sent by tell/ask (label: target actor)',
    labelNames: ['actor', 'direction'],
    registers: [registry],
    collect () {
      this.reset()
      for (const [actor, s] of allStats()) {
        this.inc({ actor, direction: 'in' }, s.in)
        this.inc({ actor, direction: 'out' }, s.out)
      }
    }
  })
  new Gauge({
    name: 'voike_actor_mailbox_depth',
    help: 'Messages waiting in each local actor mailbox',
    labelNames: ['actor'],
    registers: [registry],
    collect () {
      this.reset()
      let otherDepth = 0
      for (const [actor, depth] of depths()) {
        if (stats.has(actor)) this.set({ actor }, depth)
        else otherDepth += depth
      }
      if (otherDepth > 0) this.set({ actor: OTHER_ACTOR_LABEL }, otherDepth)
    }
  })
  new Counter({
    name: 'voike_actor_restarts_total',
    help: 'Actor restarts by the supervisor after a crash',
    labelNames: ['actor'],
    registers: [registry],
    collect () {
      this.reset()
      for (const [actor, s] of allStats()) this.inc({ actor }, s.restarts)
    }
  })
  new Counter({
    name: 'voike_actor_giveups_total',
    help: 'Actors stopped by the supervisor after too many crashes in the window',
    labelNames: ['actor'],
    registers: [registry],
    collect () {
      this.reset()
      for (const [actor, s] of allStats()) this.inc({ actor }, s.giveups)
    }
  })
  new Counter({
    name: 'voike_actor_dead_letters_total',
    help: 'Messages that could not be delivered or were left in the mailbox of a stopped actor',
    registers: [registry],
    collect () { this.reset(); this.inc(deadLetters) }
  })
  new Counter({
    name: 'voike_actor_bad_envelopes_total',
    help: 'Malformed envelopes received from remote peers and dropped',
    registers: [registry],
    collect () { this.reset(); this.inc(badEnvelopes) }
  })
  /* eslint-enable no-new */
  const askDuration = new Histogram({
    name: 'voike_actor_ask_duration_seconds',
    help: 'Time from an ask to its reply, error or timeout, by target actor and status (ok, error, timeout)',
    labelNames: ['actor', 'status'] as const,
    buckets: ASK_DURATION_BUCKETS_S,
    registers: [registry]
  })

  return {
    statsFor,
    deadLetter: () => { deadLetters++ },
    badEnvelope: () => { badEnvelopes++ },
    // The same bounded label values as the other families: names past the cap share `_other`.
    askDone: (target, ms, status) => { askDuration.observe({ actor: stats.has(target) ? target : OTHER_ACTOR_LABEL, status }, Math.max(0, ms) / 1000) },
    get deadLetters () { return deadLetters },
    get badEnvelopes () { return badEnvelopes }
  }
}
