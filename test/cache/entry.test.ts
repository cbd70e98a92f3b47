import { test } from 'node:test'
import { decodeEntry, encodeEntry, EntryDecodeError, ENTRY_FORMAT_VERSION, type CacheEntry } from '../../src/cache/entry.ts'

const entry: CacheEntry = {
  url: 'http://example.com/x',
  status: 200,
  headers: { 'content-type': 'application/octet-stream', 'set-cookie': ['a=1', 'b=2'] },
  requestTime: 1000,
  responseTime: 1200,
  body: Buffer.from([0, 1, 2, 255, 254, 0x0d, 0x0a])
}

test('round-trips an entry byte for byte', (t) => {
  const decoded = decodeEntry(encodeEntry(entry))
  t.assert.deepEqual(decoded.headers, entry.headers)
  t.assert.equal(decoded.status, 200)
  t.assert.equal(decoded.url, entry.url)
  t.assert.equal(decoded.responseTime, 1200)
  t.assert.equal(decoded.vary, undefined)
  t.assert.deepEqual(decodeEntry(encodeEntry({ ...entry, vary: ['accept'], body: Buffer.alloc(0) })).vary, ['accept'])
  t.assert.equal(decoded.body.equals(entry.body), true)
})

test('refuses anything that is not a whole entry of this version', (t) => {
  const encoded = encodeEntry(entry)
  const otherVersion = Buffer.from(encoded)
  otherVersion[3] = ENTRY_FORMAT_VERSION + 1
  const brokenMeta = Buffer.from(encoded)
  brokenMeta[9] = 0x7b // '{' where the JSON needs a quote
  for (const raw of [
    undefined, 'text', Buffer.alloc(0), Buffer.from('garbage that is long enough'), otherVersion,
    encoded.subarray(0, encoded.length - 1), Buffer.concat([encoded, Buffer.from('x')]), brokenMeta
  ]) {
    t.assert.throws(() => decodeEntry(raw), EntryDecodeError)
  }
})
