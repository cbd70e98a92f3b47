import { test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.ts'
import { cacheKey } from '../../src/cache/cache-key.ts'
import { testConfig } from '../helpers/app.ts'
import { connect, get, json, listen, send, tableResolver, type RawResponse } from '../helpers/raw-http.ts'
import { echoOrigin, type OriginHandler, type Origin, type OriginRequest } from '../helpers/origin.ts'
import { waitFor } from '../helpers/poll.ts'

type Env = Record<string, string>

// Both names resolve to the one local origin; the Host header it receives tells them apart.
const NAMES = { 'good.test': '127.0.0.1', 'evil.test': '127.0.0.1' }

async function setup (t: TestContext, env: Env = {}, routes: Record<string, OriginHandler> = {}): Promise<{ app: FastifyInstance, port: number, origin: Origin }> {
  const origin = await echoOrigin(routes)
  t.after(() => origin.close())
  const app = await buildApp(testConfig({ MAX_BODY_BYTES: '1024', UPSTREAM_TIMEOUT_MS: '3000', ...env }), { resolver: tableResolver(NAMES) })
  t.after(async () => { await app.close() })
  return { app, port: await listen(app), origin }
}

function describe (res: RawResponse): string {
  return `${res.status}${res.closed ? ' (closed)' : ''}${res.timedOut ? ' (timed out)' : ''} ${JSON.stringify(res.raw.toString('latin1').slice(0, 300))}`
}

/** A request head (keep-alive unless the headers say otherwise) and an optional body. */
function req (method: string, target: string, headers: Array<[string, string]> = [], body: string | Buffer = ''): Buffer {
  const head = [`${method} ${target} HTTP/1.1`, 'Host: proxy.test', ...headers.map(([n, v]) => `${n}: ${v}`)].join('\r\n') + '\r\n\r\n'
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.isBuffer(body) ? body : Buffer.from(body, 'latin1')])
}

function chunked (total: number, size: number): string {
  let out = ''
  for (let sent = 0; sent < total; sent += size) {
    const n = Math.min(size, total - sent)
    out += `${n.toString(16)}\r\n${'b'.repeat(n)}\r\n`
  }
  return out + '0\r\n\r\n'
}

// What an entry expects of the requests the origin received while it ran.
type OriginCheck = 'none' | 'good' | ((requests: OriginRequest[]) => string | undefined)

interface Case {
  name: string
  data: Buffer | string
  status: number | number[]
  /** The server must close the connection (the request was sent keep-alive). */
  closed?: boolean
  origin?: OriginCheck
  head?: boolean
}

interface Failure { name: string, problem: string }

/** Sends every case on its own connection and collects what did not match. */
async function runCorpus (port: number, origin: Origin, goodHost: string, cases: Case[]): Promise<Failure[]> {
  const failures: Failure[] = []
  for (const c of cases) {
    const before = origin.requests.length
    const res = await send(port, c.data, { closeWaitMs: c.closed === true ? 1000 : 0, timeoutMs: 5000, head: c.head })
    await sleep(5)
    const arrived = origin.requests.slice(before)
    const statuses = Array.isArray(c.status) ? c.status : [c.status]
    if (!statuses.includes(res.status)) failures.push({ name: c.name, problem: `expected ${statuses.join('|')}, got ${describe(res)}` })
    if (c.closed === true && !res.closed) failures.push({ name: c.name, problem: `connection left open after ${res.status}` })
    const check = c.origin ?? (statuses.every((s) => s >= 400) ? 'none' : 'good')
    if (check === 'none' && arrived.length > 0) {
      failures.push({ name: c.name, problem: `reached the origin: ${arrived.map((r) => `${r.method} ${r.url.slice(0, 80)}`).join(', ')}` })
    } else if (check === 'good') {
      for (const r of arrived) if (r.headers.host !== goodHost) failures.push({ name: c.name, problem: `origin saw Host ${r.headers.host} for ${r.url.slice(0, 80)}` })
    } else if (typeof check === 'function') {
      const problem = check(arrived)
      if (problem !== undefined) failures.push({ name: c.name, problem })
    }
  }
  return failures
}

function report (failures: Failure[]): string {
  return `${failures.length} case(s) failed:\n` + failures.map((f) => `  - ${f.name}: ${f.problem}`).join('\n')
}

