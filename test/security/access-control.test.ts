import { test, type TestContext } from 'node:test'
import { spawn, execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { scrypt } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.ts'
import { basicVerifier, hashPassword, type Derive } from '../../src/access/proxy-auth.ts'
import { testConfig, tempDir } from '../helpers/app.ts'
import { freePort } from '../helpers/process.ts'
import { get, json, listen, requestHead, send, type RawResponse } from '../helpers/raw-http.ts'
import { echoOrigin, type Origin } from '../helpers/origin.ts'

type Env = Record<string, string>

const USER = 'alice'
const PASSWORD = 'pa55:w0rd-Ünïcode' // a colon and non-ASCII in the password
const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`
const GOOD = basic(USER, PASSWORD)

async function origin (t: TestContext, routes: Parameters<typeof echoOrigin>[0] = {}): Promise<Origin> {
  const o = await echoOrigin(routes)
  t.after(() => o.close())
  return o
}

async function app (t: TestContext, env: Env): Promise<FastifyInstance> {
  const instance = await buildApp(testConfig(env))
  t.after(async () => { await instance.close() })
  return instance
}

function describe (res: RawResponse): string {
  return `${res.status} ${res.raw.toString('latin1').slice(0, 400)}`
}

// ---------------------------------------------------------------------------
// ALLOW_CLIENTS

test('HOST not loopback: a client outside ALLOW_CLIENTS is 403 over a real socket, and never reaches the origin', async (t) => {
  const o = await origin(t)
  // Configured as exposed (HOST=0.0.0.0) but bound to loopback by the test, so the client is 127.0.0.1.
  const refused = await app(t, { HOST: '0.0.0.0', ALLOW_CLIENTS: '10.0.0.0/8' })
  const port = await listen(refused)
  for (const target of [`/${o.host}/x`, `http://${o.host}/x`, '/', '/favicon.ico']) {
    const res = await send(port, get(target))
    t.assert.equal(res.status, 403, `${target}: ${describe(res)}`)
    const body = json(res)
    t.assert.equal(body?.code, 'CPX_CLIENT_FORBIDDEN', target)
    t.assert.equal(body?.error, 'Forbidden')
  }
  t.assert.equal(o.connections(), 0)

  const allowed = await app(t, { HOST: '0.0.0.0', ALLOW_CLIENTS: '10.0.0.0/8, 127.0.0.1/32' })
  const allowedPort = await listen(allowed)
  const res = await send(allowedPort, get(`/${o.host}/x`))
  t.assert.equal(res.status, 200, describe(res))
  t.assert.equal(o.requests.length, 1)
})

test('ALLOW_CLIENTS is checked before credentials: a refused client learns nothing about authentication', async (t) => {
  const o = await origin(t)
  const instance = await app(t, { HOST: '0.0.0.0', ALLOW_CLIENTS: '10.0.0.0/8', PROXY_AUTH: `${USER}:${PASSWORD}` })
  const port = await listen(instance)
  for (const headers of [[], [['Authorization', GOOD]]] as Array<Array<[string, string]>>) {
    const res = await send(port, get(`/${o.host}/x`, headers))
    t.assert.equal(res.status, 403, describe(res))
    t.assert.equal(res.headers['www-authenticate'], undefined)
  }
  const forward = await send(port, get(`http://${o.host}/x`))
  t.assert.equal(forward.status, 403, describe(forward))
  t.assert.equal(forward.headers['proxy-authenticate'], undefined)
  t.assert.equal(o.connections(), 0)
})

test('the default ALLOW_CLIENTS (loopback, RFC 1918, ULA) when HOST is not loopback', async (t) => {
  const o = await origin(t)
  for (const host of ['0.0.0.0', '::', '192.168.1.10']) {
    const instance = await app(t, { HOST: host })
    const cases: Array<[string, number]> = [
      ['127.0.0.1', 200], ['127.8.9.10', 200], ['::1', 200], ['::ffff:127.0.0.1', 200],
      ['10.1.2.3', 200], ['172.16.5.5', 200], ['172.31.255.255', 200], ['192.168.1.1', 200], ['fd00::5', 200], ['::ffff:10.0.0.1', 200],
      ['8.8.8.8', 403], ['172.32.0.1', 403], ['100.64.0.1', 403], ['169.254.169.254', 403], ['2001:4860::1', 403],
      ['::ffff:8.8.8.8', 403], ['fe80::1', 403], ['0.0.0.0', 403]
    ]
    for (const [remoteAddress, status] of cases) {
      const res = await instance.inject({ url: `/${o.host}/x`, remoteAddress })
      t.assert.equal(res.statusCode, status, `HOST=${host}, client ${remoteAddress}: ${res.statusCode} ${res.body}`)
      if (status === 403) t.assert.equal(res.json().code, 'CPX_CLIENT_FORBIDDEN')
    }
  }
})

