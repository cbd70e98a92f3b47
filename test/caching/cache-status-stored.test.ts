import { test } from 'node:test'
import { startOrigin } from '../helpers/origin.ts'
import { testApp } from '../helpers/app.ts'

// RFC 9211 §2.7: `stored` says the response was stored. It goes out with the response headers,
// so it is said only when storing is decided by then: a declared Content-Length within
// MAX_ENTRY_BYTES. A chunked body is stored (or not) once it ended, without the parameter.

const MAX = 64
const small = Buffer.from('a small chunked body')
const large = Buffer.alloc(MAX * 3, 'x')

function chunked (body: Buffer) {
  return (_req: unknown, res: import('node:http').ServerResponse): void => {
    res.writeHead(200, { 'cache-control': 'max-age=100' })
    // Two writes before end: Node frames this with Transfer-Encoding: chunked.
    res.write(body.subarray(0, 10))
    setTimeout(() => res.end(body.subarray(10)), 5)
  }
}

test('a chunked response over MAX_ENTRY_BYTES does not say stored and is not stored', { timeout: 10_000 }, async (t) => {
  const origin = await startOrigin({ '/large': chunked(large) })
  t.after(() => origin.close())
  const app = await testApp(t, { MAX_ENTRY_BYTES: String(MAX) })
  const first = await app.inject(`/${origin.host}/large`)
  t.assert.equal(first.statusCode, 200)
  t.assert.equal(first.headers['transfer-encoding'], 'chunked')
  t.assert.equal(first.rawPayload.length, large.length)
  t.assert.equal(first.headers['cache-status'], 'caching-proxy; fwd=miss; fwd-status=200')
  const second = await app.inject(`/${origin.host}/large`)
  t.assert.equal(second.headers['x-cache'], 'MISS')
  t.assert.equal(second.rawPayload.length, large.length)
  t.assert.equal(origin.hits('/large'), 2)
})

test('a small chunked response is stored without saying stored; the next request is a hit', { timeout: 10_000 }, async (t) => {
  const origin = await startOrigin({ '/small': chunked(small) })
  t.after(() => origin.close())
  const app = await testApp(t, { MAX_ENTRY_BYTES: String(MAX) })
  const first = await app.inject(`/${origin.host}/small`)
  t.assert.equal(first.statusCode, 200)
  t.assert.equal(first.headers['transfer-encoding'], 'chunked')
  t.assert.equal(first.body, small.toString())
  t.assert.equal(first.headers['cache-status'], 'caching-proxy; fwd=miss; fwd-status=200')
  t.assert.equal(first.headers['x-cache'], 'MISS')
  const second = await app.inject(`/${origin.host}/small`)
  t.assert.equal(second.statusCode, 200)
  t.assert.equal(second.body, small.toString())
  t.assert.equal(second.headers['x-cache'], 'HIT')
  t.assert.match(String(second.headers['cache-status']), /^caching-proxy; hit; ttl=\d+$/)
  t.assert.equal(origin.hits('/small'), 1)
})

test('a response with a declared Content-Length within MAX_ENTRY_BYTES says stored, and is', { timeout: 10_000 }, async (t) => {
  const origin = await startOrigin({
    '/declared': (_req, res) => { res.writeHead(200, { 'cache-control': 'max-age=100', 'content-length': String(small.length) }); res.end(small) }
  })
  t.after(() => origin.close())
  const app = await testApp(t, { MAX_ENTRY_BYTES: String(MAX) })
  const first = await app.inject(`/${origin.host}/declared`)
  t.assert.equal(first.headers['cache-status'], 'caching-proxy; fwd=miss; fwd-status=200; stored')
  const second = await app.inject(`/${origin.host}/declared`)
  t.assert.equal(second.headers['x-cache'], 'HIT')
  t.assert.equal(second.body, small.toString())
  t.assert.equal(origin.hits('/declared'), 1)
})

test('a declared Content-Length over MAX_ENTRY_BYTES says why it was not stored', { timeout: 10_000 }, async (t) => {
  const origin = await startOrigin({
    '/big': (_req, res) => { res.writeHead(200, { 'cache-control': 'max-age=100', 'content-length': String(large.length) }); res.end(large) }
  })
  t.after(() => origin.close())
  const app = await testApp(t, { MAX_ENTRY_BYTES: String(MAX), HIT_FOR_PASS_SECONDS: '0' })
  const first = await app.inject(`/${origin.host}/big`)
  t.assert.equal(first.headers['cache-status'], 'caching-proxy; fwd=miss; fwd-status=200; detail=too-large')
  t.assert.equal(first.rawPayload.length, large.length)
  await app.inject(`/${origin.host}/big`)
  t.assert.equal(origin.hits('/big'), 2)
})
