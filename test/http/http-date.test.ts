import { test } from 'node:test'
import { parseHttpDate } from '../../src/http/http-date.ts'

test('parseHttpDate (RFC 9110 §5.6.7)', async (t) => {
  const nov6 = Date.UTC(1994, 10, 6, 8, 49, 37)
  const now = Date.UTC(2025, 0, 1)
  const cases: Array<[string | undefined, number | undefined]> = [
    ['Sun, 06 Nov 1994 08:49:37 GMT', nov6],
    ['  Sun, 06 Nov 1994 08:49:37 GMT  ', nov6],
    ['sun, 06 nov 1994 08:49:37 GMT', nov6],
    ['Sunday, 06-Nov-94 08:49:37 GMT', nov6],
    ['Sun Nov  6 08:49:37 1994', nov6],
    ['Sun Nov 06 08:49:37 1994', nov6],
    ['Thursday, 01-Jan-70 00:00:00 GMT', Date.UTC(2070, 0, 1)], // not > 50 years ahead of 2025
    ['Friday, 01-Jan-76 00:00:00 GMT', Date.UTC(1976, 0, 1)], // 2076 would be > 50 years ahead
    ['Sat, 29 Feb 2020 00:00:00 GMT', Date.UTC(2020, 1, 29)],
    ['Wed, 31 Dec 2014 23:59:60 GMT', Date.UTC(2015, 0, 1)], // leap second
    ['Sun, 06 Nov 0094 08:49:37 GMT', new Date('0094-11-06T08:49:37Z').getTime()], // years below 100 stay literal
    ['Sun, 6 Nov 1994 08:49:37 GMT', undefined],
    ['Sun, 06 Nov 1994 08:49:37 UTC', undefined],
    ['Sun 06 Nov 1994 08:49:37 GMT', undefined], // no comma
    ['Sun,  06 Nov 1994 08:49:37 GMT', undefined], // extra space inside
    ['Sun, 06-Nov-1994 08:49:37 GMT', undefined], // dashes in an IMF-fixdate
    ['Sun, 06 Nov 1994 8:49:37 GMT', undefined], // one-digit hour
    ['Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT', undefined], // two lines joined
    ['Sun, 06 Nov 1994 08:49:37 +0000', undefined],
    ['Sun, 06 Nov 1994 08:49 GMT', undefined],
    ['Sun, 06 Foo 1994 08:49:37 GMT', undefined],
    ['Sun, 30 Feb 1994 08:49:37 GMT', undefined],
    ['Sun, 00 Nov 1994 08:49:37 GMT', undefined],
    ['Sun, 06 Nov 1994 24:00:00 GMT', undefined],
    ['Sun, 06 Nov 1994 08:60:00 GMT', undefined],
    ['Sun, 06 Nov 1994 08:49:61 GMT', undefined],
    ['1994-11-06T08:49:37Z', undefined],
    ['0', undefined],
    ['', undefined],
    ['yesterday', undefined],
    [undefined, undefined]
  ]
  for (const [input, expected] of cases) {
    await t.test(String(input), (t) => { t.assert.equal(parseHttpDate(input, now), expected) })
  }
})

test('rfc850 two-digit years pick the most recent year not more than 50 years ahead', (t) => {
  const now = Date.UTC(2090, 5, 1)
  t.assert.equal(parseHttpDate('Wednesday, 01-Jan-10 00:00:00 GMT', now), Date.UTC(2110, 0, 1))
  t.assert.equal(parseHttpDate('Saturday, 01-Jan-50 00:00:00 GMT', now), Date.UTC(2050, 0, 1))
  t.assert.equal(parseHttpDate('Friday, 01-Jan-99 00:00:00 GMT', now), Date.UTC(2099, 0, 1))
})
