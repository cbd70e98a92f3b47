import { test } from 'node:test'
import { notStorableReason, mergeNotModified } from '../../src/cache/cache-policy.ts'

const GET = { method: 'GET', headers: {} }
const opts = { cacheSetCookie: false }

test('directive names are case-insensitive (RFC 9111 §5.2)', (t) => {
  t.assert.equal(notStorableReason(GET, 200, { 'cache-control': 'PRIVATE, MAX-AGE=600' }, opts), 'private')
  t.assert.equal(notStorableReason(GET, 200, { 'cache-control': 'NO-STORE, max-age=600' }, opts), 'no-store')
  t.assert.equal(notStorableReason(GET, 200, { 'cache-control': 'Public, Max-Age=600' }, opts), undefined)
})

test('explicit freshness makes any final status storable; heuristics only for the listed ones (RFC 9111 §3)', (t) => {
  for (const status of [200, 299, 400, 499, 500, 503, 599]) {
    t.assert.equal(notStorableReason(GET, status, { 'cache-control': 'max-age=60' }, opts), undefined, String(status))
  }
  t.assert.equal(notStorableReason(GET, 500, {}, opts), 'no-freshness')
  t.assert.equal(notStorableReason(GET, 404, {}, opts), undefined)
  t.assert.equal(notStorableReason(GET, 302, { expires: 'Thu, 01 Jan 2099 00:00:00 GMT' }, opts), undefined)
})

test('partial, not-modified, odd statuses and other methods are not stored', (t) => {
  t.assert.equal(notStorableReason(GET, 206, { 'cache-control': 'max-age=60' }, opts), 'partial')
  t.assert.equal(notStorableReason(GET, 304, { 'cache-control': 'max-age=60' }, opts), 'not-modified')
  t.assert.equal(notStorableReason(GET, 999, { 'cache-control': 'max-age=60' }, opts), 'status')
  t.assert.equal(notStorableReason({ method: 'POST', headers: {} }, 200, { 'cache-control': 'max-age=60' }, opts), 'method')
})

test('must-understand overrides no-store only for an understood status (RFC 9111 §5.2.2.3)', (t) => {
  t.assert.equal(notStorableReason(GET, 200, { 'cache-control': 'must-understand, no-store, max-age=60' }, opts), undefined)
  t.assert.equal(notStorableReason(GET, 299, { 'cache-control': 'must-understand, no-store, max-age=60' }, opts), 'must-understand')
})

test('request no-store, Authorization, Vary: *, Set-Cookie', (t) => {
  t.assert.equal(notStorableReason({ method: 'GET', headers: { 'cache-control': 'No-Store' } }, 200, { 'cache-control': 'max-age=60' }, opts), 'request-no-store')
  const authorized = { method: 'GET', headers: { authorization: 'Basic eDp5' } }
  t.assert.equal(notStorableReason(authorized, 200, { 'cache-control': 'max-age=60' }, opts), 'authorization')
  t.assert.equal(notStorableReason(authorized, 200, { 'cache-control': 'max-age=60, public' }, opts), undefined)
  t.assert.equal(notStorableReason(GET, 200, { 'cache-control': 'max-age=60', vary: 'Accept, *' }, opts), 'vary-star')
  t.assert.equal(notStorableReason(GET, 200, { 'cache-control': 'max-age=60', 'set-cookie': ['a=1'] }, opts), 'set-cookie')
  t.assert.equal(notStorableReason(GET, 200, { 'cache-control': 'max-age=60', 'set-cookie': ['a=1'] }, { cacheSetCookie: true }), undefined)
})

test('a 304 never brings Set-Cookie or framing into the stored response', (t) => {
  const merged = mergeNotModified({ 'content-length': '3', etag: '"a"' }, { 'set-cookie': ['sid=1'], 'content-length': '0', 'cache-control': 'max-age=9' })
  t.assert.deepEqual(merged, { 'content-length': '3', etag: '"a"', 'cache-control': 'max-age=9' })
})