const UNKEYED_HEADERS: Array<[string, string]> = [
  ['X-Forwarded-Host', 'evil.test'],
  ['X-Forwarded-For', '6.6.6.6'],
  ['X-Forwarded-Proto', 'https'],
  ['X-Forwarded-Port', '443'],
  ['X-Forwarded-Prefix', '/evil'],
  ['X-Forwarded-Scheme', 'https'],
  ['X-Forwarded-Server', 'evil.test'],
  ['X-Forwarded-Ssl', 'on'],
  ['X-Forwarded-Uri', '/admin'],
  ['X-Forwarded-Path', '/admin'],
  ['X-Forwarded-Url', 'http://evil.test/admin'],
  ['X-Original-URL', '/admin'],
  ['X-Original-Host', 'evil.test'],
  ['X-Rewrite-URL', '/admin'],
  ['X-HTTP-Method-Override', 'DELETE'],
  ['X-HTTP-Method', 'DELETE'],
  ['X-Method-Override', 'DELETE'],
  ['Forwarded', 'for=6.6.6.6;host=evil.test;proto=https'],
  ['X-Host', 'evil.test'],
  ['X-Real-IP', '6.6.6.6'],
  // hop-by-hop
  ['Proxy-Connection', 'keep-alive'],
  ['Keep-Alive', 'timeout=99'],
  ['TE', 'trailers'],
  ['Trailer', 'X-Evil'],
  ['Proxy-Authorization', 'Basic ZXZpbDpldmls']
]

