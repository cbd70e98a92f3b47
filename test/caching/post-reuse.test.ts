import { test } from 'node:test'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { startOrigin } from '../helpers/origin.ts'
import { testApp } from '../helpers/app.ts'

// RFC 9110 §9.3.3, RFC 9111 §4: a POST response with explicit freshness and a Content-Location
// equal to the request's URL may answer later GETs of that URL; any other POST response only
// invalidates it (§4.4).

const T = { timeout: 15_000 }
type Headers = Record<string, string>

/** Answers a POST with the headers `post(req)` gives and "from POST", a GET with a cacheable "from GET". */
function postAndGet (post: (req: IncomingMessage) => Headers, status = 200, chunked = false) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (req.method === 'POST') {
      const body = 'from POST'
      res.writeHead(status, { ...(chunked ? {} : { 'content-length': String(body.length) }), ...post(req) })
      if (chunked) res.write('from ')
      res.end(chunked ? 'POST' : body)
      return
    }
    res.writeHead(200, { 'cache-control': 'max-age=100', 'content-length': '8' })
    res.end('from GET')
  }
}

test('a POST response with explicit freshness and Content-Location of its own URL answers the next GET', T, async (t) => {
  const origin = await startOrigin({
    '/relative': postAndGet(() => ({ 'cache-control': 'max-age=3600', 'content-location': '/relative' })),
    '/absolute': postAndGet((req) => ({ expires: new Date(Date.now() + 3600_000).toUTCString(), 'content-location': `http://${req.headers.host}/absolute` })),
    '/chunked': postAndGet(() => ({ 'cache-control': 's-maxage=3600', 'content-location': '/chunked' }), 201, true)
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  for (const path of ['/relative', '/absolute', '/chunked']) {
    const url = `/${origin.host}${path}`
    const post = await app.inject({ method: 'POST', url, payload: '12345', headers: { 'content-type': 'text/plain' } })
    t.assert.equal(post.body, 'from POST', path)
    const get = await app.inject(url)
    t.assert.equal(get.statusCode, path === '/chunked' ? 201 : 200, path)
    t.assert.equal(get.body, 'from POST', path)
    t.assert.equal(get.headers['x-cache'], 'HIT', path)
    t.assert.equal(origin.hits(path), 1, path)
  }
  const said = await app.inject({ method: 'POST', url: `/${origin.host}/relative`, payload: 'x' })
  t.assert.equal(said.headers['cache-status'], 'caching-proxy; fwd=method; fwd-status=200; stored')
  const chunked = await app.inject({ method: 'POST', url: `/${origin.host}/chunked`, payload: 'x' })
  t.assert.equal(chunked.headers['cache-status'], 'caching-proxy; fwd=method; fwd-status=201', 'chunked: stored without saying so')
})

test('other POST responses only invalidate the URL: the next GET goes to the origin', T, async (t) => {
  const cases: Record<string, (req: IncomingMessage) => Headers> = {
    '/no-content-location': () => ({ 'cache-control': 'max-age=3600' }),
    '/other-location': () => ({ 'cache-control': 'max-age=3600', 'content-location': '/elsewhere' }),
    '/other-host': () => ({ 'cache-control': 'max-age=3600', 'content-location': 'http://other.test/other-host' }),
    '/heuristic-only': (req) => ({ 'last-modified': new Date(Date.now() - 86400_000).toUTCString(), 'content-location': `/${String(req.url).slice(1)}` }),
    '/public-only': () => ({ 'cache-control': 'public', 'content-location': '/public-only' }),
    '/no-store': () => ({ 'cache-control': 'max-age=3600, no-store', 'content-location': '/no-store' }),
    '/private': () => ({ 'cache-control': 'max-age=3600, private', 'content-location': '/private' })
  }
  const routes = Object.fromEntries(Object.entries(cases).map(([path, post]) => [path, postAndGet(post)]))
  const origin = await startOrigin({ ...routes, '/failed': postAndGet(() => ({ 'cache-control': 'max-age=3600', 'content-location': '/failed' }), 500) })
  t.after(() => origin.close())
  const app = await testApp(t)
  for (const path of [...Object.keys(cases), '/failed']) {
    const url = `/${origin.host}${path}`
    const post = await app.inject({ method: 'POST', url, payload: 'x' })
    t.assert.equal(post.body, 'from POST', path)
    t.assert.equal(post.headers['cache-status'], 'caching-proxy; fwd=method', path)
    const get = await app.inject(url)
    t.assert.equal(get.body, 'from GET', path)
    t.assert.equal(get.headers['x-cache'], 'MISS', path)
    t.assert.equal(origin.hits(path), 2, path)
  }
})

test('a POST response over MAX_ENTRY_BYTES reaches the client whole and is not stored', T, async (t) => {
  const big = 'y'.repeat(200)
  const origin = await startOrigin({
    '/big': (req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=3600', 'content-location': '/big' })
      res.write(req.method === 'POST' ? big.slice(0, 100) : 'from ')
      res.end(req.method === 'POST' ? big.slice(100) : 'GET')
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t, { MAX_ENTRY_BYTES: '64' })
  const url = `/${origin.host}/big`
  const post = await app.inject({ method: 'POST', url, payload: 'x' })
  t.assert.equal(post.body, big)
  const get = await app.inject(url)
  t.assert.equal(get.body, 'from GET')
  t.assert.equal(get.headers['x-cache'], 'MISS')
  t.assert.equal(origin.hits('/big'), 2)
})
