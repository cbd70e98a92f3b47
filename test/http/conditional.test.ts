import { test } from 'node:test'
import {
  parseEtagList, parseEtag, strongMatch, weakMatch, notModified, notModifiedHeaders,
  type HeaderBag
} from '../../src/http/conditional.ts'

test('parseEtagList', async (t) => {
  const cases: Array<[string, ReturnType<typeof parseEtagList>]> = [
    ['*', '*'],
    ['  *  ', '*'],
    ['"a"', [{ weak: false, tag: 'a' }]],
    ['W/"a"', [{ weak: true, tag: 'a' }]],
    ['"a", W/"b",   "c"', [{ weak: false, tag: 'a' }, { weak: true, tag: 'b' }, { weak: false, tag: 'c' }]],
    ['"a","b"', [{ weak: false, tag: 'a' }, { weak: false, tag: 'b' }]],
    ['"a,b", "c"', [{ weak: false, tag: 'a,b' }, { weak: false, tag: 'c' }]],
    ['""', [{ weak: false, tag: '' }]],
    ['\t"a"\t,\t"b"\t', [{ weak: false, tag: 'a' }, { weak: false, tag: 'b' }]],
    [', , "a" ,, ', [{ weak: false, tag: 'a' }]],
    ['', []],
    ['   ', []],
    ['abc', []],
    ['abc, "ok"', [{ weak: false, tag: 'ok' }]],
    ['"ok", abc', [{ weak: false, tag: 'ok' }]],
    ['w/"lower", "ok"', [{ weak: false, tag: 'ok' }]], // W/ is case-sensitive (§8.8.3)
    ['"unterminated', []],
    ['"a" "b", "c"', [{ weak: false, tag: 'c' }]],
    ['x"a,b", "c"', [{ weak: false, tag: 'c' }]],
    ['"a"b, "c"', [{ weak: false, tag: 'c' }]],
    ['"sp ace", "c"', [{ weak: false, tag: 'c' }]], // SP is not etagc
    ['*, "a"', [{ weak: false, tag: 'a' }]],
    ['W/ "a"', []],
    ['"é"', [{ weak: false, tag: 'é' }]] // obs-text
  ]
  for (const [input, expected] of cases) {
    await t.test(JSON.stringify(input), (t) => { t.assert.deepEqual(parseEtagList(input), expected) })
  }
})

test('parseEtag accepts exactly one entity-tag', (t) => {
  t.assert.deepEqual(parseEtag(' "x" '), { weak: false, tag: 'x' })
  t.assert.deepEqual(parseEtag('W/"x"'), { weak: true, tag: 'x' })
  t.assert.equal(parseEtag('"x", "y"'), undefined)
  t.assert.equal(parseEtag('x'), undefined)
  t.assert.equal(parseEtag(undefined), undefined)
})

test('strongMatch and weakMatch (RFC 9110 §8.8.3.2 table)', async (t) => {
  const cases: Array<[string | undefined, string | undefined, boolean, boolean]> = [
    // a, b, strong, weak
    ['W/"1"', 'W/"1"', false, true],
    ['W/"1"', 'W/"2"', false, false],
    ['W/"1"', '"1"', false, true],
    ['"1"', '"1"', true, true],
    ['"1"', '"2"', false, false],
    [' "1" ', '"1"', true, true],
    ['"a,b"', '"a,b"', true, true],
    ['1', '1', false, false], // unquoted: not an entity-tag
    ['"1"', undefined, false, false],
    [undefined, undefined, false, false],
    ['"1", "2"', '"1"', false, false],
    ['""', '""', true, true]
  ]
  for (const [a, b, strong, weak] of cases) {
    await t.test(`${a} vs ${b}`, (t) => {
      t.assert.equal(strongMatch(a, b), strong)
      t.assert.equal(strongMatch(b, a), strong)
      t.assert.equal(weakMatch(a, b), weak)
      t.assert.equal(weakMatch(b, a), weak)
    })
  }
})

const LM = 'Sun, 06 Nov 1994 08:49:37 GMT'
const BEFORE = 'Sat, 05 Nov 1994 08:49:37 GMT'
const AFTER = 'Mon, 07 Nov 1994 08:49:37 GMT'
const stored200 = { status: 200, headers: { etag: '"v1"', 'last-modified': LM, date: AFTER } }

