import { test } from 'node:test'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { startOrigin } from '../helpers/origin.ts'
import { testApp } from '../helpers/app.ts'

// RFC 9111 §3.4: a 206 with the same strong validator as a stored part whose range overlaps or
// touches it is stored combined with it; once the union is the whole representation it is a 200.

const T = { timeout: 15_000 }
const HIT = /^caching-proxy; hit; ttl=\d+$/

/** An origin that answers the n-th request with the n-th part (the last one again after that), as the cache-tests suite's does. */
function partsInTurn (body: Buffer, parts: Array<[number, number, string]>) {
  let served = 0
  return (_req: IncomingMessage, res: ServerResponse): void => {
    const [start, end, etag] = parts[Math.min(served++, parts.length - 1)]
    const bytes = body.subarray(start, end + 1)
    res.writeHead(206, {
      'cache-control': 'max-age=100',
      etag,
      'content-type': 'text/plain',
      'content-range': `bytes ${start}-${end}/${body.length}`,
      'content-length': String(bytes.length)
    })
    res.end(bytes)
  }
}

test('two touching parts with the same strong ETag combine; their union covering the body answers a full GET as a HIT 200', T, async (t) => {
  const body = Buffer.from('0123456789')
  const origin = await startOrigin({ '/ten': partsInTurn(body, [[0, 4, '"v1"'], [5, 9, '"v1"']]) })
  t.after(() => origin.close())
  const app = await testApp(t)
  const url = `/${origin.host}/ten`
  const first = await app.inject({ url, headers: { range: 'bytes=0-4' } })
  t.assert.equal(first.statusCode, 206)
  t.assert.equal(first.body, '01234')
  const second = await app.inject({ url, headers: { range: 'bytes=5-9' } })
  t.assert.equal(second.statusCode, 206)
  t.assert.equal(second.body, '56789')
  t.assert.equal(second.headers['x-cache'], 'MISS', 'outside the stored part')
  t.assert.equal(origin.hits('/ten'), 2)

  const middle = await app.inject({ url, headers: { range: 'bytes=2-7' } })
  t.assert.equal(middle.statusCode, 206)
  t.assert.equal(middle.body, '234567', 'bytes from both parts')
  t.assert.equal(middle.headers['content-range'], 'bytes 2-7/10')
  t.assert.equal(middle.headers['x-cache'], 'HIT')
  t.assert.match(String(middle.headers['cache-status']), HIT)

  const whole = await app.inject({ url })
  t.assert.equal(whole.statusCode, 200)
  t.assert.equal(whole.body, '0123456789')
  t.assert.equal(whole.headers['content-length'], '10')
  t.assert.equal(whole.headers['content-range'], undefined)
  t.assert.equal(whole.headers.etag, '"v1"')
  t.assert.equal(whole.headers['x-cache'], 'HIT')
  t.assert.match(String(whole.headers['cache-status']), HIT)
  t.assert.equal(origin.hits('/ten'), 2, 'everything after the two parts came from the cache')
})

test('parts combine into a larger part first, then into the whole; overlapping bytes come from the newest part', T, async (t) => {
  const body = Buffer.from('0123456789abcdefghij') // 20 bytes
  const origin = await startOrigin({ '/twenty': partsInTurn(body, [[0, 4, '"v1"'], [3, 9, '"v1"'], [10, 19, '"v1"']]) })
  t.after(() => origin.close())
  const app = await testApp(t)
  const url = `/${origin.host}/twenty`
  await app.inject({ url, headers: { range: 'bytes=0-4' } })
  const overlapping = await app.inject({ url, headers: { range: 'bytes=5-9' } })
  t.assert.equal(overlapping.body, '3456789', 'the origin sent 3-9')
  t.assert.equal(origin.hits('/twenty'), 2)

  const part = await app.inject({ url, headers: { range: 'bytes=0-' } }) // 0-19: not all stored yet
  t.assert.equal(part.headers['x-cache'], 'MISS')
  t.assert.equal(origin.hits('/twenty'), 3)
  const inside = await app.inject({ url, headers: { range: 'bytes=1-8' } })
  t.assert.equal(inside.statusCode, 206)
  t.assert.equal(inside.body, '12345678')
  t.assert.equal(inside.headers['x-cache'], 'HIT')

  const whole = await app.inject({ url })
  t.assert.equal(whole.statusCode, 200)
  t.assert.equal(whole.body, body.toString())
  t.assert.equal(whole.headers['x-cache'], 'HIT')
  const tail = await app.inject({ url, headers: { range: 'bytes=-4' } })
  t.assert.equal(tail.body, 'ghij')
  t.assert.equal(tail.headers['content-range'], 'bytes 16-19/20')
  t.assert.equal(tail.headers['x-cache'], 'HIT')
  t.assert.equal(origin.hits('/twenty'), 3)
})

