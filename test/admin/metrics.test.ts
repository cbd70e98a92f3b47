import { test, type TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { testApp } from '../helpers/app.ts'
import { startOrigin, type Origin } from '../helpers/origin.ts'
import { metricValue, parseMetrics, type Sample } from '../helpers/prometheus.ts'
import { until } from '../helpers/poll.ts'

// GET /_proxy/metrics (plugins/metrics.ts) after known traffic, in one process (memory:// store).
// The same counts across two PM2 workers: test/pm2-admin.test.ts.

async function scrape (app: FastifyInstance): Promise<Sample[]> {
  const res = await app.inject({ method: 'GET', url: '/_proxy/metrics' })
  if (res.statusCode !== 200) throw new Error(`metrics answered ${res.statusCode}: ${res.body}`)
  if (!String(res.headers['content-type']).startsWith('text/plain')) throw new Error(`content-type ${String(res.headers['content-type'])}`)
  return parseMetrics(res.body)
}

async function origin (t: TestContext, handlers: Parameters<typeof startOrigin>[0]): Promise<Origin> {
  const server = await startOrigin(handlers)
  t.after(() => server.close())
  return server
}

test('3 misses then 7 hits: exact counters, hit ratios and byte counts; admin requests are not counted', { timeout: 30_000 }, async (t) => {
  const body = (path: string): string => `body of ${path} `.repeat(path.length)
  const paths = ['/m/1', '/m/22', '/m/333']
  const server = await origin(t, Object.fromEntries(paths.map((path) => [path, (_req, res) => {
    res.setHeader('cache-control', 'public, max-age=300')
    res.end(body(path))
  }])))
  const app = await testApp(t)
  const before = await scrape(app)
  t.assert.equal(metricValue(before, 'caching_proxy_requests_total'), 0)
  t.assert.equal(metricValue(before, 'caching_proxy_hit_ratio'), 0)
  const order = [...paths, '/m/1', '/m/22', '/m/333', '/m/1', '/m/1', '/m/22', '/m/333']
  const caches: string[] = []
  for (const path of order) caches.push(String((await app.inject({ method: 'GET', url: `/${server.host}${path}` })).headers['x-cache']))
  t.assert.deepEqual(caches, ['MISS', 'MISS', 'MISS', ...Array(7).fill('HIT')])
  await app.inject({ method: 'GET', url: '/_proxy/health' })
  await app.inject({ method: 'PURGE', url: `/${server.host}/never-stored` })
  const samples = await scrape(app)
  await scrape(app) // scraping twice changes nothing
  t.assert.equal(metricValue(samples, 'caching_proxy_requests_total', { outcome: 'miss', method: 'GET' }), 3)
  t.assert.equal(metricValue(samples, 'caching_proxy_requests_total', { outcome: 'hit', method: 'GET' }), 7)
  t.assert.equal(metricValue(samples, 'caching_proxy_requests_total'), 10, 'nothing else counted')
  t.assert.equal(metricValue(samples, 'caching_proxy_hit_ratio'), 0.7)
  const missBytes = paths.reduce((sum, path) => sum + Buffer.byteLength(body(path)), 0)
  const hitBytes = order.slice(3).reduce((sum, path) => sum + Buffer.byteLength(body(path)), 0)
  t.assert.equal(metricValue(samples, 'caching_proxy_response_bytes_total', { source: 'origin' }), missBytes)
  t.assert.equal(metricValue(samples, 'caching_proxy_response_bytes_total', { source: 'cache' }), hitBytes)
  t.assert.equal(metricValue(samples, 'caching_proxy_byte_hit_ratio'), hitBytes / (hitBytes + missBytes))
  t.assert.equal(metricValue(samples, 'caching_proxy_origin_latency_seconds_count'), 3)
  t.assert.equal(metricValue(samples, 'caching_proxy_origin_response_bytes_count'), 3)
  t.assert.equal(metricValue(samples, 'caching_proxy_origin_response_bytes_sum'), missBytes)
  t.assert.equal(metricValue(samples, 'caching_proxy_memory_tier_hits_total', { worker: String(process.pid) }), 7, 'every hit came from the memory tier')
  t.assert.equal(metricValue(samples, 'caching_proxy_memory_tier_hit_ratio'), 1)
  t.assert.equal(metricValue(samples, 'caching_proxy_memory_tier_entries'), 3)
  t.assert.equal(metricValue(samples, 'caching_proxy_store_entries'), 3)
  t.assert.equal(metricValue(samples, 'caching_proxy_store_bytes') > missBytes, true, 'store bytes include the bodies')
  t.assert.equal(metricValue(samples, 'caching_proxy_store_max_bytes'), 1073741824)
  t.assert.equal(metricValue(samples, 'caching_proxy_workers'), 1)
  t.assert.equal(server.requests.length, 3)
})

test('revalidations by status, coalesced requests, upstream errors and refusals by rule', { timeout: 30_000 }, async (t) => {
  let version = 1
  const server = await origin(t, {
    '/r': (req, res) => {
      res.setHeader('cache-control', 'public, max-age=0')
      res.setHeader('etag', `"v${version}"`)
      if (req.headers['if-none-match'] === `"v${version}"`) {
        res.statusCode = 304
        res.end()
        return
      }
      res.end(`version ${version}`)
    },
    '/slow': (_req, res) => {
      setTimeout(() => {
        res.setHeader('cache-control', 'public, max-age=300')
        res.end('slow')
      }, 300)
    }
  })
  const closed = await startOrigin({})
  await closed.close() // nothing listens on its port any more
  const app = await testApp(t, { UPSTREAM_DENY: 'denied.example' })
  const status = async (url: string): Promise<number> => (await app.inject({ method: 'GET', url })).statusCode

  t.assert.equal(await status(`/${server.host}/r`), 200) // miss, stored, stale at once
  t.assert.equal(await status(`/${server.host}/r`), 200) // revalidated with a 304
  version = 2
  t.assert.equal(await status(`/${server.host}/r`), 200) // the origin sends 200 to the revalidation
  const together = await Promise.all(Array.from({ length: 5 }, () => app.inject({ method: 'GET', url: `/${server.host}/slow` })))
  t.assert.deepEqual(together.map((res) => res.statusCode), [200, 200, 200, 200, 200])
  t.assert.equal(server.hits('/slow'), 1)
  t.assert.equal(await status(`/${closed.host}/gone`), 502)
  t.assert.equal(await status('/denied.example/x'), 403)
  t.assert.equal(await status('/denied.example/y'), 403)
  t.assert.equal((await app.inject({ method: 'GET', url: '/_proxy/metrics', remoteAddress: '192.0.2.7' })).statusCode, 403)

  const samples = await scrape(app)
  t.assert.equal(metricValue(samples, 'caching_proxy_revalidations_total', { status: '304' }), 1)
  t.assert.equal(metricValue(samples, 'caching_proxy_revalidations_total', { status: '200' }), 1)
  t.assert.equal(metricValue(samples, 'caching_proxy_requests_total', { outcome: 'revalidated' }), 1)
  t.assert.equal(metricValue(samples, 'caching_proxy_coalesced_total'), 4)
  t.assert.equal(metricValue(samples, 'caching_proxy_requests_total', { outcome: 'error' }), 1)
  t.assert.equal(metricValue(samples, 'caching_proxy_upstream_errors_total', { kind: 'ECONNREFUSED' }), 1)
  t.assert.equal(metricValue(samples, 'caching_proxy_refusals_total', { rule: 'upstream-deny-list' }), 2)
  t.assert.equal(metricValue(samples, 'caching_proxy_refusals_total', { rule: 'admin' }), 1)
  t.assert.equal(metricValue(samples, 'caching_proxy_requests_total'), 3 + 5 + 1, 'refused requests have no cache outcome')
})

test('store evictions by the LRU bound are counted', { timeout: 30_000 }, async (t) => {
  const paths = ['/e/1', '/e/2', '/e/3', '/e/4', '/e/5']
  const server = await origin(t, Object.fromEntries(paths.map((path) => [path, (_req, res) => {
    res.setHeader('cache-control', 'public, max-age=300')
    res.end(Buffer.alloc(1000, path.charCodeAt(3)))
  }])))
  // Room for two entries (1000 bytes of body and some metadata each) in the store.
  const app = await testApp(t, { MAX_CACHE_BYTES: '2600' })
  for (const path of paths) t.assert.equal((await app.inject({ method: 'GET', url: `/${server.host}${path}` })).statusCode, 200)
  const samples = await until('three evictions counted', async () => {
    const scraped = await scrape(app)
    return metricValue(scraped, 'caching_proxy_store_evictions_total', { reason: 'lru' }) >= 3 ? scraped : undefined
  })
  t.assert.equal(metricValue(samples, 'caching_proxy_store_evictions_total', { reason: 'lru' }), 3)
  t.assert.equal(metricValue(samples, 'caching_proxy_store_entries'), 2)
  t.assert.equal(metricValue(samples, 'caching_proxy_store_bytes') <= 2600, true)
})