test('notModified', async (t) => {
  const cases: Array<{ name: string, method?: string, req: HeaderBag, stored?: { status: number, headers: HeaderBag }, expected: boolean }> = [
    { name: 'no conditionals', req: {}, expected: false },
    // If-None-Match: weak comparison (§13.1.2)
    { name: 'INM strong equal', req: { 'if-none-match': '"v1"' }, expected: true },
    { name: 'INM weak vs strong stored', req: { 'if-none-match': 'W/"v1"' }, expected: true },
    { name: 'INM strong vs weak stored', req: { 'if-none-match': '"v1"' }, stored: { status: 200, headers: { etag: 'W/"v1"' } }, expected: true },
    { name: 'INM different', req: { 'if-none-match': '"v2"' }, expected: false },
    { name: 'INM list contains', req: { 'if-none-match': '"a", "b" , W/"v1"' }, expected: true },
    { name: 'INM list with garbage', req: { 'if-none-match': 'junk, "v1"' }, expected: true },
    { name: 'INM several field lines', req: { 'if-none-match': ['"a"', '"v1"'] }, expected: true },
    { name: 'INM *', req: { 'if-none-match': '*' }, expected: true },
    { name: 'INM * without stored etag', req: { 'if-none-match': '*' }, stored: { status: 200, headers: {} }, expected: true },
    { name: 'INM but no stored etag', req: { 'if-none-match': '"v1"' }, stored: { status: 200, headers: { 'last-modified': LM } }, expected: false },
    { name: 'INM vs unquoted stored etag', req: { 'if-none-match': '"v1"' }, stored: { status: 200, headers: { etag: 'v1' } }, expected: false },
    { name: 'INM garbage only', req: { 'if-none-match': 'junk' }, expected: false },
    { name: 'INM empty counts as absent', req: { 'if-none-match': '', 'if-modified-since': LM }, expected: true },
    { name: 'header names are case-insensitive', req: { 'If-None-Match': '"v1"' }, stored: { status: 200, headers: { ETag: '"v1"' } }, expected: true },
    // If-Modified-Since ignored when If-None-Match present (§13.1.3)
    { name: 'INM mismatch beats IMS match', req: { 'if-none-match': '"v2"', 'if-modified-since': AFTER }, expected: false },
    { name: 'INM match with IMS mismatch', req: { 'if-none-match': '"v1"', 'if-modified-since': BEFORE }, expected: true },
    // If-Modified-Since (§13.1.3)
    { name: 'IMS equal to Last-Modified', req: { 'if-modified-since': LM }, expected: true },
    { name: 'IMS after Last-Modified', req: { 'if-modified-since': AFTER }, expected: true },
    { name: 'IMS before Last-Modified', req: { 'if-modified-since': BEFORE }, expected: false },
    { name: 'IMS rfc850 format', req: { 'if-modified-since': 'Sunday, 06-Nov-94 08:49:37 GMT' }, expected: true },
    { name: 'IMS asctime format', req: { 'if-modified-since': 'Sun Nov  6 08:49:37 1994' }, expected: true },
    { name: 'IMS invalid date ignored', req: { 'if-modified-since': 'not a date' }, expected: false },
    { name: 'IMS two field lines ignored', req: { 'if-modified-since': [AFTER, AFTER] }, expected: false },
    { name: 'IMS single-element array', req: { 'if-modified-since': [AFTER] }, expected: true },
    { name: 'IMS falls back to Date', req: { 'if-modified-since': AFTER }, stored: { status: 200, headers: { date: LM } }, expected: true },
    { name: 'IMS before Date fallback', req: { 'if-modified-since': BEFORE }, stored: { status: 200, headers: { date: LM } }, expected: false },
    { name: 'IMS prefers Last-Modified over Date', req: { 'if-modified-since': LM }, stored: { status: 200, headers: { 'last-modified': LM, date: AFTER } }, expected: true },
    { name: 'IMS invalid Last-Modified falls back to Date', req: { 'if-modified-since': AFTER }, stored: { status: 200, headers: { 'last-modified': 'junk', date: LM } }, expected: true },
    { name: 'IMS without stored dates', req: { 'if-modified-since': AFTER }, stored: { status: 200, headers: { etag: '"v1"' } }, expected: false },
    { name: 'IMS with invalid stored dates', req: { 'if-modified-since': AFTER }, stored: { status: 200, headers: { 'last-modified': 'junk', date: 'junk' } }, expected: false },
    // methods and statuses
    { name: 'HEAD', method: 'HEAD', req: { 'if-none-match': '"v1"' }, expected: true },
    { name: 'POST with INM', method: 'POST', req: { 'if-none-match': '"v1"' }, expected: false },
    { name: 'PUT with IMS', method: 'PUT', req: { 'if-modified-since': AFTER }, expected: false },
    { name: 'lower-case method is another method (§9.1)', method: 'get', req: { 'if-none-match': '"v1"' }, expected: false },
    { name: 'stored 206', req: { 'if-none-match': '"v1"' }, stored: { status: 206, headers: { etag: '"v1"' } }, expected: false },
    { name: 'stored 301', req: { 'if-none-match': '*' }, stored: { status: 301, headers: { etag: '"v1"' } }, expected: false },
    { name: 'stored 404', req: { 'if-modified-since': AFTER }, stored: { status: 404, headers: { 'last-modified': LM } }, expected: false },
    // If-Match / If-Unmodified-Since take precedence (§13.2.2): failing them means 412, not 304
    { name: 'If-Match matching strongly', req: { 'if-match': '"v1"', 'if-none-match': '"v1"' }, expected: true },
    { name: 'If-Match *', req: { 'if-match': '*', 'if-none-match': '"v1"' }, expected: true },
    { name: 'If-Match failing', req: { 'if-match': '"v2"', 'if-none-match': '"v1"' }, expected: false },
    { name: 'If-Match weak never matches', req: { 'if-match': 'W/"v1"', 'if-none-match': '"v1"' }, expected: false },
    { name: 'If-Match vs weak stored', req: { 'if-match': '"v1"', 'if-none-match': '"v1"' }, stored: { status: 200, headers: { etag: 'W/"v1"' } }, expected: false },
    { name: 'If-Unmodified-Since satisfied', req: { 'if-unmodified-since': AFTER, 'if-none-match': '"v1"' }, expected: true },
    { name: 'If-Unmodified-Since failing', req: { 'if-unmodified-since': BEFORE, 'if-none-match': '"v1"' }, expected: false },
    { name: 'If-Unmodified-Since invalid ignored', req: { 'if-unmodified-since': 'junk', 'if-none-match': '"v1"' }, expected: true },
    { name: 'If-Unmodified-Since ignored with If-Match', req: { 'if-match': '"v1"', 'if-unmodified-since': BEFORE, 'if-none-match': '"v1"' }, expected: true },
    { name: 'If-Unmodified-Since without Last-Modified', req: { 'if-unmodified-since': AFTER, 'if-none-match': '"v1"' }, stored: { status: 200, headers: { etag: '"v1"' } }, expected: false },
    { name: 'If-Match alone is not a 304', req: { 'if-match': '"v1"' }, expected: false }
  ]
  for (const c of cases) {
    await t.test(c.name, (t) => {
      t.assert.equal(notModified({ method: c.method ?? 'GET', headers: c.req }, c.stored ?? stored200), c.expected)
    })
  }
})

