import { test } from 'node:test'
import { startOrigin } from '../helpers/origin.ts'
import { testApp } from '../helpers/app.ts'

test('CDN-Cache-Control decides for this cache and is passed on; Cache-Control goes to the client unchanged', async (t) => {
  const origin = await startOrigin({
    '/cdn': (_req, res) => { res.writeHead(200, { 'cache-control': 'no-store', 'cdn-cache-control': 'max-age=600' }); res.end('cdn') },
    '/cdn-private': (_req, res) => { res.writeHead(200, { 'cache-control': 'max-age=600', 'cdn-cache-control': 'private' }); res.end('p') },
    '/cdn-invalid': (_req, res) => { res.writeHead(200, { 'cache-control': 'max-age=600', 'cdn-cache-control': 'max-age=60,,' }); res.end('i') }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  for (const path of ['/cdn', '/cdn-private', '/cdn-invalid']) {
    await app.inject(`/${origin.host}${path}`)
  }
  const hit = await app.inject(`/${origin.host}/cdn`)
  t.assert.equal(hit.headers['x-cache'], 'HIT')
  t.assert.equal(hit.headers['cache-control'], 'no-store')
  t.assert.equal(hit.headers['cdn-cache-control'], 'max-age=600')
  t.assert.equal((await app.inject(`/${origin.host}/cdn-private`)).headers['x-cache'], 'MISS')
  t.assert.equal((await app.inject(`/${origin.host}/cdn-invalid`)).headers['x-cache'], 'HIT', 'an invalid targeted field is ignored')
  t.assert.deepEqual([origin.hits('/cdn'), origin.hits('/cdn-private'), origin.hits('/cdn-invalid')], [1, 2, 1])
})

test('the proxy\'s own targeted field wins over CDN-Cache-Control and never reaches the client', async (t) => {
  const origin = await startOrigin({
    '/own': (_req, res) => { res.writeHead(200, { 'cache-control': 'no-cache', 'cdn-cache-control': 'no-store', 'cachingproxy-cache-control': 'max-age=600' }); res.end('own') },
    '/named': (_req, res) => { res.writeHead(200, { 'x-edge-cc': 'max-age=600' }); res.end('named') }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  const miss = await app.inject(`/${origin.host}/own`)
  t.assert.equal(miss.headers['cachingproxy-cache-control'], undefined)
  const hit = await app.inject(`/${origin.host}/own`)
  t.assert.equal(hit.headers['x-cache'], 'HIT')
  t.assert.equal(hit.headers['cachingproxy-cache-control'], undefined)
  t.assert.equal(hit.headers['cdn-cache-control'], 'no-store')

  const renamed = await testApp(t, { CACHE_CONTROL_FIELD: 'X-Edge-CC' })
  await renamed.inject(`/${origin.host}/named`)
  const named = await renamed.inject(`/${origin.host}/named`)
  t.assert.equal(named.headers['x-cache'], 'HIT')
  t.assert.equal(named.headers['x-edge-cc'], undefined)
})
