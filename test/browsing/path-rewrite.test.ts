import { test, type TestContext } from 'node:test'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { gunzipSync, gzipSync } from 'node:zlib'
import { startOrigin } from '../helpers/origin.ts'
import { testApp } from '../helpers/app.ts'
import { siteTag } from '../../src/browsing/site-cookies.ts'

const CHROME = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document', host: 'localhost:8888' }
const CURL = { 'user-agent': 'curl/8.5.0', host: 'localhost:8888' }
const HTML = '<!doctype html><html><head><link rel="stylesheet" href="/s.css" integrity="sha256-x"></head><body><a href="/next">n</a></body></html>'
const CSS = 'body{background:url(/bg.png)}'

async function site () {
  const html = gzipSync(Buffer.from(HTML))
  return await startOrigin({
    '/page': (_req, res) => {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'content-encoding': 'gzip',
        'content-length': html.length,
        etag: '"v1"',
        'cache-control': 'max-age=60',
        'content-security-policy': "default-src 'self'",
        link: '</s.css>; rel=preload; as=style',
        'referrer-policy': 'no-referrer'
      })
      res.end(html)
    },
    '/s.css': (_req, res) => { res.writeHead(200, { 'content-type': 'text/css', 'cache-control': 'max-age=60' }); res.end(CSS) },
    '/download.html': (_req, res) => { res.writeHead(200, { 'content-type': 'text/html', 'content-disposition': 'attachment; filename=page.html' }); res.end(HTML) },
    '/moved': (_req, res) => { res.writeHead(301, { location: 'http://127.0.0.2:9/elsewhere', refresh: '0; url=/x' }); res.end() },
    '/login': (_req, res) => { res.writeHead(200, { 'content-type': 'text/plain', 'set-cookie': ['sid=1; Path=/; Domain=127.0.0.1; Secure', 'lang=en'] }); res.end('ok') },
    '/echo': (req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify({ cookie: req.headers.cookie ?? null, referer: req.headers.referer ?? null })) }
  })
}

test('curl and other non-browsers get the origin\'s bytes and headers untouched, miss and hit', async (t: TestContext) => {
  const origin = await site()
  t.after(() => origin.close())
  const app = await testApp(t)
  for (const cache of ['MISS', 'HIT']) {
    const res = await app.inject({ url: `/${origin.host}/page`, headers: CURL })
    t.assert.equal(res.headers['x-cache'], cache)
    t.assert.equal(res.headers['content-encoding'], 'gzip')
    t.assert.equal(res.headers.etag, '"v1"')
    t.assert.equal(gunzipSync(res.rawPayload).toString(), HTML)
    t.assert.equal(res.headers.link, '</s.css>; rel=preload; as=style')
  }
  const moved = await app.inject({ url: `/${origin.host}/moved`, headers: CURL })
  t.assert.equal(moved.headers.location, 'http://127.0.0.2:9/elsewhere')
  const login = await app.inject({ url: `/${origin.host}/login`, headers: CURL })
  t.assert.deepEqual(login.headers['set-cookie'], ['sid=1; Path=/; Domain=127.0.0.1; Secure', 'lang=en'])
  const echo = await app.inject({ url: `/${origin.host}/echo`, headers: { ...CURL, cookie: 'a=1' } })
  t.assert.equal(JSON.parse(echo.body).cookie, 'a=1')
  // No trailing-slash redirect and no Referer redirect for curl.
  t.assert.equal((await app.inject({ url: `/${origin.host}`, headers: CURL })).statusCode, 404)
})

