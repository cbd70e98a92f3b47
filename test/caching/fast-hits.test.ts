import { test, type TestContext } from 'node:test'
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import { tempDir, testApp } from '../helpers/app.ts'
import { startOrigin, type Origin } from '../helpers/origin.ts'
import { listen, requestHead, send, type RawResponse } from '../helpers/raw-http.ts'
import { metricValue, parseMetrics } from '../helpers/prometheus.ts'
import type { AppOptions } from '../../src/app.ts'

/** /short's max-age, seconds. */
const SHORT_S = 3

// Repeated plain memory-tier hits are answered before Fastify routes them (plugins/fast-hits.ts).
// Each test runs a fast app beside one with fast hits off on the same SQLite store: the user must
// see the same bytes, counts and log lines. An onResponse hook added by the test counts what
// Fastify handled, which is how a test sees that a request took the fast path (or did not).

const BODY = Buffer.from('0123456789abcdef'.repeat(64))

const handlers: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
  '/plain': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(BODY.length), 'cache-control': 'public, max-age=600', etag: '"p1"', 'x-custom': 'kept' })
    res.end(BODY)
  },
  '/bare': (_req, res) => {
    res.setHeader('cache-control', 'max-age=600')
    res.setHeader('link', ['</a.css>; rel=preload', '</b.js>; rel=preload'])
    res.end(BODY.subarray(0, 100))
  },
  '/short': (_req, res) => {
    // No Date: its one-second granularity would make the apparent age up to ~1 s, so the entry
    // could be stale (and fetched again) before this test's expiry wait even starts. Three
    // seconds: with one, a loaded CI machine took longer than that over the warm-up's requests.
    res.sendDate = false
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': `max-age=${SHORT_S}` })
    res.end('short-lived')
  },
  '/vary': (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600', vary: 'accept-language' })
    res.end(`language ${String(req.headers['accept-language'] ?? 'none')}`)
  }
}

interface Counted { app: FastifyInstance, port: number, reached: () => number }

async function counted (t: TestContext, env: Record<string, string>, options: AppOptions = {}): Promise<Counted> {
  const app = await testApp(t, env, options)
  let reached = 0
  // onResponse: every request Fastify handled, answered by whichever hook (onRequest hooks added
  // here would run after the cache's, which answers hits without going on).
  app.addHook('onResponse', (_request, _reply, done) => { reached++; done() })
  return { app, port: await listen(app), reached: () => reached }
}

async function setup (t: TestContext, env: Record<string, string> = {}, options: AppOptions = {}): Promise<{ origin: Origin, fast: Counted, normal: Counted }> {
  const origin = await startOrigin(handlers)
  t.after(() => origin.close())
  const store = { CACHE_STORE: `sqlite://${tempDir(t)}/cache.sqlite`, ...env }
  const fast = await counted(t, store, options)
  const normal = await counted(t, store, { ...options, fastHits: false })
  return { origin, fast, normal }
}

async function ask (port: number, method: string, target: string, headers: Array<[string, string]> = [], host?: string): Promise<RawResponse> {
  return await send(port, requestHead(method, target, [['Connection', 'close'], ...headers], host), { head: method === 'HEAD', timeoutMs: 5000 })
}

/** The same request to both apps back to back; asked again when Age or Date straddled a second. */
async function pair (ports: [number, number], method: string, target: string, headers: Array<[string, string]> = [], host?: string): Promise<[RawResponse, RawResponse]> {
  let last: [RawResponse, RawResponse] | undefined
  for (let attempt = 0; attempt < 5; attempt++) {
    last = [await ask(ports[0], method, target, headers, host), await ask(ports[1], method, target, headers, host)]
    if (last[0].raw.equals(last[1].raw)) break
  }
  return last as [RawResponse, RawResponse]
}