test('parts with different ETags, weak ETags or a gap between them do not combine: the newest part replaces the stored one', T, async (t) => {
  const body = Buffer.from('0123456789')
  const origin = await startOrigin({
    '/other-etag': partsInTurn(body, [[0, 4, '"v1"'], [5, 9, '"v2"']]),
    '/weak': partsInTurn(body, [[0, 4, 'W/"v1"'], [5, 9, 'W/"v1"']]),
    '/gap': partsInTurn(body, [[0, 3, '"v1"'], [5, 9, '"v1"']])
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  for (const path of ['/other-etag', '/weak', '/gap']) {
    const url = `/${origin.host}${path}`
    await app.inject({ url, headers: { range: 'bytes=0-3' } })
    await app.inject({ url, headers: { range: 'bytes=5-9' } })
    t.assert.equal(origin.hits(path), 2, path)
    const newest = await app.inject({ url, headers: { range: 'bytes=6-8' } })
    t.assert.equal(newest.body, '678', path)
    t.assert.equal(newest.headers['x-cache'], 'HIT', `${path}: the newest part is stored`)
    const across = await app.inject({ url, headers: { range: 'bytes=2-7' } })
    t.assert.equal(across.headers['x-cache'], 'MISS', `${path}: not combined`)
    t.assert.equal(origin.hits(path), 3, path)
    const old = await app.inject({ url, headers: { range: 'bytes=0-1' } })
    t.assert.equal(old.headers['x-cache'], 'MISS', `${path}: the older part was replaced`)
    t.assert.equal(origin.hits(path), 4, path)
  }
})

test('parts fetched with Authorization from an origin that honours Range combine into a whole that answers everyone', T, async (t) => {
  const body = Buffer.from('abcdefghij')
  const origin = await startOrigin({
    '/media': (req, res) => {
      const match = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''))
      if (match === null) {
        res.writeHead(200, { 'cache-control': 'public, max-age=100', etag: '"m"', 'content-length': String(body.length) })
        res.end(body)
        return
      }
      const [start, end] = [Number(match[1]), Math.min(Number(match[2]), body.length - 1)]
      res.writeHead(206, { 'cache-control': 'public, max-age=100', etag: '"m"', 'content-range': `bytes ${start}-${end}/${body.length}`, 'content-length': String(end - start + 1) })
      res.end(body.subarray(start, end + 1))
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  const url = `/${origin.host}/media`
  // Authorization: each request goes to the origin alone, its Range as it is; `public` lets the part be stored.
  const first = await app.inject({ url, headers: { range: 'bytes=0-5', authorization: 'Bearer x' } })
  t.assert.equal(first.body, 'abcdef')
  const second = await app.inject({ url, headers: { range: 'bytes=4-9', authorization: 'Bearer x' } })
  t.assert.equal(second.body, 'efghij')
  t.assert.equal(origin.requests[1].headers.range, 'bytes=4-9')
  const whole = await app.inject({ url })
  t.assert.equal(whole.statusCode, 200)
  t.assert.equal(whole.body, 'abcdefghij')
  t.assert.equal(whole.headers['x-cache'], 'HIT')
  t.assert.equal(origin.hits('/media'), 2)
})