test('HOST on loopback serves every client (nobody else can reach it)', async (t) => {
  const o = await origin(t)
  for (const host of ['127.0.0.1', '::1', 'localhost']) {
    const instance = await app(t, { HOST: host, ALLOW_CLIENTS: '10.0.0.0/8' })
    const res = await instance.inject({ url: `/${o.host}/x`, remoteAddress: '8.8.8.8' })
    t.assert.equal(res.statusCode, 200, `HOST=${host}: ${res.body}`)
  }
})

// ---------------------------------------------------------------------------
// PROXY_AUTH

const WRONG: Array<[string, string | undefined]> = [
  ['no credentials', undefined],
  ['wrong password', basic(USER, 'nope')],
  ['password prefix', basic(USER, PASSWORD.slice(0, -1))],
  ['password with extra byte', basic(USER, PASSWORD + 'x')],
  ['wrong user', basic('mallory', PASSWORD)],
  ['user case', basic('Alice', PASSWORD)],
  ['empty password', basic(USER, '')],
  ['empty user', basic('', PASSWORD)],
  ['no colon', `Basic ${Buffer.from(USER + PASSWORD).toString('base64')}`],
  ['bearer', 'Bearer abc'],
  ['scheme only', 'Basic'],
  ['not base64', 'Basic !!!!'],
  ['two schemes', `${GOOD}, ${GOOD}`],
  ['plain user:password', `Basic ${USER}:${PASSWORD}`.replace(/[^\x20-\x7e]/g, '?')]
]

test('PROXY_AUTH: path-style requests without valid credentials get 401 with WWW-Authenticate, and no origin contact', async (t) => {
  const o = await origin(t)
  const instance = await app(t, { PROXY_AUTH: `${USER}:${PASSWORD}` })
  const port = await listen(instance)
  for (const [name, value] of WRONG) {
    const headers: Array<[string, string]> = value === undefined ? [] : [['Authorization', value]]
    const res = await send(port, get(`/${o.host}/x`, headers))
    t.assert.equal(res.status, 401, `${name}: ${describe(res)}`)
    t.assert.match(res.headers['www-authenticate'] ?? '', /^Basic realm="[^"]+"/, name)
    t.assert.equal(res.headers['proxy-authenticate'], undefined, name)
    t.assert.equal(json(res)?.error, 'Unauthorized', name)
  }
  // Proxy-Authorization is for forward-proxy requests; a path-style request answers Authorization.
  const proxyHeader = await send(port, get(`/${o.host}/x`, [['Proxy-Authorization', GOOD]]))
  t.assert.equal(proxyHeader.status, 401, describe(proxyHeader))
  const head = await send(port, requestHead('HEAD', `/${o.host}/x`, [['Connection', 'close']]), { head: true })
  t.assert.equal(head.status, 401)
  const post = await send(port, requestHead('POST', `/${o.host}/x`, [['Connection', 'close'], ['Content-Length', '2']]) + 'hi')
  t.assert.equal(post.status, 401)
  t.assert.equal(o.connections(), 0)
})

test('PROXY_AUTH: forward-proxy requests get 407 with Proxy-Authenticate', async (t) => {
  const o = await origin(t)
  const instance = await app(t, { PROXY_AUTH: `${USER}:${PASSWORD}` })
  const port = await listen(instance)
  for (const [name, value] of WRONG) {
    const headers: Array<[string, string]> = value === undefined ? [] : [['Proxy-Authorization', value]]
    const res = await send(port, get(`http://${o.host}/x`, headers))
    t.assert.equal(res.status, 407, `${name}: ${describe(res)}`)
    t.assert.match(res.headers['proxy-authenticate'] ?? '', /^Basic realm="[^"]+"/, name)
    t.assert.equal(res.headers['www-authenticate'], undefined, name)
    t.assert.equal(json(res)?.error, 'Proxy Authentication Required', name)
  }
  // The proxy's credentials in Authorization (meant for the origin) do not count.
  const misplaced = await send(port, get(`http://${o.host}/x`, [['Authorization', GOOD]]))
  t.assert.equal(misplaced.status, 407, describe(misplaced))
  t.assert.equal(o.connections(), 0)
})

