import { test, type TestContext } from 'node:test'
import { isBrowser, pathRedirect, refererUpstream, siteRelation, upstreamBrowserHeaders } from '../../src/browsing/path-browsing.ts'
import { siteTag } from '../../src/browsing/site-cookies.ts'

const CHROME = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0', 'sec-fetch-mode': 'navigate', host: 'localhost:8888' }

test('browsers are told from other clients', (t: TestContext) => {
  t.assert.equal(isBrowser(CHROME), true)
  t.assert.equal(isBrowser({ 'sec-fetch-dest': 'image' }), true)
  t.assert.equal(isBrowser({ 'user-agent': 'Mozilla/5.0 (Windows NT 10.0) Firefox/140.0' }), true)
  for (const agent of ['curl/8.5.0', 'Wget/1.21', 'node', 'undici', 'python-requests/2.31']) t.assert.equal(isBrowser({ 'user-agent': agent }), false, agent)
  t.assert.equal(isBrowser({}), false)
  t.assert.equal(isBrowser({ 'user-agent': 'node', 'sec-fetch-mode': 'cors' }), false, 'fetch() in Node')
})

test('a Referer names an upstream page only when it is a proxied page of this proxy', (t: TestContext) => {
  t.assert.equal(refererUpstream('http://localhost:8888/127.0.0.1:23000/dir/p?q', 'localhost:8888')?.href, 'http://127.0.0.1:23000/dir/p?q')
  t.assert.equal(refererUpstream('http://localhost:8888/https://example.com/x', 'LOCALHOST:8888')?.href, 'https://example.com/x')
  t.assert.equal(refererUpstream('http://localhost:8888/css/a.css', 'localhost:8888'), undefined)
  t.assert.equal(refererUpstream('http://elsewhere:8888/127.0.0.1:23000/', 'localhost:8888'), undefined)
  t.assert.equal(refererUpstream('not a url', 'localhost:8888'), undefined)
  t.assert.equal(refererUpstream(undefined, 'localhost:8888'), undefined)
})

test('root-relative requests with a proxied Referer go to the Referer\'s site, method kept', (t: TestContext) => {
  const referer = 'http://localhost:8888/127.0.0.1:23000/dir/page.html'
  t.assert.deepEqual(pathRedirect('GET', '/api/data.json?x=1', { ...CHROME, referer }, true), { status: 307, location: '/127.0.0.1:23000/api/data.json?x=1' })
  t.assert.deepEqual(pathRedirect('POST', '/favicon.ico', { host: 'localhost:8888', referer: 'http://localhost:8888/https://site.example/' }, false),
    { status: 307, location: '/https://site.example/favicon.ico' })
  t.assert.equal(pathRedirect('GET', '/css/site.css', { host: 'localhost:8888' }, true), undefined) // no Referer: the error it is today
  t.assert.equal(pathRedirect('GET', '/127.0.0.2:23001/x', { ...CHROME, referer }, true), undefined) // a plausible host is never redirected
})

test('a browser opening a bare site gets its trailing slash; curl does not', (t: TestContext) => {
  t.assert.deepEqual(pathRedirect('GET', '/127.0.0.1:23000', CHROME, true), { status: 308, location: '/127.0.0.1:23000/' })
  t.assert.deepEqual(pathRedirect('GET', '/https://example.com?a=1', CHROME, true), { status: 308, location: '/https://example.com/?a=1' })
  t.assert.equal(pathRedirect('GET', '/127.0.0.1:23000', { 'user-agent': 'curl/8' }, false), undefined)
  t.assert.equal(pathRedirect('POST', '/127.0.0.1:23000', CHROME, true), undefined)
  t.assert.equal(pathRedirect('GET', '/127.0.0.1:23000/', CHROME, true), undefined)
  t.assert.equal(pathRedirect('GET', '/', CHROME, true), undefined)
  const referer = 'http://localhost:8888/127.0.0.1:23000/dir/page.html'
  t.assert.deepEqual(pathRedirect('GET', '/?tab=2', { ...CHROME, referer }, true), { status: 307, location: '/127.0.0.1:23000/?tab=2' })
})

test('upstream headers: the site\'s own cookies, Referer and Origin in upstream terms', (t: TestContext) => {
  const upstream = new URL('http://127.0.0.1:23000/form')
  const headers: Record<string, string> = {
    ...CHROME,
    cookie: `${siteTag('/127.0.0.2:23001')}sid=b; ${siteTag('/127.0.0.1:23000')}sid=a; loose=1`,
    referer: 'http://localhost:8888/127.0.0.1:23000/page.html',
    origin: 'http://localhost:8888'
  }
  upstreamBrowserHeaders(headers, upstream)
  t.assert.equal(headers.cookie, 'sid=a')
  t.assert.equal(headers.referer, 'http://127.0.0.1:23000/page.html')
  t.assert.equal(headers.origin, 'http://127.0.0.1:23000')
  const bare: Record<string, string> = { ...CHROME, cookie: 'loose=1', referer: 'http://localhost:8888/', origin: 'http://localhost:8888' }
  upstreamBrowserHeaders(bare, upstream)
  t.assert.equal(bare.cookie, undefined)
  t.assert.equal(bare.referer, undefined)
  t.assert.equal(bare.origin, undefined)
})

test('across origins the Referer is cut to the origin and Sec-Fetch-Site tells the real relation', (t: TestContext) => {
  const headers: Record<string, string> = { ...CHROME, referer: 'http://localhost:8888/https://www.example.com/secret/page?id=1', 'sec-fetch-site': 'same-origin' }
  upstreamBrowserHeaders(headers, new URL('https://static.example.com/app.js'))
  t.assert.equal(headers.referer, 'https://www.example.com/')
  t.assert.equal(headers['sec-fetch-site'], 'same-site')
  t.assert.equal(siteRelation(new URL('http://127.0.0.1:1/'), new URL('http://127.0.0.2:1/')), 'cross-site')
  t.assert.equal(siteRelation(new URL('https://a.example.com/'), new URL('https://a.example.com/x')), 'same-origin')
  t.assert.equal(siteRelation(new URL('https://a.github.io/'), new URL('https://b.github.io/')), 'cross-site')
  const typed: Record<string, string> = { ...CHROME, 'sec-fetch-site': 'none' }
  upstreamBrowserHeaders(typed, new URL('https://www.example.com/'))
  t.assert.equal(typed['sec-fetch-site'], 'none')
})

test('browsers ask upstream only for codings the rewriter can decode', (t: TestContext) => {
  const headers: Record<string, string> = { ...CHROME, 'accept-encoding': 'gzip, deflate, br, zstd' }
  upstreamBrowserHeaders(headers, new URL('http://127.0.0.1:23000/'))
  t.assert.equal(headers['accept-encoding'], 'gzip, deflate, br')
  const only: Record<string, string> = { ...CHROME, 'accept-encoding': 'zstd' }
  upstreamBrowserHeaders(only, new URL('http://127.0.0.1:23000/'))
  t.assert.equal(only['accept-encoding'], undefined)
})
