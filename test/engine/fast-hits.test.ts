import { test } from 'node:test'
import { FastMemo, plainRequest, targetOf } from '../../src/engine/fast-hits.ts'

const upstream = new URL('http://example.com/a')
const learned = (key = 'GET http://example.com/a'): { upstream: URL, key: string } => ({ upstream, key })

test('plainRequest: only GET/HEAD over HTTP/1.x with none of the fields the normal path decides by', (t) => {
  t.assert.equal(plainRequest('GET', '1.1', '/example.com/a', { host: 'proxy' }), true)
  t.assert.equal(plainRequest('HEAD', '1.0', 'http://example.com/a', {}), true)
  t.assert.equal(plainRequest('POST', '1.1', '/example.com/a', {}), false)
  t.assert.equal(plainRequest('GET', '0.9', '/example.com/a', {}), false)
  t.assert.equal(plainRequest('GET', '2.0', '/example.com/a', {}), false)
  t.assert.equal(plainRequest('GET', '1.1', '/_proxy/metrics', {}), false)
  t.assert.equal(plainRequest('GET', '1.1', '/_proxy', {}), false)
  for (const name of ['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range', 'range', 'authorization',
    'proxy-authorization', 'cache-control', 'pragma', 'content-length', 'transfer-encoding', 'referer', 'via', 'sec-fetch-dest']) {
    t.assert.equal(plainRequest('GET', '1.1', '/example.com/a', { [name]: 'x' }), false, name)
  }
  t.assert.equal(plainRequest('GET', '1.1', '/example.com/a', { 'user-agent': 'Mozilla/5.0 (X11)' }), false, 'a browser')
  t.assert.equal(plainRequest('GET', '1.1', '/example.com/a', { 'user-agent': 'curl/8.5.0', 'accept-language': 'en' }), true)
})

test('targetOf keeps method, Host and the raw target apart', (t) => {
  t.assert.notEqual(targetOf('GET', 'a', '/b'), targetOf('HEAD', 'a', '/b'))
  t.assert.notEqual(targetOf('GET', 'a.localhost', '/b'), targetOf('GET', undefined, '/b'))
  t.assert.notEqual(targetOf('GET', 'a', '//b'), targetOf('GET', 'a', '/b'))
})

test('FastMemo: learn, drop, forget by key (and by a variant\'s key), bounded', (t) => {
  const memo = new FastMemo(3)
  memo.learn('GET h /a', learned())
  memo.learn('HEAD h /a', learned())
  memo.learn('GET h /b', learned('GET http://example.com/b'))
  t.assert.equal(memo.size, 3)
  t.assert.equal(memo.get('GET h /a')?.key, 'GET http://example.com/a')
  memo.drop('GET h /b')
  t.assert.equal(memo.get('GET h /b'), undefined)
  memo.forget('GET http://example.com/a\nvary@123\naccept-language=en')
  t.assert.equal(memo.size, 0, 'a variant forgotten forgets its URL\'s targets')
  for (let i = 0; i < 3; i++) memo.learn(`GET h /${i}`, learned(`k${i}`))
  memo.learn('GET h /3', learned('k3'))
  t.assert.equal(memo.size, 1, 'past the bound it starts again')
  t.assert.equal(memo.get('GET h /3')?.key, 'k3')
  memo.learn('GET h /3', learned('k4'))
  memo.forget('k3')
  t.assert.equal(memo.get('GET h /3')?.key, 'k4', 'relearned under a new key')
  memo.forget('k4')
  t.assert.equal(memo.size, 0)
  t.assert.throws(() => new FastMemo(0), /max must be a positive integer/)
})
