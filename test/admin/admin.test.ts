import { test, type TestContext } from 'node:test'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import KeyvSqlite from '@keyv/sqlite'
import { buildApp } from '../../src/app.ts'
import { tempDir, testApp, testConfig } from '../helpers/app.ts'
import { startOrigin, type Origin, type OriginHandler } from '../helpers/origin.ts'
import { until } from '../helpers/poll.ts'

// The /_proxy/ admin endpoints (plugins/admin.ts): routing, protection, purges, through inject().

const TOKEN = 'test-admin-token-0123456789'

/** An origin whose paths answer cacheably with a body naming the path and how often it was served. */
async function countingOrigin (t: TestContext, paths: string[], headers: Record<string, string> = { 'cache-control': 'public, max-age=300' }): Promise<Origin> {
  const routes: Record<string, OriginHandler> = {}
  for (const path of paths) {
    let served = 0
    routes[path] = (req, res) => {
      served++
      for (const [name, value] of Object.entries(headers)) res.setHeader(name, value)
      res.setHeader('content-type', 'text/plain')
      res.end(`${path} #${served}${req.headers['accept-language'] === undefined ? '' : ` ${String(req.headers['accept-language'])}`}`)
    }
  }
  const origin = await startOrigin(routes)
  t.after(() => origin.close())
  return origin
}

async function get (app: FastifyInstance, url: string, headers: Record<string, string> = {}): Promise<{ status: number, cache: string, body: string }> {
  const res = await app.inject({ method: 'GET', url, headers })
  return { status: res.statusCode, cache: String(res.headers['x-cache']), body: res.body }
}

test('admin routes are the proxy\'s own: never forwarded, never taken as a host', { timeout: 30_000 }, async (t) => {
  const origin = await countingOrigin(t, ['/a'])
  const app = await testApp(t, { PROXY_AUTH: 'user:secret' })
  const health = await app.inject({ method: 'GET', url: '/_proxy/health' })
  t.assert.equal(health.statusCode, 200, 'health needs no proxy credentials')
  t.assert.equal(health.json().status, 'ok')
  t.assert.equal(health.headers['cache-control'], 'no-store')
  t.assert.equal(health.headers['x-cache'], undefined, 'the cache is not involved')
  const ready = await app.inject({ method: 'GET', url: '/_proxy/ready' })
  t.assert.equal(ready.statusCode, 200)
  t.assert.deepEqual(ready.json(), { status: 'ready' })
  for (const url of ['/_proxy/nothing-here', '/_proxy', '/_proxy/health/extra']) {
    const res = await app.inject({ method: 'GET', url, headers: { accept: 'application/json' } })
    t.assert.equal(res.statusCode, 404, url)
    t.assert.equal(res.json().code, 'CPX_NOT_FOUND', url)
  }
  // A proxied request still needs the proxy's credentials.
  t.assert.equal((await get(app, `/${origin.host}/a`)).status, 401)
  t.assert.equal(origin.requests.length, 0, 'nothing reached the origin')
})

