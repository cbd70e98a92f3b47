import { test } from 'node:test'
import { evaluateRange, type RangeResult, type RangeValidators } from '../../src/http/range.ts'

const LM = 'Sun, 06 Nov 1994 08:49:37 GMT'
const full: RangeResult = { kind: 'full' }
const part = (start: number, end: number, length: number): RangeResult =>
  ({ kind: 'partial', start, end, contentRange: `bytes ${start}-${end}/${length}` })
const none = (length: number): RangeResult => ({ kind: 'unsatisfiable', contentRange: `bytes */${length}` })

test('evaluateRange without If-Range', async (t) => {
  const cases: Array<[string | undefined, number, RangeResult]> = [
    [undefined, 1000, full],
    ['', 1000, full],
    // int-range (§14.1.1)
    ['bytes=0-499', 1000, part(0, 499, 1000)],
    ['bytes=500-999', 1000, part(500, 999, 1000)],
    ['bytes=0-0', 1000, part(0, 0, 1000)],
    ['bytes=999-999', 1000, part(999, 999, 1000)],
    ['bytes=0-', 1000, part(0, 999, 1000)],
    ['bytes=500-', 1000, part(500, 999, 1000)],
    ['bytes=999-', 1000, part(999, 999, 1000)],
    ['bytes=500-5000', 1000, part(500, 999, 1000)], // last-pos clamped
    ['bytes=0-99999999999999999999999', 1000, part(0, 999, 1000)],
    ['bytes=007-010', 1000, part(7, 10, 1000)], // leading zeros are digits
    // suffix-range (§14.1.2)
    ['bytes=-500', 1000, part(500, 999, 1000)],
    ['bytes=-1', 1000, part(999, 999, 1000)],
    ['bytes=-1000', 1000, part(0, 999, 1000)],
    ['bytes=-5000', 1000, part(0, 999, 1000)], // longer than the body: all of it
    ['bytes=-0', 1000, none(1000)], // zero suffix-length is never satisfiable
    // unsatisfiable (§14.1.1, §15.5.17)
    ['bytes=1000-', 1000, none(1000)],
    ['bytes=1000-2000', 1000, none(1000)],
    ['bytes=99999999999999999999999-', 1000, none(1000)],
    // zero-length body
    ['bytes=0-', 0, none(0)],
    ['bytes=0-0', 0, none(0)],
    ['bytes=-0', 0, none(0)],
    ['bytes=-5', 0, full], // satisfiable but inexpressible in Content-Range: send the (empty) whole
    // tolerated syntax
    ['Bytes=0-9', 1000, part(0, 9, 1000)], // units are case-insensitive (§14.1)
    ['BYTES=0-9', 1000, part(0, 9, 1000)],
    [' bytes=0-9 ', 1000, part(0, 9, 1000)],
    ['bytes= 0-9', 1000, part(0, 9, 1000)],
    ['bytes=0-9,', 1000, part(0, 9, 1000)], // empty list members ignored (§5.6.1)
    ['bytes=, 0-9 ,', 1000, part(0, 9, 1000)],
    // ignored: other unit, malformed (§14.2)
    ['items=0-9', 1000, full],
    ['bytes', 1000, full],
    ['bytes=', 1000, full],
    ['bytes=,', 1000, full],
    ['0-9', 1000, full],
    ['bytes=abc', 1000, full],
    ['bytes=9-0', 1000, full], // last-pos < first-pos is invalid
    ['bytes=1001-1000', 1000, full], // invalid, even though also beyond the length
    ['bytes=-', 1000, full],
    ['bytes=--5', 1000, full],
    ['bytes=1-2-3', 1000, full],
    ['bytes=0 - 9', 1000, full],
    ['bytes=+1-5', 1000, full],
    ['bytes=1.5-5', 1000, full],
    ['bytes=0x10-20', 1000, full],
    ['bytes=１-５', 1000, full], // full-width digits are not DIGIT
    ['bytes=1e3-', 1000, full],
    // multiple ranges: not supported, the whole 200 is allowed (§14.2)
    ['bytes=0-1,5-6', 1000, full],
    ['bytes=0-1, -5', 1000, full],
    ['bytes=0-1,0-1', 1000, full],
    ['bytes=0-1, junk', 1000, full],
    ['bytes=2000-3000, 4000-5000', 1000, full]
  ]
  for (const [range, length, expected] of cases) {
    await t.test(`${JSON.stringify(range)} of ${length}`, (t) => {
      t.assert.deepEqual(evaluateRange(range, undefined, length, { etag: '"v1"', lastModified: LM }), expected)
    })
  }
})

