import { test } from 'node:test'
import { startOrigin } from '../helpers/origin.ts'
import { testApp } from '../helpers/app.ts'

test('Vary: one variant per selecting header value; order and case of Vary do not matter', async (t) => {
  let round = 0
  const origin = await startOrigin({
    '/v': (req, res) => {
      round++
      res.writeHead(200, { 'cache-control': 'max-age=100', vary: round % 2 === 0 ? 'accept-language, Accept' : 'Accept, Accept-Language' })
      res.end(`${req.headers.accept ?? '-'}|${req.headers['accept-language'] ?? '-'}`)
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  const get = (headers: Record<string, string>) => app.inject({ url: `/${origin.host}/v`, headers })

  const json = await get({ accept: 'application/json', 'accept-language': 'en' })
  t.assert.equal(json.body, 'application/json|en')
  const html = await get({ accept: 'text/html', 'accept-language': 'en' })
  t.assert.equal(html.body, 'text/html|en')
  t.assert.equal(html.headers['cache-status'], 'caching-proxy; fwd=vary-miss; fwd-status=200') // chunked: `stored` is not known yet

  const jsonAgain = await get({ 'accept-language': 'en', accept: 'application/json' })
  t.assert.equal(jsonAgain.headers['x-cache'], 'HIT')
  t.assert.equal(jsonAgain.body, 'application/json|en')
  const htmlAgain = await get({ accept: 'text/html', 'accept-language': 'en' })
  t.assert.equal(htmlAgain.headers['x-cache'], 'HIT')
  t.assert.equal(htmlAgain.body, 'text/html|en')
  t.assert.equal(origin.requests.length, 2)
})

test('Vary: absent headers match absent headers only', async (t) => {
  const origin = await startOrigin({
    '/a': (req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=100', vary: 'x-mode' })
      res.end(`mode ${req.headers['x-mode'] ?? 'absent'}`)
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  t.assert.equal((await app.inject(`/${origin.host}/a`)).body, 'mode absent')
  t.assert.equal((await app.inject({ url: `/${origin.host}/a`, headers: { 'x-mode': '' } })).body, 'mode ')
  t.assert.equal((await app.inject({ url: `/${origin.host}/a`, headers: { 'x-mode': 'a' } })).body, 'mode a')
  const absent = await app.inject(`/${origin.host}/a`)
  t.assert.equal(absent.body, 'mode absent')
  t.assert.equal(absent.headers['x-cache'], 'HIT')
  t.assert.equal(origin.requests.length, 3)
})

test('Vary: * is never served from the cache', async (t) => {
  const origin = await startOrigin({
    '/star': (_req, res) => { res.writeHead(200, { 'cache-control': 'max-age=100', vary: '*' }); res.end('star') }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  for (let i = 0; i < 3; i++) {
    const res = await app.inject(`/${origin.host}/star`)
    t.assert.equal(res.headers['x-cache'], 'MISS')
  }
  t.assert.equal(origin.requests.length, 3)
})
