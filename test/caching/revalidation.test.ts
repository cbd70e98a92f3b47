import { test } from 'node:test'
import { startOrigin } from '../helpers/origin.ts'
import { testApp } from '../helpers/app.ts'
import { fakeClock } from '../helpers/clock.ts'

test('a stale entry with an ETag is revalidated; a 304 refreshes it and serves the stored body', async (t) => {
  const clock = fakeClock(t)
  const origin = await startOrigin({
    '/e': (req, res) => {
      if (req.headers['if-none-match'] === '"v1"') {
        res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=60', 'x-refreshed': 'yes' })
        res.end()
        return
      }
      res.writeHead(200, { etag: '"v1"', 'cache-control': 'max-age=60', 'content-type': 'text/plain' })
      res.end('body v1')
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  t.assert.equal((await app.inject(`/${origin.host}/e`)).body, 'body v1')
  clock.advance(61)
  const revalidated = await app.inject(`/${origin.host}/e`)
  t.assert.equal(revalidated.statusCode, 200)
  t.assert.equal(revalidated.body, 'body v1')
  t.assert.equal(revalidated.headers['x-refreshed'], 'yes')
  t.assert.equal(revalidated.headers['content-type'], 'text/plain')
  t.assert.equal(revalidated.headers['cache-status'], 'caching-proxy; fwd=stale; fwd-status=304')
  t.assert.equal(origin.requests[1].headers['if-none-match'], '"v1"')
  // The 304 restarted the freshness lifetime: no origin contact for the next 60 s.
  clock.advance(30)
  const hit = await app.inject(`/${origin.host}/e`)
  t.assert.equal(hit.headers['x-cache'], 'HIT')
  t.assert.equal(hit.headers['x-refreshed'], 'yes')
  t.assert.equal(origin.requests.length, 2)
})

test('a stale entry with Last-Modified is revalidated with If-Modified-Since; a 200 replaces it', async (t) => {
  const clock = fakeClock(t)
  const lastModified = new Date(Date.now() - 3600_000).toUTCString()
  let version = 1
  const origin = await startOrigin({
    '/lm': (_req, res) => {
      res.writeHead(200, { 'last-modified': lastModified, 'cache-control': 'max-age=10' })
      res.end(`version ${version}`)
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  t.assert.equal((await app.inject(`/${origin.host}/lm`)).body, 'version 1')
  version = 2
  clock.advance(11)
  const replaced = await app.inject(`/${origin.host}/lm`)
  t.assert.equal(replaced.body, 'version 2')
  t.assert.equal(origin.requests[1].headers['if-modified-since'], lastModified)
  t.assert.match(String(replaced.headers['cache-status']), /fwd=stale; fwd-status=200$/) // chunked: `stored` is not known yet
  const hit = await app.inject(`/${origin.host}/lm`)
  t.assert.equal(hit.body, 'version 2')
  t.assert.equal(hit.headers['x-cache'], 'HIT')
})

test('no-cache responses are stored but revalidated on every use', async (t) => {
  const origin = await startOrigin({
    '/nc': (req, res) => {
      if (req.headers['if-none-match'] === '"n"') { res.writeHead(304, { etag: '"n"' }); res.end(); return }
      res.writeHead(200, { etag: '"n"', 'cache-control': 'no-cache, max-age=600' })
      res.end('no-cache body')
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  await app.inject(`/${origin.host}/nc`)
  for (let i = 0; i < 2; i++) {
    const res = await app.inject(`/${origin.host}/nc`)
    t.assert.equal(res.body, 'no-cache body')
    t.assert.equal(res.headers['cache-status'], 'caching-proxy; fwd=stale; fwd-status=304')
  }
  t.assert.equal(origin.requests.length, 3)
  t.assert.equal(origin.requests[2].headers['if-none-match'], '"n"')
})

test('must-revalidate: fresh is served, stale is never served without the origin', async (t) => {
  const clock = fakeClock(t)
  let up = true
  const origin = await startOrigin({
    '/mr': (_req, res) => {
      if (!up) { res.writeHead(503); res.end('down'); return }
      res.writeHead(200, { 'cache-control': 'max-age=10, must-revalidate, stale-if-error=600' })
      res.end('mr')
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  await app.inject(`/${origin.host}/mr`)
  t.assert.equal((await app.inject(`/${origin.host}/mr`)).headers['x-cache'], 'HIT')
  up = false
  clock.advance(11)
  const res = await app.inject(`/${origin.host}/mr`)
  t.assert.equal(res.statusCode, 503)
  t.assert.equal(origin.requests.length, 2)
})
