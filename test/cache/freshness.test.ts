import { test } from 'node:test'
import { evaluateReuse, freshness, freshnessLifetime, currentAge, staleIfErrorAllowed, type FreshnessOptions } from '../../src/cache/freshness.ts'

const options: FreshnessOptions = { heuristicMaxSeconds: 3600, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 0, staleOnErrorSeconds: 0 }
const now = Date.parse('2026-01-01T12:00:00Z')
const date = new Date(now).toUTCString()

test('lifetime: s-maxage over max-age over Expires; invalid Expires is stale', (t) => {
  const cases: Array<[Record<string, string>, number]> = [
    [{ 'cache-control': 's-maxage=10, max-age=100', expires: new Date(now + 1000_000).toUTCString() }, 10],
    [{ 'cache-control': 'max-age=100', expires: new Date(now + 1000_000).toUTCString() }, 100],
    [{ expires: new Date(now + 50_000).toUTCString(), date }, 50],
    [{ expires: '0', date }, 0],
    [{ expires: 'not a date', date }, 0],
    [{ expires: new Date(now + 50_000).toUTCString().replace('GMT', 'UTC'), date }, 0], // not an HTTP-date: expired
    [{ expires: new Date(now + 50_000).toISOString(), date }, 0],
    [{ 'cache-control': 'max-age=abc', expires: new Date(now + 50_000).toUTCString() }, 0],
    [{ 'cache-control': 'max-age="30"' }, 30],
    [{ 'cache-control': 'max-age=30, max-age=60' }, 30]
  ]
  for (const [headers, lifetime] of cases) {
    t.assert.equal(freshnessLifetime(200, headers, now, options), lifetime, JSON.stringify(headers))
  }
})

test('Age is delta-seconds: a non-integer value is ignored (RFC 9111 §5.1)', (t) => {
  const timing = { requestTime: now, responseTime: now }
  t.assert.equal(freshness(200, { date, age: '7200' }, timing, options).initialAge, 7200)
  t.assert.equal(freshness(200, { date, age: '7200.0' }, timing, options).initialAge, 0)
  t.assert.equal(freshness(200, { date, age: '-5' }, timing, options).initialAge, 0)
  // A list on one line is not delta-seconds either; its first member counts, as with two lines.
  t.assert.equal(freshness(200, { date, age: '7200, 0' }, timing, options).initialAge, 7200)
  t.assert.equal(freshness(200, { date, age: '0, 7200' }, timing, options).initialAge, 0)
})

test('heuristic freshness: 10% of the age since Last-Modified, capped, only for heuristic statuses', (t) => {
  const tenHoursAgo = new Date(now - 10 * 3600_000).toUTCString()
  t.assert.equal(freshnessLifetime(200, { 'last-modified': tenHoursAgo }, now, options), 3600)
  t.assert.equal(freshnessLifetime(200, { 'last-modified': tenHoursAgo }, now, { ...options, heuristicMaxSeconds: 100 }), 100)
  const oneHourAgo = new Date(now - 3600_000).toUTCString()
  t.assert.equal(freshnessLifetime(200, { 'last-modified': oneHourAgo }, now, options), 360)
  t.assert.equal(freshnessLifetime(404, { 'last-modified': oneHourAgo }, now, options), 360)
  t.assert.equal(freshnessLifetime(302, { 'last-modified': oneHourAgo }, now, options), 0)
  t.assert.equal(freshnessLifetime(500, { 'last-modified': oneHourAgo }, now, options), 0)
  t.assert.equal(freshnessLifetime(500, { 'last-modified': oneHourAgo, 'cache-control': 'public' }, now, options), 360, 'public: any status (§4.2.2)')
  t.assert.equal(freshnessLifetime(200, {}, now, options), 0)
})

test('current age counts Age, the Date skew, the response delay and the time since', (t) => {
  const timing = { requestTime: now - 2000, responseTime: now }
  t.assert.equal(currentAge(freshness(200, { date, age: '30' }, timing, options), now), 32)
  const dated = freshness(200, { date: new Date(now - 100_000).toUTCString() }, timing, options)
  t.assert.equal(currentAge(dated, now), 100)
  t.assert.equal(currentAge(dated, now + 5000), 105)
})