test('browsers get rewritten HTML and CSS on miss and hit, while the cache keeps the origin\'s bytes', async (t: TestContext) => {
  const origin = await site()
  t.after(() => origin.close())
  const app = await testApp(t)
  for (const cache of ['MISS', 'HIT']) {
    const res = await app.inject({ url: `/${origin.host}/page`, headers: { ...CHROME, 'accept-encoding': 'gzip, br' } })
    t.assert.equal(res.statusCode, 200)
    t.assert.equal(res.headers['x-cache'], cache)
    t.assert.equal(res.headers['content-encoding'], undefined)
    t.assert.equal(res.headers['content-length'], undefined)
    t.assert.equal(res.headers['content-security-policy'], undefined)
    t.assert.equal(res.headers['referrer-policy'], 'same-origin')
    t.assert.equal(res.headers.etag, 'W/"v1"')
    t.assert.equal(res.headers['content-type'], 'text/html; charset=utf-8')
    t.assert.equal(res.headers.link, `</${origin.host}/s.css>; rel=preload; as=style`)
    t.assert.ok(res.body.startsWith('<!doctype html><html><head><script>'))
    t.assert.ok(res.body.includes(`</script><link rel="stylesheet" href="/${origin.host}/s.css"></head>`))
    t.assert.ok(res.body.includes(`<a href="/${origin.host}/next">n</a>`))
    t.assert.ok(res.body.includes(JSON.stringify(siteTag(`/${origin.host}`))))
  }
  const download = await app.inject({ url: `/${origin.host}/download.html`, headers: CHROME })
  t.assert.equal(download.body, HTML)
  const css = await app.inject({ url: `/${origin.host}/s.css`, headers: { ...CHROME, 'sec-fetch-dest': 'style' } })
  t.assert.equal(css.body, `body{background:url("/${origin.host}/bg.png")}`)
  t.assert.equal(origin.hits('/page'), 1)
  // The stored entry is the origin's: curl after the browser still gets the gzip bytes.
  const raw = await app.inject({ url: `/${origin.host}/page`, headers: CURL })
  t.assert.equal(raw.headers['x-cache'], 'HIT')
  t.assert.equal(gunzipSync(raw.rawPayload).toString(), HTML)
})

test('a browser\'s conditional request still gets a 304; ranges and HEAD are never rewritten', async (t: TestContext) => {
  const origin = await site()
  t.after(() => origin.close())
  const app = await testApp(t)
  await app.inject({ url: `/${origin.host}/s.css`, headers: CHROME })
  const notModified = await app.inject({ url: `/${origin.host}/page`, headers: { ...CHROME, 'if-none-match': 'W/"v1"' } })
  t.assert.equal(notModified.statusCode, 304)
  t.assert.equal(notModified.headers.etag, 'W/"v1"')
  t.assert.equal(notModified.body, '')
  const range = await app.inject({ url: `/${origin.host}/s.css`, headers: { ...CHROME, range: 'bytes=0-3' } })
  t.assert.equal(range.statusCode, 206)
  t.assert.equal(range.body, 'body')
  const head = await app.inject({ method: 'HEAD', url: `/${origin.host}/s.css`, headers: CHROME })
  t.assert.equal(head.statusCode, 200)
  t.assert.equal(head.body, '')
})

test('browsers: redirects and cookies in proxy terms, each site sees only its own cookies', async (t: TestContext) => {
  const origin = await site()
  t.after(() => origin.close())
  const app = await testApp(t)
  const moved = await app.inject({ url: `/${origin.host}/moved`, headers: CHROME })
  t.assert.equal(moved.statusCode, 301)
  t.assert.equal(moved.headers.location, '/127.0.0.2:9/elsewhere')
  t.assert.equal(moved.headers.refresh, `0; url=/${origin.host}/x`)
  const login = await app.inject({ url: `/${origin.host}/login`, headers: CHROME })
  const tag = siteTag(`/${origin.host}`)
  t.assert.deepEqual(login.headers['set-cookie'], [`${tag}sid=1; Path=/${origin.host}`, `${tag}lang=en; Path=/${origin.host}`])
  const echo = await app.inject({
    url: `/${origin.host}/echo`,
    headers: { ...CHROME, cookie: `${tag}sid=1; ${siteTag('/127.0.0.2:9')}sid=other; loose=1`, referer: `http://localhost:8888/${origin.host}/page` }
  })
  t.assert.deepEqual(JSON.parse(echo.body), { cookie: 'sid=1', referer: `http://${origin.host}/page` })
})

test('root-relative requests from a proxied page go to its site; a bare site gets its slash', async (t: TestContext) => {
  const origin = await site()
  t.after(() => origin.close())
  const app = await testApp(t)
  const referer = `http://localhost:8888/${origin.host}/page`
  const slipped = await app.inject({ method: 'POST', url: '/echo?x=1', headers: { ...CHROME, referer }, payload: 'a=1' })
  t.assert.equal(slipped.statusCode, 307)
  t.assert.equal(slipped.headers.location, `/${origin.host}/echo?x=1`)
  const home = await app.inject({ url: '/', headers: { ...CHROME, referer } })
  t.assert.equal(home.statusCode, 307)
  t.assert.equal(home.headers.location, `/${origin.host}/`)
  t.assert.match((await app.inject({ url: '/', headers: CHROME })).body, /<h1>caching-proxy<\/h1>/)
  const icon = await app.inject({ url: '/favicon.ico', headers: { ...CHROME, referer } })
  t.assert.equal(icon.headers.location, `/${origin.host}/favicon.ico`)
  const bare = await app.inject({ url: `/${origin.host}`, headers: CHROME })
  t.assert.equal(bare.statusCode, 308)
  t.assert.equal(bare.headers.location, `/${origin.host}/`)
  // Without a proxied Referer it stays the error it was (the host "echo" is refused here).
  const lost = await app.inject({ url: '/echo', headers: CHROME })
  t.assert.ok(lost.statusCode >= 400 && lost.statusCode !== 307, String(lost.statusCode))
  t.assert.equal(origin.requests.length, 0)
})

