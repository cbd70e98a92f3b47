import { test } from 'node:test'
import { directHeaders } from '../../src/engine/direct-answer.ts'
import type { Answer } from '../../src/engine/types.ts'

// src/engine/direct-answer.ts: the header list of a plain hit, in the order Fastify's reply would
// write it; undefined for anything outside that model. test/caching/direct-hits.test.ts compares
// the bytes with the normal path end to end.

const outcome = { kind: 'hit', hit: true, memory: true } as const
const hitHeaders = { age: '3', 'cache-status': 'caching-proxy; hit; ttl=57', 'x-cache': 'HIT' }

function answer (base: Answer['base'], extra: Partial<Answer> = {}): Answer {
  return { outcome: { ...outcome }, remove: [], status: 200, base, headers: { ...hitHeaders }, body: Buffer.from('hello'), ...extra }
}

test('stored fields keep their order; the per-request ones follow, or take the place of a stored one of the same name', (t) => {
  const base = { 'content-type': 'text/plain', 'content-length': '5', age: '9', etag: '"a"', via: '1.1 caching-proxy' }
  t.assert.deepEqual(directHeaders(answer(base), false), [
    'content-type', 'text/plain', 'content-length', '5', 'age', '3', 'etag', '"a"', 'via', '1.1 caching-proxy',
    'cache-status', 'caching-proxy; hit; ttl=57', 'x-cache', 'HIT'
  ])
  // The layout is made once per base object; a second hit gets its own copy with its own values.
  const second = answer(base, { headers: { ...hitHeaders, age: '4' } })
  t.assert.equal(directHeaders(second, false)?.[5], '4')
  t.assert.equal(directHeaders(answer(base), false)?.[5], '3')
})

test('Content-Type and Content-Length as Fastify sets them', (t) => {
  // No type: application/octet-stream after the others; no length: the body's, last.
  t.assert.deepEqual(directHeaders(answer({ 'cache-control': 'max-age=60' }), false), [
    'cache-control', 'max-age=60', 'age', '3', 'cache-status', 'caching-proxy; hit; ttl=57', 'x-cache', 'HIT',
    'content-type', 'application/octet-stream', 'content-length', '5'
  ])
  // A wrong stored length is corrected in place, except for HEAD (Fastify keeps a HEAD's length).
  const wrong = { 'content-type': 'text/plain', 'content-length': '99' }
  t.assert.deepEqual(directHeaders(answer(wrong), false)?.slice(0, 4), ['content-type', 'text/plain', 'content-length', '5'])
  t.assert.deepEqual(directHeaders(answer(wrong), true)?.slice(0, 4), ['content-type', 'text/plain', 'content-length', '99'])
  // Repeated fields stay lists (Node writes one line per value).
  t.assert.deepEqual(directHeaders(answer({ 'content-type': 'text/plain', link: ['<a>', '<b>'] }), false)?.slice(2, 4), ['link', ['<a>', '<b>']])
})

test('anything outside the model goes the normal way (undefined)', (t) => {
  const plain = { 'content-type': 'text/plain' }
  const refused: Array<[string, Answer]> = [
    ['no base (a 304 or a range)', { outcome, status: 304, headers: hitHeaders }],
    ['a stream body', answer(plain, { body: undefined })],
    ['headers to remove', answer(plain, { remove: ['set-cookie'] })],
    ['an error', answer(plain, { error: new Error('x') })],
    ['204', answer(plain, { status: 204 })],
    ['304', answer(plain, { status: 304 })],
    ['1xx', answer(plain, { status: 103 })],
    ['an upper-case stored name', answer({ 'Content-Type': 'text/plain' })],
    ['an invalid stored value', answer({ 'x-bad': 'a\r\nb' })],
    ['an invalid stored name', answer({ 'bad name': 'x' })],
    ['a type Fastify may read as empty', answer({ 'content-type': 'nonsense' })],
    ['a repeated Content-Type', answer({ 'content-type': ['text/plain', 'text/html'] })],
    ['an empty Content-Length', answer({ 'content-length': '' })],
    ['a per-request Set-Cookie', answer(plain, { headers: { ...hitHeaders, 'set-cookie': 'a=b' } })],
    ['a per-request Content-Length', answer(plain, { headers: { ...hitHeaders, 'content-length': '5' } })]
  ]
  for (const [why, refusedAnswer] of refused) t.assert.equal(directHeaders(refusedAnswer, false), undefined, why)
  t.assert.notEqual(directHeaders(answer({ 'content-type': ' text/html ; charset=utf-8' }), false), undefined, 'a type with parameters and spaces')
})
