import { test, type TestContext } from 'node:test'
import { cacheKey } from '../../src/cache/cache-key.ts'
import { decodeEntry, type StoredHeaders } from '../../src/cache/entry.ts'
import type { Engine } from '../../src/engine/index.ts'
import { startOrigin, type OriginHandler } from '../helpers/origin.ts'
import { until } from '../helpers/poll.ts'
import { ask, bodyOf, bounded, engineForTest } from '../helpers/engine.ts'

const STALE_HEADERS = { 'cache-control': 'max-age=1, stale-while-revalidate=60', etag: '"v1"', 'content-length': '3' }

/** An origin serving `handler` at /r, and an engine holding a stale entry ("old") for it. */
async function staleEntry (t: TestContext, handler: OriginHandler): Promise<{ engine: Engine, url: string, hits: () => number, ifNoneMatch: () => unknown, logs: Array<{ message: string }> }> {
  const origin = await startOrigin({ '/r': handler })
  t.after(() => origin.close())
  const { engine, logs } = await engineForTest(t)
  const url = `http://${origin.host}/r`
  const key = cacheKey(new URL(url))
  const then = Date.now() - 10_000
  const headers: StoredHeaders = { ...STALE_HEADERS, date: new Date(then).toUTCString() }
  await engine.writer.save(key, key, { url, status: 200, headers, requestTime: then, responseTime: then, body: Buffer.from('old') }).written
  return { engine, url, hits: () => origin.hits('/r'), ifNoneMatch: () => origin.requests.at(-1)?.headers['if-none-match'], logs }
}

async function storedBody (engine: Engine, url: string): Promise<string | undefined> {
  const raw = await engine.store.get(cacheKey(new URL(url)))
  return raw === undefined ? undefined : decodeEntry(raw).body.toString()
}

test('stale-while-revalidate answers the stale entry and refreshes it through the one writer', { timeout: 10_000 }, async (t) => {
  const { engine, url, hits, ifNoneMatch } = await staleEntry(t, (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', etag: '"v2"', 'content-length': '3' })
    res.end('new')
  })
  const save = t.mock.method(engine.writer, 'save')
  const answer = await bounded(engine.lookupOrJoin(ask(engine, url), () => {}))
  t.assert.equal(answer?.outcome.kind, 'stale')
  t.assert.match(String(answer?.headers?.['cache-status']), /hit; fwd=stale/)
  t.assert.equal(await bodyOf(answer!), 'old', 'the client does not wait for the refresh')
  await until('the refreshed entry stored', async () => (await storedBody(engine, url)) === 'new', { timeoutMs: 5000 })
  t.assert.equal(hits(), 1)
  t.assert.equal(ifNoneMatch(), '"v1"', 'the refresh is conditional')
  t.assert.equal(save.mock.callCount(), 1, 'stored by the same writer as a client miss')
  const next = engine.fast(ask(engine, url))
  t.assert.equal(await bodyOf(next!), 'new', 'and the refreshed entry is a fresh hit')
})

test('a 304 on a refresh renews the stored entry and keeps its body', { timeout: 10_000 }, async (t) => {
  const { engine, url } = await staleEntry(t, (_req, res) => {
    res.writeHead(304, { 'cache-control': 'max-age=120', etag: '"v1"' })
    res.end()
  })
  const request = ask(engine, url)
  const { cached } = await engine.lookup.find(request.state.key, {})
  await bounded(engine.refresher.refresh(request.state, cached!, {}))
  t.assert.equal(await storedBody(engine, url), 'old')
  const hit = engine.fast(ask(engine, url))
  t.assert.equal(hit?.outcome.kind, 'hit', 'fresh again')
  t.assert.match(String({ ...hit?.base, ...hit?.headers }['cache-control']), /max-age=120/)
})

test('a refresh the origin no longer lets be cached deletes the entry; one cut short keeps it', { timeout: 10_000 }, async (t) => {
  const refused = await staleEntry(t, (_req, res) => {
    res.writeHead(200, { 'cache-control': 'no-store', 'content-length': '3' })
    res.end('new')
  })
  let request = ask(refused.engine, refused.url)
  let found = await refused.engine.lookup.find(request.state.key, {})
  await bounded(refused.engine.refresher.refresh(request.state, found.cached!, {}))
  t.assert.equal(await storedBody(refused.engine, refused.url), undefined)

  const cut = await staleEntry(t, (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '20' })
    res.write('12345', () => res.socket?.destroy())
  })
  request = ask(cut.engine, cut.url)
  found = await cut.engine.lookup.find(request.state.key, {})
  await bounded(cut.engine.refresher.refresh(request.state, found.cached!, {}))
  t.assert.equal(await storedBody(cut.engine, cut.url), 'old', 'what we had stays')
  t.assert.equal(cut.logs.some((line) => line.message === 'background revalidation failed'), true)
})