test('PROXY_AUTH: correct credentials are served, and the origin never sees them', async (t) => {
  const o = await origin(t)
  const instance = await app(t, { PROXY_AUTH: `${USER}:${PASSWORD}` })
  const port = await listen(instance)

  const path = await send(port, get(`/${o.host}/path`, [['Authorization', GOOD]]))
  t.assert.equal(path.status, 200, describe(path))
  const lower = await send(port, get(`/${o.host}/lower`, [['Authorization', GOOD.replace('Basic', 'basic')]]))
  t.assert.equal(lower.status, 200, `the scheme is case-insensitive: ${describe(lower)}`)
  const both = await send(port, get(`/${o.host}/both`, [['Authorization', GOOD], ['Proxy-Authorization', GOOD]]))
  t.assert.equal(both.status, 200, describe(both))
  const forward = await send(port, get(`http://${o.host}/forward`, [['Proxy-Authorization', GOOD]]))
  t.assert.equal(forward.status, 200, describe(forward))
  const post = await send(port, requestHead('POST', `/${o.host}/post`, [['Connection', 'close'], ['Authorization', GOOD], ['Content-Length', '2']]) + 'hi')
  t.assert.equal(post.status, 200, describe(post))

  t.assert.equal(o.requests.length, 5)
  for (const request of o.requests) {
    t.assert.equal(request.headers.authorization, undefined, `${request.url} carried Authorization`)
    t.assert.equal(request.headers['proxy-authorization'], undefined, `${request.url} carried Proxy-Authorization`)
    const raw = request.rawHeaders.join('\n')
    t.assert.equal(raw.includes(GOOD.slice(6)), false, `${request.url} carried the credentials`)
  }
})

test('PROXY_AUTH: in forward-proxy form, the client\'s own Authorization for the origin goes through; Proxy-Authorization does not', async (t) => {
  const o = await origin(t)
  const instance = await app(t, { PROXY_AUTH: `${USER}:${PASSWORD}` })
  const port = await listen(instance)
  const res = await send(port, get(`http://${o.host}/x`, [['Proxy-Authorization', GOOD], ['Authorization', 'Bearer origin-token']]))
  t.assert.equal(res.status, 200, describe(res))
  t.assert.equal(o.requests[0].headers.authorization, 'Bearer origin-token')
  t.assert.equal(o.requests[0].headers['proxy-authorization'], undefined)
})

test('PROXY_AUTH: a response cached for an authenticated client is not served to an unauthenticated one', async (t) => {
  const o = await origin(t, {
    '/cached': (_req, res) => { res.writeHead(200, { 'cache-control': 'public, max-age=600' }); res.end('secret page') }
  })
  const instance = await app(t, { PROXY_AUTH: `${USER}:${PASSWORD}` })
  const port = await listen(instance)
  const first = await send(port, get(`/${o.host}/cached`, [['Authorization', GOOD]]))
  t.assert.equal(first.status, 200)
  const hit = await send(port, get(`/${o.host}/cached`, [['Authorization', GOOD]]))
  t.assert.equal(hit.headers['x-cache'], 'HIT')
  for (const [name, value] of WRONG) {
    const res = await send(port, get(`/${o.host}/cached`, value === undefined ? [] : [['Authorization', value]]))
    t.assert.equal(res.status, 401, `${name}: ${describe(res)}`)
    t.assert.equal(res.text.includes('secret page'), false)
  }
  const forward = await send(port, get(`http://${o.host}/cached`))
  t.assert.equal(forward.status, 407)
})

test('PROXY_AUTH_FILE: scrypt lines from hash-password are accepted; other passwords are not', async (t) => {
  const dir = tempDir(t)
  // The command-line tool (what `npm run hash-password -- user pw` runs, without the build).
  const tsx = import.meta.resolve('tsx')
  const script = fileURLToPath(new URL('../../src/access/hash-password.ts', import.meta.url))
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', tsx, script, 'bob', 'hunter2: with spaces'], { cwd: dir })
  const bobLine = stdout.trim()
  t.assert.match(bobLine, /^bob:scrypt\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/)
  const file = join(dir, 'users')
  writeFileSync(file, `# proxy users\n\n${hashPassword(USER, PASSWORD)}\n${bobLine}\r\n`)
  t.assert.equal(readFileSync(file, 'utf8').includes(PASSWORD), false, 'the file holds no plain password')

  const o = await origin(t)
  const instance = await app(t, { PROXY_AUTH_FILE: file })
  const port = await listen(instance)
  const ok: Array<[string, string]> = [['alice', GOOD], ['bob', basic('bob', 'hunter2: with spaces')]]
  for (const [name, value] of ok) {
    t.assert.equal((await send(port, get(`/${o.host}/${name}`, [['Authorization', value]]))).status, 200, name)
    t.assert.equal((await send(port, get(`http://${o.host}/${name}`, [['Proxy-Authorization', value]]))).status, 200, name)
  }
  for (const [name, value] of [...WRONG, ['bob with alice\'s password', basic('bob', PASSWORD)] as [string, string]]) {
    const res = await send(port, get(`/${o.host}/x`, value === undefined ? [] : [['Authorization', value]]))
    t.assert.equal(res.status, 401, name)
  }
  t.assert.equal(o.requests.length, 4)
  for (const request of o.requests) t.assert.equal(request.headers.authorization, undefined)
})

