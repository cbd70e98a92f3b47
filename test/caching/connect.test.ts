import { test, type TestContext } from 'node:test'
import net, { type AddressInfo } from 'node:net'
import { ProxyAgent, request } from 'undici'
import { buildApp, type AppOptions } from '../../src/app.ts'
import { loadConfig } from '../../config/index.ts'
import { tempDir } from '../helpers/app.ts'
import { listen, tableResolver } from '../helpers/raw-http.ts'
import { closed, selfSignedCert, sendConnect, startTlsOrigin } from '../helpers/tunnel.ts'
import { echoOrigin } from '../helpers/origin.ts'
import { waitFor } from '../helpers/poll.ts'

interface Proxy { port: number, logs: Array<Record<string, any>>, close: () => Promise<void> }

/** The proxy listening on 127.0.0.1:0, its JSON log lines collected. */
async function startProxy (t: TestContext, env: Record<string, string>, options: AppOptions = {}): Promise<Proxy> {
  const logs: Array<Record<string, any>> = []
  const config = loadConfig({ LOG_LEVEL: 'info', CACHE_STORE: 'memory://', PORT: '0', ...env })
  const app = await buildApp(config, { ...options, logStream: { write: (line) => logs.push(JSON.parse(line)) } })
  const port = await listen(app)
  let done = false
  const close = async (): Promise<void> => { if (!done) { done = true; await app.close() } }
  t.after(close)
  return { port, logs, close }
}

/** t.assert.ok, which TypeScript cannot call through an inferred `t` (TS2775). */
function ok (t: TestContext, value: boolean, message?: string): void {
  t.assert.equal(value, true, message)
}

const LOCAL = { ALLOW_PRIVATE_UPSTREAMS: 'true', CONNECT_PORTS: '*' }
const tunnelLogs = (proxy: Proxy): Array<Record<string, any>> => proxy.logs.filter((line) => line.tunnel !== undefined).map((line) => line.tunnel)

test('an https GET goes through a CONNECT tunnel to a TLS origin, and the tunnel is logged once', async (t) => {
  const tls = selfSignedCert(tempDir(t))
  const origin = await startTlsOrigin(tls, (_req, res) => { res.end('secret over tls') })
  t.after(origin.close)
  const proxy = await startProxy(t, LOCAL)
  const agent = new ProxyAgent({ uri: `http://127.0.0.1:${proxy.port}`, requestTls: { ca: tls.cert } })
  t.after(async () => { await agent.destroy() })

  for (const path of ['/a', '/b']) {
    const res = await request(`https://127.0.0.1:${origin.port}${path}`, { dispatcher: agent })
    t.assert.equal(res.statusCode, 200)
    t.assert.equal(await res.body.text(), 'secret over tls')
  }
  t.assert.deepEqual(origin.requests.map((r) => r.url), ['/a', '/b'])
  await agent.close()
  ok(t, await waitFor(() => tunnelLogs(proxy).length === 1), 'one log line per tunnel')
  const [line] = tunnelLogs(proxy)
  t.assert.equal(line.status, 200)
  t.assert.equal(line.target, `127.0.0.1:${origin.port}`)
  ok(t, line.bytesUp > 100 && line.bytesDown > 100, `bytes both ways: ${JSON.stringify(line)}`)
})

test('bytes sent right behind the CONNECT request reach the upstream, and the answer comes back', async (t) => {
  const origin = await echoOrigin({ '/x': (_req, res) => { res.end('plain through the tunnel') } })
  t.after(origin.close)
  const proxy = await startProxy(t, LOCAL)
  const attempt = await sendConnect(proxy.port, origin.host, [], `GET /x HTTP/1.1\r\nHost: ${origin.host}\r\nConnection: close\r\n\r\n`)
  t.after(() => attempt.socket.destroy())
  t.assert.equal(attempt.status, 200)
  const chunks: Buffer[] = [attempt.rest]
  attempt.socket.on('data', (chunk: Buffer) => chunks.push(chunk)).resume()
  ok(t, await closed(attempt.socket), 'the origin closed, so the tunnel closed')
  const answer = Buffer.concat(chunks).toString('latin1')
  t.assert.match(answer, /^HTTP\/1\.1 200 OK/)
  t.assert.match(answer, /plain through the tunnel$/)
  t.assert.equal(origin.requests.length, 1)
})

