import { TopCounter, topOf } from './top-counter.ts'
import type { CacheOutcome } from '../cache/outcome.ts'

/** The dashboard's numbers (GET /_proxy/stats): kept per worker, merged across workers. */

const BUCKET_MS = 10_000
/** Buckets kept: the last 5 minutes. */
const BUCKETS = 30
const TRACKED_URLS = 500
/** URLs a worker publishes of each list (the merge keeps the top 10 of their sums). */
const PUBLISHED_URLS = 100
const TOP = 10
const RECENT = 20
// The outcomes whose body came from the cache (X-Cache: HIT, src/cache/outcome.ts).
const FROM_CACHE = new Set(['hit', 'stale', 'revalidated'])

export interface Bucket { start: number, requests: number, fromCache: number, bytesCache: number, bytesOrigin: number }
export interface Problem { time: number, kind: 'error' | 'refusal', status: number, code: string, url: string, worker?: string }

/** What one worker publishes (JSON). */
export interface WorkerStats {
  worker: string
  time: number
  uptimeSeconds: number
  requests: number
  outcomes: Record<string, number>
  bytesCache: number
  bytesOrigin: number
  timeline: Bucket[]
  topHits: Array<[string, number]>
  topMisses: Array<[string, number]>
  recent: Problem[]
  memoryTier: { entries: number, bytes: number }
  underPressure: boolean
}

export interface WindowSummary {
  requests: number
  /** Share of the window's requests answered from the cache; null before any. */
  hitRatio1m: number | null
  hitRatio5m: number | null
  requestsPerSecond: number
  bytesSaved: number
}

export interface Stats {
  generatedAt: number
  total: WindowSummary & { outcomes: Record<string, number>, timeline: Bucket[] }
  workers: Array<WindowSummary & { worker: string, uptimeSeconds: number, memoryTier: WorkerStats['memoryTier'], underPressure: boolean }>
  store: { entries: number, bytes: number, maxBytes: number, fill: number } | { error: string, maxBytes: number }
  topHits: Array<{ url: string, count: number }>
  topMisses: Array<{ url: string, count: number }>
  recent: Problem[]
}

/** One worker's live counters. Recording is O(1) except a new URL once TRACKED_URLS are known. */
export class LiveStats {
  private readonly started = Date.now()
  private readonly buckets: Bucket[] = []
  private readonly outcomes: Record<string, number> = {}
  private requests = 0
  private bytesCache = 0
  private bytesOrigin = 0
  private readonly hits = new TopCounter(TRACKED_URLS)
  private readonly misses = new TopCounter(TRACKED_URLS)
  private readonly recent: Problem[] = []

  constructor (private readonly worker: string) {}

  private bucket (now: number): Bucket {
    const start = now - (now % BUCKET_MS)
    let last = this.buckets[this.buckets.length - 1]
    if (last === undefined || last.start !== start) {
      last = { start, requests: 0, fromCache: 0, bytesCache: 0, bytesOrigin: 0 }
      this.buckets.push(last)
      if (this.buckets.length > BUCKETS) this.buckets.shift()
    }
    return last
  }

  record (url: string, status: number, outcome: CacheOutcome, bytes: number, now = Date.now()): void {
    const bucket = this.bucket(now)
    const cached = FROM_CACHE.has(outcome.kind)
    this.requests++
    bucket.requests++
    this.outcomes[outcome.kind] = (this.outcomes[outcome.kind] ?? 0) + 1
    if (cached) {
      bucket.fromCache++
      bucket.bytesCache += bytes
      this.bytesCache += bytes
      this.hits.add(url)
    } else if (outcome.kind !== 'error') {
      bucket.bytesOrigin += bytes
      this.bytesOrigin += bytes
      if (outcome.kind === 'miss') this.misses.add(url)
    } else {
      this.problem({ time: now, kind: 'error', status, code: outcome.detail ?? 'error', url })
    }
  }

  problem (problem: Problem): void {
    this.recent.push(problem)
    if (this.recent.length > RECENT) this.recent.shift()
  }

