import { test } from 'node:test'
import { randomBytes } from 'node:crypto'
import { startOrigin } from '../helpers/origin.ts'
import { testApp } from '../helpers/app.ts'

const cacheable = (body: string | Buffer, extra: Record<string, string> = {}) =>
  (_req: unknown, res: import('node:http').ServerResponse) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain', ...extra })
    res.end(body)
  }

test('a miss goes to the origin once, then hits are served from the cache', async (t) => {
  const origin = await startOrigin({ '/page': cacheable('hello', { 'content-length': '5' }) })
  t.after(() => origin.close())
  const app = await testApp(t)

  const miss = await app.inject(`/${origin.host}/page`)
  t.assert.equal(miss.statusCode, 200)
  t.assert.equal(miss.body, 'hello')
  t.assert.equal(miss.headers['x-cache'], 'MISS')
  t.assert.equal(miss.headers['cache-status'], 'caching-proxy; fwd=miss; fwd-status=200; stored')
  t.assert.match(String(miss.headers.via), /1\.1 caching-proxy$/)

  for (let i = 0; i < 3; i++) {
    const hit = await app.inject(`/${origin.host}/page`)
    t.assert.equal(hit.statusCode, 200)
    t.assert.equal(hit.body, 'hello')
    t.assert.equal(hit.headers['x-cache'], 'HIT')
    t.assert.match(String(hit.headers['cache-status']), /^caching-proxy; hit; ttl=\d+$/)
    t.assert.match(String(hit.headers.age), /^\d+$/)
    t.assert.equal(hit.headers.via, '1.1 caching-proxy')
    t.assert.equal(hit.headers['content-type'], 'text/plain')
  }
  t.assert.equal(origin.hits('/page'), 1)
  t.assert.match(String(origin.requests[0].headers.via), /1\.1 caching-proxy/)
})

test('binary bodies are byte-exact on miss and hit', async (t) => {
  const bytes = randomBytes(300_000)
  const origin = await startOrigin({ '/bin': cacheable(bytes, { 'content-type': 'application/octet-stream' }) })
  t.after(() => origin.close())
  const app = await testApp(t)
  const miss = await app.inject(`/${origin.host}/bin`)
  const hit = await app.inject(`/${origin.host}/bin`)
  t.assert.equal(miss.rawPayload.equals(bytes), true)
  t.assert.equal(hit.rawPayload.equals(bytes), true)
  t.assert.equal(hit.headers['x-cache'], 'HIT')
  t.assert.equal(hit.headers['content-length'], String(bytes.length))
  t.assert.equal(origin.hits('/bin'), 1)
})

test('HEAD is answered from the stored GET', async (t) => {
  const origin = await startOrigin({ '/h': cacheable('twelve bytes') })
  t.after(() => origin.close())
  const app = await testApp(t)
  await app.inject(`/${origin.host}/h`)
  const head = await app.inject({ method: 'HEAD', url: `/${origin.host}/h` })
  t.assert.equal(head.statusCode, 200)
  t.assert.equal(head.headers['x-cache'], 'HIT')
  t.assert.equal(head.headers['content-length'], '12')
  t.assert.equal(head.body, '')
  t.assert.equal(origin.requests.length, 1)
})

test('query strings are kept distinct', async (t) => {
  const origin = await startOrigin({ '/q': (req, res) => { res.setHeader('cache-control', 'max-age=60'); res.end(req.url) } })
  t.after(() => origin.close())
  const app = await testApp(t)
  for (const q of ['?a=1', '?a=2', '?a=1', '', '?a=2']) {
    const res = await app.inject(`/${origin.host}/q${q}`)
    t.assert.equal(res.body, `/q${q}`)
  }
  t.assert.equal(origin.requests.length, 3)
})