test('hostile input: a corpus of raw requests, each answered with its expected status, then a normal request works', async (t) => {
  const { port, origin } = await setup(t)
  const P = origin.port
  const G = `/good.test:${P}`
  const good = `good.test:${P}`
  const noBody = (requests: OriginRequest[]): string | undefined => requests.some((r) => r.body.length > 0) ? 'a body reached the origin' : undefined
  const cases: Case[] = []
  const add = (name: string, data: Buffer | string, status: number | number[], extra: Partial<Case> = {}): void => { cases.push({ name, data, status, ...extra }) }

  // -- Request target length: MAX_URL_BYTES (8192) → 414; beyond Node's header limit → 431.
  const pad = (total: number, prefix: string): string => prefix + '/' + 'a'.repeat(total - prefix.length - 1)
  add('target of exactly MAX_URL_BYTES', req('GET', pad(8192, G)), 200)
  add('target of MAX_URL_BYTES + 1', req('GET', pad(8193, G)), 414)
  add('target of 12 KiB', req('GET', pad(12_000, G)), 414)
  add('target of 16 000 bytes', req('GET', pad(16_000, G)), 414)
  add('target of 17 000 bytes (over Node\'s header limit)', req('GET', pad(17_000, G)), 431, { closed: true })
  add('forward-proxy target over MAX_URL_BYTES', req('GET', `http://${good}/${'a'.repeat(9000)}`), 414)
  add('query over MAX_URL_BYTES', req('GET', `${G}/q?${'x=1&'.repeat(2500)}`), 414)
  add('HEAD target over MAX_URL_BYTES', req('HEAD', pad(9000, G)), 414, { head: true })
  add('POST target over MAX_URL_BYTES', req('POST', pad(9000, G), [['Content-Length', '2']], 'hi'), 414)

  // -- Header size: Node's limit (16 KiB) → 431.
  add('one 17 KB header', req('GET', `${G}/h`, [['X-Big', 'a'.repeat(17_000)]]), 431, { closed: true })
  add('3000 small headers', req('GET', `${G}/h`, Array.from({ length: 3000 }, (_, i) => [`X-A${i}`, '1'] as [string, string])), 431, { closed: true })
  add('400 headers of 50 bytes', req('GET', `${G}/h`, Array.from({ length: 400 }, (_, i) => [`X-B${i}`, 'b'.repeat(40)] as [string, string])), 431, { closed: true })
  add('a 15 KB header (under the limit)', req('GET', `${G}/h15`, [['X-Big', 'a'.repeat(15_000)]]), 200)
  add('obsolete line folding', req('GET', `${G}/h`, [['X-A', '1\r\n  folded']]), 400, { closed: true })

  // -- Bodies: MAX_BODY_BYTES (1024 here) → 413, declared or chunked.
  add('POST Content-Length 1025', req('POST', `${G}/b`, [['Content-Length', '1025']], 'a'.repeat(1025)), 413)
  add('POST Content-Length 1024 (the limit)', req('POST', `${G}/b`, [['Content-Length', '1024']], 'a'.repeat(1024)), 200)
  add('POST Content-Length 10^10, no body sent', req('POST', `${G}/b`, [['Content-Length', '10000000000']]), 413)
  add('PUT Content-Length 5000', req('PUT', `${G}/b`, [['Content-Length', '5000']], 'a'.repeat(5000)), 413)
  add('DELETE Content-Length 2000', req('DELETE', `${G}/b`, [['Content-Length', '2000']], 'a'.repeat(2000)), 413)
  add('PATCH Content-Length 2000 with a JSON type', req('PATCH', `${G}/b`, [['Content-Length', '2000'], ['Content-Type', 'application/json']], '"' + 'a'.repeat(1998) + '"'), 413)
  add('POST Content-Length 5000 with Expect: 100-continue', req('POST', `${G}/b`, [['Content-Length', '5000'], ['Expect', '100-continue']]), 413)
  add('POST chunked 2000 bytes in one chunk', req('POST', `${G}/b`, [['Transfer-Encoding', 'chunked']], chunked(2000, 2000)), 413, { origin: 'none' })
  add('POST chunked 2000 bytes in 100-byte chunks', req('POST', `${G}/b`, [['Transfer-Encoding', 'chunked']], chunked(2000, 100)), 413, { origin: 'none' })
  add('PUT chunked 1025 bytes', req('PUT', `${G}/b`, [['Transfer-Encoding', 'chunked']], chunked(1025, 1025)), 413, { origin: 'none' })
  add('POST chunked 1000 bytes (under the limit)', req('POST', `${G}/b`, [['Transfer-Encoding', 'chunked']], chunked(1000, 250)), 200)
  add('GET with a 5000-byte body (not forwarded)', req('GET', `${G}/getbody`, [['Content-Length', '5000']], 'a'.repeat(5000)), [200, 413], { origin: noBody })

  // -- Path traversal never changes the upstream host.
  const traversal = [
    `${G}/../../evil.test:${P}/x`, `${G}/%2e%2e/%2e%2e/evil.test:${P}/x`, `${G}/%2E%2E/evil.test:${P}/x`, `${G}/..%2f..%2fevil.test:${P}/x`,
    `${G}/.%2e/evil.test:${P}/x`, `${G}/%2e./evil.test:${P}/x`, `${G}/a/../../../../x`, `${G}/./././x`, `${G}//evil.test:${P}/x`,
    `${G}/..;/..;/evil.test:${P}/x`, `${G}/%252e%252e/evil.test:${P}/x`, `${G}#@evil.test:${P}/x`, `${G}?@evil.test:${P}/x`,
    `${G}/..`, `${G}/%2e%2e`, `/http://good.test:${P}/../evil.test:${P}/x`, `/http:/good.test:${P}/x`,
    `http://good.test:${P}/../../evil.test:${P}/x`, `http://good.test:${P}/%2e%2e/evil.test:${P}/x`
  ]
  // 200 from good.test, or 400 (@fastify/reply-from refuses some encoded dot segments): never another host.
  for (const target of traversal) add(`traversal ${target}`, req('GET', target), [200, 400])
  const malformed = [
    `${G}\\..\\evil.test:${P}/x`, `${G}/a\\b`, `${G}%5c..%5cevil.test:${P}/x`, `/..//evil.test:${P}/x`, `/../good.test:${P}/x`,
    `/%2e%2e/evil.test:${P}/x`, `/./evil.test:${P}/x`, `//evil.test:${P}/x`, `///evil.test:${P}/x`, `${G}@evil.test:${P}/x`,
    `${G}%40evil.test:${P}/x`, `/good.test%2fevil.test:${P}/x`, `/good.test%2f..%2fevil.test:${P}/x`, `/http:/\\evil.test:${P}/x`,
    `/http:\\\\evil.test:${P}/x`, `/good.test:${P}:${P}/x`, `/good.test:${P}%00/x`, `/good.test%00.evil.test:${P}/x`,
    `/good.test:${P};@evil.test:${P}/x`, `http://good.test:${P}\\@evil.test:${P}/x`, `http://good.test:${P}@evil.test:${P}/x`
  ]
  for (const target of malformed) add(`malformed ${target}`, req('GET', target), 400)
  // The Host header and unkeyed overrides do not choose the upstream either.
  add('path-style with Host: evil.test', Buffer.from(`GET ${G}/host HTTP/1.1\r\nHost: evil.test:${P}\r\n\r\n`), 200)
  add('forward-proxy with Host: evil.test', Buffer.from(`GET http://${good}/host HTTP/1.1\r\nHost: evil.test:${P}\r\n\r\n`), 200)
  add('X-Forwarded-Host / X-Original-URL overrides', req('GET', `${G}/override`, [['X-Forwarded-Host', `evil.test:${P}`], ['X-Original-URL', `/evil.test:${P}/x`], ['X-Rewrite-URL', '/admin']]), 200,
    { origin: (requests) => requests.every((r) => r.url === '/override' && r.headers.host === good) ? undefined : JSON.stringify(requests.map((r) => [r.url, r.headers.host])) })

  // -- CR, LF, NUL and other controls in the target → 400; encoded ones stay encoded.
  for (const [name, char] of [['CR', '\r'], ['LF', '\n'], ['NUL', '\0'], ['TAB', '\t'], ['DEL', '\x7f'], ['space', ' '], ['byte 0xE9', '\xe9'], ['byte 0x01', '\x01']]) {
    add(`${name} in the path`, req('GET', `${G}/a${char}b`), 400, { closed: true })
    add(`${name} in the host`, req('GET', `/good${char}.test:${P}/x`), 400, { closed: true })
  }
  add('CRLF + header in the target', req('GET', `${G}/a\r\nX-Injected: yes`), 400, { closed: true })
  // Node's parser takes a request line without a version as HTTP/0.9 (and still reads headers).
  add('a request line without an HTTP version', `GET ${G}/no-version\r\nHost: x\r\n\r\n`, [400, 505], { closed: true })
  add('encoded CRLF in the path stays encoded', req('GET', `${G}/a%0d%0aX-Injected:%20yes`), 200, {
    origin: (requests) => requests.length === 1 && requests[0].url === '/a%0d%0aX-Injected:%20yes' && requests[0].headers['x-injected'] === undefined ? undefined : JSON.stringify(requests.map((r) => [r.url, r.headers]))
  })
  add('encoded NUL in the path stays encoded', req('GET', `${G}/a%00b`), 200, { origin: (requests) => requests[0]?.url === '/a%00b' ? undefined : JSON.stringify(requests.map((r) => r.url)) })
  // Malformed or non-UTF-8 percent-encoding: proxied as is, or 400; never a 500.
  for (const tail of ['/%', '/%zz', '/a%E9', '/%C0%AF', '/a?%', '/a?q=%zz', '/a?q=%E9', '/a?q=caf%E9', '/a?%%%', '/a?q=%ED%A0%80']) {
    add(`malformed percent-encoding ${tail}`, req('GET', `${G}${tail}`), [200, 400])
  }
  add('encoded CRLF in the host', req('GET', `/good.test%0d%0a:${P}/x`), 400)
  add('encoded CRLF in the port', req('GET', `/good.test:${P}%0d%0aX:1/x`), 400)
  add('CR in a header value', req('GET', `${G}/h`, [['X-A', 'a\rb']]), 400, { closed: true })
  add('NUL in a header value', req('GET', `${G}/h`, [['X-A', 'a\0b']]), 400, { closed: true })
  add('space in a header name', req('GET', `${G}/h`, [['X A', '1']]), 400, { closed: true })
  add('space before the colon', req('GET', `${G}/h`, [['X-A ', '1']]), 400, { closed: true })

  // -- Conflicting framing → 400 and the connection closed (request smuggling).
  const framing: Array<[string, Array<[string, string]>, string]> = [
    ['Content-Length and Transfer-Encoding', [['Content-Length', '5'], ['Transfer-Encoding', 'chunked']], '0\r\n\r\n'],
    ['Transfer-Encoding and Content-Length', [['Transfer-Encoding', 'chunked'], ['Content-Length', '3']], '0\r\n\r\n'],
    ['two different Content-Lengths', [['Content-Length', '5'], ['Content-Length', '6']], 'aaaaaa'],
    ['two equal Content-Lengths', [['Content-Length', '5'], ['Content-Length', '5']], 'aaaaa'],
    ['Content-Length list', [['Content-Length', '5, 5']], 'aaaaa'],
    ['negative Content-Length', [['Content-Length', '-1']], ''],
    ['signed Content-Length', [['Content-Length', '+5']], 'aaaaa'],
    ['hex Content-Length', [['Content-Length', '0x5']], 'aaaaa'],
    ['Transfer-Encoding xchunked', [['Transfer-Encoding', 'xchunked']], '0\r\n\r\n'],
    ['Transfer-Encoding chunked, gzip (chunked not last)', [['Transfer-Encoding', 'chunked, gzip']], '0\r\n\r\n'],
    ['Transfer-Encoding identity', [['Transfer-Encoding', 'identity']], ''],
    ['Transfer-Encoding twice', [['Transfer-Encoding', 'chunked'], ['Transfer-Encoding', 'chunked']], '0\r\n\r\n'],
    ['invalid chunk size', [['Transfer-Encoding', 'chunked']], 'zz\r\naa\r\n0\r\n\r\n'],
    ['Transfer-Encoding with space before the colon', [['Transfer-Encoding ', 'chunked']], '0\r\n\r\n'],
    ['Transfer-Encoding with a vertical tab', [['Transfer-Encoding', '\vchunked']], '0\r\n\r\n']
  ]
  for (const [name, headers, body] of framing) add(name, req('POST', `${G}/framing`, headers, body), 400, { closed: true })
  add('smuggled request behind CL + TE', req('POST', `${G}/front`, [['Content-Length', '44'], ['Transfer-Encoding', 'chunked']], `0\r\n\r\nGET ${G}/smuggled HTTP/1.1\r\nHost: x\r\n\r\n`), 400, { closed: true })
  add('smuggled request behind TE + CL', req('POST', `${G}/front`, [['Transfer-Encoding', 'chunked'], ['Content-Length', '4']], `5c\r\nGET ${G}/smuggled HTTP/1.1\r\nHost: x\r\n\r\n\r\n0\r\n\r\n`), 400, { closed: true })

  // -- Methods: every one Node's parser knows is forwarded (it refuses the ones it does not know: 400).
  for (const method of ['PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'SEARCH', 'REPORT', 'MKACTIVITY', 'CHECKOUT', 'MERGE', 'M-SEARCH', 'NOTIFY', 'SUBSCRIBE', 'UNSUBSCRIBE', 'MKCALENDAR', 'LINK', 'UNLINK', 'ACL', 'BIND', 'REBIND', 'UNBIND', 'SOURCE']) {
    add(`method ${method}`, req(method, `${G}/m`), 200)
  }
  // PURGE purges this cache (plugins/admin.ts, loopback client): answered here, 200 { purged: 0 }.
  add('method PURGE', req('PURGE', `${G}/m`), 200)
  // A QUERY without its Content-Type is refused by Fastify (the method carries a body).
  add('method QUERY without Content-Type', req('QUERY', `${G}/m`), 400)
  // CONNECT opens tunnels only to CONNECT_PORTS (443 by default): see test/connect.test.ts.
  add('method CONNECT', req('CONNECT', good), 403)
  add('method CONNECT (path form)', req('CONNECT', `${G}/m`), 400)
  for (const method of ['FOO', 'get', 'Get', 'BREW', 'G-E-T', 'GETT', 'POSTX']) add(`unknown method ${method}`, req(method, `${G}/m`), 400, { closed: true })
  add('method PRI (HTTP/2 preface)', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 400, { closed: true })

  // -- Garbage: answered 400 (or dropped) and that socket closed.
  const garbage: Array<[string, Buffer | string]> = [
    ['a TLS ClientHello', Buffer.from('16030100f8010000f40303' + '00'.repeat(40), 'hex')],
    ['NUL bytes', Buffer.alloc(64)],
    ['0xFF bytes', Buffer.alloc(64, 0xff)],
    ['an SSH banner', 'SSH-2.0-OpenSSH_9.6\r\n'],
    ['a response instead of a request', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'],
    ['HTTP/1.2', `GET ${G}/ HTTP/1.2\r\nHost: x\r\n\r\n`],
    ['HTTP/3.0', `GET ${G}/ HTTP/3.0\r\nHost: x\r\n\r\n`],
    ['JSON', '{"method":"GET","url":"/"}\r\n\r\n'],
    ['a bare word', 'hello\r\n\r\n'],
    ['binary noise', Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 73 + 41) % 256))],
    ['a request line without a target', 'GET  HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['HTTP/1.1 without Host', `GET ${G}/ HTTP/1.1\r\n\r\n`]
  ]
  for (const [name, data] of garbage) add(`garbage: ${name}`, data, 400, { closed: true })

  // -- Unkeyed override headers and hop-by-hop fields never reach the origin.
  for (const [name, value] of UNKEYED_HEADERS) {
    const lower = name.toLowerCase()
    add(`header ${name} is not forwarded`, req('GET', `${G}/unkeyed/${lower}`, [[name, value]]), 200, {
      origin: (requests) => requests.length === 1 && requests[0].headers[lower] === undefined && requests[0].url === `/unkeyed/${lower}` && requests[0].method === 'GET'
        ? undefined
        : `origin saw ${JSON.stringify(requests.map((r) => [r.method, r.url, r.headers[lower]]))}`
    })
  }
  add('a header named in Connection is not forwarded', req('GET', `${G}/conn`, [['Connection', 'keep-alive, X-Secret-Hop'], ['X-Secret-Hop', '1']]), 200, {
    origin: (requests) => requests[0]?.headers['x-secret-hop'] === undefined ? undefined : 'x-secret-hop reached the origin'
  })
  add('Upgrade is not forwarded', req('GET', `${G}/up`, [['Connection', 'Upgrade'], ['Upgrade', 'websocket']]), [200, 400, 426, 501], {
    origin: (requests) => requests.some((r) => r.headers.upgrade !== undefined) ? 'Upgrade reached the origin' : undefined
  })

  // -- Max-Forwards: TRACE answered here at 0, without echoing credentials or cookies.
  add('TRACE with Max-Forwards: 0', req('TRACE', `${G}/trace`, [['Max-Forwards', '0'], ['Cookie', 'session=s3cret'], ['Authorization', 'Basic c2VjcmV0OnNlY3JldA==']]), 200, { origin: 'none' })
  add('OPTIONS *', req('OPTIONS', '*'), 400)

  t.assert.equal(cases.length >= 100, true, `only ${cases.length} cases`)
  const failures = await runCorpus(port, origin, good, cases)
  t.diagnostic(`${cases.length} raw requests`)

  // Whatever happened, no request went anywhere but good.test, and no request carried a smuggled path.
  const wrong = origin.requests.filter((r) => r.headers.host !== good || r.url.includes('smuggled'))
  t.assert.deepEqual(wrong.map((r) => [r.headers.host, r.url.slice(0, 60)]), [])
  // After the corpus, a normal request still works.
  const normal = await send(port, get(`${G}/after`))
  t.assert.equal(normal.status, 200, describe(normal))
  t.assert.equal(json(normal)?.url, '/after')
  t.assert.equal(failures.length, 0, report(failures))
})

