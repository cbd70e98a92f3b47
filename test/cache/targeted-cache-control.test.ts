import { test } from 'node:test'
import { policyHeaders, targetList, withoutOwnField } from '../../src/cache/targeted-cache-control.ts'

const targets = targetList('CachingProxy-Cache-Control')

test('a valid CDN-Cache-Control replaces Cache-Control and Expires for this cache (RFC 9213 §2.2)', (t) => {
  const view = policyHeaders({ 'cache-control': 'no-store', expires: '0', 'cdn-cache-control': 'max-age=600' }, targets)
  t.assert.equal(view['cache-control'], 'max-age=600')
  t.assert.equal(view.expires, undefined)
})

test('the proxy\'s own field comes first in the target list', (t) => {
  const view = policyHeaders({ 'cdn-cache-control': 'max-age=600', 'cachingproxy-cache-control': 'no-store' }, targets)
  t.assert.equal(view['cache-control'], 'no-store')
})

test('an invalid targeted field is ignored: the next one, or Cache-Control, decides', (t) => {
  t.assert.equal(policyHeaders({ 'cache-control': 'max-age=5', 'cdn-cache-control': 'max-age=60,,' }, targets)['cache-control'], 'max-age=5')
  t.assert.equal(policyHeaders({ 'cache-control': 'max-age=5', 'cachingproxy-cache-control': 'max-age="x', 'cdn-cache-control': 'private' }, targets)['cache-control'], 'private')
})

test('a delta-seconds directive of the wrong type makes the targeted field invalid (RFC 9213 §2.1)', (t) => {
  for (const value of ['max-age="10000"', 'max-age=1.5', 's-maxage=-1', 'stale-if-error=?1', 'max-age=600, stale-while-revalidate=tok']) {
    t.assert.equal(policyHeaders({ 'cache-control': 'no-store', 'cdn-cache-control': value }, targets)['cache-control'], 'no-store', value)
  }
})

test('values map to directives: booleans, integers, strings; others carry none', (t) => {
  const view = policyHeaders({ 'cdn-cache-control': 'max-age=60, no-cache="set-cookie", stale-if-error=30, must-revalidate, x=1.5, y=?0' }, targets)
  t.assert.equal(view['cache-control'], 'max-age=60, no-cache="set-cookie", stale-if-error=30, must-revalidate')
})

test('the own field is consumed, CDN-Cache-Control passed on', (t) => {
  const out = withoutOwnField({ 'cachingproxy-cache-control': 'max-age=1', 'cdn-cache-control': 'max-age=2' }, 'CachingProxy-Cache-Control')
  t.assert.deepEqual(out, { 'cdn-cache-control': 'max-age=2' })
})