test('PROXY_AUTH_FILE: a verified credential is not re-hashed (scrypt) on every request', async (t) => {
  // One scrypt derivation takes tens of milliseconds of CPU: one per request would cap an
  // authenticated worker at a few dozen requests per second.
  const derivations: string[] = []
  const verify = basicVerifier([hashPassword(USER, PASSWORD)], counting(derivations))
  for (let i = 0; i < 21; i++) t.assert.equal(await verify(GOOD), USER)
  t.assert.equal(derivations.length, 1, 'one derivation for 21 requests with the same credentials')
})

test('PROXY_AUTH_FILE: checking passwords does not block other work (no synchronous scrypt on the event loop)', async (t) => {
  const verify = basicVerifier([hashPassword(USER, PASSWORD)])
  let settled = 0
  const guesses = Array.from({ length: 10 }, async (_, i) => { await verify(basic(USER, `guess-${i}`)); settled++ })
  // The event loop turns before any of the ten derivations is done: they run in the thread pool.
  await new Promise((resolve) => setImmediate(resolve))
  t.assert.equal(settled, 0, 'the event loop turned while the guesses were being checked')
  await Promise.all(guesses)
  t.assert.equal(settled, 10)
})

test('PROXY_AUTH_FILE: a wrong password costs the same derivation for an unknown user as for a real one (no user enumeration by timing)', async (t) => {
  const derivations: string[] = []
  const verify = basicVerifier([hashPassword(USER, PASSWORD)], counting(derivations))
  t.assert.equal(await verify(basic(USER, 'wrong')), undefined)
  t.assert.equal(await verify(basic('nobody', 'wrong')), undefined)
  t.assert.deepEqual(derivations, ['32 bytes', '32 bytes'], 'both cost one scrypt derivation of the same length')
})

/** A real scrypt that also records each derivation's key length. */
function counting (log: string[]): Derive {
  const real = promisify(scrypt) as Derive
  return async (password, salt, length) => {
    log.push(`${length} bytes`)
    return await real(password, salt, length)
  }
}

/**
 * Runs src/server.ts as a real process at LOG_LEVEL=trace with `env`, capturing all it
 * writes; waits until it answers at all (any status: with PROXY_AUTH even / is a 401).
 */
async function loggingServer (t: TestContext, env: Record<string, string>): Promise<{ port: number, output: () => string, stop: () => Promise<void> }> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('../../src/server.ts', import.meta.url))], {
    cwd: tempDir(t),
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'trace', LOG_PRETTY: 'false', CACHE_STORE: 'memory://', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })
  const deadline = Date.now() + 20_000
  for (let i = 0; i < 200 && Date.now() < deadline; i++) {
    const res = await send(port, get('/'), { timeoutMs: 1000 })
    if (res.status !== 0) break
    await sleep(100)
  }
  return {
    port,
    output: () => output,
    stop: async () => {
      await sleep(300) // let the last log lines out
      child.kill('SIGTERM')
      await Promise.race([exited, sleep(5000)])
    }
  }
}

