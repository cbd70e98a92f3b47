import { test } from 'node:test'
import { startOrigin } from '../helpers/origin.ts'
import { testApp } from '../helpers/app.ts'
import { fakeClock, settle } from '../helpers/clock.ts'
import { until } from '../helpers/poll.ts'

test('stale-while-revalidate serves the stale entry at once and refreshes it once in the background', async (t) => {
  const clock = fakeClock(t)
  let version = 1
  const origin = await startOrigin({
    '/swr': (_req, res) => {
      setTimeout(() => {
        res.writeHead(200, { 'cache-control': 'max-age=10, stale-while-revalidate=60', etag: `"${version}"` })
        res.end(`version ${version}`)
      }, 50)
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  await app.inject(`/${origin.host}/swr`)
  version = 2
  clock.advance(20)
  const responses = await Promise.all(Array.from({ length: 10 }, () => app.inject(`/${origin.host}/swr`)))
  for (const res of responses) {
    t.assert.equal(res.body, 'version 1')
    t.assert.match(String(res.headers['cache-status']), /^caching-proxy; hit; fwd=stale/)
  }
  await until('the background refresh reaches the origin', () => origin.requests.length >= 2)
  t.assert.equal(origin.requests[1].headers['if-none-match'], '"1"')
  // Until the refresh is stored, clients keep getting the stale entry; then the new one, from the cache.
  const fresh = await until('the refreshed entry is served', async () => {
    const res = await app.inject(`/${origin.host}/swr`)
    return res.body === 'version 2' && res
  })
  t.assert.equal(fresh.headers['x-cache'], 'HIT')
  await settle(50)
  t.assert.equal(origin.requests.length, 2, 'one background refresh')
})

test('past the stale-while-revalidate window the client waits for the origin', async (t) => {
  const clock = fakeClock(t)
  const origin = await startOrigin({
    '/late': (_req, res) => { res.writeHead(200, { 'cache-control': 'max-age=10, stale-while-revalidate=5' }); res.end(`n${origin.requests.length}`) }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  await app.inject(`/${origin.host}/late`)
  clock.advance(30)
  const res = await app.inject(`/${origin.host}/late`)
  t.assert.equal(res.body, 'n2')
  t.assert.equal(res.headers['x-cache'], 'MISS')
})

test('STALE_WHILE_REVALIDATE_SECONDS applies to origins that send no directive', async (t) => {
  const clock = fakeClock(t)
  const origin = await startOrigin({
    '/d': (_req, res) => { res.writeHead(200, { 'cache-control': 'max-age=10' }); res.end(`n${origin.requests.length}`) }
  })
  t.after(() => origin.close())
  const app = await testApp(t, { STALE_WHILE_REVALIDATE_SECONDS: '30' })
  await app.inject(`/${origin.host}/d`)
  clock.advance(20)
  const res = await app.inject(`/${origin.host}/d`)
  t.assert.equal(res.body, 'n1')
  t.assert.match(String(res.headers['cache-status']), /hit; fwd=stale/)
  for (let i = 0; i < 40 && origin.requests.length < 2; i++) await settle(25)
  t.assert.equal(origin.requests.length, 2)
})
