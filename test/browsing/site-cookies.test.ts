import { test, type TestContext } from 'node:test'
import { runInNewContext } from 'node:vm'
import { defaultPath, filterCookieHeader, rewriteSetCookie, siteTag, cookieShim } from '../../src/browsing/site-cookies.ts'

const A = '/127.0.0.1:23000'
const B = '/127.0.0.2:23000'

test('each site has its own short cookie-name tag', (t: TestContext) => {
  t.assert.match(siteTag(A), /^cpx[0-9a-z]+_$/)
  t.assert.notEqual(siteTag(A), siteTag(B))
  t.assert.equal(siteTag(A), siteTag(A))
})

test('Set-Cookie is tagged and scoped under the site prefix', (t: TestContext) => {
  const tag = siteTag(A)
  t.assert.equal(rewriteSetCookie('sid=abc; Path=/; HttpOnly', A, '/login'), `${tag}sid=abc; HttpOnly; Path=${A}`)
  t.assert.equal(rewriteSetCookie('sid=abc; Path=/app; Max-Age=60', A, '/x'), `${tag}sid=abc; Max-Age=60; Path=${A}/app`)
  // RFC 6265 §5.1.4 default-path when Path is missing or does not start with "/".
  t.assert.equal(rewriteSetCookie('k=v', A, '/shop/cart/view'), `${tag}k=v; Path=${A}/shop/cart`)
  t.assert.equal(rewriteSetCookie('k=v; path=relative', A, '/page'), `${tag}k=v; Path=${A}`)
  t.assert.equal(rewriteSetCookie('k=v; Domain=.example.com; Secure; SameSite=None; Partitioned', A, '/'), `${tag}k=v; Path=${A}`)
  t.assert.equal(rewriteSetCookie('k=v; SameSite=Lax; Expires=Wed, 21 Oct 2037 07:28:00 GMT', A, '/'), `${tag}k=v; SameSite=Lax; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=${A}`)
  t.assert.equal(rewriteSetCookie('__Host-id=1; Path=/; Secure', A, '/'), `${tag}__Host-id=1; Path=${A}`)
  t.assert.equal(defaultPath('/'), '/')
  t.assert.equal(defaultPath('/a'), '/')
  t.assert.equal(defaultPath('/a/b'), '/a')
})

test('only the target site\'s cookies go upstream, under their own names', (t: TestContext) => {
  const header = `${siteTag(B)}sid=bbb; ${siteTag(A)}sid=aaa; theme=dark; ${siteTag(A)}__Host-id=1`
  t.assert.equal(filterCookieHeader(header, A), 'sid=aaa; __Host-id=1')
  t.assert.equal(filterCookieHeader(header, B), 'sid=bbb')
  t.assert.equal(filterCookieHeader('theme=dark', A), undefined)
})

test('the cookie shim is one inline script naming the site', (t: TestContext) => {
  const shim = cookieShim(A)
  t.assert.match(shim, /^<script>\(function\(\)\{.*\}\)\(\)<\/script>$/s)
  t.assert.ok(shim.includes(JSON.stringify(siteTag(A))))
  t.assert.ok(shim.includes(JSON.stringify(A)))
})

test('the cookie shim tags what scripts write, shows them their own names, and wraps only once', (t: TestContext) => {
  const written: string[] = []
  let jar = `${siteTag(B)}other=1`
  class Document {}
  Object.defineProperty(Document.prototype, 'cookie', {
    configurable: true,
    get: () => jar,
    set: (value: string) => {
      written.push(value)
      jar += `; ${value.split(';')[0]}`
    }
  })
  const script = cookieShim(A).replace(/^<script>|<\/script>$/g, '')
  runInNewContext(script, { Document })
  runInNewContext(script, { Document }) // a fragment evaluated again
  const doc = new Document() as { cookie: string }
  doc.cookie = 'theme=dark; path=/; Domain=example.com; Secure; SameSite=None; max-age=60'
  doc.cookie = 'deep=1; path=/app'
  t.assert.deepEqual(written, [`${siteTag(A)}theme=dark; path=${A}; max-age=60`, `${siteTag(A)}deep=1; path=${A}/app`])
  t.assert.equal(doc.cookie, 'theme=dark; deep=1')
})
