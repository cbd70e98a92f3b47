import assert from 'node:assert/strict'
import { test } from 'node:test'
import { combinePartials, type StoredResponse } from '../../src/cache/combine-partials.ts'

// RFC 9111 §3.4: parts with the same strong validator whose ranges overlap or touch are combined.

const WHOLE = '0123456789abcdefghij' // 20 bytes
const DATE = 'Mon, 30 Nov 2026 12:00:00 GMT'
const EARLIER = 'Mon, 30 Nov 2026 11:00:00 GMT'

function part (start: number, end: number, headers: Record<string, string> = { etag: '"v1"' }, bytes = WHOLE): StoredResponse {
  return {
    status: 206,
    headers: { 'content-range': `bytes ${start}-${end}/${bytes.length}`, 'content-length': String(end - start + 1), ...headers },
    body: Buffer.from(bytes.slice(start, end + 1))
  }
}

function complete (headers: Record<string, string> = { etag: '"v1"' }): StoredResponse {
  return { status: 200, headers: { 'content-length': String(WHOLE.length), ...headers }, body: Buffer.from(WHOLE) }
}

const NEWER = 'ABCDEFGHIJKLMNOPQRST' // the same 20 positions, other bytes

test('combinePartials: which parts combine, into what (table)', (t) => {
  // [name, stored, incoming, expected status, expected body, expected Content-Range] (undefined: no combination)
  const cases: Array<[string, StoredResponse, StoredResponse, number | undefined, string?, string?]> = [
    ['adjacent parts, stored first', part(0, 4), part(5, 9), 206, '0123456789', 'bytes 0-9/20'],
    ['adjacent parts, stored second', part(5, 9), part(0, 4), 206, '0123456789', 'bytes 0-9/20'],
    ['overlap: the new bytes win', part(0, 9), part(5, 14, { etag: '"v1"' }, NEWER), 206, '01234FGHIJKLMNO', 'bytes 0-14/20'],
    ['new part inside the stored one', part(0, 19), part(3, 5, { etag: '"v1"' }, NEWER), 200, '012DEF6789abcdefghij', undefined],
    ['union covers the whole: a 200', part(0, 9), part(10, 19), 200, WHOLE, undefined],
    ['union covers the whole, reversed', part(10, 19), part(0, 9), 200, WHOLE, undefined],
    ['one byte parts touching', part(4, 4), part(5, 5), 206, '45', 'bytes 4-5/20'],
    ['a stored 200 takes a part of it', complete(), part(0, 4, { etag: '"v1"' }, NEWER), 200, 'ABCDE56789abcdefghij', undefined],
    ['a gap between the parts', part(0, 4), part(6, 9), undefined],
    ['different ETags', part(0, 4), part(5, 9, { etag: '"v2"' }), undefined],
    ['weak ETags, even equal', part(0, 4, { etag: 'W/"v1"' }), part(5, 9, { etag: 'W/"v1"' }), undefined],
    ['an ETag on one side only', part(0, 4), part(5, 9, {}), undefined],
    ['no validator at all', part(0, 4, {}), part(5, 9, {}), undefined],
    ['different complete lengths', part(0, 4), part(5, 9, { etag: '"v1"' }, WHOLE + 'x'), undefined],
    ['strong Last-Modified, same date', part(0, 4, { 'last-modified': EARLIER, date: DATE }), part(5, 9, { 'last-modified': EARLIER, date: DATE }), 206, '0123456789', 'bytes 0-9/20'],
    ['weak Last-Modified (same second as Date)', part(0, 4, { 'last-modified': DATE, date: DATE }), part(5, 9, { 'last-modified': DATE, date: DATE }), undefined],
    ['Last-Modified without Date', part(0, 4, { 'last-modified': EARLIER }), part(5, 9, { 'last-modified': EARLIER }), undefined],
    ['different Last-Modified', part(0, 4, { 'last-modified': EARLIER, date: DATE }), part(5, 9, { 'last-modified': 'Mon, 30 Nov 2026 10:00:00 GMT', date: DATE }), undefined],
    ['the new response is a 200', part(0, 4), complete(), undefined],
    ['a stored part whose body does not match its range', { ...part(0, 4), body: Buffer.from('012') }, part(5, 9), undefined]
  ]
  for (const [name, stored, incoming, status, body, contentRange] of cases) {
    const combined = combinePartials(stored, incoming)
    if (status === undefined) {
      t.assert.equal(combined, undefined, name)
      continue
    }
    assert.ok(combined !== undefined, name)
    t.assert.equal(combined.status, status, name)
    t.assert.equal(combined.body.toString(), body, name)
    t.assert.equal(combined.headers['content-range'], contentRange, name)
    t.assert.equal(combined.headers['content-length'], String(combined.body.length), name)
  }
})

test('combinePartials: the stored headers are updated from the newest response, as for a 304', (t) => {
  const stored = part(0, 4, { etag: '"v1"', 'cache-control': 'max-age=10', 'x-old': 'kept', 'content-type': 'text/plain' })
  const incoming = part(5, 19, { etag: '"v1"', 'cache-control': 'max-age=100', date: DATE, 'set-cookie': 'a=b' })
  const combined = combinePartials(stored, incoming)
  assert.ok(combined !== undefined)
  t.assert.equal(combined.status, 200)
  t.assert.equal(combined.headers['cache-control'], 'max-age=100', 'newest wins')
  t.assert.equal(combined.headers.date, DATE)
  t.assert.equal(combined.headers['x-old'], 'kept', 'a field only the stored response had stays')
  t.assert.equal(combined.headers['content-type'], 'text/plain')
  t.assert.equal(combined.headers['set-cookie'], undefined, 'not taken as a 304 would not give it')
  t.assert.equal(combined.headers['content-length'], '20')
  t.assert.equal('content-range' in combined.headers, false)
})
