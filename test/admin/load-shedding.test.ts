import { test, type TestContext } from 'node:test'
import type { ServerResponse } from 'node:http'
import { testApp } from '../helpers/app.ts'
import { startOrigin, type Origin } from '../helpers/origin.ts'
import { until } from '../helpers/poll.ts'

// Load shedding (plugins/load-shedding.ts, @fastify/under-pressure): 503 + Retry-After +
// CPX_UNDER_PRESSURE for what would cost work, hits still served, ready reports it.

async function origin (t: TestContext): Promise<Origin> {
  const cacheable = (path: string) => (_req: unknown, res: ServerResponse) => {
    res.setHeader('cache-control', 'public, max-age=600')
    res.end(`body of ${path}`)
  }
  const started = await startOrigin({ '/a': cacheable('/a'), '/b': cacheable('/b'), '/c': cacheable('/c') })
  t.after(() => started.close())
  return started
}

test('under pressure: hits are served, misses get 503 + Retry-After with CPX_UNDER_PRESSURE, ready says so', { timeout: 30_000 }, async (t) => {
  const site = await origin(t)
  let pressured = false
  // MEMORY_CACHE_BYTES=0 for /c: a hit read from the store is served under pressure too.
  const app = await testApp(t, { SHED_RETRY_AFTER_SECONDS: '7' }, { pressureCheck: { healthy: () => !pressured, intervalMs: 20 } })
  const get = (path: string, accept = 'application/json') => app.inject({ url: `/${site.host}${path}`, headers: { accept } })
  t.assert.equal((await get('/a')).headers['x-cache'], 'MISS')
  t.assert.equal((await get('/a')).headers['x-cache'], 'HIT')
  t.assert.equal((await app.inject({ url: '/_proxy/ready' })).statusCode, 200)

  pressured = true
  const ready = await until('ready reports the pressure', async () => {
    const res = await app.inject({ url: '/_proxy/ready' })
    return res.statusCode === 503 ? res : undefined
  }, { timeoutMs: 5000 })
  t.assert.equal(ready.json().status, 'under-pressure')
  t.assert.match(ready.json().reason, /health check/)
  const health = await app.inject({ url: '/_proxy/health' })
  t.assert.equal(health.statusCode, 200, 'alive: a restart would not help')
  t.assert.equal(health.json().underPressure, true)

  const hit = await get('/a')
  t.assert.equal(hit.statusCode, 200)
  t.assert.equal(hit.headers['x-cache'], 'HIT')
  t.assert.equal(hit.body, 'body of /a')

  const shed = await get('/b')
  t.assert.equal(shed.statusCode, 503)
  t.assert.equal(shed.headers['retry-after'], '7')
  t.assert.equal(shed.json().code, 'CPX_UNDER_PRESSURE')
  t.assert.match(shed.json().message, /overloaded/)
  const page = await get('/b', 'text/html')
  t.assert.equal(page.statusCode, 503)
  t.assert.match(String(page.headers['content-type']), /^text\/html/)
  t.assert.match(page.body, /CPX_UNDER_PRESSURE/)
  t.assert.equal(site.hits('/b'), 0, 'nothing shed reached the origin')

  const metrics = await app.inject({ url: '/_proxy/metrics' })
  t.assert.match(metrics.body, /caching_proxy_refusals_total\{rule="load-shedding"\} 2/)

  pressured = false
  await until('ready again', async () => (await app.inject({ url: '/_proxy/ready' })).statusCode === 200 || undefined, { timeoutMs: 5000 })
  const after = await get('/b')
  t.assert.equal(after.statusCode, 200)
  t.assert.equal(site.hits('/b'), 1)
  t.assert.equal(site.hits('/a'), 1)
})

test('under pressure without a memory tier: a hit read from the store is still served', { timeout: 30_000 }, async (t) => {
  const site = await origin(t)
  let pressured = false
  const app = await testApp(t, { MEMORY_CACHE_BYTES: '0' }, { pressureCheck: { healthy: () => !pressured, intervalMs: 20 } })
  t.assert.equal((await app.inject({ url: `/${site.host}/c` })).headers['x-cache'], 'MISS')
  pressured = true
  await until('ready reports the pressure', async () => (await app.inject({ url: '/_proxy/ready' })).statusCode === 503 || undefined, { timeoutMs: 5000 })
  const hit = await app.inject({ url: `/${site.host}/c` })
  t.assert.equal(hit.statusCode, 200)
  t.assert.equal(hit.body, 'body of /c')
  t.assert.equal((await app.inject({ url: `/${site.host}/a` })).statusCode, 503)
  t.assert.equal(site.hits('/c'), 1)
})

test('a real threshold: MAX_HEAP_USED_BYTES below the heap sheds within a sample, and ready names it', { timeout: 30_000 }, async (t) => {
  const site = await origin(t)
  const app = await testApp(t, { MAX_HEAP_USED_BYTES: '1024', MAX_EVENT_LOOP_DELAY_MS: '0' })
  const ready = await until('ready reports the pressure', async () => {
    const res = await app.inject({ url: '/_proxy/ready' })
    return res.statusCode === 503 ? res : undefined
  }, { timeoutMs: 5000 })
  t.assert.match(ready.json().reason, /MAX_HEAP_USED_BYTES 1024/)
  t.assert.equal(ready.json().readings.heapUsedBytes > 1024, true)
  const res = await app.inject({ url: `/${site.host}/a`, headers: { accept: 'application/json' } })
  t.assert.equal(res.statusCode, 503)
  t.assert.equal(res.headers['retry-after'], '10')
  t.assert.equal(res.json().code, 'CPX_UNDER_PRESSURE')
  t.assert.match(res.json().message, /heapUsedBytes/)
  t.assert.equal(site.hits('/a'), 0)
})

test('MAX_EVENT_LOOP_DELAY_MS: a blocked event loop sheds until it recovers', { timeout: 30_000 }, async (t) => {
  const site = await origin(t)
  const app = await testApp(t, { MAX_EVENT_LOOP_DELAY_MS: '200' })
  t.assert.equal((await app.inject({ url: '/_proxy/ready' })).statusCode, 200)
  const until1500 = performance.now() + 1500
  while (performance.now() < until1500) { /* the loop is blocked: the next sample sees it */ }
  const ready = await until('ready reports the delay', async () => {
    const res = await app.inject({ url: '/_proxy/ready' })
    return res.statusCode === 503 ? res : undefined
  }, { timeoutMs: 5000, intervalMs: 5 })
  t.assert.match(ready.json().reason, /^event loop delay (\d+ ms|over the whole 1 s sample) > MAX_EVENT_LOOP_DELAY_MS 200$/)
  // The next samples are normal again: served.
  await until('ready again', async () => (await app.inject({ url: '/_proxy/ready' })).statusCode === 200 || undefined, { timeoutMs: 5000 })
  t.assert.equal((await app.inject({ url: `/${site.host}/a` })).statusCode, 200)
})