test('each URL form reaches the origin', async (t) => {
  const origin = await startOrigin({ '/': cacheable('root'), '/a/b': (req, res) => res.end(req.url) })
  t.after(() => origin.close())
  const app = await testApp(t)
  t.assert.equal((await app.inject(`/${origin.host}`)).body, 'root')
  t.assert.equal((await app.inject(`/${origin.host}/a/b?q=1`)).body, '/a/b?q=1')
  t.assert.equal((await app.inject(`/http://${origin.host}/a/b?q=2`)).body, '/a/b?q=2')
  t.assert.equal((await app.inject(`/${origin.host}/x/../a/b`)).body, '/a/b')
  const usage = await app.inject('/')
  t.assert.equal(usage.statusCode, 200)
  t.assert.match(String(usage.headers['content-type']), /text\/html/)
  t.assert.match(usage.body, /example\.com/)
  t.assert.equal((await app.inject('/favicon.ico')).statusCode, 404)
  const bad = await app.inject('/bad_host:99999/')
  t.assert.equal(bad.statusCode, 400)
  t.assert.equal(bad.json().error, 'Bad Request')
  t.assert.match(bad.json().message, /port/)
})

test('upstream failures map to 502 and 504 with a JSON body naming the upstream', async (t) => {
  const origin = await startOrigin({ '/slow': (_req, res) => { setTimeout(() => res.end('late'), 2000) } })
  t.after(() => origin.close())
  const app = await testApp(t, { UPSTREAM_TIMEOUT_MS: '300' })

  const refused = await app.inject('/127.0.0.1:1/x')
  t.assert.equal(refused.statusCode, 502)
  t.assert.equal(refused.json().upstream, '127.0.0.1:1')
  t.assert.match(refused.json().message, /ECONNREFUSED/)
  t.assert.equal(refused.headers['cache-status'], 'caching-proxy; fwd=miss; detail=ECONNREFUSED')
  t.assert.equal(refused.headers['x-cache'], 'MISS')

  const unresolvable = await app.inject('/no-such-host.invalid/x')
  t.assert.equal(unresolvable.statusCode, 502)
  t.assert.equal(unresolvable.json().upstream, 'no-such-host.invalid')
  t.assert.match(unresolvable.json().message, /ENOTFOUND|EAI_AGAIN/)

  const timeout = await app.inject(`/${origin.host}/slow`)
  t.assert.equal(timeout.statusCode, 504)
  t.assert.equal(timeout.json().upstream, origin.host)
  t.assert.match(timeout.json().message, /300 ms/)
})

test('an origin 503 is passed on once, never retried', async (t) => {
  const origin = await startOrigin({ '/busy': (_req, res) => { res.writeHead(503, { 'retry-after': '0' }); res.end('busy') } })
  t.after(() => origin.close())
  const app = await testApp(t)
  const res = await app.inject(`/${origin.host}/busy`)
  t.assert.equal(res.statusCode, 503)
  t.assert.equal(origin.requests.length, 1)
})

