import { test, type TestContext } from 'node:test'
import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { cacheableOrigin, get, waitUntilStored, type Reply } from '../helpers/process.ts'
import { requestsLoggedBy, startPm2App, type Pm2App } from '../helpers/pm2.ts'
import { metricValue, parseMetrics, type Sample } from '../helpers/prometheus.ts'

// Issue #11 across two PM2 workers sharing one SQLite store (needs `npm run build`): a
// scrape that lands on either worker reports the whole proxy, and a purge answered by one
// worker is in force on both before its answer arrives. Every request is on a new
// connection, which PM2's cluster primary hands to the workers in turn.

const TOKEN = 'pm2-admin-token'
const AUTH = { authorization: `Bearer ${TOKEN}` }

/** One request with any method on a fresh connection. */
function request (method: string, url: string, headers: Record<string, string> = {}, timeoutMs = 15_000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, headers: { connection: 'close', ...headers }, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer within ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end()
  })
}

async function scrape (proxy: string): Promise<Sample[]> {
  const res = await get(`${proxy}/_proxy/metrics`, 15_000, AUTH)
  if (res.status !== 200) throw new Error(`metrics answered ${res.status}: ${res.body}`)
  return parseMetrics(res.body)
}

/** Which workers (pids) logged a request for one of `urls` between `from` and now (PM2 writes its logs asynchronously). */
async function servedBy (app: Pm2App, urls: string[], from: number, expected: number): Promise<Map<number, number>> {
  const list = await app.workers()
  const counts = new Map<number, number>()
  const deadline = Date.now() + 10_000
  for (let round = 0; round < 200 && Date.now() < deadline; round++) {
    counts.clear()
    for (const p of list) counts.set(p.pid, requestsLoggedBy(p.pm2_env.pm_out_log_path, p.pid, new Set(urls), from))
    if ([...counts.values()].reduce((a, b) => a + b, 0) >= expected) break
    await sleep(50)
  }
  return counts
}

