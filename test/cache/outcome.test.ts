import { test } from 'node:test'
import { cacheStatusParams, xCache } from '../../src/cache/outcome.ts'

test('Cache-Status parameters in RFC 9211 form, and X-Cache, from one outcome', (t) => {
  t.assert.equal(cacheStatusParams({ kind: 'hit', hit: true, ttl: 59 }), 'hit; ttl=59')
  t.assert.equal(cacheStatusParams({ kind: 'stale', hit: true, fwd: 'stale', ttl: 0 }), 'hit; fwd=stale; ttl=0')
  t.assert.equal(cacheStatusParams({ kind: 'miss', fwd: 'miss', fwdStatus: 200, stored: true }), 'fwd=miss; fwd-status=200; stored')
  t.assert.equal(cacheStatusParams({ kind: 'hit', fwd: 'miss', fwdStatus: 200, collapsed: true }), 'fwd=miss; fwd-status=200; collapsed')
  t.assert.equal(cacheStatusParams({ kind: 'pass', fwd: 'bypass', fwdStatus: 200, detail: 'no-store' }), 'fwd=bypass; fwd-status=200; detail=no-store')
  t.assert.deepEqual(['hit', 'stale', 'revalidated', 'miss', 'pass', 'error'].map((kind) => xCache({ kind: kind as never })), ['HIT', 'HIT', 'HIT', 'MISS', 'MISS', 'MISS'])
})