/** Stores `target` and teaches the fast app (its second request is a direct hit); warms the other app's memory tier. */
async function warm (fast: Counted, normal: Counted, target: string, methods = ['GET', 'HEAD'], headers: Array<[string, string]> = []): Promise<void> {
  await ask(fast.port, 'GET', target, headers)
  // The first hit may come from the store (the miss's write landing in the memory tier in the background): twice each.
  for (const method of methods) for (let i = 0; i < 2; i++) await ask(fast.port, method, target, headers)
  await ask(normal.port, 'GET', target, headers)
}

test('a fast hit is byte for byte the normal path\'s hit, and never reaches Fastify', { timeout: 30_000 }, async (t) => {
  const { origin, fast, normal } = await setup(t)
  for (const path of ['/plain', '/bare']) {
    const target = `/${origin.host}${path}`
    await warm(fast, normal, target)
    const before = fast.reached()
    for (const method of ['GET', 'HEAD']) {
      const [one, other] = await pair([fast.port, normal.port], method, target)
      t.assert.equal(one.headers['x-cache'], 'HIT', `${method} ${path}`)
      t.assert.equal(one.raw.toString('latin1'), other.raw.toString('latin1'), `${method} ${path}: the same bytes`)
    }
    t.assert.equal(fast.reached(), before, `${path}: the hits were answered before Fastify`)
    t.assert.equal(origin.hits(path), 1)
  }
  // Keep-alive: several fast hits on one connection, then the connection stays usable.
  const target = `/${origin.host}/plain`
  const three = await send(fast.port, [0, 1, 2].map(() => requestHead('GET', target)).join(''), { timeoutMs: 5000, closeWaitMs: 200 })
  t.assert.equal(three.raw.toString('latin1').split('HTTP/1.1 200 OK').length - 1, 3, 'three pipelined answers')
  t.assert.equal(three.closed, false)
})

test('purges, expiry and new variants send the request down the normal path', { timeout: 30_000 }, async (t) => {
  const { origin, fast, normal } = await setup(t)
  const target = `/${origin.host}/plain`
  await warm(fast, normal, target, ['GET'])
  t.assert.equal((await ask(fast.port, 'PURGE', target)).status, 200)
  const after = await ask(fast.port, 'GET', target)
  t.assert.equal(after.headers['x-cache'], 'MISS', 'purged: a miss')
  t.assert.equal(origin.hits('/plain'), 2)

  const short = `/${origin.host}/short`
  await warm(fast, normal, short, ['GET'])
  t.assert.equal((await ask(fast.port, 'GET', short)).headers['x-cache'], 'HIT')
  await new Promise((resolve) => setTimeout(resolve, SHORT_S * 1000 + 100))
  const stale = await ask(fast.port, 'GET', short)
  t.assert.notEqual(stale.headers['x-cache'], 'HIT', 'expired: not a fresh hit')
  t.assert.equal(origin.hits('/short'), 2)

  const vary = `/${origin.host}/vary`
  for (const language of ['en', 'fr']) await warm(fast, normal, vary, ['GET'], [['Accept-Language', language]])
  const before = fast.reached()
  for (const language of ['en', 'fr', 'en']) {
    const hit = await ask(fast.port, 'GET', vary, [['Accept-Language', language]])
    t.assert.equal(hit.text, `language ${language}`)
    t.assert.equal(hit.headers['x-cache'], 'HIT')
  }
  t.assert.equal(fast.reached(), before, 'both variants answered fast')
  const other = await ask(fast.port, 'GET', vary, [['Accept-Language', 'de']])
  t.assert.equal(other.text, 'language de')
  t.assert.equal(other.headers['x-cache'], 'MISS')
  t.assert.equal(fast.reached(), before + 1)
})

