import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client'
import type { CacheOutcome } from '../cache/outcome.ts'

/** What one answered request tells the metrics (plugins/metrics.ts collects it). */
export interface RequestSample {
  method: string
  outcome: CacheOutcome
  /** Body bytes sent to the client. */
  bytes: number
  /** Seconds until the origin's response was ready to send (requests that went to the origin). */
  originSeconds?: number
}

/** What the metrics read when scraped: this worker's cache and the shared store. */
export interface MetricSources {
  /** Worker label: this process's pid. */
  worker: string
  storeStats (): Promise<{ entries: number, bytes: number }>
  storeMaxBytes: number
  storeErrors (): number
  /** What this worker's sweeps of the store deleted since it opened. */
  storeSweeps (): { expired: number, evicted: number }
  memory: { size: number, totalBytes: number, takeEvictions (): number }
}

const P = 'caching_proxy_'
// The outcomes whose body came from the cache (X-Cache: HIT, src/cache/outcome.ts).
const FROM_CACHE = new Set(['hit', 'stale', 'revalidated'])

type Labels = Record<string, string>

/**
 * Per-request counts kept as plain numbers per label set, folded into a prom-client counter
 * when it is collected: a labelled `inc()` hashes and validates its labels on every call
 * (issue #13: record() took ~400 ns a hit with three of them, ~50 ns with these). A label set
 * appears at its first count, as it did with `inc()`.
 */
class Tally {
  private readonly counts = new Map<string, { labels: Labels, n: number }>()

  /** `labelsOf`: a key's label values, asked once per new key. */
  constructor (private readonly labelsOf: (key: string) => Labels) {}

  add (key: string, n: number): void {
    const count = this.counts.get(key)
    if (count !== undefined) count.n += n
    else this.counts.set(key, { labels: this.labelsOf(key), n })
  }

  /** The counter this tally is folded into at each collection. */
  counter (options: { name: string, help: string, labelNames: string[], registers: Registry[] }): Counter {
    const counts = this.counts
    return new Counter({
      ...options,
      collect () {
        for (const count of counts.values()) {
          this.inc(count.labels, count.n)
          count.n = 0
        }
      }
    })
  }
}

/**
 * This worker's Prometheus metrics (prom-client), all named caching_proxy_*. Counters and
 * histograms sum across workers; the store's gauges take the largest worker's view (they
 * read one shared store); the memory tier's carry a `worker` label.
 */
export class ProxyMetrics {
  readonly registry = new Registry()
  /** Keyed `<outcome> <method>` (neither holds a space). */
  private readonly requests = new Tally((key) => ({ outcome: key.slice(0, key.indexOf(' ')), method: key.slice(key.indexOf(' ') + 1) }))
  private readonly bytes = new Tally((source) => ({ source }))
  private readonly memoryHits: Tally
  private readonly originLatency: Histogram
  private readonly originSize: Histogram
  private readonly coalesced: Counter
  private readonly revalidations: Counter<'status'>
  private readonly upstreamErrors: Counter<'kind'>
  private readonly refusals: Counter<'rule'>
  private hitsHere = 0
  private memoryHitsHere = 0

  constructor (sources: MetricSources) {
    const registers = [this.registry]
    const worker = { worker: sources.worker }
    this.memoryHits = new Tally(() => worker)
    this.requests.counter({ name: `${P}requests_total`, help: 'Proxied requests by typed cache outcome (hit, stale, revalidated, miss, pass, error) and method', labelNames: ['outcome', 'method'], registers })
    this.bytes.counter({ name: `${P}response_bytes_total`, help: 'Body bytes sent to clients, by where the body came from (cache or origin)', labelNames: ['source'], registers })
    this.originLatency = new Histogram({ name: `${P}origin_latency_seconds`, help: 'Time until the origin\'s response was ready to send, for requests that went to the origin', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers })
    this.originSize = new Histogram({ name: `${P}origin_response_bytes`, help: 'Body bytes of origin responses sent to clients (misses and passes)', buckets: [1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864], registers })
    this.coalesced = new Counter({ name: `${P}coalesced_total`, help: 'Requests answered by another request\'s fetch of the same URL (request coalescing)', registers })
    this.revalidations = new Counter({ name: `${P}revalidations_total`, help: 'Requests for a stale entry that asked the origin, by the origin\'s status (304: revalidated)', labelNames: ['status'], registers })
    this.upstreamErrors = new Counter({ name: `${P}upstream_errors_total`, help: 'Requests whose origin could not be reached or answered unusably, by error code', labelNames: ['kind'], registers })
    this.refusals = new Counter({ name: `${P}refusals_total`, help: 'Requests refused, by rule (upstream rules and SSRF ranges, client list, auth, rate limit, admin)', labelNames: ['rule'], registers })
    this.memoryHits.counter({ name: `${P}memory_tier_hits_total`, help: 'Fresh hits answered from this worker\'s memory tier without a store read', labelNames: ['worker'], registers })
    this.memoryHits.add('', 0) // shown at 0 before the first
    const self = this
    let storeErrorsSeen = 0
    new Counter({ // eslint-disable-line no-new
      name: `${P}store_errors_total`,
      help: 'Cache store calls that failed (the request was served uncached)',
      registers,
      collect () {
        const now = sources.storeErrors()
        this.inc(now - storeErrorsSeen)
        storeErrorsSeen = now
      }
    })
    // The gauges are gathered concurrently: each reads the store's totals itself.
    for (const [name, help, field] of [['store_entries', 'Entries in the cache store (a Vary index counts as one)', 'entries'], ['store_bytes', 'Bytes of the values in the cache store', 'bytes']] as const) {
      new Gauge({ // eslint-disable-line no-new
        name: `${P}${name}`,
        help,
        aggregator: 'max', // one shared store: every worker reports the same totals
        registers,
        async collect () {
          try {
            this.set((await sources.storeStats())[field])
          } catch {
            // The store is down (/_proxy/ready says so): the gauge keeps its last value.
          }
        }
      })
    }
    const swept = { expired: 0, evicted: 0 }
    new Counter({ // eslint-disable-line no-new
      name: `${P}store_evictions_total`,
      help: 'Entries the store\'s sweeps deleted: reason lru (over MAX_CACHE_BYTES) or expired (past their useful life)',
      labelNames: ['reason'],
      registers,
      collect () {
        const now = sources.storeSweeps()
        this.inc({ reason: 'lru' }, now.evicted - swept.evicted)
        this.inc({ reason: 'expired' }, now.expired - swept.expired)
        Object.assign(swept, now)
      }
    })
    new Gauge({ name: `${P}store_max_bytes`, help: 'MAX_CACHE_BYTES, the bound on store_bytes', aggregator: 'max', registers }).set(sources.storeMaxBytes)
    new Gauge({ name: `${P}memory_tier_entries`, help: 'Entries in this worker\'s memory tier', labelNames: ['worker'], registers, collect () { this.set(worker, sources.memory.size) } }) // eslint-disable-line no-new
    new Gauge({ name: `${P}memory_tier_bytes`, help: 'Bytes in this worker\'s memory tier', labelNames: ['worker'], registers, collect () { this.set(worker, sources.memory.totalBytes) } }) // eslint-disable-line no-new
    new Counter({ name: `${P}memory_tier_evictions_total`, help: 'Entries this worker\'s memory tier evicted for room', labelNames: ['worker'], registers, collect () { this.inc(worker, sources.memory.takeEvictions()) } }) // eslint-disable-line no-new
    new Gauge({ // eslint-disable-line no-new
      name: `${P}memory_tier_hit_ratio`,
      help: 'Share of this worker\'s fresh hits answered from its memory tier',
      labelNames: ['worker'],
      registers,
      collect () { this.set(worker, self.hitsHere === 0 ? 0 : self.memoryHitsHere / self.hitsHere) }
    })
  }

