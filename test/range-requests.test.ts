import { test } from 'node:test'
import { startOrigin } from './helpers/origin.ts'
import { testApp } from './helpers/app.ts'

const body = Buffer.from('0123456789abcdefghij')

test('a range on a cached entry is answered 206 (or 416) from the cache', async (t) => {
  const origin = await startOrigin({
    '/r': (_req, res) => { res.writeHead(200, { 'cache-control': 'max-age=100', etag: '"r1"' }); res.end(body) }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  await app.inject(`/${origin.host}/r`)
  const part = await app.inject({ url: `/${origin.host}/r`, headers: { range: 'bytes=2-5' } })
  t.assert.equal(part.statusCode, 206)
  t.assert.equal(part.body, '2345')
  t.assert.equal(part.headers['content-range'], 'bytes 2-5/20')
  t.assert.equal(part.headers['content-length'], '4')
  const suffix = await app.inject({ url: `/${origin.host}/r`, headers: { range: 'bytes=-3' } })
  t.assert.equal(suffix.body, 'hij')
  const unsatisfiable = await app.inject({ url: `/${origin.host}/r`, headers: { range: 'bytes=50-' } })
  t.assert.equal(unsatisfiable.statusCode, 416)
  t.assert.equal(unsatisfiable.headers['content-range'], 'bytes */20')
  const ifRangeStale = await app.inject({ url: `/${origin.host}/r`, headers: { range: 'bytes=0-1', 'if-range': '"old"' } })
  t.assert.equal(ifRangeStale.statusCode, 200)
  t.assert.equal(ifRangeStale.body, body.toString())
  t.assert.equal(origin.requests.length, 1)
})

test('a range request on a miss is forwarded as-is and its 206 is not stored as the full entry', async (t) => {
  const origin = await startOrigin({
    '/p': (req, res) => {
      if (req.headers.range === 'bytes=0-3') {
        res.writeHead(206, { 'cache-control': 'max-age=100', 'content-range': 'bytes 0-3/20' })
        res.end(body.subarray(0, 4))
        return
      }
      res.writeHead(200, { 'cache-control': 'max-age=100' })
      res.end(body)
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  const part = await app.inject({ url: `/${origin.host}/p`, headers: { range: 'bytes=0-3' } })
  t.assert.equal(part.statusCode, 206)
  t.assert.equal(part.body, '0123')
  t.assert.equal(origin.requests[0].headers.range, 'bytes=0-3')
  const full = await app.inject(`/${origin.host}/p`)
  t.assert.equal(full.statusCode, 200)
  t.assert.equal(full.body, body.toString())
  t.assert.equal(full.headers['x-cache'], 'MISS')
})

test('HEAD is answered from a stored GET; a HEAD miss does not store an empty body', async (t) => {
  const origin = await startOrigin({
    '/h': (_req, res) => { res.writeHead(200, { 'cache-control': 'max-age=100', 'content-length': String(body.length) }); res.end(body) }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  const headMiss = await app.inject({ method: 'HEAD', url: `/${origin.host}/h` })
  t.assert.equal(headMiss.statusCode, 200)
  t.assert.equal(headMiss.headers['x-cache'], 'MISS')
  const get = await app.inject(`/${origin.host}/h`)
  t.assert.equal(get.body, body.toString())
  t.assert.equal(get.headers['x-cache'], 'MISS')
  const headHit = await app.inject({ method: 'HEAD', url: `/${origin.host}/h` })
  t.assert.equal(headHit.headers['x-cache'], 'HIT')
  t.assert.equal(headHit.headers['content-length'], String(body.length))
  t.assert.deepEqual(origin.requests.map((r) => r.method), ['HEAD', 'GET'])
})
