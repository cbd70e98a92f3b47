import { test } from 'node:test'
import { parseUpstreamUrl, UpstreamUrlError } from '../../src/upstream/upstream-url.ts'

test('maps each URL form to its upstream', (t) => {
  const cases: Array<[string, string]> = [
    ['/example.com', 'http://example.com/'],
    ['/example.com/', 'http://example.com/'],
    ['/example.com/a/b?q=1', 'http://example.com/a/b?q=1'],
    ['/example.com?q=1', 'http://example.com/?q=1'],
    ['/Example.COM:8080/x', 'http://example.com:8080/x'],
    ['/example.com:80/x', 'http://example.com/x'],
    ['/http://example.com/x?y', 'http://example.com/x?y'],
    ['/https://example.com/x', 'https://example.com/x'],
    ['/HTTPS://example.com:8443/', 'https://example.com:8443/'],
    ['/https:/example.com/x', 'https://example.com/x'],
    ['/127.0.0.1:9000/a', 'http://127.0.0.1:9000/a'],
    ['/[::1]:9000/a', 'http://[::1]:9000/a'],
    ['/[2001:db8::1]/', 'http://[2001:db8::1]/'],
    ['/example.com/a/../../b', 'http://example.com/b'],
    ['/example.com/a/%2e%2e/%2e%2e/b', 'http://example.com/b'],
    ['/example.com/a#frag', 'http://example.com/a'],
    ['/my_host.internal/', 'http://my_host.internal/']
  ]
  for (const [path, expected] of cases) {
    t.assert.equal(parseUpstreamUrl(path).href, expected, path)
  }
})

test('rejects malformed hosts, ports and URLs', (t) => {
  const bad = [
    '/', '/?q=1', '/:80/', '/exa mple.com/', '/example..com/', '/-bad.com/', '/example.com:0/',
    '/example.com:65536/', '/example.com:http/', '/example.com:/', '/[::1/', '/[::1]x/', '/[zz::1]/',
    '/user:pw@example.com/', '/example.com\\@evil.com/', '/exa%41mple.com/', '/http://', '/https:///x',
    '/%2e%2e/x', '/example.com/\u0000', '/' + 'a'.repeat(64) + '.com/'
  ]
  for (const path of bad) {
    t.assert.throws(() => parseUpstreamUrl(path), UpstreamUrlError, path)
  }
})