  /** Counts one answered request. */
  record (sample: RequestSample): void {
    const { outcome } = sample
    this.requests.add(`${outcome.kind} ${sample.method}`, 1)
    if (outcome.kind !== 'error') this.bytes.add(FROM_CACHE.has(outcome.kind) ? 'cache' : 'origin', sample.bytes)
    if (outcome.kind === 'hit' && outcome.collapsed !== true) {
      this.hitsHere++
      if (outcome.memory === true) {
        this.memoryHitsHere++
        this.memoryHits.add('', 1)
      }
    }
    if (outcome.collapsed === true) this.coalesced.inc()
    if (outcome.fwd === 'stale' && outcome.fwdStatus !== undefined) this.revalidations.inc({ status: String(outcome.fwdStatus) })
    if (outcome.kind === 'error' && outcome.detail !== 'only-if-cached') this.upstreamErrors.inc({ kind: outcome.detail ?? 'error' })
    if (outcome.kind === 'miss' || outcome.kind === 'pass') this.originSize.observe(sample.bytes)
    if (sample.originSeconds !== undefined) this.originLatency.observe(sample.originSeconds)
  }

  /** Counts one refused request. */
  refused (rule: string): void {
    this.refusals.inc({ rule })
  }

  snapshot (): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    return this.registry.getMetricsAsJSON()
  }
}

type Snapshot = Array<MetricObjectWithValues<MetricValue<string>>>

function total (snapshots: Snapshot[], name: string, keep: (labels: Record<string, string | number>) => boolean): number {
  let sum = 0
  for (const metrics of snapshots) {
    for (const metric of metrics) {
      if (metric.name !== name) continue
      for (const value of metric.values) if (keep(value.labels as Record<string, string | number>)) sum += value.value
    }
  }
  return sum
}

/**
 * The Prometheus text of several workers' snapshots merged (prom-client's AggregatorRegistry
 * rules), with the whole proxy's hit ratios computed from the merged counters and the number
 * of workers merged.
 */
export async function mergedText (snapshots: Snapshot[]): Promise<{ contentType: string, text: string }> {
  const merged = AggregatorRegistry.aggregate(snapshots)
  const all = total(snapshots, `${P}requests_total`, () => true)
  const fromCache = total(snapshots, `${P}requests_total`, (labels) => FROM_CACHE.has(String(labels.outcome)))
  const cacheBytes = total(snapshots, `${P}response_bytes_total`, (labels) => labels.source === 'cache')
  const bytes = total(snapshots, `${P}response_bytes_total`, () => true)
  const registers = [merged]
  new Gauge({ name: `${P}hit_ratio`, help: 'Share of proxied requests answered from the cache (hit, stale, revalidated), all workers; 0 before any', registers }).set(all === 0 ? 0 : fromCache / all)
  new Gauge({ name: `${P}byte_hit_ratio`, help: 'Share of body bytes sent from the cache, all workers; 0 before any', registers }).set(bytes === 0 ? 0 : cacheBytes / bytes)
  new Gauge({ name: `${P}workers`, help: 'Workers whose metrics this scrape merged', registers }).set(snapshots.length)
  return { contentType: merged.contentType, text: await merged.metrics() }
}