test('forward-proxy requests and the proxy\'s own error answers are never rewritten', async (t: TestContext) => {
  const origin = await site()
  t.after(() => origin.close())
  const app = await testApp(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  // inject() would turn an absolute-form target into a path: send a real forward-proxy request.
  const forward = await new Promise<string>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: `http://${origin.host}/s.css`, headers: { ...CHROME, host: origin.host } }, (res) => {
      let body = ''
      res.on('data', (chunk) => { body += String(chunk) })
      res.on('end', () => resolve(body))
    }).on('error', reject)
  })
  t.assert.equal(forward, CSS)
  const refused = await app.inject({ url: '/127.0.0.1:1/x', headers: CHROME })
  t.assert.ok(refused.statusCode >= 500)
  t.assert.equal(refused.headers['content-type'], 'application/json; charset=utf-8')
  t.assert.match(refused.body, /"upstream":"127\.0\.0\.1:1"/)
})

test('an origin\'s corrupt gzip HTML cuts that browser response short and nothing else', async (t: TestContext) => {
  const origin = await startOrigin({
    '/broken': (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'gzip', 'cache-control': 'no-store' })
      res.end(Buffer.concat([gzipSync(Buffer.from('<p>start')).subarray(0, 12), Buffer.from('garbage that is not deflate')]))
    },
    '/ok': (_req, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<a href="/x">x</a>') }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const outcome = await new Promise<string>((resolve) => {
    http.get({ host: '127.0.0.1', port, path: `/${origin.host}/broken`, headers: CHROME }, (res) => {
      let body = ''
      res.on('data', (chunk) => { body += String(chunk) })
      res.on('end', () => resolve(`ended ${res.statusCode} ${body}`))
      res.on('error', () => resolve('cut'))
      res.on('aborted', () => resolve('cut'))
    }).on('error', () => resolve('cut'))
  })
  t.assert.match(outcome, /^(cut|ended 502 .*could not be decoded)/)
  const ok = await app.inject({ url: `/${origin.host}/ok`, headers: CHROME })
  t.assert.equal(ok.statusCode, 200)
  t.assert.ok(ok.body.includes(`<a href="/${origin.host}/x">x</a>`))
})

test('per-site origins: routed by Host, other sites linked by their own origins, cookies left to the browser', async (t: TestContext) => {
  const origin = await startOrigin({
    '/p': (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=no-such-charset', 'set-cookie': 'sid=1; Path=/; Domain=127.0.0.1; Secure' })
      res.end('<a href="/same">s</a><img src="http://127.0.0.2:9/i.png"><a href="https://example.com/x">e</a>')
    },
    '/echo': (req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify({ cookie: req.headers.cookie, referer: req.headers.referer, origin: req.headers.origin })) }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  const host = `127.0.0.1.${origin.port}.localhost:8888`
  const page = await app.inject({ url: '/p', headers: { ...CHROME, host } })
  t.assert.equal(page.statusCode, 200)
  t.assert.equal(page.body, '<a href="/same">s</a><img src="http://127.0.0.2.9.localhost:8888/i.png"><a href="http://example.com.https.localhost:8888/x">e</a>')
  t.assert.equal(page.headers['set-cookie'], 'sid=1; Path=/')
  const echo = await app.inject({ method: 'POST', url: '/echo', headers: { ...CHROME, host, cookie: 'sid=1', referer: `http://${host}/p`, origin: `http://${host}` } })
  t.assert.deepEqual(JSON.parse(echo.body), { cookie: 'sid=1', referer: `http://${origin.host}/p`, origin: `http://${origin.host}` })
  const curl = await app.inject({ url: '/p', headers: { ...CURL, host } })
  t.assert.ok(curl.body.includes('src="http://127.0.0.2:9/i.png"'))
})
