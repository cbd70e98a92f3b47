import { test } from 'node:test'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { startOrigin } from '../helpers/origin.ts'
import { testApp } from '../helpers/app.ts'

// RFC 9111 §3.3-3.4: a 206 from the origin is stored; later ranges inside it are answered from
// it; anything else (a range outside it, no range, HEAD, a conditional request) goes to the origin;
// a complete 200 replaces the part.

const body = Buffer.from('0123456789abcdefghij') // 20 bytes

/** An origin that answers every request with the same part (as the cache-tests suite's does). */
function fixedPart (start: number, end: number, extra: Record<string, string> = {}) {
  return (_req: IncomingMessage, res: ServerResponse): void => {
    const part = body.subarray(start, end + 1)
    res.writeHead(206, {
      'cache-control': 'max-age=100',
      etag: '"p1"',
      'content-range': `bytes ${start}-${end}/${body.length}`,
      'content-length': String(part.length),
      ...extra
    })
    res.end(part)
  }
}

const T = { timeout: 10_000 }

test('a stored 206 answers ranges inside it: int, open and suffix ranges', T, async (t) => {
  const origin = await startOrigin({ '/tail': fixedPart(10, 19) })
  t.after(() => origin.close())
  const app = await testApp(t)
  const url = `/${origin.host}/tail`
  const first = await app.inject({ url, headers: { range: 'bytes=10-19' } })
  t.assert.equal(first.statusCode, 206)
  t.assert.equal(first.body, 'abcdefghij')
  t.assert.equal(first.headers['content-range'], 'bytes 10-19/20')
  t.assert.equal(first.headers['cache-status'], 'caching-proxy; fwd=miss; fwd-status=206; stored')
  for (const [range, expected, contentRange] of [
    ['bytes=12-14', 'cde', 'bytes 12-14/20'],
    ['bytes=15-', 'fghij', 'bytes 15-19/20'],
    ['bytes=-3', 'hij', 'bytes 17-19/20'],
    ['bytes=10-99', 'abcdefghij', 'bytes 10-19/20']
  ]) {
    const res = await app.inject({ url, headers: { range } })
    t.assert.equal(res.statusCode, 206, range)
    t.assert.equal(res.body, expected, range)
    t.assert.equal(res.headers['content-range'], contentRange, range)
    t.assert.equal(res.headers['content-length'], String(expected.length), range)
    t.assert.equal(res.headers['x-cache'], 'HIT', range)
    t.assert.match(String(res.headers['cache-status']), /^caching-proxy; hit; ttl=\d+$/, range)
  }
  t.assert.equal(origin.hits('/tail'), 1)
})

test('a stored 206 never answers a range outside it, a request without Range, HEAD or a conditional request', T, async (t) => {
  const origin = await startOrigin({ '/head-part': fixedPart(0, 9) })
  t.after(() => origin.close())
  const app = await testApp(t)
  const url = `/${origin.host}/head-part`
  await app.inject({ url, headers: { range: 'bytes=0-9' } })
  t.assert.equal(origin.hits('/head-part'), 1)
  const outside = await app.inject({ url, headers: { range: 'bytes=5-14' } })
  t.assert.equal(outside.headers['x-cache'], 'MISS')
  t.assert.equal(origin.hits('/head-part'), 2)
  const suffix = await app.inject({ url, headers: { range: 'bytes=-5' } }) // bytes 15-19: not stored
  t.assert.equal(suffix.headers['x-cache'], 'MISS')
  t.assert.equal(origin.hits('/head-part'), 3)
  const whole = await app.inject({ url })
  t.assert.equal(whole.headers['x-cache'], 'MISS')
  t.assert.equal(origin.hits('/head-part'), 4)
  const head = await app.inject({ method: 'HEAD', url, headers: { range: 'bytes=0-3' } })
  t.assert.equal(head.headers['x-cache'], 'MISS')
  t.assert.equal(origin.hits('/head-part'), 5)
  const conditional = await app.inject({ url, headers: { range: 'bytes=0-3', 'if-none-match': '"p1"' } })
  t.assert.equal(conditional.headers['x-cache'], 'MISS')
  t.assert.equal(origin.hits('/head-part'), 6)
  const ifRangeOther = await app.inject({ url, headers: { range: 'bytes=0-3', 'if-range': '"other"' } })
  t.assert.equal(ifRangeOther.headers['x-cache'], 'MISS')
  t.assert.equal(origin.hits('/head-part'), 7)
  const ifRangeSame = await app.inject({ url, headers: { range: 'bytes=0-3', 'if-range': '"p1"' } })
  t.assert.equal(ifRangeSame.statusCode, 206)
  t.assert.equal(ifRangeSame.body, '0123')
  t.assert.equal(ifRangeSame.headers['x-cache'], 'HIT')
  t.assert.equal(origin.hits('/head-part'), 7)
})

