import { test } from 'node:test'
import type { IncomingHttpHeaders } from 'node:http'
import { cacheKey } from '../../src/cache/cache-key.ts'
import { policyHeaders, targetList } from '../../src/cache/targeted-cache-control.ts'
import type { StoredHeaders } from '../../src/cache/entry.ts'
import type { Engine } from '../../src/engine/index.ts'
import { ask, bodyOf, bounded, engineForTest, SETTINGS } from '../helpers/engine.ts'

const URL_A = 'http://origin.test/a'

/** Stores a response for `url` through the engine's writer, as a client miss would. */
async function remember (engine: Engine, url: string, headers: StoredHeaders, body: string, requestHeaders: IncomingHttpHeaders = {}): Promise<void> {
  const now = Date.now()
  const key = cacheKey(new URL(url))
  // As a miss does: a URL that already has a Vary index keeps its stamp.
  const { epoch } = await engine.lookup.find(key, requestHeaders)
  const pending = engine.writer.begin({
    key,
    epoch,
    url,
    status: 200,
    headers: { 'content-length': String(Buffer.byteLength(body)), ...headers },
    policy: policyHeaders(headers, targetList(SETTINGS.cacheControlField)),
    requestHeaders,
    requestTime: now,
    responseTime: now
  })
  const saved = pending.commit(Buffer.from(body))
  if (saved === undefined) throw new Error('not stored')
  await saved.written
}

test('a miss goes upstream; a stored fresh response is a hit, from memory and from the store', { timeout: 10_000 }, async (t) => {
  const { engine } = await engineForTest(t)
  const miss = ask(engine, URL_A)
  t.assert.equal(engine.fast(miss), undefined)
  t.assert.equal(await bounded(engine.lookupOrJoin(miss, () => {})), undefined, 'a miss goes to the origin')
  t.assert.notEqual(miss.state.flight, undefined, 'and leads the flight for its key')
  engine.coalescing.settle(miss.state, { kind: 'alone' })

  await remember(engine, URL_A, { 'cache-control': 'max-age=60', etag: '"v1"' }, 'hello')
  const found = engine.fast(ask(engine, URL_A))
  t.assert.notEqual(found, undefined, 'a fresh entry is answered from the memory tier without a promise')
  const fast = found!
  t.assert.equal(fast.status, 200)
  t.assert.equal(fast.headers?.['x-cache'], 'HIT')
  t.assert.match(String(fast.headers?.['cache-status']), /hit; ttl=(59|60)/)
  t.assert.equal(await bodyOf(fast), 'hello')

  engine.memory.clear()
  t.assert.equal(engine.fast(ask(engine, URL_A)), undefined, 'not in memory any more')
  const fromStore = await bounded(engine.lookupOrJoin(ask(engine, URL_A), () => {}))
  t.assert.equal(fromStore?.outcome.kind, 'hit')
  t.assert.equal(await bodyOf(fromStore!), 'hello')
  t.assert.notEqual(engine.fast(ask(engine, URL_A)), undefined, 'the store read put it back in memory')
})

test('answers from a stored response: 304 for a matching validator, 206 and 416 for ranges', { timeout: 10_000 }, async (t) => {
  const { engine } = await engineForTest(t)
  await remember(engine, URL_A, { 'cache-control': 'max-age=60', etag: '"v1"' }, '0123456789')
  const conditional = engine.fast(ask(engine, URL_A, { 'if-none-match': '"v1"' }))!
  t.assert.equal(conditional.status, 304)
  t.assert.equal(conditional.body, undefined)
  t.assert.equal(conditional.headers?.etag, '"v1"')
  const ranged = engine.fast(ask(engine, URL_A, { range: 'bytes=2-4' }))!
  t.assert.equal(ranged.status, 206)
  t.assert.equal(ranged.headers?.['content-range'], 'bytes 2-4/10')
  t.assert.equal(ranged.headers?.['content-length'], '3')
  t.assert.equal(await bodyOf(ranged), '234')
  const beyond = engine.fast(ask(engine, URL_A, { range: 'bytes=20-' }))!
  t.assert.equal(beyond.status, 416)
  t.assert.equal(beyond.headers?.['content-range'], 'bytes */10')
  t.assert.equal(beyond.headers?.['content-length'], undefined)
})

test('Vary: each variant is found by its own request headers; another value is a vary-miss', { timeout: 10_000 }, async (t) => {
  const { engine } = await engineForTest(t)
  await remember(engine, URL_A, { 'cache-control': 'max-age=60', vary: 'Accept-Language' }, 'bonjour', { 'accept-language': 'fr' })
  await remember(engine, URL_A, { 'cache-control': 'max-age=60', vary: 'Accept-Language' }, 'hallo', { 'accept-language': 'de' })
  engine.memory.clear()
  for (const [language, text] of [['fr', 'bonjour'], ['de', 'hallo']]) {
    const answer = await bounded(engine.lookupOrJoin(ask(engine, URL_A, { 'accept-language': language }), () => {}))
    t.assert.equal(await bodyOf(answer!), text, language)
  }
  t.assert.equal(await bodyOf(engine.fast(ask(engine, URL_A, { 'accept-language': 'fr' }))!), 'bonjour')
  const other = ask(engine, URL_A, { 'accept-language': 'en' })
  t.assert.equal(await bounded(engine.lookupOrJoin(other, () => {})), undefined)
  t.assert.equal(other.state.varyMiss, true)
  t.assert.notEqual(other.state.storeKey, other.state.key, 'the variant has its own key')
  engine.coalescing.settle(other.state, { kind: 'alone' })
})

test('a request with Authorization reuses only a response that allows it (RFC 9111 §3.5)', { timeout: 10_000 }, async (t) => {
  const { engine } = await engineForTest(t)
  const URL_B = 'http://origin.test/b'
  await remember(engine, URL_A, { 'cache-control': 'max-age=60' }, 'plain')
  await remember(engine, URL_B, { 'cache-control': 'public, max-age=60' }, 'public')
  const authorized = { authorization: 'Basic dTpw' }
  const plain = ask(engine, URL_A, authorized)
  t.assert.equal(engine.fast(plain), undefined, 'the memory fast path never answers Authorization')
  t.assert.equal(await bounded(engine.lookupOrJoin(plain, () => {})), undefined, 'not reused without public/s-maxage/must-revalidate')
  t.assert.equal(plain.state.flight, undefined, 'authorized requests never lead a flight')
  const allowed = await bounded(engine.lookupOrJoin(ask(engine, URL_B, authorized), () => {}))
  t.assert.equal(await bodyOf(allowed!), 'public')
})
