import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { cacheableOrigin, get, mapLimit, waitUntilStored, type Reply } from '../helpers/process.ts'
import { requestsLoggedBy, startPm2App } from '../helpers/pm2.ts'

test('PM2 cluster: two workers share the port and the cache, and a reload drops no request', { timeout: 240_000 }, async (t) => {
  // A private daemon (PM2_HOME in a temp dir, never ~/.pm2), killed when the test ends.
  const { name, url: proxy, storeUri, pm2, workers } = await startPm2App(t)
  const paths = Array.from({ length: 40 }, (_v, i) => `/pm2/${i}`)
  const origin = await cacheableOrigin(t, [...paths, '/reload'])

  await t.test('both workers are online and serve requests', async (t) => {
    const list = await workers()
    t.assert.equal(list.length, 2, 'two instances')
    t.assert.deepEqual(list.map((p) => p.pm2_env.status), ['online', 'online'])
    t.assert.deepEqual(list.map((p) => p.pm2_env.exec_mode), ['cluster_mode', 'cluster_mode'])
    const pids = list.map((p) => p.pid)
    t.assert.equal(new Set(pids).size, 2, 'two distinct processes')

    // 40 requests, each on a new connection, for 40 distinct upstream URLs.
    const first = await mapLimit(paths, 4, (path) => get(`${proxy}/${origin.host}${path}`))
    t.assert.deepEqual(first.map((r) => r.status), paths.map(() => 200))
    t.assert.deepEqual(first.map((r) => r.headers['x-cache']), paths.map(() => 'MISS'))
    t.assert.deepEqual(first.map((r) => r.body), paths.map((path) => `${path} #1`))
    t.assert.deepEqual(paths.map((path) => origin.hits(path)), paths.map(() => 1))

    // Which worker answered is visible in each worker's own PM2 log: one JSON line per
    // request with the worker's pid. Both workers must have answered some of the 40.
    const upstreams = new Set(paths.map((path) => `http://${origin.host}${path}`))
    const servedBy = new Map<number, number>()
    const deadline = Date.now() + 15_000
    for (let round = 0; round < 300 && Date.now() < deadline; round++) {
      servedBy.clear()
      for (const p of list) {
        const count = requestsLoggedBy(p.pm2_env.pm_out_log_path, p.pid, upstreams)
        if (count > 0) servedBy.set(p.pid, count)
      }
      if ([...servedBy.values()].reduce((a, b) => a + b, 0) >= paths.length) break
      await sleep(50) // PM2 writes the logs asynchronously
    }
    t.diagnostic(`requests per worker pid: ${JSON.stringify(Object.fromEntries(servedBy))}`)
    t.assert.equal([...servedBy.values()].reduce((a, b) => a + b, 0), paths.length, 'every request is in one worker log')
    t.assert.deepEqual([...servedBy.keys()].sort(), [...pids].sort(), 'both workers answered')

    // The workers share one store: the same 40 URLs are now hits whichever worker answers.
    await waitUntilStored(storeUri, [...upstreams])
    const second = await mapLimit(paths, 4, (path) => get(`${proxy}/${origin.host}${path}`))
    t.assert.deepEqual(second.map((r) => r.status), paths.map(() => 200))
    t.assert.deepEqual(second.map((r) => r.headers['x-cache']), paths.map(() => 'HIT'))
    t.assert.deepEqual(second.map((r) => r.body), paths.map((path) => `${path} #1`))
    t.assert.deepEqual(paths.map((path) => origin.hits(path)), paths.map(() => 1))
  })

  await t.test('pm2 reload under load fails no request', async (t) => {
    const before = await workers()
    const oldPids = before.map((p) => p.pid)

    // Two clients, each request on a new connection, until the reload is over
    // (bounded: 4,000 requests or 120 s).
    const state = { reloading: true }
    const results: Array<Reply | Error> = []
    const deadline = Date.now() + 120_000
    async function client (): Promise<void> {
      while ((state.reloading || results.length < 20) && results.length < 4000 && Date.now() < deadline) {
        const i = results.length
        // Mostly cached answers, some that go to the origin through the proxy.
        const path = i % 4 === 0 ? `/reload?n=${i}` : paths[i % paths.length]
        results.push(await get(`${proxy}/${origin.host}${path}`, 30_000).catch((error: Error) => error))
      }
    }
    const load = Promise.all([client(), client()])
    await sleep(300)
    const started = Date.now()
    try {
      await pm2('reload', name)
    } finally {
      state.reloading = false
    }
    const reloadMs = Date.now() - started
    await load
    t.diagnostic(`reload took ${reloadMs} ms; ${results.length} requests during the run`)

    const failures = results.flatMap((r, i) => r instanceof Error ? [`#${i}: ${r.message}`] : r.status === 200 ? [] : [`#${i}: status ${r.status} ${r.body.slice(0, 120)}`])
    t.assert.deepEqual(failures, [])
    t.assert.equal(results.length >= 20, true, 'the load ran')

    const after = await workers()
    t.assert.deepEqual(after.map((p) => p.pm2_env.status), ['online', 'online'])
    t.assert.equal(after.filter((p) => oldPids.includes(p.pid)).length, 0, 'both workers were replaced')
    const again = await get(`${proxy}/${origin.host}${paths[0]}`)
    t.assert.equal(again.status, 200)
    t.assert.equal(again.headers['x-cache'], 'HIT', 'the new workers serve from the shared store')
    t.assert.equal(origin.hits(paths[0]), 1)
  })
})