test('every admin route but health and ready: loopback only, and the Bearer token when ADMIN_TOKEN is set', { timeout: 30_000 }, async (t) => {
  const origin = await countingOrigin(t, ['/a'])
  const app = await testApp(t, { ADMIN_TOKEN: TOKEN, ADMIN_ALLOW: '10.9.0.0/16' })
  const routes: Array<{ method: 'GET' | 'DELETE' | 'PURGE', url: string, ok: number }> = [
    { method: 'GET', url: '/_proxy/metrics', ok: 200 },
    { method: 'DELETE', url: `/_proxy/cache?url=${encodeURIComponent(`http://${origin.host}/a`)}`, ok: 200 },
    { method: 'DELETE', url: '/_proxy/cache?all=1', ok: 200 },
    { method: 'PURGE', url: `/${origin.host}/a`, ok: 200 },
    { method: 'PURGE', url: `http://${origin.host}/a`, ok: 200 },
    { method: 'GET', url: '/_proxy/unknown', ok: 404 }
  ]
  for (const { method, url, ok } of routes) {
    const name = `${method} ${url}`
    const none = await app.inject({ method: method as 'GET', url })
    t.assert.equal(none.statusCode, 401, `${name} without a token`)
    t.assert.equal(none.json().code, 'CPX_ADMIN_UNAUTHORIZED', name)
    t.assert.match(String(none.headers['www-authenticate']), /^Bearer /, name)
    for (const authorization of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}`, TOKEN, 'Bearer ']) {
      t.assert.equal((await app.inject({ method: method as 'GET', url, headers: { authorization } })).statusCode, 401, `${name} with ${authorization}`)
    }
    const good = await app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${TOKEN}` } })
    t.assert.equal(good.statusCode, ok, `${name} with the token`)
    const remote = await app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${TOKEN}` }, remoteAddress: '192.168.1.20' })
    t.assert.equal(remote.statusCode, 403, `${name} from a non-loopback client, even with the token`)
    t.assert.equal(remote.json().code, 'CPX_ADMIN_FORBIDDEN', name)
    const listed = await app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${TOKEN}` }, remoteAddress: '10.9.3.4' })
    t.assert.equal(listed.statusCode, ok, `${name} from an ADMIN_ALLOW client`)
    const mapped = await app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${TOKEN}` }, remoteAddress: '::ffff:127.0.0.1' })
    t.assert.equal(mapped.statusCode, ok, `${name} from IPv4-mapped loopback`)
  }
  for (const url of ['/_proxy/health', '/_proxy/ready']) {
    t.assert.equal((await app.inject({ method: 'GET', url, remoteAddress: '192.168.1.20' })).statusCode, 200, `${url} is open to probes`)
  }
  t.assert.equal(origin.requests.length, 0, 'no PURGE was forwarded')
})

test('PURGE /<host>/<path> and DELETE ?url= remove the URL and all its Vary variants; the next GET is a miss', { timeout: 30_000 }, async (t) => {
  const origin = await countingOrigin(t, ['/v', '/other'], { 'cache-control': 'public, max-age=300', vary: 'Accept-Language' })
  const app = await testApp(t)
  const url = `/${origin.host}/v`
  for (const lang of ['en', 'fr']) {
    t.assert.equal((await get(app, url, { 'accept-language': lang })).cache, 'MISS')
    t.assert.equal((await get(app, url, { 'accept-language': lang })).cache, 'HIT')
  }
  await get(app, `/${origin.host}/other`)
  const purged = await app.inject({ method: 'PURGE', url })
  t.assert.equal(purged.statusCode, 200)
  t.assert.deepEqual(purged.json(), { purged: 2, soft: false }, 'two variants (the Vary index is not a response)')
  t.assert.equal(origin.requests.filter((r) => r.method === 'PURGE').length, 0, 'PURGE is not forwarded')
  for (const lang of ['en', 'fr']) {
    const again = await get(app, url, { 'accept-language': lang })
    t.assert.equal(again.cache, 'MISS', lang)
    t.assert.equal(again.body, `/v #${lang === 'en' ? 3 : 4} ${lang}`)
  }
  t.assert.equal((await get(app, `/${origin.host}/other`)).cache, 'HIT', 'another URL stays')
  const deleted = await app.inject({ method: 'DELETE', url: `/_proxy/cache?url=${encodeURIComponent(`http://${origin.host}/v`)}` })
  t.assert.deepEqual(deleted.json(), { purged: 2, soft: false })
  t.assert.equal((await get(app, url, { 'accept-language': 'en' })).cache, 'MISS')
  // Nothing stored: 0, and a second purge of the same URL finds nothing.
  t.assert.deepEqual((await app.inject({ method: 'DELETE', url: `/_proxy/cache?url=${encodeURIComponent(`http://${origin.host}/nothing`)}` })).json(), { purged: 0, soft: false })
})

test('DELETE /_proxy/cache ?prefix=, ?host= and ?all=1 remove exactly what they name', { timeout: 30_000 }, async (t) => {
  const paths = ['/p/1', '/p/2', '/pq', '/q/1']
  const one = await countingOrigin(t, paths)
  const two = await countingOrigin(t, paths)
  const app = await testApp(t)
  const fill = async (): Promise<void> => {
    for (const origin of [one, two]) for (const path of paths) await get(app, `/${origin.host}${path}`)
  }
  const cached = async (): Promise<string[]> => {
    const hits: string[] = []
    for (const [i, origin] of [one, two].entries()) {
      for (const path of paths) {
        const before = origin.hits(path)
        await get(app, `/${origin.host}${path}`)
        if (origin.hits(path) === before) hits.push(`${i + 1}${path}`)
      }
    }
    return hits
  }
  await fill()
  const prefix = await app.inject({ method: 'DELETE', url: `/_proxy/cache?prefix=${encodeURIComponent(`http://${one.host}/p/`)}` })
  t.assert.deepEqual(prefix.json(), { purged: 2, soft: false })
  t.assert.deepEqual(await cached(), ['1/pq', '1/q/1', '2/p/1', '2/p/2', '2/pq', '2/q/1'])
  await fill()
  const host = await app.inject({ method: 'DELETE', url: `/_proxy/cache?host=${two.host}` })
  t.assert.deepEqual(host.json(), { purged: 4, soft: false })
  t.assert.deepEqual(await cached(), ['1/p/1', '1/p/2', '1/pq', '1/q/1'])
  const all = await app.inject({ method: 'DELETE', url: '/_proxy/cache?all=1' })
  t.assert.deepEqual(all.json(), { purged: 8, soft: false })
  t.assert.deepEqual(await cached(), [])
  for (const query of ['', '?url=notaurl', '?url=ftp://x/', '?host=a/b', '?all=0', '?url=http://a/&host=a', '?prefix=']) {
    const res = await app.inject({ method: 'DELETE', url: `/_proxy/cache${query}` })
    t.assert.equal(res.statusCode, 400, query)
    t.assert.equal(res.json().code, 'CPX_BAD_PURGE', query)
  }
})

test('a soft purge marks entries stale: stale-while-revalidate still answers, the origin is asked in the background', { timeout: 30_000 }, async (t) => {
  const origin = await countingOrigin(t, ['/s', '/h'], { 'cache-control': 'public, max-age=300, stale-while-revalidate=60', etag: '"v1"' })
  const app = await testApp(t)
  const url = `/${origin.host}/s`
  t.assert.equal((await get(app, url)).cache, 'MISS')
  t.assert.equal((await get(app, url)).cache, 'HIT')
  const soft = await app.inject({ method: 'DELETE', url: `/_proxy/cache?url=${encodeURIComponent(`http://${origin.host}/s`)}&soft=1` })
  t.assert.deepEqual(soft.json(), { purged: 1, soft: true })
  const res = await app.inject({ method: 'GET', url })
  t.assert.equal(res.headers['x-cache'], 'HIT', 'served stale')
  t.assert.match(String(res.headers['cache-status']), /hit; fwd=stale/)
  t.assert.equal(res.body, '/s #1')
  await until('the background revalidation', () => origin.hits('/s') >= 2)
  t.assert.equal(origin.hits('/s'), 2, 'one background revalidation')
  t.assert.equal(origin.requests.at(-1)?.headers['if-none-match'], '"v1"', 'conditional')
  // By header, in PURGE form.
  await get(app, `/${origin.host}/h`)
  const header = await app.inject({ method: 'PURGE', url: `/${origin.host}/h`, headers: { 'soft-purge': '1' } })
  t.assert.deepEqual(header.json(), { purged: 1, soft: true })
  // A PURGE's query belongs to the URL it purges: `?soft=1` there is not the soft flag.
  t.assert.deepEqual((await app.inject({ method: 'PURGE', url: `/${origin.host}/h?soft=1` })).json(), { purged: 0, soft: false })
  t.assert.match(String((await app.inject({ method: 'GET', url: `/${origin.host}/h` })).headers['cache-status']), /fwd=stale/)
})

test('admin requests are not rate-limited as proxy traffic and do not count against a client', { timeout: 30_000 }, async (t) => {
  const origin = await countingOrigin(t, ['/a'])
  const app = await testApp(t, { RATE_LIMIT_PER_MINUTE: '2' })
  for (let i = 0; i < 5; i++) {
    t.assert.equal((await app.inject({ method: 'GET', url: '/_proxy/health' })).statusCode, 200)
    t.assert.equal((await app.inject({ method: 'GET', url: '/_proxy/metrics' })).statusCode, 200)
    t.assert.equal((await app.inject({ method: 'PURGE', url: `/${origin.host}/a` })).statusCode, 200)
  }
  t.assert.equal((await get(app, `/${origin.host}/a`)).status, 200)
  t.assert.equal((await get(app, `/${origin.host}/a`)).status, 200)
  t.assert.equal((await get(app, `/${origin.host}/a`)).status, 429, 'the third proxied request is over the limit')
})

test('/_proxy/ready answers 503 degraded with the reason while the store cannot be used, 200 once it can', { timeout: 30_000 }, async (t) => {
  const origin = await countingOrigin(t, ['/a'])
  const blocker = join(tempDir(t), 'blocker')
  writeFileSync(blocker, 'a file where the store directory should be')
  const app = await testApp(t, { CACHE_STORE: `sqlite://${join(blocker, 'cache.sqlite')}` })
  const ready = await app.inject({ method: 'GET', url: '/_proxy/ready' })
  t.assert.equal(ready.statusCode, 503)
  t.assert.equal(ready.json().status, 'degraded')
  t.assert.match(ready.json().reason, /cache store .* is unavailable/)
  t.assert.equal((await app.inject({ method: 'GET', url: '/_proxy/health' })).statusCode, 200, 'alive all the same')
  const served = await get(app, `/${origin.host}/a`)
  t.assert.equal(served.status, 200, 'still serving, uncached')
  t.assert.equal(served.cache, 'MISS')
  rmSync(blocker)
  mkdirSync(blocker)
  await until('ready once the store reopened', async () => (await app.inject({ method: 'GET', url: '/_proxy/ready' })).statusCode === 200, { timeoutMs: 15_000, intervalMs: 100 })
})

test('a purge reaches what another worker holds only in its memory tier (the store lost it without telling)', { timeout: 30_000 }, async (t) => {
  const origin = await countingOrigin(t, ['/p/1', '/p/2', '/u'])
  const file = join(tempDir(t), 'cache.sqlite')
  // Two apps on one SQLite file: two workers, each with its own memory tier.
  const env = { CACHE_STORE: `sqlite://${file}` }
  const a = await buildApp(testConfig(env))
  t.after(() => a.close())
  const b = await buildApp(testConfig(env))
  t.after(() => b.close())
  const paths = ['/p/1', '/p/2', '/u']
  for (const path of paths) {
    t.assert.equal((await get(b, `/${origin.host}${path}`)).cache, 'MISS')
    t.assert.equal((await get(b, `/${origin.host}${path}`)).cache, 'HIT')
  }
  // The rows go as an LRU sweep deletes them: no change is logged, b keeps its copies in memory.
  const raw = new KeyvSqlite({ uri: `sqlite://${file}`, table: 'entries' })
  t.after(() => raw.disconnect())
  await raw.query('DELETE FROM entries')
  t.assert.equal((await get(b, `/${origin.host}/p/1`)).cache, 'HIT', 'served from b\'s memory')
  const prefix = await a.inject({ method: 'DELETE', url: `/_proxy/cache?prefix=${encodeURIComponent(`http://${origin.host}/p/`)}` })
  t.assert.deepEqual(prefix.json(), { purged: 0, soft: false }, 'nothing in the store, nothing in a\'s memory')
  const url = await a.inject({ method: 'PURGE', url: `/${origin.host}/u` })
  t.assert.deepEqual(url.json(), { purged: 0, soft: false })
  for (const path of paths) {
    const again = await get(b, `/${origin.host}${path}`)
    t.assert.equal(again.cache, 'MISS', `${path}: b dropped its copy before answering`)
    t.assert.equal(again.body, `${path} #2`)
  }
})