test('notModifiedHeaders keeps only the §15.4.5 fields, in a new object', (t) => {
  const stored: HeaderBag = {
    'Cache-Control': 'max-age=60',
    'content-location': '/a',
    date: LM,
    ETag: '"v1"',
    expires: AFTER,
    vary: ['accept', 'accept-encoding'],
    'last-modified': LM,
    'content-type': 'text/plain',
    'content-length': '12',
    'content-encoding': 'gzip',
    'set-cookie': ['a=1'],
    'x-custom': 'y',
    age: '3',
    'transfer-encoding': 'chunked',
    'x-undefined': undefined,
    expiresx: 'no'
  }
  const out = notModifiedHeaders(stored)
  t.assert.deepEqual(out, {
    'cache-control': 'max-age=60',
    'content-location': '/a',
    date: LM,
    etag: '"v1"',
    expires: AFTER,
    vary: ['accept', 'accept-encoding'],
    'last-modified': LM
  })
  t.assert.notEqual(out.vary, stored.vary, 'arrays are copied')
  ;(out.vary as string[]).push('x')
  t.assert.equal((stored.vary as string[]).length, 2, 'the stored headers are untouched')
  t.assert.deepEqual(notModifiedHeaders({}), {})
  t.assert.deepEqual(notModifiedHeaders({ 'cache-control': undefined }), {})
})
