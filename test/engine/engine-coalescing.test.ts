import { test } from 'node:test'
import { PassThrough } from 'node:stream'
import { upstreamHeaders, type Answer } from '../../src/engine/index.ts'
import { ask, bodyOf, bounded, engineForTest } from '../helpers/engine.ts'
import { until } from '../helpers/poll.ts'

const URL_A = 'http://origin.test/a'
const HEADERS = { 'cache-control': 'max-age=60', 'content-length': '11' }
const N = 6

test(`${N} concurrent misses: one goes upstream, the others are answered from its response as it streams`, { timeout: 10_000 }, async (t) => {
  const { engine } = await engineForTest(t)
  const requests = Array.from({ length: N }, () => ask(engine, URL_A))
  const answers = requests.map((request) => bounded(engine.lookupOrJoin(request, () => {})))
  const leader = await answers[0]
  t.assert.equal(leader, undefined, 'the first request goes to the origin')
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.assert.equal(requests.filter((request) => request.state.flight !== undefined).length, 1, 'one flight')
  const origin = new PassThrough()
  const mine = engine.onResponse(requests[0], { statusCode: 200, headers: HEADERS, stream: origin }, upstreamHeaders(HEADERS)) as Answer
  origin.write('hello ')
  const waiters = await Promise.all(answers.slice(1))
  t.assert.equal(waiters.every((answer) => answer?.outcome.collapsed === true), true, 'every waiter collapsed into the leader, before the body ended')
  t.assert.equal(waiters.every((answer) => answer?.headers?.['x-cache'] === 'HIT'), true)
  origin.end('world')
  const bodies = await bounded(Promise.all([mine, ...waiters].map((answer) => bodyOf(answer!))))
  t.assert.deepEqual(bodies, Array(N).fill('hello world'))
  t.assert.notEqual(engine.fast(ask(engine, URL_A)), undefined, 'and it was stored once for everyone after')
})

test('when the leader cannot reach the origin, its waiters get the same error at once', { timeout: 10_000 }, async (t) => {
  const { engine } = await engineForTest(t)
  const leader = ask(engine, URL_A)
  t.assert.equal(await bounded(engine.lookupOrJoin(leader, () => {})), undefined)
  const waiter = bounded(engine.lookupOrJoin(ask(engine, URL_A), () => {}), 1000)
  await new Promise((resolve) => setTimeout(resolve, 20))
  const error = Object.assign(new Error('connect refused'), { statusCode: 502, upstreamCode: 'connection-refused' })
  const answer = engine.onError(leader, leader.state, error)
  t.assert.equal(answer.error, error)
  const joined = await waiter
  t.assert.equal(joined?.error, error)
  t.assert.equal(joined?.outcome.collapsed, true)
  t.assert.match(String(joined?.headers?.['cache-status']), /fwd=miss; collapsed; detail=connection-refused/)
})

test('a leader whose client goes away before the origin answers frees its waiters', { timeout: 10_000 }, async (t) => {
  const { engine } = await engineForTest(t)
  const leader = ask(engine, URL_A)
  let clientGone = (): void => {}
  t.assert.equal(await bounded(engine.lookupOrJoin(leader, (listener) => { clientGone = listener })), undefined)
  const waiter = ask(engine, URL_A)
  const waiting = bounded(engine.lookupOrJoin(waiter, () => {}), 1000)
  await new Promise((resolve) => setTimeout(resolve, 20))
  clientGone()
  t.assert.equal(await waiting, undefined, 'the waiter goes to the origin on its own')
  t.assert.equal(waiter.state.flight, undefined, 'without leading a flight behind the failed one')
})

test('across processes: the second one waits for the lease holder\'s entry instead of fetching', { timeout: 10_000 }, async (t) => {
  const shared = `coalescing-${process.pid}-${Date.now()}`
  const first = (await engineForTest(t, {}, shared)).engine
  const second = (await engineForTest(t, {}, shared)).engine
  const leader = ask(first, URL_A)
  t.assert.equal(await bounded(first.lookupOrJoin(leader, () => {})), undefined)
  t.assert.equal(leader.state.lease, true, 'the leader holds the lease')
  const otherRequest = ask(second, URL_A)
  const other = bounded(second.lookupOrJoin(otherRequest, () => {}))
  // While it waits for the other process, it leads the flight its own worker's requests would join.
  await until('the second process waits', () => otherRequest.state.flight !== undefined, { timeoutMs: 3000 })
  const origin = new PassThrough()
  const answer = first.onResponse(leader, { statusCode: 200, headers: HEADERS, stream: origin }, upstreamHeaders(HEADERS)) as Answer
  origin.end('hello world')
  t.assert.equal(await bodyOf(answer), 'hello world')
  const remote = await other
  t.assert.equal(remote?.outcome.collapsed, true, 'answered from the entry the other process stored')
  t.assert.equal(await bodyOf(remote!), 'hello world')
})