test('refusals: port, address ranges, host lists, malformed targets', async (t) => {
  const origin = await echoOrigin()
  t.after(origin.close)
  const calls: string[] = []
  const proxy = await startProxy(t, { UPSTREAM_DENY: 'denied.test', UPSTREAM_PORTS: '*' }, {
    resolver: tableResolver({ 'internal.test': '10.1.2.3', 'public.test': '93.184.216.34' }, calls) as never
  })
  const cases: Array<[string, number, RegExp]> = [
    [origin.host, 403, /port \d+ is not allowed \(CONNECT_PORTS\)/], // UPSTREAM_PORTS=* does not open tunnels
    ['127.0.0.1:443', 403, /forbidden range \(loopback\)/],
    ['[::1]:443', 403, /forbidden range \(loopback\)/],
    ['169.254.169.254:443', 403, /forbidden range/],
    ['internal.test:443', 403, /resolves to 10\.1\.2\.3.*forbidden address range \(private/],
    ['denied.test:443', 403, /UPSTREAM_DENY/],
    ['example.com', 400, /host:port/],
    ['/example.com:443/x', 400, /host:port/],
    ['user@example.com:443', 400, /host:port/],
    ['example.com:99999', 400, /port/]
  ]
  for (const [target, status, message] of cases) {
    const attempt = await sendConnect(proxy.port, target)
    attempt.socket.destroy()
    t.assert.equal(attempt.status, status, target)
    t.assert.equal(attempt.headers.connection, 'close', target)
    t.assert.match(JSON.parse(attempt.body).message, message, target)
  }
  t.assert.equal(origin.connections(), 0, 'a refused tunnel never connects')
  t.assert.deepEqual(calls, ['internal.test'], 'names on the deny list are not even resolved')
})

test('Proxy-Authorization: 407 with Proxy-Authenticate without it, a tunnel with it', async (t) => {
  const origin = await echoOrigin({ '/': (_req, res) => { res.end('ok') } })
  t.after(origin.close)
  const proxy = await startProxy(t, { ...LOCAL, PROXY_AUTH: 'alice:s3cret' })
  const none = await sendConnect(proxy.port, origin.host, [], 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  none.socket.destroy()
  t.assert.equal(none.status, 407)
  t.assert.match(none.headers['proxy-authenticate'], /^Basic realm="caching-proxy"/)
  const wrong = await sendConnect(proxy.port, origin.host, [['Proxy-Authorization', `Basic ${Buffer.from('alice:nope').toString('base64')}`]])
  wrong.socket.destroy()
  t.assert.equal(wrong.status, 407)
  t.assert.equal(origin.connections(), 0)
  const good = await sendConnect(proxy.port, origin.host, [['Proxy-Authorization', `Basic ${Buffer.from('alice:s3cret').toString('base64')}`]])
  good.socket.destroy()
  t.assert.equal(good.status, 200)
  ok(t, await waitFor(() => origin.connections() === 1))
})

test('unreachable upstreams are 502, a connect that hangs is 504', async (t) => {
  const spare = net.createServer()
  await new Promise<void>((resolve) => spare.listen(0, '127.0.0.1', resolve))
  const closedPort = (spare.address() as AddressInfo).port
  await new Promise((resolve) => spare.close(resolve))
  const proxy = await startProxy(t, { ...LOCAL, UPSTREAM_TIMEOUT_MS: '300' }, {
    resolver: async (hostname) => {
      if (hostname === 'slow.test') return await new Promise(() => {}) // never answers
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' })
    }
  })
  const refused = await sendConnect(proxy.port, `127.0.0.1:${closedPort}`)
  refused.socket.destroy()
  t.assert.equal(refused.status, 502)
  t.assert.match(JSON.parse(refused.body).message, /ECONNREFUSED/)
  const unknown = await sendConnect(proxy.port, 'nowhere.test:443')
  unknown.socket.destroy()
  t.assert.equal(unknown.status, 502)
  t.assert.match(JSON.parse(unknown.body).message, /ENOTFOUND/)
  const started = Date.now()
  const slow = await sendConnect(proxy.port, 'slow.test:443')
  slow.socket.destroy()
  t.assert.equal(slow.status, 504)
  ok(t, Date.now() - started < 2000, 'within the timeout')
  t.assert.deepEqual(tunnelLogs(proxy).map((line) => line.status), [502, 502, 504])
})

test('RATE_LIMIT_PER_MINUTE counts CONNECT requests: 429 past it', async (t) => {
  const proxy = await startProxy(t, { RATE_LIMIT_PER_MINUTE: '3' })
  const statuses: number[] = []
  for (let i = 0; i < 4; i++) {
    const attempt = await sendConnect(proxy.port, '127.0.0.1:443')
    attempt.socket.destroy()
    statuses.push(attempt.status)
  }
  t.assert.deepEqual(statuses, [403, 403, 403, 429])
})

/** A raw TCP upstream that echoes, keeping its sockets so a test can see them close or reset them. */
async function startEcho (t: TestContext): Promise<{ host: string, sockets: net.Socket[], closedCount: () => number }> {
  const sockets: net.Socket[] = []
  let closedCount = 0
  const server = net.createServer((socket) => {
    sockets.push(socket)
    socket.on('error', () => {})
    socket.on('close', () => { closedCount++ })
    socket.pipe(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, sockets, closedCount: () => closedCount }
}

async function echoed (socket: net.Socket, text: string): Promise<string> {
  socket.resume()
  socket.write(text)
  let got = ''
  const onData = (chunk: Buffer): void => { got += chunk.toString('latin1') }
  socket.on('data', onData)
  await waitFor(() => got.length >= text.length, 2000)
  socket.removeListener('data', onData)
  return got
}

test('issue #7: a client that resets right after CONNECT cannot crash the process', async (t) => {
  const echo = await startEcho(t)
  const proxy = await startProxy(t, { CONNECT_PORTS: '443' })
  const local = await startProxy(t, LOCAL)
  for (let i = 0; i < 30; i++) {
    for (const [port, target] of [[proxy.port, 'example.com:443'], [proxy.port, '127.0.0.1:443'], [local.port, echo.host]] as const) {
      const socket = net.connect(port, '127.0.0.1')
      socket.on('error', () => {})
      socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n\x16\x03\x01\x00\x05hello`)
      if (i % 2 === 0) socket.resetAndDestroy()
      else setTimeout(() => socket.resetAndDestroy(), i % 3)
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 200))
  const after = await sendConnect(local.port, echo.host)
  t.assert.equal(after.status, 200, 'still answering')
  t.assert.equal(await echoed(after.socket, 'still here'), 'still here')
  after.socket.destroy()
})

test('a reset on either side mid-tunnel closes the other side; the proxy keeps working', async (t) => {
  const echo = await startEcho(t)
  const proxy = await startProxy(t, LOCAL)
  const first = await sendConnect(proxy.port, echo.host)
  t.assert.equal(await echoed(first.socket, 'ping'), 'ping')
  first.socket.resetAndDestroy()
  ok(t, await waitFor(() => echo.closedCount() === 1), 'upstream closed after the client reset')

  const second = await sendConnect(proxy.port, echo.host)
  t.assert.equal(await echoed(second.socket, 'pong'), 'pong')
  echo.sockets[1].resetAndDestroy()
  ok(t, await closed(second.socket), 'client closed after the upstream reset')
  ok(t, await waitFor(() => tunnelLogs(proxy).length === 2))
  t.assert.deepEqual(tunnelLogs(proxy).map((line) => line.reason).sort(), ['ECONNRESET', 'ECONNRESET'])
})

test('an idle tunnel is closed after CONNECT_IDLE_TIMEOUT_MS; traffic keeps it open', async (t) => {
  const echo = await startEcho(t)
  const proxy = await startProxy(t, { ...LOCAL, CONNECT_IDLE_TIMEOUT_MS: '300' })
  const attempt = await sendConnect(proxy.port, echo.host)
  for (let i = 0; i < 5; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    t.assert.equal(await echoed(attempt.socket, `beat ${i}`), `beat ${i}`)
  }
  const started = Date.now()
  ok(t, await closed(attempt.socket, 3000), 'closed once idle')
  ok(t, Date.now() - started < 1500)
  ok(t, await waitFor(() => echo.closedCount() === 1))
  ok(t, await waitFor(() => tunnelLogs(proxy)[0]?.reason === 'idle'))
})

test('closing the app ends open tunnels instead of waiting for them', async (t) => {
  const echo = await startEcho(t)
  const proxy = await startProxy(t, LOCAL)
  const attempts = [await sendConnect(proxy.port, echo.host), await sendConnect(proxy.port, echo.host)]
  t.assert.deepEqual(attempts.map((a) => a.status), [200, 200])
  const started = Date.now()
  await proxy.close()
  ok(t, Date.now() - started < 1000, `closed in ${Date.now() - started} ms`)
  for (const attempt of attempts) ok(t, await closed(attempt.socket.resume()))
  ok(t, await waitFor(() => echo.closedCount() === 2))
})

test('a tunnel outlives CLIENT_REQUEST_TIMEOUT_MS and KEEP_ALIVE_TIMEOUT_MS (they are for HTTP requests)', async (t) => {
  const echo = await startEcho(t)
  const proxy = await startProxy(t, { ...LOCAL, CLIENT_REQUEST_TIMEOUT_MS: '300', CLIENT_HEADERS_TIMEOUT_MS: '200', KEEP_ALIVE_TIMEOUT_MS: '100' })
  const attempt = await sendConnect(proxy.port, echo.host)
  t.after(() => attempt.socket.destroy())
  const started = Date.now()
  for (let i = 0; Date.now() - started < 1200 && i < 100; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    t.assert.equal(await echoed(attempt.socket, `beat ${i}`), `beat ${i}`)
  }
  t.assert.equal(attempt.socket.destroyed, false)
})

test('ALLOW_CLIENTS applies to CONNECT when the proxy listens beyond loopback', async (t) => {
  const echo = await startEcho(t)
  const proxy = await startProxy(t, { ...LOCAL, HOST: '0.0.0.0', ALLOW_CLIENTS: '10.0.0.0/8' })
  const attempt = await sendConnect(proxy.port, echo.host)
  attempt.socket.destroy()
  t.assert.equal(attempt.status, 403)
  t.assert.match(JSON.parse(attempt.body).message, /client 127\.0\.0\.1 is not allowed .*ALLOW_CLIENTS/)
  t.assert.equal(echo.sockets.length, 0)
})