test('reuse: fresh, must-revalidate only when stale, request directives', (t) => {
  const timing = { requestTime: now, responseTime: now }
  const f = (cc: string) => freshness(200, { date, 'cache-control': cc }, timing, options)
  const at = (seconds: number) => now + seconds * 1000
  t.assert.equal(evaluateReuse(f('max-age=60, must-revalidate'), {}, options, at(10)), 'fresh')
  t.assert.equal(evaluateReuse(f('max-age=60, must-revalidate'), { 'cache-control': 'max-stale=1000' }, options, at(70)), 'revalidate')
  t.assert.equal(evaluateReuse(f('max-age=60'), { 'cache-control': 'max-stale=1000' }, options, at(70)), 'stale')
  t.assert.equal(evaluateReuse(f('max-age=60'), { 'cache-control': 'max-stale=5' }, options, at(70)), 'revalidate')
  t.assert.equal(evaluateReuse(f('max-age=60'), { 'cache-control': 'max-stale' }, options, at(7000)), 'stale')
  t.assert.equal(evaluateReuse(f('max-age=60'), { 'cache-control': 'no-cache' }, options, at(1)), 'revalidate')
  t.assert.equal(evaluateReuse(f('max-age=60'), { pragma: 'no-cache' }, options, at(1)), 'revalidate')
  t.assert.equal(evaluateReuse(f('max-age=60'), { pragma: 'no-cache', 'cache-control': 'max-age=100' }, options, at(1)), 'fresh')
  t.assert.equal(evaluateReuse(f('max-age=60'), { 'cache-control': 'max-age=0' }, options, at(1)), 'revalidate')
  t.assert.equal(evaluateReuse(f('max-age=60'), { 'cache-control': 'max-age=5' }, options, at(3)), 'fresh')
  t.assert.equal(evaluateReuse(f('max-age=60'), { 'cache-control': 'min-fresh=30' }, options, at(40)), 'revalidate')
  t.assert.equal(evaluateReuse(f('max-age=60'), { 'cache-control': 'min-fresh=30' }, options, at(20)), 'fresh')
  t.assert.equal(evaluateReuse(f('max-age=60, no-cache'), {}, options, at(1)), 'revalidate')
  t.assert.equal(evaluateReuse(f('max-age=60, no-cache="set-cookie"'), {}, options, at(1)), 'fresh')
  t.assert.equal(evaluateReuse(f('max-age=60, stale-while-revalidate=30'), {}, options, at(80)), 'stale-while-revalidate')
  t.assert.equal(evaluateReuse(f('max-age=60, stale-while-revalidate=30'), {}, options, at(95)), 'revalidate')
  t.assert.equal(evaluateReuse(f('max-age=60'), {}, { ...options, staleWhileRevalidateSeconds: 30 }, at(80)), 'stale-while-revalidate')
  t.assert.equal(evaluateReuse(f('s-maxage=60'), {}, { ...options, staleWhileRevalidateSeconds: 30 }, at(80)), 'revalidate')
  t.assert.equal(evaluateReuse(f('max-age=60, proxy-revalidate'), {}, { ...options, staleWhileRevalidateSeconds: 30 }, at(80)), 'revalidate')
})

test('stale-if-error windows from the response, the request or the default', (t) => {
  const timing = { requestTime: now, responseTime: now }
  const f = (cc: string) => freshness(200, { date, 'cache-control': cc }, timing, options)
  const at = (seconds: number) => now + seconds * 1000
  t.assert.equal(staleIfErrorAllowed(f('max-age=60, stale-if-error=100'), {}, options, at(150)), true)
  t.assert.equal(staleIfErrorAllowed(f('max-age=60, stale-if-error=100'), {}, options, at(170)), false)
  t.assert.equal(staleIfErrorAllowed(f('max-age=60'), {}, options, at(70)), false)
  t.assert.equal(staleIfErrorAllowed(f('max-age=60'), { 'cache-control': 'stale-if-error=20' }, options, at(70)), true)
  t.assert.equal(staleIfErrorAllowed(f('max-age=60'), {}, { ...options, staleIfErrorSeconds: 20 }, at(70)), true)
  t.assert.equal(staleIfErrorAllowed(f('max-age=60, must-revalidate, stale-if-error=100'), {}, options, at(70)), false)
})
