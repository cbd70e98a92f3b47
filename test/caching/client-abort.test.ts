import { test } from 'node:test'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { startOrigin } from '../helpers/origin.ts'
import { testApp } from '../helpers/app.ts'

test('a client that goes away mid-response releases the upstream request and stores nothing', async (t) => {
  let upstreamClosed: () => void
  const closed = new Promise<void>((resolve) => { upstreamClosed = resolve })
  const origin = await startOrigin({
    '/stream': (_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60' })
      const timer = setInterval(() => res.write(Buffer.alloc(16_384, 97)), 10)
      res.on('close', () => { clearInterval(timer); upstreamClosed() })
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port

  await new Promise<void>((resolve, reject) => {
    const req = http.get(`http://127.0.0.1:${port}/${origin.host}/stream`, (res) => {
      res.once('data', () => { req.destroy(); resolve() })
    })
    req.on('error', (error) => { if (!req.destroyed) reject(error) })
  })
  const released = await Promise.race([closed.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 5000))])
  t.assert.equal(released, true, 'the origin saw its response closed')
  t.assert.equal(await app.cache.store.get(`GET http://${origin.host}/stream`), undefined)
})
