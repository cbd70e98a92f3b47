import http, { type IncomingHttpHeaders } from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { test } from 'node:test'
import { startOrigin } from '../helpers/origin.ts'
import { testApp } from '../helpers/app.ts'
import { earlyHintsFields } from '../../src/upstream/interim-responses.ts'

interface Exchange {
  interim: Array<{ status: number, headers: IncomingHttpHeaders }>
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/** One GET through node:http, which reports 1xx responses as 'information' events. */
function get (port: number, path: string, headers: Record<string, string> = {}): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const interim: Exchange['interim'] = []
    const req = http.get({ host: '127.0.0.1', port, path, headers, timeout: 5000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ interim, status: res.statusCode ?? 0, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.on('information', (info) => interim.push({ status: info.statusCode, headers: info.headers }))
    req.on('timeout', () => req.destroy(new Error(`timeout: ${path}`)))
    req.on('error', reject)
  })
}

async function proxyWithOrigin (t: Parameters<typeof testApp>[0]): Promise<{ port: number, origin: Awaited<ReturnType<typeof startOrigin>> }> {
  const origin = await startOrigin({
    '/hints': (_req, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style', 'x-hint': 'early' })
      res.writeHead(200, { 'cache-control': 'max-age=600', 'content-type': 'text/plain' })
      res.end('final')
    },
    '/unsendable': (_req, res) => {
      // A 103 without Link and an unassigned 1xx, written raw: Node has no API that sends either.
      res.socket?.write('HTTP/1.1 103 Early Hints\r\nx-hint: no-link\r\n\r\nHTTP/1.1 104 Whatever\r\nx-hint: 104\r\n\r\n')
      res.writeHead(200, { 'cache-control': 'max-age=600' })
      res.end('unsendable')
    },
    '/processing': (_req, res) => {
      res.writeProcessing()
      res.writeHead(200, { 'cache-control': 'max-age=600' })
      res.end('done')
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { port: (app.server.address() as AddressInfo).port, origin }
}

test('103 Early Hints from the origin reach the client; neither they nor their fields are stored (RFC 9110 §15.2, RFC 9111 §3)', { timeout: 20_000 }, async (t) => {
  const { port, origin } = await proxyWithOrigin(t)
  const first = await get(port, `/${origin.host}/hints`)
  t.assert.deepEqual(first.interim.map((i) => i.status), [103])
  t.assert.equal(first.interim[0].headers.link, '</style.css>; rel=preload; as=style')
  t.assert.equal(first.interim[0].headers['x-hint'], 'early')
  t.assert.equal(first.status, 200)
  t.assert.equal(first.body, 'final')
  t.assert.equal(first.headers['x-hint'], undefined, 'an interim field is not a field of the final response')

  const second = await get(port, `/${origin.host}/hints`)
  t.assert.equal(second.headers['x-cache'], 'HIT')
  t.assert.deepEqual(second.interim, [], 'a cached response replays no interim response')
  t.assert.equal(second.headers['x-hint'], undefined)
  t.assert.equal(second.body, 'final')
  t.assert.equal(origin.hits('/hints'), 1)
})

test('102 Processing from the origin reaches the client; the final response is cached', { timeout: 20_000 }, async (t) => {
  const { port, origin } = await proxyWithOrigin(t)
  const first = await get(port, `/${origin.host}/processing`)
  t.assert.deepEqual(first.interim.map((i) => i.status), [102])
  t.assert.equal(first.body, 'done')
  const second = await get(port, `/${origin.host}/processing`)
  t.assert.deepEqual([second.interim.length, second.headers['x-cache'], second.body], [0, 'HIT', 'done'])
  t.assert.equal(origin.hits('/processing'), 1)
})

test('a 103 without Link and other 1xx codes are dropped: Node cannot send them; the final response still comes', { timeout: 20_000 }, async (t) => {
  const { port, origin } = await proxyWithOrigin(t)
  const res = await get(port, `/${origin.host}/unsendable`)
  t.assert.deepEqual(res.interim, [])
  t.assert.deepEqual([res.status, res.body, res.headers['x-hint']], [200, 'unsendable', undefined])
  t.assert.equal((await get(port, `/${origin.host}/unsendable`)).headers['x-cache'], 'HIT')
  t.assert.equal(origin.hits('/unsendable'), 1)
})

test('a browser in path-prefix mode gets no 103 (its Link would name the origin, not the proxy path)', { timeout: 20_000 }, async (t) => {
  const { port, origin } = await proxyWithOrigin(t)
  const browser = await get(port, `/${origin.host}/hints`, { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0', 'sec-fetch-dest': 'document' })
  t.assert.deepEqual(browser.interim, [])
  t.assert.equal(browser.status, 200)
  t.assert.equal(browser.body, 'final')
})

test('an HTTP/1.0 client gets no 1xx (RFC 9110 §15.2), only the final response', { timeout: 20_000 }, async (t) => {
  const { port, origin } = await proxyWithOrigin(t)
  const socket = net.connect(port, '127.0.0.1')
  t.after(() => socket.destroy())
  socket.setTimeout(5000, () => socket.destroy(new Error('timeout')))
  socket.write(`GET /${origin.host}/hints HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n`)
  let raw = ''
  for await (const chunk of socket) raw += String(chunk)
  t.assert.match(raw, /^HTTP\/1\.[01] 200 /)
  t.assert.doesNotMatch(raw, /\b103\b/)
  t.assert.match(raw, /final$/)
  t.assert.equal(origin.hits('/hints'), 1)
})

test('a 103 carries only end-to-end, valid fields', (t) => {
  t.assert.deepEqual(earlyHintsFields({ link: '</a>; rel=preload', connection: 'x-drop', 'x-drop': '1', 'keep-alive': 'timeout=5', 'x-keep': 'y' }),
    { link: '</a>; rel=preload', 'x-keep': 'y' })
})
