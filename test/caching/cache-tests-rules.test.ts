import { test } from 'node:test'
import type { AddressInfo } from 'node:net'
import { startOrigin } from '../helpers/origin.ts'
import { testApp } from '../helpers/app.ts'

/**
 * Rules the public cache-tests suite (http-tests/cache-tests) checks that are not covered
 * elsewhere, each against a real origin through the proxy, named after the suite's test id.
 * The whole suite runs with scripts/conformance.sh.
 */

test('age-parse-suffix: a single Age line `7200, 0` makes a max-age=3600 response stale (RFC 9111 §5.1)', { timeout: 10_000 }, async (t) => {
  const origin = await startOrigin({
    '/suffix': (_req, res) => { res.writeHead(200, { 'cache-control': 'max-age=3600', age: '7200, 0' }); res.end('old') },
    '/prefix': (_req, res) => { res.writeHead(200, { 'cache-control': 'max-age=3600', age: '0, 7200' }); res.end('new') }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  for (const path of ['/suffix', '/prefix']) {
    t.assert.equal((await app.inject(`/${origin.host}${path}`)).statusCode, 200)
  }
  const suffix = await app.inject(`/${origin.host}/suffix`)
  t.assert.deepEqual([suffix.statusCode, suffix.body], [200, 'old'])
  t.assert.notEqual(suffix.headers['x-cache'], 'HIT')
  t.assert.equal((await app.inject(`/${origin.host}/prefix`)).headers['x-cache'], 'HIT')
  t.assert.deepEqual([origin.hits('/suffix'), origin.hits('/prefix')], [2, 1])
})

test('cdn-cc-invalid-sh-type-wrong: CDN-Cache-Control `max-age="10000"` is ignored, Cache-Control: no-store decides (RFC 9213 §2.1)', { timeout: 10_000 }, async (t) => {
  const origin = await startOrigin({
    '/typed': (_req, res) => { res.writeHead(200, { 'cache-control': 'no-store', 'cdn-cache-control': 'max-age="10000"' }); res.end('t') }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  for (let i = 0; i < 2; i++) {
    const res = await app.inject(`/${origin.host}/typed`)
    t.assert.deepEqual([res.statusCode, res.body, res.headers['x-cache']], [200, 't', 'MISS'])
    t.assert.equal(res.headers['cdn-cache-control'], 'max-age="10000"', 'passed on as the origin sent it')
  }
  t.assert.equal(origin.hits('/typed'), 2)
})

test('headers-store-Content-Location: fetch() in Node gets the stored Content-Location as the origin sent it, path-prefix mode included', { timeout: 10_000 }, async (t) => {
  const origin = await startOrigin({
    '/cl': (_req, res) => { res.writeHead(200, { 'cache-control': 'max-age=3600', 'content-location': '/bar', location: '/baz' }); res.end('cl') }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/${origin.host}/cl`
  // fetch() sends `Sec-Fetch-Mode: cors` and `User-Agent: node`, which are no browser's.
  for (const expected of ['MISS', 'HIT']) {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) })
    t.assert.deepEqual([res.status, await res.text(), res.headers.get('x-cache')], [200, 'cl', expected])
    t.assert.equal(res.headers.get('content-location'), '/bar')
    t.assert.equal(res.headers.get('location'), '/baz')
  }
  // A browser still gets proxy paths (test/header-rewrite.test.ts has the rules).
  const browser = await app.inject({ url: `/${origin.host}/cl`, headers: { 'user-agent': 'Mozilla/5.0 Chrome/140.0', 'sec-fetch-dest': 'document' } })
  t.assert.equal(browser.headers['content-location'], `/${origin.host}/bar`)
  t.assert.equal(origin.hits('/cl'), 1)
})