test('a body over MAX_BODY_BYTES that is never forwarded (answered here, or refused first) does not crash the process', async (t) => {
  const { port, origin } = await setup(t)
  const G = `/good.test:${origin.port}`
  const big = chunked(3000, 1000)
  const cases: Array<[string, Buffer]> = [
    // OPTIONS at Max-Forwards 0 is answered by the proxy itself: the body is parsed but never read.
    ['OPTIONS, Max-Forwards: 0, chunked body', req('OPTIONS', `${G}/opt`, [['Max-Forwards', '0'], ['Transfer-Encoding', 'chunked'], ['Connection', 'close']], big)],
    ['OPTIONS, Max-Forwards: 0, chunked body, JSON type', req('OPTIONS', `${G}/opt`, [['Max-Forwards', '0'], ['Content-Type', 'application/json'], ['Transfer-Encoding', 'chunked'], ['Connection', 'close']], big)],
    // The request fails before reply-from reads the body.
    ['POST ?q=%E9, chunked body', req('POST', `${G}/post?q=%E9`, [['Transfer-Encoding', 'chunked'], ['Connection', 'close']], big)],
    ['DELETE ?a=%, chunked body', req('DELETE', `${G}/del?a=%`, [['Transfer-Encoding', 'chunked'], ['Connection', 'close']], big)]
  ]
  for (const [name, data] of cases) {
    const res = await send(port, data, { timeoutMs: 3000 })
    t.assert.equal(res.status >= 200 && res.status < 500, true, `${name}: ${describe(res)}`)
    await sleep(50)
    const normal = await send(port, get(`${G}/alive`))
    t.assert.equal(normal.status, 200, `after ${name}: ${describe(normal)}`)
  }
})

