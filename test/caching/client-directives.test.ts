import { test } from 'node:test'
import { startOrigin } from '../helpers/origin.ts'
import { testApp } from '../helpers/app.ts'
import { fakeClock } from '../helpers/clock.ts'

async function setup (t: import('node:test').TestContext) {
  const origin = await startOrigin({
    '/r': (_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=100' })
      res.end(`response ${origin.requests.length}`)
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  const get = (headers: Record<string, string> = {}) => app.inject({ url: `/${origin.host}/r`, headers })
  return { origin, app, get }
}

test('no-cache and max-age=0 force a trip to the origin; Pragma counts only without Cache-Control', async (t) => {
  const { origin, get } = await setup(t)
  await get()
  t.assert.equal((await get({ 'cache-control': 'no-cache' })).headers['x-cache'], 'MISS')
  t.assert.equal((await get({ 'cache-control': 'max-age=0' })).headers['x-cache'], 'MISS')
  t.assert.equal((await get({ pragma: 'no-cache' })).headers['x-cache'], 'MISS')
  t.assert.equal((await get({ pragma: 'no-cache', 'cache-control': 'max-stale=10' })).headers['x-cache'], 'HIT')
  t.assert.equal(origin.requests.length, 4)
})

test('max-age, min-fresh and max-stale bound what the client accepts', async (t) => {
  const clock = fakeClock(t)
  const { origin, get } = await setup(t)
  await get()
  clock.advance(50)
  t.assert.equal((await get({ 'cache-control': 'max-age=60' })).headers['x-cache'], 'HIT')
  t.assert.equal((await get({ 'cache-control': 'max-age=40' })).headers['x-cache'], 'MISS')
  clock.advance(50) // the new copy is 50 s old
  t.assert.equal((await get({ 'cache-control': 'min-fresh=60' })).headers['x-cache'], 'MISS')
  clock.advance(120) // stale by 20 s
  const stale = await get({ 'cache-control': 'max-stale=30' })
  t.assert.equal(stale.headers['x-cache'], 'HIT')
  t.assert.match(String(stale.headers['cache-status']), /hit; detail=stale/)
  t.assert.equal((await get({ 'cache-control': 'max-stale=10' })).headers['x-cache'], 'MISS')
  t.assert.equal(origin.requests.length, 4)
})

test('no-store in a request: the response is not stored', async (t) => {
  const { origin, get } = await setup(t)
  await get({ 'cache-control': 'no-store' })
  t.assert.equal((await get()).headers['x-cache'], 'MISS')
  t.assert.equal(origin.requests.length, 2)
})

test('only-if-cached: 504 when not cached, the entry when it is', async (t) => {
  const { origin, get } = await setup(t)
  const miss = await get({ 'cache-control': 'only-if-cached' })
  t.assert.equal(miss.statusCode, 504)
  t.assert.equal(miss.json().error, 'Gateway Timeout')
  t.assert.equal(origin.requests.length, 0)
  await get()
  const hit = await get({ 'cache-control': 'only-if-cached' })
  t.assert.equal(hit.statusCode, 200)
  t.assert.equal(hit.headers['x-cache'], 'HIT')
})
