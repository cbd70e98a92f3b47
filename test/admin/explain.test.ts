import { test, type TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { testApp } from '../helpers/app.ts'
import { startOrigin, type Origin } from '../helpers/origin.ts'

// GET /_proxy/explain?url= (plugins/explain.ts, src/admin/explain.ts): what is stored for a
// URL and why the last response was or was not stored, through inject() against a real origin.

async function origin (t: TestContext): Promise<Origin> {
  const reply = (headers: Record<string, string>, body: string) => (_req: unknown, res: import('node:http').ServerResponse) => {
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value)
    res.end(body)
  }
  const started = await startOrigin({
    '/stored': reply({ 'cache-control': 'public, max-age=600', etag: '"v1"', 'content-type': 'text/plain' }, 'stored body'),
    '/private': reply({ 'cache-control': 'private, max-age=600' }, 'mine'),
    '/no-store': reply({ 'cache-control': 'no-store' }, 'never'),
    '/chunked': (_req, res) => {
      res.setHeader('cache-control', 'max-age=60')
      res.write('first part, ')
      setTimeout(() => res.end('then the rest'), 20)
    },
    '/vary': (req, res) => {
      res.setHeader('cache-control', 'max-age=120')
      res.setHeader('vary', 'Accept-Language')
      res.end(`hello in ${String(req.headers['accept-language'] ?? 'nothing')}`)
    }
  })
  t.after(() => started.close())
  return started
}

async function explained (app: FastifyInstance, url: string, accept = 'application/json'): Promise<{ status: number, body: any, text: string, type: string }> {
  const res = await app.inject({ method: 'GET', url: `/_proxy/explain?url=${encodeURIComponent(url)}`, headers: { accept } })
  return { status: res.statusCode, body: accept === 'application/json' ? res.json() : undefined, text: res.body, type: String(res.headers['content-type']) }
}

test('explain: a stored response, with its age, freshness left, validators and the directive that decided', { timeout: 20_000 }, async (t) => {
  const site = await origin(t)
  const app = await testApp(t)
  const url = `http://${site.host}/stored`
  const before = await explained(app, url)
  t.assert.equal(before.status, 200)
  t.assert.equal(before.body.stored, false)
  t.assert.deepEqual(before.body.variants, [])
  t.assert.equal(before.body.last, undefined)

  t.assert.equal((await app.inject({ url: `/${site.host}/stored` })).headers['x-cache'], 'MISS')
  const after = await explained(app, url)
  t.assert.equal(after.body.stored, true)
  t.assert.equal(after.body.variants.length, 1)
  const [v] = after.body.variants
  t.assert.equal(v.status, 200)
  t.assert.equal(v.bodyBytes, 'stored body'.length)
  t.assert.equal(v.storedBytes > v.bodyBytes, true)
  t.assert.equal(v.lifetimeSeconds, 600)
  t.assert.equal(v.lifetimeFrom, 'max-age')
  t.assert.equal(v.freshnessLeftSeconds > 590 && v.freshnessLeftSeconds <= 600, true, String(v.freshnessLeftSeconds))
  t.assert.equal(v.ageSeconds >= 0 && v.ageSeconds < 10, true, String(v.ageSeconds))
  t.assert.equal(v.reuse, 'fresh')
  t.assert.deepEqual(v.directives, { public: true, 'max-age': '600' })
  t.assert.deepEqual(v.validators, { etag: '"v1"' })
  t.assert.equal(after.body.last.outcome, 'miss')
  t.assert.equal(after.body.last.stored, true)
  t.assert.equal(after.body.last.reason, undefined)
  t.assert.equal(after.body.last.cacheStatus, 'fwd=miss; fwd-status=200; stored')

  t.assert.equal((await app.inject({ url: `/${site.host}/stored` })).headers['x-cache'], 'HIT')
  const hit = await explained(app, url)
  t.assert.equal(hit.body.last.outcome, 'hit')
  t.assert.equal(hit.body.last.stored, undefined, 'a hit stored nothing new')
  t.assert.equal(site.hits('/stored'), 1, 'explain never went to the origin')

  const page = await explained(app, url, 'text/html,application/xhtml+xml,*/*;q=0.8')
  t.assert.match(page.type, /^text\/html/)
  t.assert.match(page.text, /Stored: 1 response/)
  t.assert.match(page.text, /max-age gives a lifetime of 600 s/)
  t.assert.match(page.text, /ETag &quot;v1&quot;/)
})

