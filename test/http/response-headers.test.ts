import { test } from 'node:test'
import { normalizeResponseHeaders, InvalidResponseHeaders } from '../../src/http/response-headers.ts'

test('repeated list fields are joined into one value', (t) => {
  const out = normalizeResponseHeaders({ 'cache-control': ['max-age=60', 'public'], vary: ['Accept', '', 'Accept-Encoding'], pragma: ['no-cache'] } as never)
  t.assert.deepEqual(out, { 'cache-control': 'max-age=60, public', vary: 'Accept, Accept-Encoding', pragma: 'no-cache' })
})

test('Set-Cookie is always an array of strings', (t) => {
  t.assert.deepEqual(normalizeResponseHeaders({ 'set-cookie': ['a=1', 'b=2'] }), { 'set-cookie': ['a=1', 'b=2'] })
  t.assert.deepEqual(normalizeResponseHeaders({ 'set-cookie': 'a=1' as never }), { 'set-cookie': ['a=1'] })
})

test('singletons: equal repeats collapse, Age keeps its first value, conflicting validators are dropped', (t) => {
  const out = normalizeResponseHeaders({
    'content-length': ['5', '5'],
    age: ['7200', '0'],
    etag: ['"a"', '"b"'],
    'last-modified': ['Mon, 01 Jan 2024 00:00:00 GMT', 'Tue, 02 Jan 2024 00:00:00 GMT'],
    location: ['/a', '/b'],
    date: ['Mon, 01 Jan 2024 00:00:00 GMT', 'x']
  } as never)
  t.assert.deepEqual(out, { 'content-length': '5', age: '7200', location: '/a', date: 'Mon, 01 Jan 2024 00:00:00 GMT' })
})

test('two different Expires make the field invalid (already expired), not one of them', (t) => {
  const out = normalizeResponseHeaders({ expires: ['Thu, 01 Jan 2099 00:00:00 GMT', 'Thu, 01 Jan 2098 00:00:00 GMT'] } as never)
  t.assert.equal(Number.isNaN(Date.parse(String(out.expires))), true)
})

test('two different Content-Lengths cannot frame a body', (t) => {
  t.assert.throws(() => normalizeResponseHeaders({ 'content-length': ['5', '6'] } as never), InvalidResponseHeaders)
})

test('empty and odd values pass through as strings', (t) => {
  t.assert.deepEqual(normalizeResponseHeaders({ 'cache-control': '', age: '' }), { 'cache-control': '', age: '' })
  t.assert.deepEqual(normalizeResponseHeaders({ 'x-list': ['a', 'b'] } as never), { 'x-list': 'a, b' })
})