test('PM2, two workers: one scrape reports the whole proxy; purges are in force on every worker', { timeout: 240_000 }, async (t: TestContext) => {
  const app = await startPm2App(t, { ADMIN_TOKEN: TOKEN })
  const proxy = app.url
  const paths = ['/m/1', '/m/2', '/m/3', '/u/1', '/pre/a', '/pre/b', '/keep', '/h/1', '/h/2']
  const origin = await cacheableOrigin(t, paths)
  const other = await cacheableOrigin(t, ['/h/1', '/h/2'])
  const pids = (await app.workers()).map((p) => p.pid)
  t.assert.equal(new Set(pids).size, 2, 'two workers')

  await t.test('3 misses then 7 hits: exact counters and hit ratio in one scrape, on either worker', async (t) => {
    const urls = ['/m/1', '/m/2', '/m/3'].map((path) => `${proxy}/${origin.host}${path}`)
    const from = Date.now()
    const misses = []
    for (const url of urls) misses.push(await get(url))
    t.assert.deepEqual(misses.map((r) => r.headers['x-cache']), ['MISS', 'MISS', 'MISS'])
    await waitUntilStored(app.storeUri, urls.map((url) => url.slice(proxy.length + 1).replace(/^/, 'http://')))
    const hits = []
    for (let i = 0; i < 7; i++) hits.push(await get(urls[i % 3]))
    t.assert.deepEqual(hits.map((r) => r.headers['x-cache']), Array(7).fill('HIT'))
    const counts = await servedBy(app, urls.map((url) => `http://${url.slice(proxy.length + 1)}`), from, 10)
    t.diagnostic(`requests per worker: ${JSON.stringify(Object.fromEntries(counts))}`)
    t.assert.deepEqual([...counts.values()].filter((n) => n > 0).length, 2, 'both workers served some of the 10')

    // The first scrape right after the traffic is already exact: the scraped worker asks the
    // other one for a fresh snapshot and waits for it (src/admin/snapshots.ts `fresh`).
    let samples: Sample[] = await scrape(proxy)
    // Four more scrapes, which land on both workers: each one reports the same totals.
    for (let i = 0; i < 4; i++) {
      if (i > 0) samples = await scrape(proxy)
      t.assert.equal(metricValue(samples, 'caching_proxy_workers'), 2, `scrape ${i}: both workers merged`)
      t.assert.equal(metricValue(samples, 'caching_proxy_requests_total', { outcome: 'miss', method: 'GET' }), 3, `scrape ${i}`)
      t.assert.equal(metricValue(samples, 'caching_proxy_requests_total', { outcome: 'hit', method: 'GET' }), 7, `scrape ${i}`)
      t.assert.equal(metricValue(samples, 'caching_proxy_requests_total'), 10, `scrape ${i}: nothing else (probes, scrapes) counted`)
      t.assert.equal(metricValue(samples, 'caching_proxy_hit_ratio'), 0.7, `scrape ${i}`)
      const workers = new Set(samples.filter((s) => s.name === 'caching_proxy_memory_tier_entries').map((s) => s.labels.worker))
      t.assert.deepEqual([...workers].sort(), pids.map(String).sort(), `scrape ${i}: the memory tier per worker`)
      t.assert.equal(metricValue(samples, 'caching_proxy_store_entries'), 3, `scrape ${i}: the shared store once, not per worker`)
    }
    t.assert.equal(origin.hits('/m/1') + origin.hits('/m/2') + origin.hits('/m/3'), 3)
  })

  await t.test('purge by URL, prefix and host: the next requests on both workers never get the old body', async (t) => {
    const cases = [
      { name: 'url', purge: `url=${encodeURIComponent(`http://${origin.host}/u/1`)}`, server: origin, paths: ['/u/1'] },
      { name: 'prefix', purge: `prefix=${encodeURIComponent(`http://${origin.host}/pre/`)}`, server: origin, paths: ['/pre/a', '/pre/b'] },
      { name: 'host', purge: `host=${other.host}`, server: other, paths: ['/h/1', '/h/2'] },
      { name: 'PURGE', purge: undefined, server: origin, paths: ['/u/1'] }
    ]
    const keep = `${proxy}/${origin.host}/keep`
    await get(keep)
    for (const { name, purge, server, paths } of cases) {
      const urls = paths.map((path) => `${proxy}/${server.host}${path}`)
      const before = paths.map((path) => server.hits(path))
      // Four requests each: both workers hold the entry in their memory tier.
      for (const url of urls) {
        const first = await get(url)
        if (before[urls.indexOf(url)] === 0) t.assert.equal(first.headers['x-cache'], 'MISS', `${name}: ${url} first`)
        for (let i = 0; i < 3; i++) t.assert.equal((await get(url)).headers['x-cache'], 'HIT', `${name}: ${url} cached`)
      }
      const filled = paths.map((path) => server.hits(path))
      const from = Date.now()
      const answer = purge === undefined
        ? await request('PURGE', urls[0], AUTH)
        : await request('DELETE', `${proxy}/_proxy/cache?${purge}`, AUTH)
      t.assert.equal(answer.status, 200, `${name}: ${answer.body}`)
      t.assert.deepEqual(JSON.parse(answer.body), { purged: paths.length, soft: false }, name)
      for (const [i, url] of urls.entries()) {
        const after = []
        for (let n = 0; n < 4; n++) after.push(await get(url))
        const fresh = `${paths[i]} #${filled[i] + 1}`
        t.assert.deepEqual(after.map((r) => r.body), Array(4).fill(fresh), `${name}: ${url} is fetched again, never the old body`)
        t.assert.equal(after[0].headers['x-cache'], 'MISS', `${name}: ${url} the first request after the purge`)
        t.assert.equal(server.hits(paths[i]), filled[i] + 1, `${name}: ${url} one origin request after the purge`)
      }
      const counts = await servedBy(app, urls.map((url) => `http://${url.slice(proxy.length + 1)}`), from, 4 * urls.length)
      t.assert.deepEqual([...counts.values()].filter((n) => n > 0).length, 2, `${name}: both workers answered after the purge (${JSON.stringify(Object.fromEntries(counts))})`)
    }
    t.assert.equal((await get(keep)).headers['x-cache'], 'HIT', 'what no purge named stays')
    t.assert.equal(origin.hits('/keep'), 1)
    t.assert.equal(origin.requests.filter((r) => r.method !== 'GET').length, 0, 'no purge reached the origin')
  })
})