  snapshot (extra: Pick<WorkerStats, 'memoryTier' | 'underPressure'>, now = Date.now()): WorkerStats {
    return {
      worker: this.worker,
      time: now,
      uptimeSeconds: Math.round((now - this.started) / 1000),
      requests: this.requests,
      outcomes: { ...this.outcomes },
      bytesCache: this.bytesCache,
      bytesOrigin: this.bytesOrigin,
      timeline: this.buckets.filter((b) => b.start > now - BUCKETS * BUCKET_MS).map((b) => ({ ...b })),
      topHits: this.hits.top(PUBLISHED_URLS),
      topMisses: this.misses.top(PUBLISHED_URLS),
      recent: this.recent.map((p) => ({ ...p, worker: this.worker })),
      ...extra
    }
  }
}

function windowOf (timeline: Bucket[], ms: number, now: number): { requests: number, fromCache: number } {
  let requests = 0
  let fromCache = 0
  for (const b of timeline) {
    if (b.start + BUCKET_MS <= now - ms) continue
    requests += b.requests
    fromCache += b.fromCache
  }
  return { requests, fromCache }
}

function summary (timeline: Bucket[], requests: number, bytesSaved: number, now: number): WindowSummary {
  const minute = windowOf(timeline, 60_000, now)
  const five = windowOf(timeline, BUCKETS * BUCKET_MS, now)
  return {
    requests,
    hitRatio1m: minute.requests === 0 ? null : minute.fromCache / minute.requests,
    hitRatio5m: five.requests === 0 ? null : five.fromCache / five.requests,
    // Over the last minute, or since start when younger (the current bucket is partial).
    requestsPerSecond: minute.requests / Math.max(1, Math.min(60, (now - (timeline[0]?.start ?? now)) / 1000)),
    bytesSaved
  }
}

function sumCounts (lists: Array<Array<[string, number]>>): Array<{ url: string, count: number }> {
  const counts = new Map<string, number>()
  for (const list of lists) for (const [url, n] of list) counts.set(url, (counts.get(url) ?? 0) + n)
  return topOf(counts, TOP).map(([url, count]) => ({ url, count }))
}

/** The whole proxy's stats from every live worker's snapshot, and each worker's. */
export function mergeStats (workers: WorkerStats[], store: Stats['store'], now = Date.now()): Stats {
  const timeline = new Map<number, Bucket>()
  const outcomes: Record<string, number> = {}
  for (const w of workers) {
    for (const b of w.timeline) {
      const into = timeline.get(b.start) ?? { start: b.start, requests: 0, fromCache: 0, bytesCache: 0, bytesOrigin: 0 }
      into.requests += b.requests
      into.fromCache += b.fromCache
      into.bytesCache += b.bytesCache
      into.bytesOrigin += b.bytesOrigin
      timeline.set(b.start, into)
    }
    for (const [kind, n] of Object.entries(w.outcomes)) outcomes[kind] = (outcomes[kind] ?? 0) + n
  }
  const merged = [...timeline.values()].sort((a, b) => a.start - b.start)
  const requests = workers.reduce((n, w) => n + w.requests, 0)
  const bytesSaved = workers.reduce((n, w) => n + w.bytesCache, 0)
  return {
    generatedAt: now,
    total: { ...summary(merged, requests, bytesSaved, now), outcomes, timeline: merged },
    workers: workers.map((w) => ({
      worker: w.worker,
      uptimeSeconds: w.uptimeSeconds,
      memoryTier: w.memoryTier,
      underPressure: w.underPressure,
      ...summary(w.timeline, w.requests, w.bytesCache, now)
    })).sort((a, b) => a.worker.localeCompare(b.worker)),
    store,
    topHits: sumCounts(workers.map((w) => w.topHits)),
    topMisses: sumCounts(workers.map((w) => w.topMisses)),
    recent: workers.flatMap((w) => w.recent).sort((a, b) => b.time - a.time).slice(0, RECENT)
  }
}
