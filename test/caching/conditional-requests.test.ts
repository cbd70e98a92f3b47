import { test } from 'node:test'
import { startOrigin } from '../helpers/origin.ts'
import { testApp } from '../helpers/app.ts'

test('client conditional requests are answered 304 from a fresh entry', async (t) => {
  const lastModified = new Date(Date.now() - 86_400_000).toUTCString()
  const origin = await startOrigin({
    '/c': (_req, res) => {
      res.writeHead(200, { etag: 'W/"abc"', 'last-modified': lastModified, 'cache-control': 'max-age=100' })
      res.end('conditional body')
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  const get = (headers: Record<string, string>) => app.inject({ url: `/${origin.host}/c`, headers })

  // On the miss, the client's condition is answered here while the full body is stored.
  const first = await get({ 'if-none-match': 'W/"abc"' })
  t.assert.equal(first.statusCode, 304)
  t.assert.equal(first.body, '')
  t.assert.equal(origin.requests[0].headers['if-none-match'], undefined)

  const weak = await get({ 'if-none-match': '"abc"' }) // weak comparison
  t.assert.equal(weak.statusCode, 304)
  t.assert.equal(weak.headers.etag, 'W/"abc"')
  t.assert.equal(weak.headers['x-cache'], 'HIT')
  t.assert.equal((await get({ 'if-none-match': '"other", W/"abc"' })).statusCode, 304)
  t.assert.equal((await get({ 'if-none-match': '*' })).statusCode, 304)
  t.assert.equal((await get({ 'if-none-match': '"other"' })).statusCode, 200)
  t.assert.equal((await get({ 'if-modified-since': new Date().toUTCString() })).statusCode, 304)
  t.assert.equal((await get({ 'if-modified-since': new Date(Date.now() - 2 * 86_400_000).toUTCString() })).statusCode, 200)
  // If-None-Match wins over If-Modified-Since.
  t.assert.equal((await get({ 'if-none-match': '"other"', 'if-modified-since': new Date().toUTCString() })).statusCode, 200)
  const full = await get({})
  t.assert.equal(full.body, 'conditional body')
  t.assert.equal(origin.requests.length, 1)
})