test('TRACE at Max-Forwards 0 echoes neither cookies nor credentials', async (t) => {
  const { port, origin } = await setup(t)
  const res = await send(port, req('TRACE', `/good.test:${origin.port}/trace`, [['Max-Forwards', '0'], ['Cookie', 'session=s3cret'], ['Authorization', 'Basic c2VjcmV0OnNlY3JldA=='], ['Proxy-Authorization', 'Basic cHJveHk6cHJveHk=']]))
  t.assert.equal(res.status, 200, describe(res))
  t.assert.equal(/s3cret|c2VjcmV0|cHJveHk/.test(res.text), false, res.text)
  t.assert.equal(origin.connections(), 0)
})

test('garbage on one socket closes that socket only; a kept-alive connection goes on working', async (t) => {
  const { port, origin } = await setup(t)
  const G = `/good.test:${origin.port}`
  const keep = await connect(port)
  t.after(() => keep.destroy())
  const first = await keep.exchange(req('GET', `${G}/one`))
  t.assert.equal(first.status, 200, describe(first))
  const junk = await send(port, Buffer.from('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n', 'latin1'), { closeWaitMs: 1000 })
  t.assert.equal(junk.closed, true)
  t.assert.equal(junk.status === 0 || (junk.status >= 400 && junk.status < 500), true, describe(junk))
  // Garbage arriving in the middle of a keep-alive exchange (after a valid request) also closes only that socket.
  const mixed = await connect(port)
  t.after(() => mixed.destroy())
  const ok = await mixed.exchange(req('GET', `${G}/two`))
  t.assert.equal(ok.status, 200)
  const bad = await mixed.exchange(Buffer.from('\x00\x01\x02\x03 NOT HTTP\r\n\r\n', 'latin1'))
  t.assert.equal(bad.status === 0 || bad.status === 400, true, describe(bad))
  t.assert.equal(await mixed.waitClosed(1000), true)
  t.assert.equal(keep.closed(), false)
  const second = await keep.exchange(req('GET', `${G}/three`))
  t.assert.equal(second.status, 200, describe(second))
  t.assert.equal(json(second)?.url, '/three')
})

