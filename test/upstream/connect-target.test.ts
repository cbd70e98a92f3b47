import { test } from 'node:test'
import { parseConnectTarget, rawResponse } from '../../src/upstream/connect-target.ts'
import { WindowCounter } from '../../src/access/window-counter.ts'
import { parseResponse } from '../helpers/raw-http.ts'

test('parseConnectTarget reads authority-form host:port (RFC 9110 §9.3.6) and refuses anything else', (t) => {
  const good: Array<[string, string, string, number]> = [
    ['example.com:443', 'example.com:443', 'example.com', 443],
    ['Example.COM.:8443', 'example.com.:8443', 'example.com.', 8443],
    ['127.0.0.1:443', '127.0.0.1:443', '127.0.0.1', 443],
    ['0x7f.1:443', '127.0.0.1:443', '127.0.0.1', 443],
    ['[::1]:443', '[::1]:443', '::1', 443],
    ['[0:0::1]:8443', '[::1]:8443', '::1', 8443]
  ]
  for (const [target, authority, host, port] of good) {
    const parsed = parseConnectTarget(target)
    t.assert.deepEqual({ authority: parsed.authority, host: parsed.host, port: parsed.port }, { authority, host, port }, target)
    t.assert.equal(parsed.url.protocol, 'https:')
  }
  for (const bad of ['example.com', 'example.com:', ':443', 'example.com:0', 'example.com:65536', 'example.com:443/x', '/example.com:443',
    'http://example.com:443', 'user:pw@example.com:443', 'exa mple.com:443', 'example.com:44 3', '[::1:443', '::1:443', 'a\r\nb:443', 'a\\b:443', '*:443', '']) {
    t.assert.throws(() => parseConnectTarget(bad), /host:port|malformed|backslash/, JSON.stringify(bad))
  }
})

test('rawResponse is one complete HTTP/1.1 response that closes the connection; header values cannot split it', (t) => {
  const raw = rawResponse(407, 'credentials "required"', { 'Proxy-Authenticate': 'Basic realm="x"\r\nSet-Cookie: a=b' })
  const parsed = parseResponse(Buffer.from(raw, 'latin1'))
  t.assert.equal(parsed?.status, 407)
  t.assert.equal(parsed?.complete, true)
  t.assert.equal(parsed?.headers.connection, 'close')
  t.assert.equal(parsed?.headers['set-cookie'], undefined)
  t.assert.deepEqual(JSON.parse(parsed?.body.toString() ?? ''), { error: 'Proxy Authentication Required', message: 'credentials "required"' })
})

test('WindowCounter counts per key within a window, and starts again in the next one', (t) => {
  let now = 1_000_000
  const counter = new WindowCounter(60_000, 2, () => now)
  t.assert.deepEqual([counter.hit('a'), counter.hit('a'), counter.hit('b'), counter.hit('a')], [1, 2, 1, 3])
  t.assert.equal(counter.hit('c'), 1, 'past maxKeys a new key is counted alone')
  t.assert.equal(counter.hit('c'), 1)
  now += 30_000
  t.assert.equal(counter.resetInMs(), 30_000)
  t.assert.equal(counter.hit('a'), 4)
  now += 30_000
  t.assert.equal(counter.hit('a'), 1)
})
