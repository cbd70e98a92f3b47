import { test, type TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.ts'
import { testConfig } from '../helpers/app.ts'
import { Random, seedFrom } from '../helpers/random.ts'
import { get, json, listen, send, tableResolver, type RawResponse } from '../helpers/raw-http.ts'
import { echoOrigin, type Origin } from '../helpers/origin.ts'

// Bounded fuzzing: random request targets and headers over raw sockets. Reproduce a
// failure with FUZZ_SEED=<seed printed in the failure> node --import tsx --test test/fuzz.test.ts
const SEED = seedFrom('FUZZ_SEED')
const MAX_CASES = Number(process.env.FUZZ_CASES ?? 1200)
const CONCURRENCY = 8

const SEGMENTS = ['..', '.', '%2e%2e', '%2E.', '%2f', '%5c', '%00', '%', '%zz', '%E9', '%C0%AF', '%0d%0a', '%252e', '', 'a', 'index.html', '~user', '@', ':', ';', '..;', '%40evil.test', 'evil.test', '%u002e', '\u00e9', '\u2024', '\uff0e\uff0e', '*', '$', '!', "'", '(', ')', ',', '=', '+', '&']
const QUERIES = ['', '?a=1', '?a=%', '?q=%E9', '?x=../..', '?', '??', '?a=1&a=2', '?%00', '?url=http://127.0.0.1/', '#frag', '?a=1#f', '?q=' + 'z'.repeat(50)]
const METHODS = ['GET', 'GET', 'GET', 'GET', 'GET', 'HEAD', 'HEAD', 'POST', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'PROPFIND', 'CONNECT', 'FOO', 'get', 'PURGE', 'M-SEARCH']
const CACHE_CONTROL = ['no-cache', 'no-store', 'max-age=0', 'max-age=abc', 'max-stale', 'max-stale=10', 'min-fresh=5', 'only-if-cached', 'no-transform', 'max-age=99999999999999999999', 'foo="bar', ',,,', 'max-age=-1']
const HEADER_VALUES: Record<string, (r: Random) => string> = {
  Via: (r) => r.pick(['1.1 caching-proxy', '1.1 other', '1.0 a, 1.1 b', r.printable(10), '1.1 CACHING-PROXY']),
  'Cache-Control': (r) => Array.from({ length: 1 + r.int(3) }, () => r.pick(CACHE_CONTROL)).join(', '),
  Pragma: (r) => r.pick(['no-cache', 'x', '']),
  'If-None-Match': (r) => r.pick(['*', '"v1"', 'W/"v1"', '"a", "b"', r.printable(8), '"unterminated']),
  'If-Modified-Since': (r) => r.pick([new Date(Date.now() + (r.int(200) - 100) * 86_400_000).toUTCString(), 'yesterday', '0', '']),
  'If-Match': (r) => r.pick(['*', '"v1"', 'garbage']),
  'If-Unmodified-Since': (r) => r.pick([new Date(0).toUTCString(), 'x']),
  Range: (r) => r.pick(['bytes=0-10', 'bytes=-5', 'bytes=5-', 'bytes=0-0,2-3', 'bytes=99999-', 'bytes=5-1', 'items=0-1', 'bytes=' + r.printable(6), 'bytes=0-99999999999999999999']),
  'If-Range': (r) => r.pick(['"v1"', new Date(0).toUTCString(), 'junk']),
  Authorization: (r) => r.pick(['Basic ' + Buffer.from('a:b').toString('base64'), 'Bearer ' + r.token(20), 'Basic', r.printable(12)]),
  Cookie: (r) => `s=${r.token(10)}`,
  'Accept-Encoding': (r) => r.pick(['gzip', 'br, gzip;q=0.5', '*', 'identity;q=0', r.printable(5)]),
  Accept: (r) => r.pick(['*/*', 'text/html', 'application/json;q=0.9', r.printable(7)]),
  'Accept-Language': (r) => r.pick(['en', 'fr-CH, fr;q=0.9', r.printable(4)]),
  'X-Forwarded-Host': () => 'evil.test',
  'X-Forwarded-For': () => '6.6.6.6',
  Forwarded: () => 'for=6.6.6.6;host=evil.test',
  'X-Original-URL': () => '/admin',
  'X-HTTP-Method-Override': () => 'DELETE',
  'Max-Forwards': (r) => r.pick(['0', '1', '2', '-1', 'x', '99999999999999999999']),
  Expect: (r) => r.pick(['100-continue', 'foo']),
  'Content-Type': (r) => r.pick(['application/json', 'text/plain', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', r.printable(10), '']),
  Connection: (r) => r.pick(['close', 'keep-alive', 'Upgrade', 'x-foo', 'close, te']),
  Upgrade: (r) => r.pick(['websocket', 'h2c', 'TLS/1.2']),
  TE: (r) => r.pick(['trailers', 'gzip', 'chunked']),
  'Proxy-Authorization': () => 'Basic Zm9vOmJhcg==',
  Origin: (r) => r.pick(['http://evil.test', 'null']),
  Referer: (r) => 'http://' + r.token(8) + '/',
  'User-Agent': (r) => r.printable(30)
}
const HEADER_NAMES = Object.keys(HEADER_VALUES)
const FORWARDED = ['x-forwarded-host', 'x-forwarded-for', 'forwarded', 'x-original-url', 'x-http-method-override', 'proxy-authorization']

interface FuzzCase {
  index: number
  method: string
  target: string
  data: Buffer
}

function header (r: Random): [string, string] {
  const roll = r.next()
  if (roll < 0.85) {
    const name = r.pick(HEADER_NAMES)
    return [r.chance(0.2) ? name.toUpperCase() : name, HEADER_VALUES[name](r)]
  }
  if (roll < 0.97) return [`X-${r.token(1 + r.int(12))}`, r.printable(r.int(40))]
  // Random bytes in a header value or name: the parser's business.
  return r.chance(0.5) ? [`X-Raw-${r.int(100)}`, r.bytes(1 + r.int(20), 1, 256).toString('latin1')] : [r.bytes(1 + r.int(8), 1, 256).toString('latin1'), 'v']
}

function body (r: Random, method: string, headers: Array<[string, string]>): string {
  if (!['POST', 'PUT', 'PATCH', 'DELETE'].includes(method) || r.chance(0.3)) return ''
  const size = r.chance(0.15) ? 4097 + r.int(3000) : r.int(2000)
  const content = r.printable(size)
  const roll = r.next()
  if (roll < 0.6) {
    headers.push(['Content-Length', String(size)])
    return content
  }
  if (roll < 0.9) {
    headers.push(['Transfer-Encoding', 'chunked'])
    let out = ''
    for (let at = 0; at < size;) {
      const n = Math.min(size - at, 1 + r.int(1500))
      out += `${n.toString(16)}\r\n${content.slice(at, at + n)}\r\n`
      at += n
    }
    return out + '0\r\n\r\n'
  }
  // Conflicting framing: the parser refuses it.
  headers.push(['Content-Length', String(size)], ['Transfer-Encoding', 'chunked'])
  return content
}

type TargetMaker = (r: Random) => string

function makeCase (r: Random, index: number, targets: TargetMaker): FuzzCase {
  const method = r.pick(METHODS)
  const target = targets(r)
  const headers: Array<[string, string]> = []
  const count = r.int(7)
  for (let i = 0; i < count; i++) headers.push(header(r))
  const payload = body(r, method, headers)
  const version = r.chance(0.97) ? 'HTTP/1.1' : r.pick(['HTTP/1.0', 'HTTP/2.0', 'HTTP/1.2', 'HTTP/1', 'HTTPS/1.1', ''])
  const host = r.chance(0.98) ? [['Host', r.chance(0.9) ? 'proxy.test' : r.printable(r.int(20))] as [string, string]] : []
  const head = [`${method} ${target} ${version}`.replace(/ $/, ''), ...[...host, ...headers].map(([n, v]) => `${n}: ${v}`)].join('\r\n') + '\r\n\r\n'
  return { index, method, target, data: Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(payload, 'latin1')]) }
}

function path (r: Random): string {
  const segments = Array.from({ length: r.int(6) }, () => {
    const roll = r.next()
    if (roll < 0.5) return r.token(1 + r.int(10)).replace(/[%|^`]/g, '_')
    if (roll < 0.8) return encodeURIComponent(r.printable(1 + r.int(6)))
    return r.pick(SEGMENTS)
  })
  return '/' + segments.join(r.chance(0.9) ? '/' : r.pick(['//', '/./', '\\'])) + r.pick(QUERIES)
}

function junk (r: Random): string {
  const roll = r.next()
  if (roll < 0.3) return r.printable(1 + r.int(60))
  if (roll < 0.5) return r.bytes(1 + r.int(40), 1, 256).toString('latin1')
  if (roll < 0.75) return (r.chance(0.5) ? '/' : '') + Array.from(r.bytes(1 + r.int(30)), (b) => `%${b.toString(16).padStart(2, '0')}`).join('')
  return '/' + 'a'.repeat(r.int(3000))
}

interface Outcome { fuzz: FuzzCase, res: RawResponse }

async function run (cases: FuzzCase[], port: number, deadline: number): Promise<{ outcomes: Outcome[], skipped: number }> {
  const outcomes: Outcome[] = []
  let next = 0
  let skipped = 0
  async function worker (): Promise<void> {
    while (next < cases.length) {
      const fuzz = cases[next++]
      if (Date.now() > deadline) { skipped++; continue }
      const res = await send(port, fuzz.data, { timeoutMs: 3000, head: fuzz.method === 'HEAD' })
      outcomes.push({ fuzz, res })
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  return { outcomes, skipped }
}

function show (o: Outcome): string {
  return `#${o.fuzz.index} ${JSON.stringify(o.fuzz.data.toString('latin1').slice(0, 300))} → ${o.res.status}${o.res.timedOut ? ' (timed out)' : ''} ${JSON.stringify(o.res.raw.toString('latin1').slice(0, 200))}`
}

/** Checks every outcome; returns the problems, each with enough to reproduce it. */
function judge (outcomes: Outcome[], allowed: Set<number>): string[] {
  const problems: string[] = []
  for (const o of outcomes) {
    if (o.res.timedOut) problems.push(`no answer and no close within 3 s: ${show(o)}`)
    else if (o.res.status === 0 && !o.res.closed) problems.push(`no answer: ${show(o)}`)
    else if (o.res.status !== 0 && !allowed.has(o.res.status)) problems.push(`status ${o.res.status} not expected: ${show(o)}`)
  }
  return problems
}

function histogram (outcomes: Outcome[]): string {
  const counts = new Map<number, number>()
  for (const o of outcomes) counts.set(o.res.status, (counts.get(o.res.status) ?? 0) + 1)
  return [...counts.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}:${n}`).join(' ')
}

async function origin (t: TestContext): Promise<Origin> {
  const o = await echoOrigin({
    '/c': (_req, res) => {
      res.writeHead(200, { 'cache-control': 'public, max-age=60', etag: '"v1"', 'last-modified': new Date(0).toUTCString(), vary: 'Accept-Encoding', 'content-type': 'text/plain' })
      res.end('cacheable body')
    },
    '/r': (_req, res) => { res.writeHead(302, { location: 'http://127.0.0.1/' }); res.end() }
  })
  t.after(() => o.close())
  return o
}

async function proxy (t: TestContext, env: Record<string, string>, table: Record<string, string | string[]>): Promise<{ app: FastifyInstance, port: number }> {
  const app = await buildApp(testConfig({ MAX_BODY_BYTES: '4096', MAX_URL_BYTES: '2048', UPSTREAM_TIMEOUT_MS: '2000', ...env }), { resolver: tableResolver(table) })
  t.after(async () => { await app.close() })
  return { app, port: await listen(app) }
}

// 415: Fastify refuses a body whose Content-Type it cannot parse; 417: Node refuses an unknown Expect.
const ALLOWED = new Set([200, 204, 206, 301, 302, 304, 400, 403, 404, 405, 408, 412, 413, 414, 415, 416, 417, 431, 501, 502, 504, 505, 508])

test(`fuzz: random targets and headers against a proxy with an origin (seed ${SEED})`, async (t) => {
  t.diagnostic(`FUZZ_SEED=${SEED}`)
  const o = await origin(t)
  // Only *.fuzz.test names on the origin's port are allowed: a random IP literal or port is
  // refused (403) before any connection, so every byte of traffic stays on 127.0.0.1.
  const { port } = await proxy(t, { ALLOW_PRIVATE_UPSTREAMS: 'true', UPSTREAM_PORTS: String(o.port), UPSTREAM_ALLOW: 'fuzz.test,*.fuzz.test' }, { 'fuzz.test': '127.0.0.1', '*.fuzz.test': '127.0.0.1' })
  const r = new Random(SEED)
  const host = (): string => {
    const roll = r.next()
    if (roll < 0.6) return `${r.pick(['fuzz.test', 'a.fuzz.test', 'FUZZ.TEST', 'b.c.fuzz.test', 'fuzz.test.', 'x-y.fuzz.test'])}:${r.chance(0.9) ? o.port : r.int(70_000)}`
    if (roll < 0.8) return r.pick(['127.0.0.1', '2130706433', '[::1]', '0x7f.1', 'localhost', 'evil.test', '169.254.169.254', '[::ffff:127.0.0.1]', 'fuzz.test@evil.test', 'fuzz.test%2f', '']) + (r.chance(0.5) ? `:${o.port}` : '')
    return r.token(1 + r.int(20)) + (r.chance(0.5) ? `:${r.pick([String(o.port), r.printable(3), '0', '65536', ''])}` : '')
  }
  const targets: TargetMaker = () => {
    const roll = r.next()
    const p = path(r).replace(/^\/(?=[^/]*$)/, r.pick(['/', '/c', '/r', '/'])) // sometimes the cacheable or redirect route
    if (roll < 0.5) return `/${host()}${r.chance(0.3) ? r.pick(['/c', '/r', '/c?x=1']) : p}`
    if (roll < 0.65) return `http://${host()}${p}`
    if (roll < 0.75) return `/${r.pick(['http', 'https', 'HTTP', 'ftp', 'http:', 'javascript'])}://${host()}${p}`
    return junk(r)
  }
  const cases = Array.from({ length: MAX_CASES }, (_, i) => makeCase(r, i, targets))
  const started = Date.now()
  const { outcomes, skipped } = await run(cases, port, started + 8000)
  t.diagnostic(`${outcomes.length} requests in ${Date.now() - started} ms (${skipped} skipped past the time budget): ${histogram(outcomes)}`)

  const problems = judge(outcomes, ALLOWED)
  if (process.env.FUZZ_VERBOSE !== undefined) {
    const reasons = new Map<string, number>()
    for (const o of outcomes.filter((x) => x.res.status === 400)) {
      const why = String(json(o.res)?.message ?? o.res.text).replace(/'.*'|".*"/g, '…').slice(0, 60)
      reasons.set(why, (reasons.get(why) ?? 0) + 1)
    }
    t.diagnostic(JSON.stringify([...reasons.entries()].sort((a, b) => b[1] - a[1])))
  }
  // Whatever reached the origin came through an allowed name, without the unkeyed overrides.
  for (const request of o.requests) {
    if (!/^([a-z0-9-]+\.)*fuzz\.test\.?:\d+$/i.test(String(request.headers.host))) problems.push(`origin saw Host ${request.headers.host} (${request.url})`)
    const leaked = FORWARDED.filter((name) => request.headers[name] !== undefined)
    if (leaked.length > 0) problems.push(`origin saw ${leaked.join(', ')} for ${request.method} ${request.url}`)
  }
  // The process survived and still serves.
  const normal = await send(port, get(`/fuzz.test:${o.port}/after-fuzz`))
  t.assert.equal(normal.status, 200, `FUZZ_SEED=${SEED}: a normal request after the fuzzing: ${normal.status} ${normal.text}`)
  t.assert.equal(json(normal)?.url, '/after-fuzz')
  t.assert.equal(outcomes.length >= Math.min(MAX_CASES, 100), true, `FUZZ_SEED=${SEED}: only ${outcomes.length} requests ran`)
  t.assert.equal(problems.length, 0, `FUZZ_SEED=${SEED}: ${problems.length} problem(s), first ones:\n${problems.slice(0, 15).join('\n')}`)
})

test(`fuzz: random local targets against the SSRF guard never reach the origin (seed ${SEED + 1})`, async (t) => {
  t.diagnostic(`FUZZ_SEED=${SEED} (this test uses ${SEED + 1})`)
  const o = await origin(t)
  const local = ['127.0.0.1', '127.0.0.2', '0.0.0.0', '::1', '::ffff:127.0.0.1', '64:ff9b::7f00:1', '169.254.169.254', '10.0.0.1', 'fd00::2']
  // Names resolve to local addresses; IP literals are limited to local ones by the allow
  // list (a random number such as 1234567890 is a public IPv4 address).
  const { port } = await proxy(t, {
    ALLOW_PRIVATE_UPSTREAMS: 'false',
    UPSTREAM_PORTS: '*',
    UPSTREAM_ALLOW: ['fuzz.test', '*.fuzz.test', ...local].join(',')
  }, { 'fuzz.test': local, '*.fuzz.test': '127.0.0.1' })
  const r = new Random(SEED + 1)
  const encodings = [
    '127.0.0.1', '2130706433', '0x7f000001', '0177.0.0.1', '127.1', '127.0.1', '0x7f.1', '017700000001', '127.0.0.1.', '[::1]', '[::ffff:127.0.0.1]',
    '[::ffff:7f00:1]', '[64:ff9b::127.0.0.1]', '[0:0:0:0:0:0:0:1]', '0', '0.0.0.0', '[::]', '169.254.169.254', '2852039166', '0xa9fea9fe', '10.0.0.1', '0x0a000001',
    'fuzz.test', 'a.fuzz.test', 'LOCALHOST', 'localhost.', '[fd00::2]', '[::127.0.0.1]', '[2002:7f00:1::]', '%31%32%37.0.0.1', '127.0.0.1%00', '[::1%25lo]'
  ]
  const targets: TargetMaker = () => {
    const hostPart = `${r.pick(encodings)}${r.chance(0.8) ? `:${o.port}` : r.chance(0.5) ? '' : `:${r.int(70_000)}`}`
    const roll = r.next()
    if (roll < 0.5) return `/${hostPart}${path(r)}`
    if (roll < 0.7) return `http://${hostPart}${path(r)}`
    if (roll < 0.85) return `/${r.pick(['http', 'https'])}://${hostPart}${path(r)}`
    return junk(r)
  }
  const cases = Array.from({ length: Math.ceil(MAX_CASES / 2) }, (_, i) => makeCase(r, i, targets))
  const started = Date.now()
  const { outcomes, skipped } = await run(cases, port, started + 4000)
  t.diagnostic(`${outcomes.length} requests in ${Date.now() - started} ms (${skipped} skipped): ${histogram(outcomes)}`)
  const problems = judge(outcomes, ALLOWED)
  t.assert.equal(problems.length, 0, `FUZZ_SEED=${SEED}: ${problems.length} problem(s), first ones:\n${problems.slice(0, 15).join('\n')}`)
  t.assert.equal(o.connections(), 0, `FUZZ_SEED=${SEED}: the origin was contacted ${o.connections()} time(s): ${JSON.stringify(o.requests.map((q) => [q.method, q.url, q.headers.host]))}`)
  t.assert.equal(outcomes.length >= Math.min(cases.length, 100), true)
})