test('conditional, Range, browser, credentialed and directive-carrying requests take the normal path', { timeout: 30_000 }, async (t) => {
  const { origin, fast, normal } = await setup(t)
  const target = `/${origin.host}/plain`
  await warm(fast, normal, target)
  const cases: Array<Array<[string, string]>> = [
    [['If-None-Match', '"p1"']],
    [['If-Modified-Since', 'Tue, 01 Jan 2030 00:00:00 GMT']],
    [['Range', 'bytes=10-19']],
    [['User-Agent', 'Mozilla/5.0 (X11; Linux x86_64)']],
    [['Sec-Fetch-Dest', 'document']],
    [['Referer', 'http://proxy.test/elsewhere/page']],
    [['Authorization', 'Basic dTpw']],
    [['Cache-Control', 'no-cache']],
    [['Pragma', 'no-cache']],
    [['Via', '1.1 caching-proxy']]
  ]
  for (const headers of cases) {
    const before = fast.reached()
    const [one, other] = await pair([fast.port, normal.port], 'GET', target, headers)
    t.assert.equal(one.raw.toString('latin1'), other.raw.toString('latin1'), JSON.stringify(headers))
    t.assert.equal(fast.reached() > before, true, `${JSON.stringify(headers)}: reached Fastify`)
  }
  t.assert.equal((await ask(fast.port, 'GET', target, [['If-None-Match', '"p1"']])).status, 304)
  t.assert.equal((await ask(fast.port, 'GET', target, [['Range', 'bytes=10-19']])).status, 206)
  t.assert.equal((await ask(fast.port, 'GET', target, [['Via', '1.1 caching-proxy']])).status, 508)
})