test('slowloris: a client sending its headers slowly is cut off within CLIENT_HEADERS_TIMEOUT_MS', async (t) => {
  const { port, origin } = await setup(t, { CLIENT_HEADERS_TIMEOUT_MS: '500', CLIENT_REQUEST_TIMEOUT_MS: '5000' })
  const head = `GET /good.test:${origin.port}/slow HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(60)}\r\n\r\n`
  // One byte every 100 ms: the whole head would take ~9 s.
  const res = await send(port, head.split(''), { gapMs: 100, timeoutMs: 8000, closeWaitMs: 500 })
  t.assert.equal(res.closed, true, `still open after ${res.elapsedMs} ms: ${describe(res)}`)
  t.assert.equal(res.timedOut, false)
  t.assert.equal(res.status === 0 || res.status === 408, true, describe(res))
  // headersTimeout is checked every connectionsCheckingInterval (min(1000, 500) ms): at most ~1 s, plus slack.
  t.assert.equal(res.elapsedMs >= 400 && res.elapsedMs < 2500, true, `cut off after ${res.elapsedMs} ms`)
  t.assert.equal(origin.connections(), 0)
  // Several slow clients at once do not keep a normal one out.
  const slow = Array.from({ length: 20 }, () => send(port, head.split(''), { gapMs: 100, timeoutMs: 8000, closeWaitMs: 500 }))
  const normal = await send(port, get(`/good.test:${origin.port}/fast`))
  t.assert.equal(normal.status, 200)
  for (const r of await Promise.all(slow)) t.assert.equal(r.closed && r.elapsedMs < 2500, true, describe(r))
})

