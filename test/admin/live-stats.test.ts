import { test } from 'node:test'
import { LiveStats, mergeStats } from '../../src/admin/live-stats.ts'
import { TopCounter } from '../../src/admin/top-counter.ts'

// The dashboard's numbers (src/admin/live-stats.ts): per worker, then merged across workers.

const T0 = Date.UTC(2026, 10, 30, 12, 0, 0)
const HIT = { kind: 'hit', hit: true } as const
const MISS = { kind: 'miss', fwd: 'miss', stored: true } as const
const extra = { memoryTier: { entries: 0, bytes: 0 }, underPressure: false }
const store = { entries: 3, bytes: 300, maxBytes: 1000, fill: 0.3 }

test('two workers: totals, hit ratios over 1 and 5 minutes, req/s, bytes saved and top URLs merge exactly', () => {
  const a = new LiveStats('101')
  const b = new LiveStats('202')
  // 4 minutes ago: worker a, 2 misses (only the 5-minute window sees them).
  a.record('http://o/1', 200, MISS, 100, T0 - 240_000)
  a.record('http://o/2', 200, MISS, 100, T0 - 240_000)
  // In the last minute: a has 3 hits of /1, b has 1 miss and 4 hits of /2 and 1 hit of /1.
  for (let i = 0; i < 3; i++) a.record('http://o/1', 200, HIT, 10, T0 - 30_000)
  b.record('http://o/2', 200, MISS, 100, T0 - 20_000)
  for (let i = 0; i < 4; i++) b.record('http://o/2', 200, HIT, 10, T0 - 5_000)
  b.record('http://o/1', 200, HIT, 10, T0 - 5_000)
  b.record('http://down/', 502, { kind: 'error', fwd: 'miss', detail: 'ECONNREFUSED' }, 0, T0 - 1_000)
  b.problem({ time: T0 - 500, kind: 'refusal', status: 403, code: 'CPX_UPSTREAM_FORBIDDEN', url: 'http://denied/' })

  const stats = mergeStats([a.snapshot(extra, T0), b.snapshot(extra, T0)], store, T0)
  // 12 requests (the error counts), 8 hits; the last minute holds 10 of them, the 8 hits.
  assertEqual(stats.total.requests, 12)
  assertEqual(stats.total.hitRatio1m, 8 / 10)
  assertEqual(stats.total.hitRatio5m, 8 / 12)
  assertEqual(stats.total.bytesSaved, 80)
  assertEqual(stats.total.outcomes, { miss: 3, hit: 8, error: 1 })
  assertEqual(stats.topHits, [{ url: 'http://o/1', count: 4 }, { url: 'http://o/2', count: 4 }])
  assertEqual(stats.topMisses, [{ url: 'http://o/2', count: 2 }, { url: 'http://o/1', count: 1 }])
  assertEqual(stats.recent.map((p) => [p.kind, p.code, p.worker]), [['refusal', 'CPX_UPSTREAM_FORBIDDEN', '202'], ['error', 'ECONNREFUSED', '202']])
  assertEqual(stats.workers.map((w) => [w.worker, w.requests, w.hitRatio1m, w.bytesSaved]), [['101', 5, 1, 30], ['202', 7, 5 / 7, 50]])
  // Worker a's first bucket is 4 minutes old: its rate is over the last 60 s.
  assertEqual(stats.workers[0].requestsPerSecond, 3 / 60)
  assertEqual(stats.store, store)
})

test('the timeline keeps 5 minutes of 10 s buckets; older traffic leaves the ratios', () => {
  const a = new LiveStats('1')
  a.record('http://o/old', 200, HIT, 1, T0 - 400_000)
  a.record('http://o/new', 200, MISS, 1, T0 - 1_000)
  const stats = mergeStats([a.snapshot(extra, T0)], store, T0)
  assertEqual(stats.total.requests, 2)
  assertEqual(stats.total.hitRatio5m, 0)
  assertEqual(stats.total.timeline.length, 1)
  assertEqual(mergeStats([new LiveStats('2').snapshot(extra, T0)], store, T0).total.hitRatio1m, null)
})

test('TopCounter keeps frequent keys in bounded memory (Space-Saving)', () => {
  const top = new TopCounter(3)
  for (let i = 0; i < 50; i++) top.add('hot')
  for (let i = 0; i < 20; i++) top.add(`cold-${i}`)
  for (let i = 0; i < 30; i++) top.add('warm')
  const list = top.top(3)
  assertEqual(list[0], ['hot', 50])
  assertEqual(list.length, 3)
  assertEqual(list.some(([key]) => key === 'warm'), true)
})

function assertEqual (actual: unknown, expected: unknown): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) throw new Error(`expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`)
}