test('evaluateRange with If-Range (§13.1.5)', async (t) => {
  const strong: RangeValidators = { etag: '"v1"', lastModified: LM }
  const cases: Array<{ name: string, ifRange: string | undefined, stored: RangeValidators, range?: string, expected: RangeResult }> = [
    { name: 'absent', ifRange: undefined, stored: strong, expected: part(0, 9, 100) },
    { name: 'empty counts as absent', ifRange: ' ', stored: strong, expected: part(0, 9, 100) },
    { name: 'strong etag match', ifRange: '"v1"', stored: strong, expected: part(0, 9, 100) },
    { name: 'strong etag with spaces', ifRange: '  "v1" ', stored: strong, expected: part(0, 9, 100) },
    { name: 'etag mismatch', ifRange: '"v2"', stored: strong, expected: full },
    { name: 'weak client etag never matches', ifRange: 'W/"v1"', stored: strong, expected: full },
    { name: 'weak stored etag never matches', ifRange: '"v1"', stored: { etag: 'W/"v1"' }, expected: full },
    { name: 'both weak', ifRange: 'W/"v1"', stored: { etag: 'W/"v1"' }, expected: full },
    { name: 'no stored etag', ifRange: '"v1"', stored: { lastModified: LM }, expected: full },
    { name: 'unquoted stored etag', ifRange: '"v1"', stored: { etag: 'v1' }, expected: full },
    { name: 'etag list is not an If-Range value', ifRange: '"v1", "v2"', stored: strong, expected: full },
    { name: 'date equal to Last-Modified', ifRange: LM, stored: strong, expected: part(0, 9, 100) },
    { name: 'date equal, other HTTP-date format', ifRange: 'Sunday, 06-Nov-94 08:49:37 GMT', stored: strong, expected: part(0, 9, 100) },
    { name: 'date later than Last-Modified', ifRange: 'Mon, 07 Nov 1994 08:49:37 GMT', stored: strong, expected: full },
    { name: 'date earlier than Last-Modified', ifRange: 'Sat, 05 Nov 1994 08:49:37 GMT', stored: strong, expected: full },
    { name: 'date without stored Last-Modified', ifRange: LM, stored: { etag: '"v1"' }, expected: full },
    { name: 'invalid date', ifRange: 'yesterday', stored: strong, expected: full },
    { name: 'invalid stored Last-Modified', ifRange: LM, stored: { lastModified: 'junk' }, expected: full },
    { name: 'Last-Modified strong: Date >= 1s later', ifRange: LM, stored: { lastModified: LM, date: 'Sun, 06 Nov 1994 08:49:38 GMT' }, expected: part(0, 9, 100) },
    { name: 'Last-Modified weak: Date equal', ifRange: LM, stored: { lastModified: LM, date: LM }, expected: full },
    { name: 'invalid Date does not weaken', ifRange: LM, stored: { lastModified: LM, date: 'junk' }, expected: part(0, 9, 100) },
    // If-Range is evaluated before the Range (§13.2.2 step 5)
    { name: 'failing If-Range beats unsatisfiable', ifRange: '"v2"', stored: strong, range: 'bytes=500-', expected: full },
    { name: 'matching If-Range, unsatisfiable', ifRange: '"v1"', stored: strong, range: 'bytes=500-', expected: none(100) },
    { name: 'If-Range without Range is ignored', ifRange: '"v2"', stored: strong, range: '', expected: full },
    { name: 'matching If-Range, suffix', ifRange: '"v1"', stored: strong, range: 'bytes=-10', expected: part(90, 99, 100) }
  ]
  for (const c of cases) {
    await t.test(c.name, (t) => {
      t.assert.deepEqual(evaluateRange(c.range ?? 'bytes=0-9', c.ifRange, 100, c.stored), c.expected)
    })
  }
})

test('evaluateRange rejects an invalid length', (t) => {
  for (const length of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    t.assert.throws(() => evaluateRange('bytes=0-1', undefined, length, {}), RangeError)
  }
})

test('results are fresh objects', (t) => {
  const a = evaluateRange(undefined, undefined, 10, {})
  const b = evaluateRange(undefined, undefined, 10, {})
  t.assert.notEqual(a, b)
})
