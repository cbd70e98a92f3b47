import { test } from 'node:test'
import { join } from 'node:path'
import { buildApp } from '../../src/app.ts'
import { tempDir, testConfig } from '../helpers/app.ts'
import { cacheableOrigin, get, mapLimit, spawnProxy, waitUntilStored, type ProxyProcess } from '../helpers/process.ts'

/** Log lines that show a store failure (or any error-level line) in a process's output. */
function storeErrors (proxy: ProxyProcess): string[] {
  return proxy.output().split('\n').filter((line) => {
    if (/SQLITE_BUSY|SQLITE_LOCKED|cache store failed|database is locked/i.test(line)) return true
    try {
      return (JSON.parse(line) as { level?: number }).level! >= 50
    } catch {
      return false
    }
  })
}

test('entries survive a restart on the same SQLite file', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t)
  const server = await cacheableOrigin(t, ['/a'])
  const env = { CACHE_STORE: `sqlite://${join(dir, 'cache.sqlite')}` }

  const first = await buildApp(testConfig(env))
  let closed = false
  t.after(async () => { if (!closed) await first.close() })
  const miss = await first.inject({ method: 'GET', url: `/${server.host}/a` })
  t.assert.equal(miss.statusCode, 200)
  t.assert.equal(miss.headers['x-cache'], 'MISS')
  t.assert.equal(miss.body, '/a #1')
  await first.close() // waits for the store write in flight
  closed = true

  const second = await buildApp(testConfig(env))
  t.after(() => second.close())
  const hit = await second.inject({ method: 'GET', url: `/${server.host}/a` })
  t.assert.equal(hit.statusCode, 200)
  t.assert.equal(hit.headers['x-cache'], 'HIT')
  t.assert.match(String(hit.headers['cache-status']), /hit/)
  t.assert.equal(hit.headers['content-type'], 'text/plain')
  t.assert.equal(hit.body, '/a #1')
  t.assert.equal(server.hits('/a'), 1)
})

test('two processes on one SQLite file share entries', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(t)
  const server = await cacheableOrigin(t, ['/from-a', '/from-b'])
  const storeUri = `sqlite://${join(dir, 'cache.sqlite')}`
  const [a, b] = await Promise.all([
    spawnProxy(t, { CACHE_STORE: storeUri }, dir),
    spawnProxy(t, { CACHE_STORE: storeUri }, dir)
  ])
  t.assert.notEqual(a.port, b.port)

  for (const [writer, reader, path] of [[a, b, '/from-a'], [b, a, '/from-b']] as const) {
    const miss = await get(`${writer.url}/${server.host}${path}`)
    t.assert.equal(miss.status, 200)
    t.assert.equal(miss.headers['x-cache'], 'MISS', path)
    t.assert.equal(miss.body, `${path} #1`)

    await waitUntilStored(storeUri, [`http://${server.host}${path}`])
    const hit = await get(`${reader.url}/${server.host}${path}`)
    t.assert.equal(hit.status, 200)
    t.assert.equal(hit.headers['x-cache'], 'HIT', `${path} from the other process`)
    t.assert.match(String(hit.headers['cache-status']), /hit/)
    t.assert.equal(hit.body, `${path} #1`)
    t.assert.equal(server.hits(path), 1, `${path} reached the origin once`)
  }
  t.assert.deepEqual([...storeErrors(a), ...storeErrors(b)], [])
})

test('concurrent writes from two processes raise no store error', { timeout: 180_000 }, async (t) => {
  const dir = tempDir(t)
  const COUNT = 200
  const paths = Array.from({ length: COUNT }, (_v, i) => `/bulk/${i}`)
  const server = await cacheableOrigin(t, paths)
  const storeUri = `sqlite://${join(dir, 'cache.sqlite')}`
  const [a, b] = await Promise.all([
    spawnProxy(t, { CACHE_STORE: storeUri }, dir),
    spawnProxy(t, { CACHE_STORE: storeUri }, dir)
  ])

  // Every path goes to both processes at once: 400 requests, 32 in flight.
  const jobs = paths.flatMap((path) => [{ proxy: a, path }, { proxy: b, path }])
  const started = Date.now()
  const replies = await mapLimit(jobs, 32, async ({ proxy, path }) => {
    const reply = await get(`${proxy.url}/${server.host}${path}`)
    return { path, ...reply }
  })
  t.diagnostic(`${jobs.length} requests in ${Date.now() - started} ms`)
  const wrong = replies.filter((r) => r.status !== 200 || !r.body.startsWith(`${r.path} #`))
  t.assert.deepEqual(wrong.map((r) => `${r.path}: ${r.status} ${r.body.slice(0, 80)}`), [])
  // Each path reaches the origin once, or twice when both processes missed at the same time.
  const badHits = paths.map((path) => ({ path, hits: server.hits(path) })).filter(({ hits }) => hits < 1 || hits > 2)
  t.assert.deepEqual(badHits, [])
  const originHits = server.requests.length

  // A graceful stop waits for the writes in flight; both must exit cleanly.
  await Promise.all([a.stop(), b.stop()])
  t.assert.equal(a.child.exitCode, 0, a.output())
  t.assert.equal(b.child.exitCode, 0, b.output())
  t.assert.deepEqual(storeErrors(a), [], 'process A logged no store error')
  t.assert.deepEqual(storeErrors(b), [], 'process B logged no store error')

  // Every entry made it to the file: a third process serves all of them from the cache.
  const c = await spawnProxy(t, { CACHE_STORE: storeUri }, dir)
  const again = await mapLimit(paths, 16, async (path) => ({ path, ...await get(`${c.url}/${server.host}${path}`) }))
  const notHit = again.filter((r) => r.status !== 200 || r.headers['x-cache'] !== 'HIT' || !r.body.startsWith(`${r.path} #`))
  t.assert.deepEqual(notHit.map((r) => `${r.path}: ${r.status} ${String(r.headers['x-cache'])}`), [])
  t.assert.equal(server.requests.length, originHits, 'the third process did not go to the origin')
  t.assert.deepEqual(storeErrors(c), [])
})

// The Host a client puts on its request is the proxy's own address (127.0.0.1:A,
// localhost:A, 127.0.0.1:B for another process): an entry must not depend on it.
test('an entry is served whatever Host the client used to reach the proxy', { timeout: 60_000 }, async (t) => {
  const server = await cacheableOrigin(t, ['/in-process'])
  const app = await buildApp(testConfig())
  t.after(() => app.close())
  const first = await app.inject({ method: 'GET', url: `/${server.host}/in-process`, headers: { host: '127.0.0.1:8888' } })
  t.assert.equal(first.headers['x-cache'], 'MISS')
  const second = await app.inject({ method: 'GET', url: `/${server.host}/in-process`, headers: { host: 'localhost:8888' } })
  t.assert.equal(second.statusCode, 200)
  t.assert.equal(second.headers['x-cache'], 'HIT', 'same upstream URL through another name of the proxy')
  t.assert.equal(server.hits('/in-process'), 1)
})
