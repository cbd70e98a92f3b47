import { test } from 'node:test'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { startOrigin } from '../helpers/origin.ts'
import { join } from 'node:path'
import { tempDir, testApp } from '../helpers/app.ts'

test('requests for a URL whose response could not be stored go to the origin side by side (hit-for-pass), until it becomes storable', async (t) => {
  let inFlight = 0
  let most = 0
  let cacheable = false
  const origin = await startOrigin({
    '/ns': (_req, res) => {
      inFlight++
      most = Math.max(most, inFlight)
      setTimeout(() => {
        inFlight--
        res.writeHead(200, { 'cache-control': cacheable ? 'max-age=60' : 'no-store', 'content-length': 2 })
        res.end('ok')
      }, 100)
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  const url = `/${origin.host}/ns`
  t.assert.match(String((await app.inject(url)).headers['cache-status']), /fwd=miss; fwd-status=200; detail=no-store/)
  most = 0
  const burst = await Promise.all(Array.from({ length: 10 }, async () => await app.inject(url)))
  t.assert.deepEqual(burst.map((r) => r.statusCode), Array(10).fill(200))
  t.assert.match(String(burst[0].headers['cache-status']), /fwd=bypass; fwd-status=200; detail=no-store/)
  t.assert.equal(most, 10, 'all ten were at the origin at once: none waited for another')
  cacheable = true
  t.assert.match(String((await app.inject(url)).headers['cache-status']), /fwd=bypass; fwd-status=200; stored/)
  t.assert.equal((await app.inject(url)).headers['x-cache'], 'HIT')
})

test('a flight whose client left before the origin answered ends: the next request for the URL is answered', async (t) => {
  const origin = await startOrigin({
    '/slow': (_req, res) => { setTimeout(() => { res.writeHead(200, { 'cache-control': 'max-age=60' }); res.end('slow') }, 300) }
  })
  t.after(() => origin.close())
  const app = await testApp(t, { UPSTREAM_TIMEOUT_MS: '60000' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/${origin.host}`
  for (let round = 0; round < 3; round++) {
    const leader = http.get(`${base}/slow?r=${round}`)
    leader.on('error', () => {})
    await new Promise((resolve) => setTimeout(resolve, 50))
    leader.destroy()
    await new Promise((resolve) => setTimeout(resolve, 20))
    const res = await fetch(`${base}/slow?r=${round}`, { signal: AbortSignal.timeout(3000) })
    t.assert.equal(res.status, 200)
    t.assert.equal(await res.text(), 'slow')
  }
})

test('a URL in hit-for-pass goes upstream with no store call at all (no read, no lease, no generation check), its answer as before', { timeout: 30_000 }, async (t) => {
  let originHits = 0
  const origin = await startOrigin({
    '/ns': (_req, res) => {
      originHits++
      res.writeHead(200, { 'cache-control': 'no-store', 'content-length': 2 })
      res.end('ok')
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t, { CACHE_STORE: `sqlite://${join(tempDir(t), 'c.sqlite')}` })
  const store = app.cache.store
  const calls: string[] = []
  for (const name of ['get', 'acquireLease', 'releaseLease', 'hasLease', 'changedElsewhere', 'syncChanges', 'set', 'delete'] as const) {
    const real = (store[name] as (...args: unknown[]) => unknown).bind(store)
    ;(store as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => { calls.push(name); return real(...args) }
  }
  const url = `/${origin.host}/ns`
  const first = await app.inject(url)
  t.assert.match(String(first.headers['cache-status']), /fwd=miss; fwd-status=200; detail=no-store/)
  t.assert.equal(calls.includes('get'), true, 'the first request looked in the store')
  calls.length = 0
  for (let i = 0; i < 5; i++) {
    const res = await app.inject(url)
    t.assert.deepEqual([res.statusCode, res.body, res.headers['x-cache'], res.headers['cache-status']],
      [200, 'ok', 'MISS', 'caching-proxy; fwd=bypass; fwd-status=200; detail=no-store'])
  }
  t.assert.deepEqual(calls, [], 'no store call for the passes')
  t.assert.equal(originHits, 6)
})
