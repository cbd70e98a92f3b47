import { test, type TestContext } from 'node:test'
import { siteHost, siteOfHost, siteOriginMap } from '../../src/browsing/site-origin.ts'
import { rewriteSetCookie } from '../../src/browsing/site-cookies.ts'

test('upstream origins map to .localhost names and back', (t: TestContext) => {
  const cases: Array<[string, string, string]> = [
    ['http://example.com/', 'example.com.localhost', '/example.com'],
    ['http://127.0.0.1:3000/', '127.0.0.1.3000.localhost', '/127.0.0.1:3000'],
    ['http://10.0.0.1/', '10.0.0.1.localhost', '/10.0.0.1'],
    ['https://example.com/', 'example.com.https.localhost', '/https://example.com'],
    ['https://www.example.co.uk:8443/', 'www.example.co.uk.8443.https.localhost', '/https://www.example.co.uk:8443'],
    ['http://intranet:8080/', 'intranet.8080.localhost', '/intranet:8080']
  ]
  for (const [upstream, host, prefix] of cases) {
    t.assert.equal(siteHost(new URL(upstream)), host)
    t.assert.equal(siteOfHost(host), prefix, host)
    t.assert.equal(siteOfHost(`${host.toUpperCase()}:8888`), prefix, host)
  }
  t.assert.equal(siteHost(new URL('http://[::1]:8080/')), undefined)
  for (const host of [undefined, 'localhost', 'localhost:8888', 'example.com', '.localhost', '1.2.3.localhost', 'bad_host!.localhost', 'a..b.localhost', 'proxy.localhost:8888', 'app.localhost']) {
    t.assert.equal(siteOfHost(host), undefined, String(host))
  }
})

test('pages under a site origin link to their own origin by path and to others by their origins', (t: TestContext) => {
  const map = siteOriginMap(new URL('http://127.0.0.1:3000/a/page'), '8888')
  t.assert.equal(map(new URL('http://127.0.0.1:3000/css/x.css?v=1#f')), '/css/x.css?v=1#f')
  t.assert.equal(map(new URL('http://127.0.0.2:3001/img.png')), 'http://127.0.0.2.3001.localhost:8888/img.png')
  t.assert.equal(map(new URL('https://cdn.example.org/f.woff2')), 'http://cdn.example.org.https.localhost:8888/f.woff2')
  t.assert.equal(map(new URL('http://[::1]:9/x')), undefined)
  t.assert.equal(siteOriginMap(new URL('http://a.example/'), '')(new URL('http://b.example/')), 'http://b.example.localhost/')
})

test('cookies under a site origin keep their names and paths', (t: TestContext) => {
  t.assert.equal(rewriteSetCookie('sid=1; Path=/app; Domain=.example.com; Secure; HttpOnly; SameSite=None', undefined, '/x'), 'sid=1; Path=/app; HttpOnly')
  t.assert.equal(rewriteSetCookie('k=v', undefined, '/a/b'), 'k=v')
})