test('a complete 200 replaces a stored part; its ranges are then answered from it', T, async (t) => {
  const origin = await startOrigin({
    '/media': (req, res) => {
      // A real origin: 206 for a Range, the whole 200 otherwise (the proxy asks for the whole on a miss).
      if (req.headers.range === 'bytes=0-4') return fixedPart(0, 4, { 'cache-control': 'public, max-age=100' })(req, res)
      res.writeHead(200, { 'cache-control': 'max-age=100', etag: '"p1"', 'content-length': String(body.length) })
      res.end(body)
    }
  })
  t.after(() => origin.close())
  // Authorization + public: the request goes to the origin alone, Range and all; the 206 may be stored.
  const app = await testApp(t)
  const url = `/${origin.host}/media`
  const part = await app.inject({ url, headers: { range: 'bytes=0-4', authorization: 'Bearer x' } })
  t.assert.equal(part.statusCode, 206)
  t.assert.equal(part.body, '01234')
  t.assert.equal(origin.hits('/media'), 1)
  t.assert.equal((await app.inject({ url, headers: { range: 'bytes=1-2' } })).body, '12', 'answered from the part')
  t.assert.equal(origin.hits('/media'), 1)
  const complete = await app.inject({ url })
  t.assert.equal(complete.statusCode, 200)
  t.assert.equal(complete.body, body.toString())
  t.assert.equal(origin.requests[1].headers.range, undefined)
  const later = await app.inject({ url, headers: { range: 'bytes=15-' } })
  t.assert.equal(later.statusCode, 206)
  t.assert.equal(later.body, 'fghij')
  t.assert.equal(later.headers['x-cache'], 'HIT')
  t.assert.equal((await app.inject({ url })).headers['x-cache'], 'HIT')
  t.assert.equal(origin.hits('/media'), 2)
})

test('a 206 without one satisfied range of known length, or with the wrong number of bytes, is not stored', T, async (t) => {
  const origin = await startOrigin({
    '/unknown-length': fixedPart(0, 9, { 'content-range': 'bytes 0-9/*' }),
    '/short': (_req, res) => {
      res.writeHead(206, { 'cache-control': 'max-age=100', 'content-range': 'bytes 0-9/20' })
      res.end(body.subarray(0, 5)) // chunked, 5 bytes where the range names 10
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  for (const path of ['/unknown-length', '/short']) {
    const url = `/${origin.host}${path}`
    const first = await app.inject({ url, headers: { range: 'bytes=0-9' } })
    t.assert.equal(first.statusCode, 206, path)
    const again = await app.inject({ url, headers: { range: 'bytes=0-3' } })
    t.assert.equal(again.headers['x-cache'], 'MISS', path)
    t.assert.equal(origin.hits(path), 2, path)
  }
  const unknown = await app.inject({ url: `/${origin.host}/unknown-length`, headers: { range: 'bytes=0-9' } })
  t.assert.equal(unknown.headers['cache-status'], 'caching-proxy; fwd=miss; fwd-status=206; detail=partial')
})

test('a URL in hit-for-pass (too large to store) has its ranges fetched as they are; no part ends the pass', T, async (t) => {
  const large = Buffer.alloc(1000, 'z')
  const origin = await startOrigin({
    '/large': (req, res) => {
      const match = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''))
      if (match === null) {
        res.writeHead(200, { 'cache-control': 'max-age=100', 'content-length': String(large.length) })
        res.end(large)
        return
      }
      const [start, end] = [Number(match[1]), Number(match[2])]
      res.writeHead(206, { 'cache-control': 'max-age=100', 'content-range': `bytes ${start}-${end}/${large.length}`, 'content-length': String(end - start + 1) })
      res.end(large.subarray(start, end + 1))
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t, { MAX_ENTRY_BYTES: '100' })
  const url = `/${origin.host}/large`
  const first = await app.inject({ url, headers: { range: 'bytes=0-3' } })
  t.assert.equal(first.statusCode, 206)
  t.assert.equal(first.body, 'zzzz')
  t.assert.equal(origin.requests[0].headers.range, undefined, 'the whole response was asked for on the miss')
  for (let i = 1; i <= 3; i++) {
    const seek = await app.inject({ url, headers: { range: 'bytes=10-19' } })
    t.assert.equal(seek.statusCode, 206)
    t.assert.equal(seek.body, 'z'.repeat(10))
    t.assert.equal(seek.headers['content-range'], 'bytes 10-19/1000')
    t.assert.equal(seek.headers['cache-status'], 'caching-proxy; fwd=bypass; fwd-status=206; detail=partial')
    t.assert.equal(origin.requests[i].headers.range, 'bytes=10-19', 'the range went to the origin as it is')
  }
  t.assert.equal(origin.hits('/large'), 4)
})
