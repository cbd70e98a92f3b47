import { test } from 'node:test'
import type { CacheEntry } from '../../src/cache/entry.ts'
import { currentAge, evaluateReuse, freshness, type FreshnessOptions } from '../../src/cache/freshness.ts'
import { policyHeaders } from '../../src/cache/targeted-cache-control.ts'
import { softPurged } from '../../src/admin/soft-purge.ts'

const OPTIONS: FreshnessOptions = { heuristicMaxSeconds: 86_400, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 0, staleOnErrorSeconds: 300 }
const NOW = Date.UTC(2026, 10, 30, 12, 0, 0)

function entry (headers: Record<string, string>, receivedSecondsAgo: number, delayMs = 40): CacheEntry {
  const responseTime = NOW - receivedSecondsAgo * 1000
  return { url: 'http://a/', status: 200, headers, requestTime: responseTime - delayMs, responseTime, body: Buffer.from('x') }
}

test('soft purge: a fresh entry is exactly as old as its lifetime now, whatever Date and Age said', (t) => {
  const cases: Array<[string, CacheEntry]> = [
    ['no Date', entry({ 'cache-control': 'max-age=600' }, 100)],
    ['Date at receipt', entry({ 'cache-control': 'max-age=600', date: new Date(NOW - 100_000).toUTCString() }, 100)],
    ['an old Date (clock skew)', entry({ 'cache-control': 'max-age=600', date: new Date(NOW - 400_000).toUTCString() }, 100)],
    ['an Age from upstream', entry({ 'cache-control': 'max-age=600', age: '250' }, 100)],
    ['CDN-Cache-Control decides', entry({ 'cache-control': 'max-age=5', 'cdn-cache-control': 'max-age=600' }, 100)]
  ]
  for (const [name, stored] of cases) {
    const policy = policyHeaders(stored.headers, ['cdn-cache-control'])
    const before = freshness(200, policy, stored, OPTIONS)
    t.assert.equal(evaluateReuse(before, {}, OPTIONS, NOW), 'fresh', `${name}: fresh before`)
    const soft = softPurged(stored, ['cdn-cache-control'], OPTIONS, NOW)
    t.assert.notEqual(soft, undefined, name)
    const after = freshness(200, policyHeaders(soft!.entry.headers, ['cdn-cache-control']), soft!.entry, OPTIONS)
    t.assert.equal(after.lifetime, 600, name)
    t.assert.equal(Math.abs(currentAge(after, NOW) - 600) < 0.01, true, `${name}: age ${currentAge(after, NOW)} = lifetime`)
    t.assert.notEqual(evaluateReuse(after, {}, OPTIONS, NOW), 'fresh', `${name}: stale at once`)
    t.assert.deepEqual(soft!.entry.headers, stored.headers, `${name}: headers untouched`)
    t.assert.equal(soft!.entry.responseTime, stored.responseTime, name)
  }
})

test('soft purge: stale-while-revalidate still applies; an entry stale already is left alone', (t) => {
  const stored = entry({ 'cache-control': 'max-age=600, stale-while-revalidate=30' }, 10)
  const soft = softPurged(stored, [], OPTIONS, NOW)
  t.assert.notEqual(soft, undefined)
  const after = freshness(200, soft!.entry.headers, soft!.entry, OPTIONS)
  t.assert.equal(evaluateReuse(after, {}, OPTIONS, NOW), 'stale-while-revalidate')
  t.assert.equal(evaluateReuse(after, {}, OPTIONS, NOW + 31_000), 'revalidate', 'the window runs from the purge')
  t.assert.equal(Math.abs((soft!.expiresAt ?? 0) - (NOW + 300_000)) <= 2, true, 'swept once even stale-on-error (300 s) is over')
  t.assert.equal(softPurged(entry({ 'cache-control': 'max-age=60' }, 61), [], OPTIONS, NOW), undefined)
  t.assert.equal(softPurged(entry({ 'cache-control': 'no-cache' }, 1), [], OPTIONS, NOW), undefined)
})