test('explain: private and no-store responses are not stored, and the last decision says why', { timeout: 20_000 }, async (t) => {
  const site = await origin(t)
  const app = await testApp(t)
  for (const [path, reason] of [['/private', /private: only a browser cache/], ['/no-store', /no-store/]] as const) {
    const res = await app.inject({ url: `/${site.host}${path}` })
    t.assert.equal(res.statusCode, 200)
    const e = await explained(app, `http://${site.host}${path}`)
    t.assert.equal(e.body.stored, false, path)
    t.assert.equal(e.body.last.outcome, 'miss', path)
    t.assert.equal(e.body.last.stored, false, path)
    t.assert.equal(e.body.last.detail, path.slice(1), path)
    t.assert.match(e.body.last.reason, reason, path)
    const page = await explained(app, `http://${site.host}${path}`, 'text/html')
    t.assert.match(page.text, /Nothing is stored for this URL/)
    t.assert.match(page.text, /Why not/)
  }
  // The second request is in hit-for-pass; explain says so through the outcome.
  await app.inject({ url: `/${site.host}/no-store` })
  const again = await explained(app, `http://${site.host}/no-store`)
  t.assert.equal(again.body.last.outcome, 'pass')
  t.assert.equal(again.body.last.detail, 'no-store')
})

test('explain: each Vary variant with the header values that select it', { timeout: 20_000 }, async (t) => {
  const site = await origin(t)
  const app = await testApp(t)
  for (const language of ['en', 'fr']) {
    const res = await app.inject({ url: `/${site.host}/vary`, headers: { 'accept-language': language } })
    t.assert.equal(res.body, `hello in ${language}`)
  }
  await app.inject({ url: `/${site.host}/vary` })
  const e = await explained(app, `http://${site.host}/vary`)
  t.assert.equal(e.body.stored, true)
  t.assert.deepEqual(e.body.vary, ['accept-language'])
  const selected = e.body.variants.map((v: { selectedBy: Record<string, string> }) => v.selectedBy['accept-language']).sort()
  t.assert.deepEqual(selected, ['(absent)', 'en', 'fr'])
  for (const v of e.body.variants) t.assert.equal(v.lifetimeSeconds, 120)
  t.assert.equal(e.body.last.outcome, 'miss')
  // A longer URL sharing the prefix is another URL.
  const other = await explained(app, `http://${site.host}/var`)
  t.assert.equal(other.body.stored, false)
  const page = await explained(app, `http://${site.host}/vary`, 'text/html')
  t.assert.match(page.text, /varying on <code>accept-language<\/code>/)
  t.assert.match(page.text, /accept-language: fr/)
})

test('explain: bad requests are 400 with a code, and the admin guard applies', { timeout: 20_000 }, async (t) => {
  const app = await testApp(t, { ADMIN_TOKEN: 'explain-token-0123456789' })
  const none = await app.inject({ url: '/_proxy/explain?url=http://example.com/', headers: { accept: 'application/json' } })
  t.assert.equal(none.statusCode, 401)
  const auth = { authorization: 'Bearer explain-token-0123456789', accept: 'application/json' }
  for (const url of ['/_proxy/explain', '/_proxy/explain?url=nope', '/_proxy/explain?url=ftp://x/']) {
    const res = await app.inject({ url, headers: auth })
    t.assert.equal(res.statusCode, 400, url)
    t.assert.equal(res.json().code, 'CPX_BAD_EXPLAIN', url)
  }
  const remote = await app.inject({ url: '/_proxy/explain?url=http://example.com/', headers: auth, remoteAddress: '203.0.113.9' })
  t.assert.equal(remote.statusCode, 403)
})

test('explain: a chunked body is stored without Cache-Status saying so at header time; explain says it was', { timeout: 20_000 }, async (t) => {
  const site = await origin(t)
  const app = await testApp(t)
  const res = await app.inject({ url: `/${site.host}/chunked` })
  t.assert.equal(res.body, 'first part, then the rest')
  t.assert.equal(res.headers['content-length'], undefined)
  const e = await explained(app, `http://${site.host}/chunked`)
  t.assert.equal(e.body.stored, true)
  t.assert.equal(e.body.variants[0].bodyBytes, 'first part, then the rest'.length)
  t.assert.equal(e.body.last.stored, true)
  t.assert.equal(e.body.last.reason, undefined)
  t.assert.doesNotMatch(e.body.last.cacheStatus, /stored/)
  // Purged: the same last response now reads as not stored, and says what may have happened.
  const purged = await app.inject({ method: 'DELETE', url: `/_proxy/cache?url=${encodeURIComponent(`http://${site.host}/chunked`)}` })
  t.assert.equal(purged.statusCode, 200)
  const after = await explained(app, `http://${site.host}/chunked`)
  t.assert.equal(after.body.stored, false)
  t.assert.equal(after.body.last.stored, false)
  t.assert.match(after.body.last.reason, /no Content-Length/)
})