test('credentials never appear in the logs (a real server process at LOG_LEVEL=trace)', async (t) => {
  const o = await origin(t, { '/fail': (req) => { req.socket.destroy() } })
  const secret = 'Sup3r-S3cret-Pw'
  const header = basic('carol', secret)
  const server = await loggingServer(t, { ALLOW_PRIVATE_UPSTREAMS: 'true', UPSTREAM_PORTS: '*', PROXY_AUTH: `carol:${secret}` })
  const { port } = server

  const requests: Array<[string, Array<[string, string]>]> = [
    [`/${o.host}/ok`, [['Authorization', header]]],
    [`/${o.host}/wrong`, [['Authorization', basic('carol', secret + 'x')]]],
    [`/${o.host}/wrong-user`, [['Authorization', basic(secret, secret)]]],
    [`http://${o.host}/forward`, [['Proxy-Authorization', header]]],
    [`http://${o.host}/forward-wrong`, [['Proxy-Authorization', basic('carol', `${secret}-nope`)]]],
    [`/${o.host}/fail`, [['Authorization', header]]], // a 502: error paths log more
    ['/no-such-host.invalid/x', [['Authorization', header]]],
    ['/bad host/x', [['Authorization', header]]]
  ]
  for (const [target, headers] of requests) {
    const res = await send(port, get(target, headers))
    t.assert.notEqual(res.status, 0, `${target} answered`)
  }
  await server.stop()
  const output = server.output()
  t.assert.match(output, /"msg":"request"/, 'request lines were logged')
  for (const needle of [secret, header.slice(6), Buffer.from(`carol:${secret}`).toString('base64'), `${secret}x`, `${secret}-nope`, basic(secret, secret).slice(6), basic('carol', secret + 'x').slice(6)]) {
    t.assert.equal(output.includes(needle), false, `the logs contain ${JSON.stringify(needle)}:\n${output.split('\n').filter((line) => line.includes(needle)).join('\n')}`)
  }
})

test('credentials in an upstream URL (userinfo) are refused and not logged', async (t) => {
  const server = await loggingServer(t, {})
  const { port } = server
  for (const target of ['/dave:Url-Secret-1@example.com/x', '/http://dave:Url-Secret-1@example.com/x', 'http://dave:Url-Secret-1@example.com/x']) {
    const res = await send(port, get(target))
    t.assert.equal(res.status, 400, `${target}: ${describe(res)}`)
  }
  await server.stop()
  const output = server.output()
  t.assert.match(output, /"msg":"request"/)
  t.assert.equal(output.includes('Url-Secret-1'), false, `the logs contain the URL password:\n${output.split('\n').filter((line) => line.includes('Url-Secret-1')).join('\n')}`)
})

// ---------------------------------------------------------------------------
// RATE_LIMIT_PER_MINUTE

test('RATE_LIMIT_PER_MINUTE=5: the 6th request from one client is 429; other clients are counted apart', async (t) => {
  const o = await origin(t)
  const instance = await app(t, { RATE_LIMIT_PER_MINUTE: '5' })
  const port = await listen(instance)
  for (let i = 1; i <= 5; i++) {
    const res = await send(port, get(`/${o.host}/n${i}`))
    t.assert.equal(res.status, 200, `request ${i}: ${describe(res)}`)
  }
  const sixth = await send(port, get(`/${o.host}/n6`))
  t.assert.equal(sixth.status, 429, describe(sixth))
  t.assert.equal(json(sixth)?.error, 'Too Many Requests')
  t.assert.match(sixth.headers['retry-after'] ?? '', /^\d+$/)
  t.assert.equal(o.requests.length, 5, 'the refused request never reached the origin')
  const other = await instance.inject({ url: `/${o.host}/other`, remoteAddress: '10.9.9.9' })
  t.assert.equal(other.statusCode, 200)
})

test('RATE_LIMIT_PER_MINUTE counts cache hits too', async (t) => {
  const o = await origin(t, {
    '/cached': (_req, res) => { res.writeHead(200, { 'cache-control': 'public, max-age=600' }); res.end('cached') }
  })
  const instance = await app(t, { RATE_LIMIT_PER_MINUTE: '5' })
  const port = await listen(instance)
  const statuses: number[] = []
  for (let i = 1; i <= 6; i++) statuses.push((await send(port, get(`/${o.host}/cached`))).status)
  t.assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429])
})

test('RATE_LIMIT_PER_MINUTE throttles password guessing (failed credentials count)', async (t) => {
  const o = await origin(t)
  const instance = await app(t, { RATE_LIMIT_PER_MINUTE: '5', PROXY_AUTH: `${USER}:${PASSWORD}` })
  const port = await listen(instance)
  const statuses: number[] = []
  for (let i = 1; i <= 6; i++) statuses.push((await send(port, get(`/${o.host}/x`, [['Authorization', basic(USER, `guess${i}`)]]))).status)
  t.assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429])
  // Guessing right after the limit is still refused.
  const right = await send(port, get(`/${o.host}/x`, [['Authorization', GOOD]]))
  t.assert.equal(right.status, 429)
  t.assert.equal(o.connections(), 0)
})
