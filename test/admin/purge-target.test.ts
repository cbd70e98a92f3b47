import { test } from 'node:test'
import { purgeTarget, PurgeRequestError, responsesAmong, softRequested, urlTarget } from '../../src/admin/purge-target.ts'

test('purge targets: url, prefix, host and all, normalised like the cache keys', (t) => {
  t.assert.deepEqual(purgeTarget({ url: 'http://Example.com:80/a?b=1#frag' }), { keys: ['GET http://example.com/a?b=1'], prefixes: ['GET http://example.com/a?b=1\n'] })
  t.assert.deepEqual(urlTarget(new URL('https://example.com/')), { keys: ['GET https://example.com/'], prefixes: ['GET https://example.com/\n'] })
  t.assert.deepEqual(purgeTarget({ prefix: 'https://EXAMPLE.com/assets' }), { keys: [], prefixes: ['GET https://example.com/assets'] })
  t.assert.deepEqual(purgeTarget({ prefix: 'http://example.com' }), { keys: [], prefixes: ['GET http://example.com/'] })
  t.assert.deepEqual(purgeTarget({ host: 'Example.com' }), { keys: [], prefixes: ['GET http://example.com/', 'GET https://example.com/'] })
  t.assert.deepEqual(purgeTarget({ host: 'example.com:8080' }), { keys: [], prefixes: ['GET http://example.com:8080/', 'GET https://example.com:8080/'] })
  t.assert.deepEqual(purgeTarget({ host: '[::1]:443' }).prefixes, ['GET http://[::1]:443/', 'GET https://[::1]/'])
  t.assert.deepEqual(purgeTarget({ all: '1' }), { keys: [], prefixes: [''] })
})

test('purge targets: anything else is a PurgeRequestError that says what was expected', (t) => {
  const bad: Array<Record<string, unknown>> = [
    {}, { url: 'http://a/', host: 'a' }, { url: '' }, { url: ['http://a/', 'http://b/'] }, { url: 'example.com/a' },
    { url: 'ftp://a/' }, { url: 'http://user:pw@a/' }, { prefix: 'a/' }, { host: 'a/b' }, { host: 'a b' }, { host: 'u@a' },
    { host: '-' + 'x'.repeat(300) + ':99999' }, { all: '0' }, { all: 'yes please' }
  ]
  for (const query of bad) t.assert.throws(() => purgeTarget(query), PurgeRequestError, JSON.stringify(query))
})

test('purged responses: each variant counts, the Vary index of its URL does not', (t) => {
  t.assert.equal(responsesAmong([]), 0)
  t.assert.equal(responsesAmong(['GET http://a/']), 1)
  t.assert.equal(responsesAmong(['GET http://a/', 'GET http://a/\nvary@1\naccept: x', 'GET http://a/\nvary@1\naccept: y']), 2)
  // An orphan variant (its index already gone) is still a response.
  t.assert.equal(responsesAmong(['GET http://a/\nvary@1\naccept: x', 'GET http://b/']), 2)
})

test('soft purge is asked for by ?soft=1 or a Soft-Purge / X-Purge-Soft header', (t) => {
  t.assert.equal(softRequested({}, {}), false)
  t.assert.equal(softRequested({ soft: '1' }, {}), true)
  t.assert.equal(softRequested({ soft: '0' }, {}), false)
  t.assert.equal(softRequested({}, { 'soft-purge': '1' }), true)
  t.assert.equal(softRequested({}, { 'x-purge-soft': 'true' }), true)
  t.assert.equal(softRequested({}, { 'x-purge-soft': 'no' }), false)
})
