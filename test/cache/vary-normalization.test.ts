import { test } from 'node:test'
import { variantKey } from '../../src/cache/vary.ts'

const key = (name: string, value: string | undefined): string => variantKey('k', [name], value === undefined ? {} : { [name]: value }, 1)

test('Accept-Encoding: order, case, spacing and q spelling do not make a new variant', (t) => {
  const same = ['gzip, br', 'br,gzip', 'BR , GZIP', 'gzip;q=1.0, br', 'gzip; q=1, br;Q=1', 'gzip, br, identity;q=0']
  t.assert.equal(new Set(same.map((v) => key('accept-encoding', v))).size, 1)
  t.assert.notEqual(key('accept-encoding', 'gzip'), key('accept-encoding', 'gzip, br'))
  t.assert.notEqual(key('accept-encoding', 'gzip;q=0.5, br'), key('accept-encoding', 'gzip, br'))
})

test('Accept-Language: case and spacing do not matter; weights order the members', (t) => {
  t.assert.equal(key('accept-language', 'en-US,en;q=0.9'), key('accept-language', 'en-us, en; q=0.90'))
  t.assert.equal(key('accept-language', 'fr;q=0.8, de'), key('accept-language', 'de, fr;q=0.8'))
  t.assert.notEqual(key('accept-language', 'en, fr;q=0.5'), key('accept-language', 'fr, en;q=0.5'))
})

test('other headers: whitespace around list separators only; absent is not empty', (t) => {
  t.assert.equal(key('x-thing', 'a ,  b'), key('x-thing', 'a, b'))
  t.assert.notEqual(key('x-thing', 'A, b'), key('x-thing', 'a, b'))
  t.assert.notEqual(key('x-thing', ''), key('x-thing', undefined))
})
