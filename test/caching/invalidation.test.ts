import { test } from 'node:test'
import { startOrigin } from '../helpers/origin.ts'
import { testApp } from '../helpers/app.ts'

test('an unsafe method invalidates its URL and same-origin Location / Content-Location, not others', async (t) => {
  let postStatus = 201
  const origin = await startOrigin({
    '/list': (_req, res) => { res.writeHead(200, { 'cache-control': 'max-age=100' }); res.end(`list ${origin.hits('/list')}`) },
    '/item/1': (_req, res) => { res.writeHead(200, { 'cache-control': 'max-age=100' }); res.end(`item ${origin.hits('/item/1')}`) },
    '/other': (_req, res) => { res.writeHead(200, { 'cache-control': 'max-age=100' }); res.end(`other ${origin.hits('/other')}`) },
    '/create': (req, res) => {
      if (req.method === 'GET') { res.writeHead(200, { 'cache-control': 'max-age=100' }); res.end('form'); return }
      res.writeHead(postStatus, { location: '/item/1', 'content-location': `http://127.0.0.1:${origin.port}/list` })
      res.end()
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  for (const path of ['/list', '/item/1', '/other', '/create']) await app.inject(`/${origin.host}${path}`)

  postStatus = 500
  await app.inject({ method: 'POST', url: `/${origin.host}/create`, payload: 'x' })
  t.assert.equal((await app.inject(`/${origin.host}/item/1`)).headers['x-cache'], 'HIT', 'a failed POST invalidates nothing')

  postStatus = 201
  await app.inject({ method: 'POST', url: `/${origin.host}/create`, payload: 'x' })
  for (const [path, expected] of [['/create', 'MISS'], ['/item/1', 'MISS'], ['/list', 'MISS'], ['/other', 'HIT']]) {
    t.assert.equal((await app.inject(`/${origin.host}${path}`)).headers['x-cache'], expected, path)
  }
})

test('PUT and DELETE invalidate too', async (t) => {
  const origin = await startOrigin({
    '/doc': (req, res) => { res.writeHead(req.method === 'GET' ? 200 : 204, { 'cache-control': 'max-age=100' }); res.end(req.method === 'GET' ? 'doc' : undefined) }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  for (const method of ['PUT', 'DELETE', 'PATCH'] as const) {
    await app.inject(`/${origin.host}/doc`)
    t.assert.equal((await app.inject(`/${origin.host}/doc`)).headers['x-cache'], 'HIT')
    await app.inject({ method, url: `/${origin.host}/doc`, payload: 'x' })
    t.assert.equal((await app.inject(`/${origin.host}/doc`)).headers['x-cache'], 'MISS', method)
  }
})

test('an unsafe request invalidates every Vary variant of its URL, also once a new variant was stored', async (t) => {
  let version = 0
  const origin = await startOrigin({
    '/v': (req, res) => {
      if (req.method !== 'GET') { version++; res.writeHead(204); res.end(); return }
      res.writeHead(200, { 'cache-control': 'max-age=100', vary: 'Accept-Language' })
      res.end(`${String(req.headers['accept-language'])} v${version}`)
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  const get = async (lang: string): Promise<string> => (await app.inject({ url: `/${origin.host}/v`, headers: { 'accept-language': lang } })).body
  t.assert.deepEqual([await get('en'), await get('fr'), await get('fr')], ['en v0', 'fr v0', 'fr v0'])
  await app.inject({ method: 'POST', url: `/${origin.host}/v`, payload: 'x' })
  t.assert.equal(await get('en'), 'en v1')
  t.assert.equal(await get('fr'), 'fr v1', 'the old fr variant came back once a new en variant was stored')
})

test('any method Node knows is forwarded; unsafe ones (known or not) invalidate on success, safe ones do not (RFC 9111 §4.4)', async (t) => {
  const origin = await startOrigin({
    '/dav': (req, res) => {
      res.writeHead(req.method === 'GET' ? 200 : 207, req.method === 'GET' ? { 'cache-control': 'max-age=100' } : {})
      res.end(`${String(req.method)} ${origin.hits('/dav')}`)
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  const url = `/${origin.host}/dav`
  await app.inject(url)
  for (const method of ['PROPFIND', 'REPORT', 'OPTIONS'] as const) {
    const res = await app.inject({ method: method as never, url })
    t.assert.equal(res.statusCode, 207, method)
    t.assert.equal((await app.inject(url)).headers['x-cache'], 'HIT', `${method} is safe`)
  }
  for (const method of ['MKCOL', 'LOCK'] as const) {
    t.assert.equal((await app.inject({ method: method as never, url })).statusCode, 207, method)
    t.assert.equal((await app.inject(url)).headers['x-cache'], 'MISS', `${method} invalidates`)
  }
  // PURGE is not forwarded: this cache answers it (plugins/admin.ts, test/admin.test.ts).
  const purged = await app.inject({ method: 'PURGE' as never, url })
  t.assert.deepEqual([purged.statusCode, purged.json()], [200, { purged: 1, soft: false }])
  t.assert.equal((await app.inject(url)).headers['x-cache'], 'MISS', 'PURGE invalidates')
})
