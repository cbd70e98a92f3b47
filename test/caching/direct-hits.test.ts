import { test, type TestContext } from 'node:test'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import { tempDir, testApp } from '../helpers/app.ts'
import { startOrigin, type Origin } from '../helpers/origin.ts'
import { listen, requestHead, send, type RawResponse } from '../helpers/raw-http.ts'
import { metricValue, parseMetrics } from '../helpers/prometheus.ts'

// Plain memory-tier hits are written directly (plugins/cache.ts answerDirect, one writeHead with
// a prebuilt header list). They must be the bytes the normal reply.send path writes for the
// same stored response: two apps share one SQLite store, one with the direct path turned off.

const BODY = Buffer.from('0123456789abcdef'.repeat(80))

const handlers: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
  // A typical response: typed, with a length, a validator and an upstream Cache-Status.
  '/plain': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(BODY.length), 'cache-control': 'public, max-age=600', etag: '"p1"', 'cache-status': 'upstream-cache; hit', 'x-custom': 'kept' })
    res.end(BODY)
  },
  // No Content-Type (Fastify adds application/octet-stream), no Content-Length (chunked), an Age, a repeated field.
  '/bare': (_req, res) => {
    res.setHeader('cache-control', 'max-age=600')
    res.setHeader('age', '7')
    res.setHeader('link', ['</a.css>; rel=preload', '</b.js>; rel=preload'])
    res.write(BODY.subarray(0, 100))
    res.end(BODY.subarray(100))
  },
  // An X-Cache from upstream: ours takes its place in the header order, as reply.header() does.
  '/xcache': (_req, res) => {
    res.writeHead(201, { 'x-cache': 'upstream', 'cache-control': 'public, max-age=600', 'content-type': 'application/json' })
    res.end('{"created":true}')
  }
}

async function origin (t: TestContext): Promise<Origin> {
  const server = await startOrigin(handlers)
  t.after(() => server.close())
  return server
}

/** Two apps on one store file: the second with direct hits off. */
async function twoApps (t: TestContext, env: Record<string, string> = {}): Promise<{ direct: FastifyInstance, normal: FastifyInstance, ports: [number, number] }> {
  const store = { CACHE_STORE: `sqlite://${tempDir(t)}/cache.sqlite`, ...env }
  const direct = await testApp(t, store)
  const normal = await testApp(t, store, { directHits: false })
  return { direct, normal, ports: [await listen(direct), await listen(normal)] }
}

async function ask (port: number, method: string, target: string, headers: Array<[string, string]> = []): Promise<RawResponse> {
  return await send(port, requestHead(method, target, [['Connection', 'close'], ...headers]), { head: method === 'HEAD', timeoutMs: 5000 })
}

/**
 * The raw bytes of a memory-tier hit from each app, asked back to back. Age and the ttl in
 * Cache-Status count whole seconds, so a pair that straddles a second is asked again.
 */
async function pair (ports: [number, number], method: string, target: string, headers: Array<[string, string]> = []): Promise<[RawResponse, RawResponse]> {
  let last: [RawResponse, RawResponse] | undefined
  for (let attempt = 0; attempt < 5; attempt++) {
    last = [await ask(ports[0], method, target, headers), await ask(ports[1], method, target, headers)]
    if (last[0].raw.equals(last[1].raw)) break
  }
  return last as [RawResponse, RawResponse]
}

test('a direct hit is byte for byte the normal path\'s hit (GET and HEAD, several header shapes)', { timeout: 30_000 }, async (t) => {
  const server = await origin(t)
  const { ports } = await twoApps(t)
  for (const path of Object.keys(handlers)) {
    const target = `/${server.host}${path}`
    const miss = await ask(ports[0], 'GET', target)
    t.assert.equal(miss.headers['x-cache'], 'MISS', path)
    // Each app puts the stored entry in its own memory tier (a store read), then answers from there.
    await ask(ports[0], 'GET', target)
    await ask(ports[1], 'GET', target)
    for (const method of ['GET', 'HEAD']) {
      const [direct, normal] = await pair(ports, method, target)
      t.assert.equal(direct.headers['x-cache'], 'HIT', `${method} ${path}`)
      t.assert.match(direct.headers['cache-status'], /caching-proxy; hit; ttl=\d+$/)
      t.assert.equal(direct.raw.toString('latin1'), normal.raw.toString('latin1'), `${method} ${path}: the same bytes`)
    }
    t.assert.equal(server.hits(path), 1, `${path}: one origin request for both apps`)
  }
  const [bare] = await pair(ports, 'GET', `/${server.host}/bare`)
  t.assert.equal(bare.headers['content-type'], 'application/octet-stream')
  t.assert.equal(bare.headers['content-length'], String(BODY.length))
  t.assert.equal(bare.body.equals(BODY), true)
})

