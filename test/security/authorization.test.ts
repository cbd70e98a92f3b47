import { test } from 'node:test'
import { startOrigin } from '../helpers/origin.ts'
import { testApp } from '../helpers/app.ts'

test('requests with Authorization are not stored or served unless the response allows it', async (t) => {
  const origin = await startOrigin({
    '/plain': (req, res) => { res.writeHead(200, { 'cache-control': 'max-age=100' }); res.end(`for ${req.headers.authorization ?? 'anyone'}`) },
    '/public': (_req, res) => { res.writeHead(200, { 'cache-control': 'public, max-age=100' }); res.end('public') },
    '/shared': (_req, res) => { res.writeHead(200, { 'cache-control': 's-maxage=100' }); res.end('shared') }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  const auth = { authorization: 'Bearer alice' }

  await app.inject({ url: `/${origin.host}/plain`, headers: auth })
  const anonymous = await app.inject(`/${origin.host}/plain`)
  t.assert.equal(anonymous.body, 'for anyone')
  t.assert.equal(anonymous.headers['x-cache'], 'MISS')
  // A stored anonymous response is not handed to an authorized request either.
  const bob = await app.inject({ url: `/${origin.host}/plain`, headers: { authorization: 'Bearer bob' } })
  t.assert.equal(bob.body, 'for Bearer bob')
  t.assert.equal(origin.hits('/plain'), 3)

  for (const path of ['/public', '/shared']) {
    await app.inject({ url: `/${origin.host}${path}`, headers: auth })
    const again = await app.inject({ url: `/${origin.host}${path}`, headers: { authorization: 'Bearer bob' } })
    t.assert.equal(again.headers['x-cache'], 'HIT', path)
    t.assert.equal(origin.hits(path), 1, path)
  }
})

test('Set-Cookie responses are stored only with CACHE_SET_COOKIE=true', async (t) => {
  const origin = await startOrigin({
    '/cookie': (_req, res) => { res.writeHead(200, { 'cache-control': 'public, max-age=100', 'set-cookie': 'id=1' }); res.end('c') }
  })
  t.after(() => origin.close())
  const off = await testApp(t)
  await off.inject(`/${origin.host}/cookie`)
  t.assert.equal((await off.inject(`/${origin.host}/cookie`)).headers['x-cache'], 'MISS')
  const on = await testApp(t, { CACHE_SET_COOKIE: 'true' })
  await on.inject(`/${origin.host}/cookie`)
  const hit = await on.inject(`/${origin.host}/cookie`)
  t.assert.equal(hit.headers['x-cache'], 'HIT')
  t.assert.equal(hit.headers['set-cookie'], 'id=1')
  t.assert.equal(origin.requests.length, 3)
})
