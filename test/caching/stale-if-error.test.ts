import { test } from 'node:test'
import { startOrigin } from '../helpers/origin.ts'
import { testApp } from '../helpers/app.ts'
import { fakeClock } from '../helpers/clock.ts'

test('stale-if-error serves the stale entry when the origin answers 500/502/503/504', async (t) => {
  const clock = fakeClock(t)
  let status = 200
  const origin = await startOrigin({
    '/sie': (_req, res) => {
      res.writeHead(status, { 'cache-control': 'max-age=10, stale-if-error=100' })
      res.end(status === 200 ? 'good copy' : 'origin error')
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  await app.inject(`/${origin.host}/sie`)
  clock.advance(20)
  for (const failing of [500, 502, 503, 504]) {
    status = failing
    const res = await app.inject(`/${origin.host}/sie`)
    t.assert.equal(res.statusCode, 200, String(failing))
    t.assert.equal(res.body, 'good copy')
    t.assert.equal(res.headers['cache-status'], `caching-proxy; fwd=stale; fwd-status=${failing}`)
  }
  status = 404
  t.assert.equal((await app.inject(`/${origin.host}/sie`)).statusCode, 404)
  clock.advance(200) // beyond the window
  status = 503
  t.assert.equal((await app.inject(`/${origin.host}/sie`)).statusCode, 503)
})

test('stale-if-error serves the stale entry when the origin cannot be reached or times out', async (t) => {
  const clock = fakeClock(t)
  let mode: 'ok' | 'slow' = 'ok'
  const origin = await startOrigin({
    '/down': (_req, res) => {
      if (mode === 'slow') { setTimeout(() => res.end('too late'), 1500); return }
      res.writeHead(200, { 'cache-control': 'max-age=10' })
      res.end('kept copy')
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t, { STALE_IF_ERROR_SECONDS: '300', UPSTREAM_TIMEOUT_MS: '300' })
  await app.inject(`/${origin.host}/down`)
  clock.advance(20)
  mode = 'slow'
  const timedOut = await app.inject(`/${origin.host}/down`)
  t.assert.equal(timedOut.statusCode, 200)
  t.assert.equal(timedOut.body, 'kept copy')
  t.assert.match(String(timedOut.headers['cache-status']), /fwd=stale; detail=UND_ERR_HEADERS_TIMEOUT/)
  await origin.close()
  const refused = await app.inject(`/${origin.host}/down`)
  t.assert.equal(refused.statusCode, 200)
  t.assert.equal(refused.body, 'kept copy')
  t.assert.match(String(refused.headers['cache-status']), /fwd=stale; detail=ECONNREFUSED/)
})

test('an unreachable origin: a stale entry answers by default for STALE_ON_ERROR_SECONDS, unless the response forbids it', async (t) => {
  const clock = fakeClock(t)
  const origin = await startOrigin({
    '/plain': (_req, res) => { res.writeHead(200, { 'cache-control': 'max-age=10' }); res.end('plain copy') },
    '/strict': (_req, res) => { res.writeHead(200, { 'cache-control': 'max-age=10, must-revalidate' }); res.end('strict copy') },
    '/shared': (_req, res) => { res.writeHead(200, { 'cache-control': 's-maxage=10' }); res.end('shared copy') }
  })
  const app = await testApp(t, { STALE_ON_ERROR_SECONDS: '60' })
  for (const path of ['/plain', '/strict', '/shared']) await app.inject(`/${origin.host}${path}`)
  await origin.close()
  clock.advance(30)
  const plain = await app.inject(`/${origin.host}/plain`)
  t.assert.equal(plain.statusCode, 200)
  t.assert.equal(plain.body, 'plain copy')
  t.assert.match(String(plain.headers['cache-status']), /fwd=stale; detail=ECONNREFUSED/)
  t.assert.equal((await app.inject(`/${origin.host}/strict`)).statusCode, 502)
  t.assert.equal((await app.inject(`/${origin.host}/shared`)).statusCode, 502)
  clock.advance(60) // 80 s past staleness: beyond the bound
  t.assert.equal((await app.inject(`/${origin.host}/plain`)).statusCode, 502)
})
