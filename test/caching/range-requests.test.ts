import { test } from 'node:test'
import { startOrigin } from '../helpers/origin.ts'
import { testApp } from '../helpers/app.ts'

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

test('a range request on a miss fetches the whole response once, stores it, and answers the range from it', async (t) => {
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
  t.assert.equal(part.headers['content-range'], `bytes 0-3/${body.length}`)
  t.assert.equal(origin.requests[0].headers.range, undefined, 'the whole response was asked for')
  const seek = await app.inject({ url: `/${origin.host}/p`, headers: { range: 'bytes=5-' } })
  t.assert.equal(seek.statusCode, 206)
  t.assert.equal(seek.body, body.subarray(5).toString())
  t.assert.equal(seek.headers['x-cache'], 'HIT')
  const full = await app.inject(`/${origin.host}/p`)
  t.assert.equal(full.statusCode, 200)
  t.assert.equal(full.body, body.toString())
  t.assert.equal(full.headers['x-cache'], 'HIT')
  t.assert.equal(origin.requests.length, 1)
})

test('a media player\'s Range: bytes=0- on a miss with a Content-Length streams a 206 and stores the whole response', async (t) => {
  const media = Buffer.alloc(300_000, 7)
  const origin = await startOrigin({
    '/a.mp3': (_req, res) => { res.writeHead(200, { 'cache-control': 'max-age=100', 'content-length': media.length, 'content-type': 'audio/mpeg' }); res.end(media) }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  const first = await app.inject({ url: `/${origin.host}/a.mp3`, headers: { range: 'bytes=0-' } })
  t.assert.equal(first.statusCode, 206)
  t.assert.equal(first.headers['content-range'], `bytes 0-${media.length - 1}/${media.length}`)
  t.assert.equal(first.rawPayload.length, media.length)
  const seek = await app.inject({ url: `/${origin.host}/a.mp3`, headers: { range: 'bytes=200000-200009' } })
  t.assert.equal(seek.statusCode, 206)
  t.assert.equal(seek.headers['x-cache'], 'HIT')
  t.assert.deepEqual(seek.rawPayload, media.subarray(200_000, 200_010))
  t.assert.equal(origin.requests.length, 1)
})

test('a Range request for an uncacheable response is answered 206 from the whole one, and later ones go through as they are', async (t) => {
  const data = Buffer.from('abcdefghijklmnopqrstuvwxyz')
  const origin = await startOrigin({
    '/ns': (req, res) => {
      const range = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''))
      if (range !== null) {
        res.writeHead(206, { 'cache-control': 'no-store', 'content-range': `bytes ${range[1]}-${range[2]}/${data.length}`, 'content-length': Number(range[2]) - Number(range[1]) + 1 })
        res.end(data.subarray(Number(range[1]), Number(range[2]) + 1))
        return
      }
      res.writeHead(200, { 'cache-control': 'no-store', 'content-length': data.length })
      res.end(data)
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  const first = await app.inject({ url: `/${origin.host}/ns`, headers: { range: 'bytes=2-4' } })
  t.assert.equal(first.statusCode, 206)
  t.assert.equal(first.body, 'cde')
  t.assert.equal(first.headers['content-range'], 'bytes 2-4/26')
  const second = await app.inject({ url: `/${origin.host}/ns`, headers: { range: 'bytes=10-11' } })
  t.assert.equal(second.statusCode, 206)
  t.assert.equal(second.body, 'kl')
  t.assert.equal(origin.requests[1].headers.range, 'bytes=10-11', 'hit-for-pass: the Range went to the origin as it was')
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
