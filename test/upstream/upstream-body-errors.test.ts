import { test } from 'node:test'
import net, { type AddressInfo } from 'node:net'
import { buildApp } from '../../src/app.ts'
import { testApp, testConfig } from '../helpers/app.ts'

/** An origin that answers every request with the same raw bytes. */
async function rawOrigin (t: { after: (fn: () => Promise<void>) => void }, response: string): Promise<string> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {})
    socket.once('data', () => socket.end(response))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(async () => { await new Promise((resolve) => server.close(resolve)) })
  return `127.0.0.1:${(server.address() as AddressInfo).port}`
}

test('a body that breaks before the first byte went out is a 502 without any of the origin\'s headers, and is not stored', async (t) => {
  const host = await rawOrigin(t, 'HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n')
  const app = await testApp(t)
  for (let i = 0; i < 2; i++) {
    const res = await app.inject(`/${host}/chunks`)
    t.assert.equal(res.statusCode, 502)
    t.assert.equal(res.headers['cache-control'], undefined)
    t.assert.match(String(res.headers['cache-status']), /fwd=miss; detail=/)
    t.assert.equal(res.json().code, 'CPX_UPSTREAM_UNREACHABLE')
  }
})

test('an origin status outside 100-599 is answered 502 exactly once', async (t) => {
  const host = await rawOrigin(t, 'HTTP/1.1 999 Odd\r\nContent-Length: 2\r\n\r\nok')
  const lines: string[] = []
  const app = await buildApp(testConfig({ LOG_LEVEL: 'warn' }), { logStream: { write: (line) => { lines.push(line) } } })
  t.after(async () => { await app.close() })
  const res = await app.inject(`/${host}/odd`)
  t.assert.equal(res.statusCode, 502)
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.assert.equal(lines.filter((line) => /already sent/i.test(line)).length, 0, lines.join('\n'))
  t.assert.equal(lines.length > 0, true, 'the invalid status was logged')
})