test('a client sending its body slowly is cut off within CLIENT_REQUEST_TIMEOUT_MS', async (t) => {
  const { port, origin } = await setup(t, { CLIENT_HEADERS_TIMEOUT_MS: '500', CLIENT_REQUEST_TIMEOUT_MS: '1500', MAX_BODY_BYTES: '100000' })
  const parts = [`POST /good.test:${origin.port}/slow-body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n`, ...'b'.repeat(100).split('')]
  const res = await send(port, parts, { gapMs: 100, timeoutMs: 9000, closeWaitMs: 500 })
  t.assert.equal(res.closed, true, `still open after ${res.elapsedMs} ms: ${describe(res)}`)
  t.assert.equal(res.elapsedMs < 3500, true, `cut off after ${res.elapsedMs} ms`)
  t.assert.notEqual(res.status, 200, describe(res))
  t.assert.equal(origin.requests.length, 0, 'the origin never got a complete request')
})

test('idle keep-alive connections are closed after KEEP_ALIVE_TIMEOUT_MS', async (t) => {
  const { port, origin } = await setup(t, { KEEP_ALIVE_TIMEOUT_MS: '300' })
  const conn = await connect(port)
  t.after(() => conn.destroy())
  const res = await conn.exchange(req('GET', `/good.test:${origin.port}/ka`))
  t.assert.equal(res.status, 200)
  const started = Date.now()
  t.assert.equal(await conn.waitClosed(3000), true, 'the idle connection was closed')
  t.assert.equal(Date.now() - started < 2000, true, `closed after ${Date.now() - started} ms`)
})

// An upstream that breaks mid-body: the client must see an error, never a complete-looking 200, and nothing is stored.
const BROKEN: Record<string, OriginHandler> = {
  '/reset-length': (_req, res) => {
    res.writeHead(200, { 'cache-control': 'public, max-age=600', 'content-type': 'application/octet-stream', 'content-length': '100000' })
    res.write(Buffer.alloc(20_000, 97), () => setTimeout(() => res.socket?.destroy(), 50))
  },
  '/reset-chunked': (_req, res) => {
    res.writeHead(200, { 'cache-control': 'public, max-age=600', 'content-type': 'application/octet-stream' })
    res.write(Buffer.alloc(20_000, 97), () => setTimeout(() => res.socket?.destroy(), 50))
  },
  '/stall': (_req, res) => {
    res.writeHead(200, { 'cache-control': 'public, max-age=600', 'content-length': '100000' })
    res.write(Buffer.alloc(20_000, 97)) // ... and never more
  }
}

