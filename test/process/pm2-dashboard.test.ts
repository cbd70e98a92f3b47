import { test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { cacheableOrigin, get, waitUntilStored } from '../helpers/process.ts'
import { startPm2App } from '../helpers/pm2.ts'

// The dashboard's stats across two PM2 workers sharing one SQLite store (needs `npm run
// build`): whichever worker answers /_proxy/stats reports the whole proxy and each worker.
// Every request is on a new connection, which PM2's cluster primary hands to the workers in turn.

test('PM2, two workers: /_proxy/stats on either worker has the whole traffic, per worker and in total', { timeout: 180_000 }, async (t: TestContext) => {
  const app = await startPm2App(t)
  const proxy = app.url
  const origin = await cacheableOrigin(t, ['/d/1', '/d/2', '/d/3'])
  const pids = (await app.workers()).map((p) => String(p.pid)).sort()
  t.assert.equal(pids.length, 2, 'two workers')
  const urls = ['/d/1', '/d/2', '/d/3'].map((path) => `${proxy}/${origin.host}${path}`)
  for (const url of urls) t.assert.equal((await get(url)).headers['x-cache'], 'MISS')
  await waitUntilStored(app.storeUri, urls.map((url) => `http://${url.slice(proxy.length + 1)}`))
  for (let i = 0; i < 7; i++) t.assert.equal((await get(urls[i % 3])).headers['x-cache'], 'HIT')

  // Each worker publishes every second: wait (bounded) until one answer has all 10.
  let stats: any
  const deadline = Date.now() + 15_000
  for (let round = 0; round < 100 && Date.now() < deadline; round++) {
    const res = await get(`${proxy}/_proxy/stats`)
    t.assert.equal(res.status, 200)
    stats = JSON.parse(res.body)
    if (stats.total.requests === 10 && stats.workers.length === 2) break
    await sleep(200)
  }
  // Each worker publishes once a second: after one more second both files hold all of its requests.
  await sleep(1500)
  // Four more answers, from both workers: the same totals.
  for (let i = 0; i < 4; i++) {
    if (i > 0) stats = JSON.parse((await get(`${proxy}/_proxy/stats`)).body)
    t.assert.equal(stats.total.requests, 10, `answer ${i}`)
    t.assert.deepEqual(stats.total.outcomes, { miss: 3, hit: 7 }, `answer ${i}`)
    t.assert.equal(stats.total.hitRatio5m, 0.7, `answer ${i}`)
    t.assert.deepEqual(stats.workers.map((w: { worker: string }) => w.worker).sort(), pids, `answer ${i}: both workers`)
    const perWorker = stats.workers.map((w: { requests: number }) => w.requests)
    t.assert.equal(perWorker[0] + perWorker[1], 10, `answer ${i}`)
    t.assert.equal(perWorker.every((n: number) => n > 0), true, `answer ${i}: both served some (${JSON.stringify(perWorker)})`)
    t.assert.deepEqual(stats.topMisses.map((u: { count: number }) => u.count), [1, 1, 1], `answer ${i}`)
    t.assert.equal(stats.topHits.reduce((n: number, u: { count: number }) => n + u.count, 0), 7, `answer ${i}`)
    t.assert.equal(stats.store.entries, 3, `answer ${i}: the shared store once`)
  }
  t.assert.equal(origin.requests.length, 3)
})
