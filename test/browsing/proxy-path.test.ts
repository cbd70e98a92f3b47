import { test, type TestContext } from 'node:test'
import { proxyPathOf, proxyPrefix, toProxyPath, upstreamOf } from '../../src/browsing/proxy-path.ts'
import { firstSegment, isPlausibleHost } from '../../src/browsing/plausible-host.ts'

const page = new URL('http://127.0.0.1:23000/dir/page.html?x=1')

test('upstream URLs map to proxy paths and back', (t: TestContext) => {
  const cases: Array<[string, string]> = [
    ['http://example.com/a?b', '/example.com/a?b'],
    ['http://127.0.0.1:8080/a', '/127.0.0.1:8080/a'],
    ['https://example.com/a', '/https://example.com/a'],
    ['https://example.com:8443/', '/https://example.com:8443/'],
    ['http://example.com:80/x', '/example.com/x'],
    ['http://[::1]:8080/', '/[::1]:8080/']
  ]
  for (const [upstream, path] of cases) {
    t.assert.equal(proxyPathOf(new URL(upstream)), path)
    t.assert.equal(upstreamOf(path)?.href, new URL(upstream).href, path)
  }
  t.assert.equal(proxyPrefix(new URL('https://a.example/x')), '/https://a.example')
  t.assert.equal(upstreamOf('/bad host/'), undefined)
})

test('references resolve against the document and become proxy paths', (t: TestContext) => {
  t.assert.equal(toProxyPath('/css/site.css', page), '/127.0.0.1:23000/css/site.css')
  t.assert.equal(toProxyPath('img/a.png', page), '/127.0.0.1:23000/dir/img/a.png')
  t.assert.equal(toProxyPath('../up.html#top', page), '/127.0.0.1:23000/up.html#top')
  t.assert.equal(toProxyPath('//127.0.0.2:9/x', page), '/127.0.0.2:9/x')
  t.assert.equal(toProxyPath('https://cdn.example.org/f.woff2', page), '/https://cdn.example.org/f.woff2')
  t.assert.equal(toProxyPath('?q=2', page), '/127.0.0.1:23000/dir/page.html?q=2')
  t.assert.equal(toProxyPath('  /spaced  ', page), '/127.0.0.1:23000/spaced')
  for (const kept of ['', '#frag', 'data:image/png;base64,AAAA', 'javascript:void(0)', 'mailto:a@b.c', 'blob:http://x/y', 'http://[bad']) {
    t.assert.equal(toProxyPath(kept, page), undefined, kept)
  }
})

test('the first segment of a path is a plausible host or a root-relative path', (t: TestContext) => {
  t.assert.equal(firstSegment('/127.0.0.1:23000/a'), '127.0.0.1:23000')
  t.assert.equal(firstSegment('/https://example.com/a'), 'https://example.com')
  t.assert.equal(firstSegment('/favicon.ico?v=1'), 'favicon.ico')
  t.assert.equal(firstSegment('/'), '')
  for (const host of ['127.0.0.1:23000', '127.0.0.2', 'localhost', 'localhost:3000', 'apache.org', 'www.example.co.uk',
    'intranet:8080', '[::1]:8080', '[::1]', 'https://example.com', 'http://intranet', 'user.github.io', 'EXAMPLE.COM']) {
    t.assert.equal(isPlausibleHost(host), true, host)
  }
  for (const segment of ['css', 'js', 'img', 'api', 'favicon.ico', 'app.js', 'data.json', 'style.css', 'index.html', 'static', 'a:b', ':80', '[zz]']) {
    t.assert.equal(isPlausibleHost(segment), false, segment)
  }
})
