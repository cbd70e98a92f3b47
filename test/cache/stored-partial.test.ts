import { test } from 'node:test'
import { notStorableReason } from '../../src/cache/cache-policy.ts'
import { evaluateStoredPartial, parseContentRange } from '../../src/http/range.ts'

const GET = { method: 'GET', headers: {} }
const opts = { cacheSetCookie: false }

test('a 206 is storable only with one satisfied Content-Range of known length (RFC 9111 §3.3)', (t) => {
  const cases: Array<[Record<string, string | string[]>, string | undefined]> = [
    [{ 'content-range': 'bytes 0-9/20' }, undefined],
    [{ 'content-range': 'bytes 0-9/20', 'content-length': '10' }, undefined],
    [{ 'content-range': 'BYTES 5-5/6' }, undefined],
    [{ 'content-range': 'bytes 0-9/20', 'content-length': '11' }, 'partial'],
    [{ 'content-range': 'bytes 0-9/*' }, 'partial'],
    [{ 'content-range': 'bytes */20' }, 'partial'],
    [{ 'content-range': 'bytes 9-0/20' }, 'partial'],
    [{ 'content-range': 'bytes 0-20/20' }, 'partial'],
    [{ 'content-range': 'items 0-9/20' }, 'partial'],
    [{ 'content-range': ['bytes 0-9/20', 'bytes 0-9/20'] }, 'partial'],
    [{ 'content-type': 'multipart/byteranges; boundary=x' }, 'partial']
  ]
  for (const [headers, expected] of cases) {
    t.assert.equal(notStorableReason(GET, 206, { 'cache-control': 'max-age=60', ...headers }, opts), expected, JSON.stringify(headers))
  }
  t.assert.deepEqual(parseContentRange('bytes 10-19/20'), { start: 10, end: 19, complete: 20 })
})

test('a range is answered from a stored part only when it lies inside it', (t) => {
  const part = { start: 10, end: 19, complete: 30 }
  const validators = { etag: '"e"' }
  const cases: Array<[string | undefined, string | undefined, string]> = [
    ['bytes=10-19', undefined, 'bytes 10-19/30'],
    ['bytes=12-14', undefined, 'bytes 12-14/30'],
    ['bytes=15-19', '"e"', 'bytes 15-19/30'],
    ['bytes=0-9', undefined, 'miss'],
    ['bytes=5-12', undefined, 'miss'],
    ['bytes=18-20', undefined, 'miss'],
    ['bytes=15-', undefined, 'miss'], // 15-29
    ['bytes=-5', undefined, 'miss'], // 25-29
    ['bytes=-25', undefined, 'miss'], // 5-29
    ['bytes=10-12, 14-15', undefined, 'miss'],
    ['bytes=40-', undefined, 'miss'],
    ['bytes=12-14', '"other"', 'miss'],
    ['bytes=12-14', 'W/"e"', 'miss'],
    [undefined, undefined, 'miss']
  ]
  for (const [range, ifRange, expected] of cases) {
    const result = evaluateStoredPartial(range, ifRange, part, validators)
    t.assert.equal(result.kind === 'partial' ? result.contentRange : 'miss', expected, `${range} / ${ifRange}`)
  }
  const tail = { start: 20, end: 29, complete: 30 }
  t.assert.deepEqual(evaluateStoredPartial('bytes=-5', undefined, tail, {}), { kind: 'partial', start: 25, end: 29, contentRange: 'bytes 25-29/30' })
  t.assert.deepEqual(evaluateStoredPartial('bytes=22-', undefined, tail, {}), { kind: 'partial', start: 22, end: 29, contentRange: 'bytes 22-29/30' })
})