test('fast hits are counted and logged like direct hits', { timeout: 30_000 }, async (t) => {
  const lines: Record<string, Array<Record<string, unknown>>> = { fast: [], normal: [] }
  const origin = await startOrigin(handlers)
  t.after(() => origin.close())
  const apps: Counted[] = []
  for (const name of ['fast', 'normal'] as const) {
    apps.push(await counted(t, { LOG_LEVEL: 'info' }, { fastHits: name === 'fast', logStream: { write: (line) => { lines[name].push(JSON.parse(line)) } } }))
  }
  const target = `/${origin.host}/plain`
  const methods = ['GET', 'GET', 'GET', 'GET', 'HEAD', 'HEAD', 'HEAD']
  for (const app of apps) for (const method of methods) await ask(app.port, method, target)
  // The miss, the first memory-tier GET and HEAD hits (and a first GET hit from the store, when the miss's write was still under way).
  t.assert.equal(apps[0].reached() >= 3 && apps[0].reached() <= 4, true, `${apps[0].reached()} requests reached Fastify`)
  t.assert.equal(apps[1].reached(), methods.length)
  const strip = (line: Record<string, unknown>): Record<string, unknown> => ({ ...line, time: 0, ms: 0, upstreamMs: line.upstreamMs === undefined ? undefined : 0 })
  const logged = (name: string): Array<Record<string, unknown>> => lines[name].filter((line) => line.msg === 'request').map(strip)
  t.assert.equal(logged('fast').length, methods.length)
  t.assert.deepEqual(logged('fast').map((line) => Object.keys(line)), logged('normal').map((line) => Object.keys(line)), 'same fields, same order')
  t.assert.deepEqual(logged('fast'), logged('normal'), 'same lines but the time (request ids included)')
  for (const [index, app] of apps.entries()) {
    const samples = parseMetrics((await app.app.inject({ url: '/_proxy/metrics' })).body)
    const name = index === 0 ? 'fast' : 'normal'
    t.assert.equal(metricValue(samples, 'caching_proxy_requests_total', { outcome: 'hit', method: 'GET' }), 3, name)
    t.assert.equal(metricValue(samples, 'caching_proxy_requests_total', { outcome: 'hit', method: 'HEAD' }), 3, name)
    t.assert.equal(metricValue(samples, 'caching_proxy_response_bytes_total', { source: 'cache' }), 3 * BODY.length, name)
  }
  const explained = JSON.parse((await apps[0].app.inject({ url: `/_proxy/explain?url=${encodeURIComponent(`http://${origin.host}/plain`)}` })).body)
  t.assert.equal(explained.last?.method, 'HEAD', 'the explain page saw the last fast hit')
  t.assert.equal(explained.last?.outcome, 'hit')
  const stats = await Promise.all(apps.map(async (app) => JSON.parse((await app.app.inject({ url: '/_proxy/stats' })).body).total))
  t.assert.deepEqual(stats[0].outcomes, { miss: 1, hit: methods.length - 1 }, 'the dashboard counted every fast hit')
  t.assert.equal(stats[0].bytesSaved, stats[1].bytesSaved)
})

test('hostile request targets are answered exactly as without the fast path', { timeout: 60_000 }, async (t) => {
  const { origin, fast, normal } = await setup(t)
  const host = origin.host
  await warm(fast, normal, `/${host}/plain`)
  const targets = [
    `//${host}/plain`, `/${host}//plain`, `/${host}/a/../plain`, `/${host}/%70lain`, `/${host}/%2e%2e/plain`,
    `/${host}/plain?x=%zz`, `/${host}/plain#fragment`, `/${host.toUpperCase()}/plain`, `/HTTP://${host}/plain`,
    `http://${host}/plain`, `/http:/${host}/plain`, `/${host}/pl%00ain`, `/_proxy/../${host}/plain`, `/${host}:99999/plain`
  ]
  for (const target of targets) {
    for (let i = 0; i < 2; i++) await ask(fast.port, 'GET', target)
    await ask(normal.port, 'GET', target)
    const [one, other] = await pair([fast.port, normal.port], 'GET', target)
    t.assert.equal(one.raw.toString('latin1'), other.raw.toString('latin1'), target)
  }
  // HTTP/1.0, without a Host and with keep-alive asked for: Node's own Connection handling on both paths.
  for (const raw of [`GET /${host}/plain HTTP/1.0\r\n\r\n`, `HEAD /${host}/plain HTTP/1.0\r\nConnection: keep-alive\r\n\r\n`]) {
    const head = raw.startsWith('HEAD')
    for (let i = 0; i < 2; i++) await send(fast.port, raw, { head, timeoutMs: 5000 })
    let answers: RawResponse[] = []
    for (let attempt = 0; attempt < 5; attempt++) {
      answers = [await send(fast.port, raw, { head, timeoutMs: 5000 }), await send(normal.port, raw, { head, timeoutMs: 5000 })]
      if (answers[0].raw.equals(answers[1].raw)) break
    }
    t.assert.equal(answers[0].status, 200, raw)
    t.assert.equal(answers[0].raw.toString('latin1'), answers[1].raw.toString('latin1'), raw)
  }
  // A per-site origin (Host: <upstream>.localhost): the Host is part of what was learned.
  const siteHost = `127.0.0.1.${origin.port}.localhost`
  for (const hostHeader of [siteHost, 'proxy.test']) {
    for (let i = 0; i < 2; i++) await ask(fast.port, 'GET', '/plain', [], hostHeader)
    const [one, other] = await pair([fast.port, normal.port], 'GET', '/plain', [], hostHeader)
    t.assert.equal(one.raw.toString('latin1'), other.raw.toString('latin1'), `Host: ${hostHeader}`)
  }
})

test('the client list is checked on every fast hit', { timeout: 30_000 }, async (t) => {
  // HOST beyond loopback: only 127.0.0.1 may use the proxy (the test still listens on 127.0.0.1).
  const { origin, fast } = await setup(t, { HOST: '10.0.0.1', ALLOW_CLIENTS: '127.0.0.1/32' })
  const target = `/${origin.host}/plain`
  for (let i = 0; i < 3; i++) await ask(fast.port, 'GET', target)
  const before = fast.reached()
  t.assert.equal((await ask(fast.port, 'GET', target)).headers['x-cache'], 'HIT')
  t.assert.equal(fast.reached(), before, 'fast for 127.0.0.1')
  const status = await new Promise<number>((resolve, reject) => {
    const request = http.request({ port: fast.port, host: '127.0.0.1', localAddress: '127.0.0.2', path: target, headers: { host: 'proxy.test' }, agent: false, timeout: 5000 }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    request.on('timeout', () => request.destroy(new Error('timed out')))
    request.on('error', reject)
    request.end()
  })
  t.assert.equal(status, 403, '127.0.0.2 refused as before (the same Host and target the fast path learned)')
})
