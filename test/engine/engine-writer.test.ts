import { test } from 'node:test'
import type { IncomingHttpHeaders } from 'node:http'
import { decodeEntry } from '../../src/cache/entry.ts'
import { readWhole } from '../../src/engine/writer.ts'
import { upstreamHeaders, type Engine, type EngineRequest } from '../../src/engine/index.ts'
import { ask, bodyOf, bounded, engineForTest, streamOf } from '../helpers/engine.ts'

const URL_A = 'http://origin.test/a'

/** A client miss for URL_A answered by an origin response of `parts`: the client's answer, and what the store then holds. */
async function miss (engine: Engine, headers: IncomingHttpHeaders, parts: string[], error?: Error): Promise<{ request: EngineRequest, detail?: string, text: string, failed?: string, stored?: string }> {
  const request = ask(engine, URL_A)
  if (await bounded(engine.lookupOrJoin(request, () => {})) !== undefined) throw new Error('expected a miss')
  const answer = await bounded(Promise.resolve(engine.onResponse(request, { statusCode: 200, headers, stream: streamOf(parts, error) }, upstreamHeaders(headers))))
  let text = ''
  let failed: string | undefined
  try {
    text = await bounded(bodyOf(answer))
  } catch (err) {
    failed = (err as Error).message
  }
  // A client gets a body's end only once the store confirmed its write: nothing to wait for here.
  const raw = await engine.store.get(request.state.storeKey)
  return { request, detail: answer.outcome.detail, text, failed, stored: raw === undefined ? undefined : decodeEntry(raw).body.toString() }
}

test('the writer stores a response whose body arrived whole, while the client gets it streamed', { timeout: 10_000 }, async (t) => {
  const { engine } = await engineForTest(t)
  const result = await miss(engine, { 'cache-control': 'max-age=60', 'content-length': '11' }, ['hello ', 'world'])
  t.assert.equal(result.text, 'hello world')
  t.assert.equal(result.stored, 'hello world')
  t.assert.equal(result.request.state.flight, undefined, 'the flight ended with the write')
  const hit = engine.fast(ask(engine, URL_A))
  t.assert.equal(await bodyOf(hit!), 'hello world', 'and the memory tier has it')
})

test('the writer stores nothing of a body cut short, failed, or over MAX_ENTRY_BYTES', { timeout: 15_000 }, async (t) => {
  const { engine } = await engineForTest(t, { maxEntryBytes: 20 })
  const short = await miss(engine, { 'cache-control': 'max-age=60', 'content-length': '11' }, ['hello'])
  t.assert.equal(short.text, 'hello')
  t.assert.equal(short.stored, undefined, 'shorter than its Content-Length')

  const failed = await miss(engine, { 'cache-control': 'max-age=60' }, ['hello'], new Error('reset'))
  t.assert.match(failed.failed ?? '', /reset/, 'the client sees the body fail')
  t.assert.equal(failed.stored, undefined, 'an upstream error mid-body')

  const large = await miss(engine, { 'cache-control': 'max-age=60' }, ['0123456789', '0123456789', '0123456789'])
  t.assert.equal(large.text, '0123456789'.repeat(3), 'the client still gets all of it')
  t.assert.equal(large.stored, undefined, 'over MAX_ENTRY_BYTES')

  const declared = await miss(engine, { 'cache-control': 'max-age=60', 'content-length': '30' }, ['0123456789', '0123456789', '0123456789'])
  t.assert.equal(declared.text, '0123456789'.repeat(3))
  t.assert.equal(declared.detail, 'too-large', 'a declared length over the bound is refused before the body')
  t.assert.equal(declared.stored, undefined)
  t.assert.equal(engine.fast(ask(engine, URL_A)), undefined, 'nothing reached the memory tier either')
})

test('a response the policy refuses is passed on and its URL goes into hit-for-pass', { timeout: 10_000 }, async (t) => {
  const { engine } = await engineForTest(t)
  const result = await miss(engine, { 'cache-control': 'no-store' }, ['secret'])
  t.assert.equal(result.text, 'secret')
  t.assert.equal(result.stored, undefined)
  t.assert.equal(result.detail, 'no-store')
  t.assert.equal(engine.passes.has(result.request.state.key), true)
  const next = ask(engine, URL_A)
  t.assert.equal(await bounded(engine.lookupOrJoin(next, () => {})), undefined)
  t.assert.equal(next.state.pass, true, 'the next request goes straight to the origin')
  t.assert.equal(next.state.flight, undefined)
})

test('readWhole gives the whole body, or too-large past the bound', { timeout: 5000 }, async (t) => {
  t.assert.equal((await readWhole(streamOf(['ab', 'cd']), 4)).toString(), 'abcd')
  t.assert.equal(await readWhole(streamOf(['ab', 'cde']), 4), 'too-large')
  await t.assert.rejects(readWhole(streamOf(['ab'], new Error('cut')), 4), /cut/)
})
