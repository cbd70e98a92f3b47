import { test } from 'node:test'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { startOrigin } from '../helpers/origin.ts'
import { tempDir, testApp } from '../helpers/app.ts'
import { get, spawnProxy } from '../helpers/process.ts'

const slow = (ms: number, headers: Record<string, string>) => (_req: unknown, res: import('node:http').ServerResponse) => {
  setTimeout(() => { res.writeHead(200, headers); res.end('coalesced body') }, ms)
}

test('concurrent misses for one key send one request to the origin; every waiter gets the body', async (t) => {
  const origin = await startOrigin({ '/slow': slow(200, { 'cache-control': 'max-age=100' }) })
  t.after(() => origin.close())
  const app = await testApp(t)
  const responses = await Promise.all(Array.from({ length: 100 }, () => app.inject(`/${origin.host}/slow`)))
  t.assert.equal(origin.requests.length, 1)
  for (const res of responses) {
    t.assert.equal(res.statusCode, 200)
    t.assert.equal(res.body, 'coalesced body')
  }
  const statuses = new Set(responses.map((r) => String(r.headers['cache-status'])))
  t.assert.deepEqual([...statuses].sort(), ['caching-proxy; fwd=miss; fwd-status=200', 'caching-proxy; fwd=miss; fwd-status=200; collapsed']) // chunked: no `stored`
})

test('waiters are answered as soon as the leader has headers, while the body still streams', async (t) => {
  const origin = await startOrigin({
    '/stream': (_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=100' })
      res.write('first part ')
      setTimeout(() => res.end('second part'), 300)
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const started = Date.now()
  const firstBytes = await Promise.all(Array.from({ length: 5 }, () => new Promise<number>((resolve, reject) => {
    http.get(`${base}/${origin.host}/stream`, (res) => {
      res.once('data', () => resolve(Date.now() - started))
      res.resume()
    }).on('error', reject)
  })))
  t.assert.equal(origin.requests.length, 1)
  for (const ms of firstBytes) t.assert.equal(ms < 250, true, `first bytes after ${ms} ms`)
})

test('a response that turns out uncacheable is not shared: waiters go to the origin on their own', async (t) => {
  const origin = await startOrigin({ '/private': slow(100, { 'cache-control': 'private, max-age=100' }) })
  t.after(() => origin.close())
  const app = await testApp(t)
  const responses = await Promise.all(Array.from({ length: 5 }, () => app.inject(`/${origin.host}/private`)))
  t.assert.equal(origin.requests.length, 5)
  for (const res of responses) t.assert.equal(res.body, 'coalesced body')
})

test('only GET and HEAD are merged', async (t) => {
  const origin = await startOrigin({ '/post': slow(100, { 'cache-control': 'max-age=100' }) })
  t.after(() => origin.close())
  const app = await testApp(t)
  await Promise.all(Array.from({ length: 5 }, () => app.inject({ method: 'POST', url: `/${origin.host}/post`, payload: 'x' })))
  t.assert.equal(origin.requests.length, 5)
})

test('coalescing holds across two processes sharing one SQLite store', async (t) => {
  const origin = await startOrigin({ '/cold': slow(300, { 'cache-control': 'max-age=100' }) })
  t.after(() => origin.close())
  const dir = tempDir(t)
  const env = { CACHE_STORE: `sqlite://${join(dir, 'cache.sqlite')}`, LOG_LEVEL: 'warn' }
  const [a, b] = await Promise.all([spawnProxy(t, env, dir), spawnProxy(t, env, dir)])
  const responses = await Promise.all(Array.from({ length: 100 }, (_, i) => get(`${i % 2 === 0 ? a.url : b.url}/${origin.host}/cold`)))
  for (const res of responses) {
    t.assert.equal(res.status, 200)
    t.assert.equal(res.body, 'coalesced body')
  }
  t.assert.equal(origin.hits('/cold'), 1)
})