test('conditional and Range requests, and browsers, are answered as before from the same entry', { timeout: 30_000 }, async (t) => {
  const server = await origin(t)
  const { ports } = await twoApps(t)
  const target = `/${server.host}/plain`
  await ask(ports[0], 'GET', target)
  await ask(ports[0], 'GET', target)
  await ask(ports[1], 'GET', target)
  const cases: Array<Array<[string, string]>> = [
    [['If-None-Match', '"p1"']],
    [['Range', 'bytes=10-19']],
    [['User-Agent', 'Mozilla/5.0 (X11; Linux x86_64)'], ['Sec-Fetch-Dest', 'document']]
  ]
  for (const headers of cases) {
    const [direct, normal] = await pair(ports, 'GET', target, headers)
    t.assert.equal(direct.raw.toString('latin1'), normal.raw.toString('latin1'), JSON.stringify(headers))
  }
  const [notModified] = await pair(ports, 'GET', target, cases[0])
  t.assert.equal(notModified.status, 304)
  const [partial] = await pair(ports, 'GET', target, cases[1])
  t.assert.equal(partial.status, 206)
  t.assert.equal(partial.body.toString(), BODY.subarray(10, 20).toString())
})

test('direct hits are counted, logged and rate-limited like the others', { timeout: 30_000 }, async (t) => {
  const server = await origin(t)
  const lines: Array<Record<string, unknown>> = []
  const app = await testApp(t, { LOG_LEVEL: 'info', RATE_LIMIT_PER_MINUTE: '1000' }, { logStream: { write: (line) => { lines.push(JSON.parse(line)) } } })
  const port = await listen(app)
  const target = `/${server.host}/plain`
  const answers: RawResponse[] = []
  for (let i = 0; i < 4; i++) answers.push(await ask(port, i === 3 ? 'HEAD' : 'GET', target))
  t.assert.deepEqual(answers.map((a) => a.headers['x-cache']), ['MISS', 'HIT', 'HIT', 'HIT'])
  // The rate limit's headers are set before the cache answers: those hits take the normal path, headers kept.
  t.assert.equal(answers[1].headers['x-ratelimit-limit'], '1000')
  const logged = lines.filter((line) => line.msg === 'request')
  t.assert.deepEqual(logged.map((line) => [line.cache, line.outcome, line.bytes, line.status]), [
    ['MISS', 'miss', BODY.length, 200], ['HIT', 'hit', BODY.length, 200], ['HIT', 'hit', BODY.length, 200], ['HIT', 'hit', 0, 200]
  ])

  // Without a rate limit the same hits take the direct path; the metrics count them and their bytes.
  const plain = await testApp(t, { LOG_LEVEL: 'info' }, { logStream: { write: (line) => { lines.push(JSON.parse(line)) } } })
  const plainPort = await listen(plain)
  lines.length = 0
  for (let i = 0; i < 4; i++) answers[i] = await ask(plainPort, i === 3 ? 'HEAD' : 'GET', target)
  t.assert.deepEqual(answers.map((a) => a.headers['x-cache']), ['MISS', 'HIT', 'HIT', 'HIT'])
  t.assert.equal(answers[1].headers['x-ratelimit-limit'], undefined)
  t.assert.deepEqual(lines.filter((line) => line.msg === 'request').map((line) => [line.cache, line.outcome, line.bytes]), [
    ['MISS', 'miss', BODY.length], ['HIT', 'hit', BODY.length], ['HIT', 'hit', BODY.length], ['HIT', 'hit', 0]
  ])
  const samples = parseMetrics((await plain.inject({ url: '/_proxy/metrics' })).body)
  t.assert.equal(metricValue(samples, 'caching_proxy_requests_total', { outcome: 'hit', method: 'GET' }), 2)
  t.assert.equal(metricValue(samples, 'caching_proxy_requests_total', { outcome: 'hit', method: 'HEAD' }), 1)
  t.assert.equal(metricValue(samples, 'caching_proxy_response_bytes_total', { source: 'cache' }), 2 * BODY.length)
  t.assert.equal(metricValue(samples, 'caching_proxy_memory_tier_hits_total', { worker: String(process.pid) }), 3)
})

test('a draining worker\'s hits still say Connection: close', { timeout: 30_000 }, async (t) => {
  const server = await origin(t)
  const app = await testApp(t)
  const port = await listen(app)
  const target = `/${server.host}/plain`
  await ask(port, 'GET', target)
  const before = await send(port, requestHead('GET', target), { timeoutMs: 5000, closeWaitMs: 200 })
  t.assert.equal(before.headers['x-cache'], 'HIT')
  t.assert.equal(before.closed, false, 'keep-alive before draining')
  // src/server.ts drains this way on SIGTERM (src/drain.ts): the response sets Connection: close on the raw response first.
  app.server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => { res.setHeader('connection', 'close') })
  const after = await send(port, requestHead('GET', target), { timeoutMs: 5000, closeWaitMs: 500 })
  t.assert.equal(after.headers['x-cache'], 'HIT')
  t.assert.equal(after.headers.connection, 'close')
  t.assert.equal(after.closed, true)
  t.assert.equal(after.body.equals(before.body), true)
})