test('an upstream that resets mid-body ends the client response as an error, and nothing is stored', async (t) => {
  const { app, port, origin } = await setup(t, { UPSTREAM_TIMEOUT_MS: '700' }, BROKEN)
  for (const path of Object.keys(BROKEN)) {
    const target = `/good.test:${origin.port}${path}`
    const before = origin.requests.length
    for (const form of ['keep-alive', 'close']) {
      const res = await send(port, form === 'close' ? get(target) : req('GET', target), { timeoutMs: 5000, closeWaitMs: 300 })
      t.assert.equal(res.timedOut, false, `${path} (${form}): no end within 5 s`)
      const complete = res.status === 200 && !res.truncated && res.closed === false
      const declared = res.headers['content-length'] === undefined && !/chunked/i.test(res.headers['transfer-encoding'] ?? '')
      t.assert.equal(complete, false, `${path} (${form}): looked complete: ${describe(res)}`)
      if (res.status === 200) {
        t.assert.equal(res.closed, true, `${path} (${form}): connection must be closed after a broken body`)
        t.assert.equal(declared, false, `${path} (${form}): a close-delimited 200 cannot be told from a complete one: ${JSON.stringify(res.headers)}`)
        t.assert.equal(res.truncated, true, `${path} (${form}): ${describe(res)}`)
      } else {
        t.assert.equal([502, 504].includes(res.status), true, `${path} (${form}): ${describe(res)}`)
      }
    }
    await sleep(100)
    t.assert.equal(await app.cache.store.get(cacheKey(new URL(`http://good.test:${origin.port}${path}`))), undefined, `${path} was stored`)
    t.assert.equal(origin.requests.length - before <= 2, true)
    // Not served from the cache afterwards either: the next request goes to the origin again.
    const again = await send(port, get(target), { timeoutMs: 5000 })
    t.assert.notEqual(again.headers['x-cache'], 'HIT', `${path}: a broken response was served from the cache`)
  }
})

test('an upstream whose close-delimited body ends in a reset (RST) is not passed on as complete, nor stored', async (t) => {
  const { app, port, origin } = await setup(t, {}, {
    '/reset-close-delimited': (req, res) => {
      // No length, no chunking: the end of the body is the end of the connection, and here
      // that end is a TCP reset, not an orderly close.
      const socket = req.socket
      res.detachSocket(socket)
      socket.write('HTTP/1.1 200 OK\r\ncache-control: public, max-age=600\r\nconnection: close\r\n\r\n' + 'a'.repeat(20_000))
      setTimeout(() => socket.resetAndDestroy(), 50)
    }
  })
  const target = `/good.test:${origin.port}/reset-close-delimited`
  const res = await send(port, req('GET', target), { timeoutMs: 5000, closeWaitMs: 300 })
  t.assert.equal(res.timedOut, false)
  t.assert.equal(res.status === 200 && !res.truncated && !res.closed, false, `looked complete: ${describe(res)}`)
  await sleep(100)
  t.assert.equal(await app.cache.store.get(cacheKey(new URL(`http://good.test:${origin.port}/reset-close-delimited`))), undefined, 'the reset response was stored')
})

test('a background refresh does not forward unkeyed headers either', async (t) => {
  let version = 0
  const { port, origin } = await setup(t, {}, {
    '/swr': (_req, res) => {
      version++
      res.writeHead(200, { 'cache-control': 'max-age=0, stale-while-revalidate=600', etag: `"v${version}"` })
      res.end(`v${version}`)
    }
  })
  const target = `/good.test:${origin.port}/swr`
  t.assert.equal((await send(port, get(target))).status, 200)
  const stale = await send(port, get(target, UNKEYED_HEADERS.filter(([name]) => !/^(te|trailer|keep-alive|proxy-connection)$/i.test(name))))
  t.assert.equal(stale.status, 200)
  t.assert.match(stale.headers['cache-status'] ?? '', /fwd=stale/)
  t.assert.equal(await waitFor(() => origin.requests.length === 2, 3000), true, 'the background refresh ran')
  const refresh = origin.requests[1]
  const leaked = UNKEYED_HEADERS.map(([name]) => name.toLowerCase()).filter((name) => refresh.headers[name] !== undefined)
  t.assert.deepEqual(leaked, [], `the background refresh forwarded ${leaked.join(', ')}`)
})