test('no-store and private responses are never stored', async (t) => {
  const origin = await startOrigin({
    '/no-store': cacheable('a', { 'cache-control': 'no-store' }),
    '/private': cacheable('b', { 'cache-control': 'private, max-age=60' }),
    '/cookie': cacheable('c', { 'set-cookie': 'session=1' })
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  for (const path of ['/no-store', '/private', '/cookie']) {
    const first = await app.inject(`/${origin.host}${path}`)
    const second = await app.inject(`/${origin.host}${path}`)
    t.assert.equal(second.headers['x-cache'], 'MISS', path)
    t.assert.match(String(first.headers['cache-status']), /fwd=miss; fwd-status=200; detail=/)
    t.assert.equal(origin.hits(path), 2, path)
  }
})

test('unsafe methods are forwarded with their body, never cached, and invalidate the URL', async (t) => {
  const origin = await startOrigin({
    '/doc': (req, res, body) => {
      res.setHeader('cache-control', 'max-age=60')
      res.end(req.method === 'GET' ? `version ${origin.hits('/doc')}` : `got ${body.length} bytes`)
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  t.assert.equal((await app.inject(`/${origin.host}/doc`)).body, 'version 1')
  t.assert.equal((await app.inject(`/${origin.host}/doc`)).headers['x-cache'], 'HIT')
  const payload = randomBytes(100_000)
  const post = await app.inject({ method: 'POST', url: `/${origin.host}/doc`, payload, headers: { 'content-type': 'application/json' } })
  t.assert.equal(post.body, `got ${payload.length} bytes`)
  t.assert.equal(post.headers['cache-status'], 'caching-proxy; fwd=method')
  t.assert.equal(origin.requests[1].body.equals(payload), true)
  const after = await app.inject(`/${origin.host}/doc`)
  t.assert.equal(after.headers['x-cache'], 'MISS')
  t.assert.equal(after.body, 'version 3')
})

test('hop-by-hop headers are stripped in both directions', async (t) => {
  const origin = await startOrigin({
    '/hop': (_req, res) => {
      res.writeHead(200, { connection: 'x-secret-out', 'x-secret-out': '1', 'keep-alive': 'timeout=5', 'x-kept': 'yes' })
      res.end('ok')
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  const res = await app.inject({
    url: `/${origin.host}/hop`,
    headers: { connection: 'x-secret-in', 'x-secret-in': '1', te: 'trailers', 'proxy-authorization': 'Basic eDp5', 'x-other': 'kept' }
  })
  const seen = origin.requests[0].headers
  t.assert.equal(seen['x-secret-in'], undefined)
  t.assert.equal(seen['proxy-authorization'], undefined)
  t.assert.equal(seen.te, undefined)
  t.assert.equal(seen['x-other'], 'kept')
  t.assert.equal(res.headers['x-secret-out'], undefined)
  t.assert.equal(res.headers['keep-alive'], undefined)
  t.assert.equal(res.headers['x-kept'], 'yes')
})

test('responses above MAX_ENTRY_BYTES stream through uncached', async (t) => {
  const big = randomBytes(50_000)
  const origin = await startOrigin({
    '/big': cacheable(big),
    '/chunked': (_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60' })
      res.write(big.subarray(0, 25_000))
      setTimeout(() => res.end(big.subarray(25_000)), 20)
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t, { MAX_ENTRY_BYTES: '40000' })
  for (const path of ['/big', '/chunked']) {
    const first = await app.inject(`/${origin.host}${path}`)
    const second = await app.inject(`/${origin.host}${path}`)
    t.assert.equal(first.rawPayload.equals(big), true, path)
    t.assert.equal(second.rawPayload.equals(big), true, path)
    t.assert.equal(second.headers['x-cache'], 'MISS', path)
    t.assert.equal(origin.hits(path), 2, path)
  }
})

test('a body cut off mid-way is never stored', async (t) => {
  const origin = await startOrigin({
    '/cut': (_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '1000' })
      res.write(Buffer.alloc(400, 1))
      setTimeout(() => res.destroy(), 20)
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  await app.inject(`/${origin.host}/cut`).catch(() => {})
  await app.inject(`/${origin.host}/cut`).catch(() => {})
  t.assert.equal(origin.hits('/cut'), 2)
})

test('a broken store never causes a 5xx: requests are served uncached', async (t) => {
  const origin = await startOrigin({ '/s': cacheable('still here') })
  t.after(() => origin.close())
  const app = await testApp(t, { CACHE_STORE: 'sqlite://:memory:', MEMORY_CACHE_BYTES: '0' })
  await app.cache.store.close() // every store call now fails
  for (let i = 0; i < 2; i++) {
    const res = await app.inject(`/${origin.host}/s`)
    t.assert.equal(res.statusCode, 200)
    t.assert.equal(res.body, 'still here')
  }
  t.assert.equal(origin.hits('/s'), 2)
})

test('a row that cannot be decoded is deleted and treated as a miss', async (t) => {
  const origin = await startOrigin({ '/c': cacheable('fresh copy') })
  t.after(() => origin.close())
  const app = await testApp(t, { MEMORY_CACHE_BYTES: '0' })
  const key = `GET http://${origin.host}/c`
  await app.cache.store.set(key, Buffer.from('CPX\u0001garbage'))
  const res = await app.inject(`/${origin.host}/c`)
  t.assert.equal(res.statusCode, 200)
  t.assert.equal(res.body, 'fresh copy')
  t.assert.equal(res.headers['x-cache'], 'MISS')
  t.assert.equal(origin.hits('/c'), 1)
  const stored = await app.cache.store.get(key)
  t.assert.equal(stored?.subarray(0, 3).equals(Buffer.from('CPX')) && stored.length > 20, true)
})
