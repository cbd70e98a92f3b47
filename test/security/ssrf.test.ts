import { test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.ts'
import { testConfig, tempDir } from '../helpers/app.ts'
import { freePort } from '../helpers/process.ts'
import { get, json, listen, requestHead, send, tableResolver, type RawResponse } from '../helpers/raw-http.ts'
import { echoOrigin, type Origin } from '../helpers/origin.ts'
import { waitFor } from '../helpers/poll.ts'

type Env = Record<string, string>

// The guard under test: private upstreams refused (the helpers' default allows them).
const GUARDED: Env = { ALLOW_PRIVATE_UPSTREAMS: 'false', UPSTREAM_PORTS: '*', UPSTREAM_TIMEOUT_MS: '3000' }

interface Origins {
  v4: Origin
  v6: Origin
  /** TCP connections both origins accepted so far. */
  contacts (): number
}

/** A recording origin on 127.0.0.1 and one on [::1], so a connection to either loopback is counted. */
async function origins (t: TestContext): Promise<Origins> {
  const v4 = await echoOrigin()
  const v6 = await echoOrigin({}, '::1')
  t.after(async () => { await v4.close(); await v6.close() })
  return { v4, v6, contacts: () => v4.connections() + v6.connections() }
}

async function app (t: TestContext, env: Env, resolver?: Parameters<typeof tableResolver>[0]): Promise<{ app: FastifyInstance, port: number }> {
  const instance = await buildApp(testConfig(env), resolver === undefined ? {} : { resolver: tableResolver(resolver) })
  t.after(async () => { await instance.close() })
  return { app: instance, port: await listen(instance) }
}

function describe (res: RawResponse): string {
  return `${res.status} ${res.raw.toString('latin1').slice(0, 400)}`
}

/** Asserts a 403 whose JSON body names `rule` (and the documented fields). */
function assertForbidden (t: TestContext, res: RawResponse, rule: string | RegExp, what: string): void {
  t.assert.equal(res.status, 403, `${what}: ${describe(res)}`)
  const body = json(res)
  t.assert.equal(typeof body, 'object', `${what}: JSON body`)
  t.assert.equal(body?.error, 'Forbidden', what)
  t.assert.equal(body?.code, 'CPX_UPSTREAM_FORBIDDEN', what)
  if (typeof rule === 'string') t.assert.equal(body?.rule, rule, `${what}: rule in ${JSON.stringify(body)}`)
  else t.assert.match(String(body?.rule), rule, `${what}: rule in ${JSON.stringify(body)}`)
  t.assert.equal(typeof body?.message, 'string', what)
}

// [host as written in the URL, rule the 403 must name]. '{4}' / '{6}' is replaced by the
// port of the IPv4 / IPv6 loopback origin, so a guard that let one through would be seen.
const FORBIDDEN_HOSTS: Array<[string, string]> = [
  // loopback
  ['127.0.0.1:{4}', 'loopback'],
  ['127.0.0.2:{4}', 'loopback'],
  ['127.255.255.254:{4}', 'loopback'],
  ['localhost:{4}', 'loopback'], // a name: refused once resolved (real /etc/hosts lookup)
  // RFC 1918
  ['10.0.0.1:{4}', 'private-rfc1918'],
  ['10.255.255.255:{4}', 'private-rfc1918'],
  ['172.16.0.1:{4}', 'private-rfc1918'],
  ['172.31.255.254:{4}', 'private-rfc1918'],
  ['192.168.0.1:{4}', 'private-rfc1918'],
  ['192.168.255.255:{4}', 'private-rfc1918'],
  // link-local, including cloud metadata
  ['169.254.169.254:{4}', 'link-local'],
  ['169.254.169.254', 'link-local'],
  ['169.254.0.1:{4}', 'link-local'],
  // CGNAT 100.64/10
  ['100.64.0.1:{4}', 'cgnat'],
  ['100.127.255.254:{4}', 'cgnat'],
  // 0.0.0.0/8 (0.0.0.0 reaches this host on Linux)
  ['0.0.0.0:{4}', 'this-network'],
  ['0.1.2.3:{4}', 'this-network'],
  ['0:{4}', 'this-network'],
  // multicast, broadcast, reserved, documentation, benchmarking
  ['224.0.0.1:{4}', 'multicast'],
  ['239.255.255.250:{4}', 'multicast'],
  ['240.0.0.1:{4}', 'reserved'],
  ['255.255.255.255:{4}', 'broadcast'],
  ['192.0.0.8:{4}', 'reserved'],
  ['192.0.2.1:{4}', 'documentation'],
  ['198.18.0.1:{4}', 'benchmarking'],
  // IPv6 loopback, unspecified, ULA, link-local, site-local, multicast
  ['[::1]:{6}', 'loopback'],
  ['[0:0:0:0:0:0:0:1]:{6}', 'loopback'],
  ['[::]:{6}', 'unspecified'],
  ['[fc00::1]:{6}', 'ipv6-ula'],
  ['[fd00::2]:{6}', 'ipv6-ula'],
  ['[fe80::1]:{6}', 'link-local'],
  ['[fe80::fc:ff:fe00:1]:{6}', 'link-local'],
  ['[fec0::1]:{6}', 'ipv6-site-local'],
  ['[ff02::1]:{6}', 'multicast'],
  ['[2001:db8::1]:{6}', 'documentation'],
  // IPv4 embedded in IPv6: mapped, compatible, NAT64, 6to4
  ['[::ffff:127.0.0.1]:{4}', 'loopback'],
  ['[::ffff:7f00:1]:{4}', 'loopback'],
  ['[::FFFF:127.0.0.1]:{4}', 'loopback'],
  ['[::ffff:169.254.169.254]:{4}', 'link-local'],
  ['[::ffff:a9fe:a9fe]:{4}', 'link-local'],
  ['[::ffff:10.0.0.1]:{4}', 'private-rfc1918'],
  ['[::ffff:0.0.0.0]:{4}', 'this-network'],
  ['[::127.0.0.1]:{4}', 'loopback'],
  ['[64:ff9b::127.0.0.1]:{4}', 'loopback'],
  ['[64:ff9b::7f00:1]:{4}', 'loopback'],
  ['[64:ff9b::a9fe:a9fe]:{4}', 'link-local'],
  ['[64:ff9b::10.0.0.1]:{4}', 'private-rfc1918'],
  ['[2002:7f00:1::]:{4}', 'loopback'],
  ['[2002:a9fe:a9fe::1]:{4}', 'link-local'],
  // odd encodings of 127.0.0.1 and 169.254.169.254
  ['2130706433:{4}', 'loopback'],
  ['0x7f000001:{4}', 'loopback'],
  ['0X7F000001:{4}', 'loopback'],
  ['0177.0.0.1:{4}', 'loopback'],
  ['0177.0000.0000.0001:{4}', 'loopback'],
  ['017700000001:{4}', 'loopback'],
  ['127.1:{4}', 'loopback'],
  ['127.0.1:{4}', 'loopback'],
  ['0x7f.1:{4}', 'loopback'],
  ['0x7f.0x0.0x0.0x1:{4}', 'loopback'],
  ['127.0.0.1.:{4}', 'loopback'],
  ['2852039166:{4}', 'link-local'],
  ['0xa9fea9fe:{4}', 'link-local'],
  ['0251.0376.0251.0376:{4}', 'link-local'],
  ['169.16689662:{4}', 'link-local'],
  ['0x0a000001:{4}', 'private-rfc1918'],
  ['167772161:{4}', 'private-rfc1918']
]

function target (host: string, v4: number, v6: number): string {
  return host.replace('{4}', String(v4)).replace('{6}', String(v6))
}

test('every forbidden range and encoding is a 403 naming the rule, with zero contact (path style)', async (t) => {
  const o = await origins(t)
  const { port } = await app(t, GUARDED)
  for (const [host, rule] of FORBIDDEN_HOSTS) {
    const upstream = target(host, o.v4.port, o.v6.port)
    const res = await send(port, get(`/${upstream}/x`))
    assertForbidden(t, res, rule, `/${upstream}/x`)
    t.assert.equal(o.contacts(), 0, `/${upstream}/x reached an origin`)
  }
  await sleep(100)
  t.assert.equal(o.contacts(), 0)
  t.assert.equal(o.v4.requests.length + o.v6.requests.length, 0)
})

test('the same table through /http://, /https:// and forward-proxy requests: 403, zero contact', async (t) => {
  const o = await origins(t)
  const { port } = await app(t, GUARDED)
  for (const [host, rule] of FORBIDDEN_HOSTS) {
    const upstream = target(host, o.v4.port, o.v6.port)
    for (const form of [`/http://${upstream}/x`, `/https://${upstream}/x`, `/HTTP://${upstream}/x`, `http://${upstream}/x`]) {
      const res = await send(port, get(form))
      assertForbidden(t, res, rule, form)
      t.assert.equal(o.contacts(), 0, `${form} reached an origin`)
    }
  }
  // Methods other than GET are judged the same way (and never reach the cache).
  for (const method of ['HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
    const res = await send(port, requestHead(method, `/127.0.0.1:${o.v4.port}/x`, [['Connection', 'close'], ['Content-Length', '0']]), { head: method === 'HEAD' })
    t.assert.equal(res.status, 403, `${method}: ${describe(res)}`)
  }
  await sleep(100)
  t.assert.equal(o.contacts(), 0)
})

test('hosts that are not valid (percent-encoded, IDN digits, junk) are refused with no contact', async (t) => {
  const o = await origins(t)
  const { port } = await app(t, GUARDED)
  const hosts = [
    '%31%32%37.0.0.1', // percent-encoded 127.0.0.1
    '%EF%BC%91%EF%BC%92%EF%BC%97.%EF%BC%90.%EF%BC%90.%EF%BC%91', // full-width digits
    '127.0.0.1%00.example.com',
    '127.0.0.1%2f',
    '[::ffff:127.0.0.1',
    '[::1%25lo]',
    '[fe80::1%25eth0]',
    '256.0.0.1',
    '127.0.0.1.1.1',
    '0x7g.0.0.1',
    '.127.0.0.1',
    '127..0.1'
  ]
  for (const host of hosts) {
    const res = await send(port, get(`/${host}:${o.v4.port}/x`))
    t.assert.equal([400, 403].includes(res.status), true, `/${host}: ${describe(res)}`)
    t.assert.equal(o.contacts(), 0, `/${host} reached an origin`)
  }
})

// Names resolved through the test resolver: the address actually connected to is judged.
const RESOLVED: Array<[string, string | string[], string]> = [
  ['loopback.test', '127.0.0.1', 'loopback'],
  ['loopback6.test', '::1', 'loopback'],
  ['mapped.test', '::ffff:127.0.0.1', 'loopback'],
  ['nat64.test', '64:ff9b::7f00:1', 'loopback'],
  ['metadata.test', '169.254.169.254', 'link-local'],
  ['private.test', '10.1.2.3', 'private-rfc1918'],
  ['cgnat.test', '100.100.100.100', 'cgnat'],
  ['zero.test', '0.0.0.0', 'this-network'],
  ['ula.test', 'fd00::2', 'ipv6-ula'],
  // A public address next to a private one is refused whole (rebinding / happy eyeballs).
  ['mixed.test', ['93.184.215.14', '127.0.0.1'], 'loopback']
]

test('a hostname resolving to a forbidden address (test resolver) is 403 with zero contact', async (t) => {
  const o = await origins(t)
  const table = Object.fromEntries(RESOLVED.map(([name, address]) => [name, address]))
  const { port } = await app(t, GUARDED, table)
  for (const [name, , rule] of RESOLVED) {
    for (const form of [`/${name}:${o.v4.port}/x`, `http://${name}:${o.v4.port}/x`, `/${name.toUpperCase()}.:${o.v4.port}/x`]) {
      const res = await send(port, get(form))
      assertForbidden(t, res, rule, form)
      t.assert.equal(o.contacts(), 0, `${form} reached an origin`)
    }
  }
})

test('the same hostname with ALLOW_PRIVATE_UPSTREAMS=true is proxied (200)', async (t) => {
  const o = await origins(t)
  const { port } = await app(t, { ...GUARDED, ALLOW_PRIVATE_UPSTREAMS: 'true' }, { 'loopback.test': '127.0.0.1', 'loopback6.test': '::1' })
  const res = await send(port, get(`/loopback.test:${o.v4.port}/x`))
  t.assert.equal(res.status, 200, describe(res))
  t.assert.equal(o.v4.requests.length, 1)
  t.assert.equal(o.v4.requests[0].url, '/x')
  t.assert.equal(o.v4.requests[0].headers.host, `loopback.test:${o.v4.port}`)
  const v6 = await send(port, get(`/loopback6.test:${o.v6.port}/y`))
  t.assert.equal(v6.status, 200, describe(v6))
  t.assert.equal(o.v6.requests.length, 1)
  // And literals too.
  const literal = await send(port, get(`/127.0.0.1:${o.v4.port}/z`))
  t.assert.equal(literal.status, 200, describe(literal))
})

test('UPSTREAM_PORTS: the default list allows 80, 443, 8080, 8443 only (403 rule "port", no contact)', async (t) => {
  const o = await origins(t)
  // Names that do not resolve: a request past the port check ends in a 502 without any traffic.
  const { port } = await app(t, { ALLOW_PRIVATE_UPSTREAMS: 'true', UPSTREAM_PORTS: '', UPSTREAM_TIMEOUT_MS: '3000' }, { 'origin.test': '127.0.0.1' })
  for (const allowed of ['', ':80', ':8080', ':8443']) {
    const res = await send(port, get(`/nowhere.test${allowed}/x`))
    t.assert.equal(res.status, 502, `nowhere.test${allowed}: ${describe(res)}`)
  }
  const tls = await send(port, get('/https://nowhere.test/x'))
  t.assert.equal(tls.status, 502, describe(tls))
  for (const refused of [`/origin.test:${o.v4.port}/x`, `/127.0.0.1:${o.v4.port}/x`, '/nowhere.test:22/x', '/nowhere.test:8081/x', '/nowhere.test:6379/x', '/https://nowhere.test:8081/x', 'http://nowhere.test:25/x', '/nowhere.test:65535/x', '/nowhere.test:1/x']) {
    const res = await send(port, get(refused))
    assertForbidden(t, res, 'port', refused)
  }
  t.assert.equal(o.contacts(), 0)
})

test('UPSTREAM_PORTS lists the ports that are allowed', async (t) => {
  const o = await origins(t)
  const { port } = await app(t, { ALLOW_PRIVATE_UPSTREAMS: 'true', UPSTREAM_PORTS: `8080, ${o.v4.port}` }, { 'origin.test': '127.0.0.1' })
  const ok = await send(port, get(`/origin.test:${o.v4.port}/x`))
  t.assert.equal(ok.status, 200, describe(ok))
  const before = o.contacts()
  assertForbidden(t, await send(port, get(`/origin.test:${o.v6.port}/x`)), 'port', 'other port')
  assertForbidden(t, await send(port, get('/origin.test/x')), 'port', 'default port 80 not listed')
  t.assert.equal(o.contacts(), before)
})

test('UPSTREAM_ALLOW: only listed names and *.suffix wildcards', async (t) => {
  const o = await origins(t)
  const { port } = await app(t, { ALLOW_PRIVATE_UPSTREAMS: 'true', UPSTREAM_PORTS: '*', UPSTREAM_ALLOW: 'allowed.test,*.good.test' }, { '*.test': '127.0.0.1' })
  const p = o.v4.port
  const allowed = [`allowed.test:${p}`, `ALLOWED.test:${p}`, `allowed.test.:${p}`, `a.good.test:${p}`, `a.b.good.test:${p}`, `x-y.good.test:${p}`]
  for (const host of allowed) {
    const res = await send(port, get(`/${host}/x`))
    t.assert.equal(res.status, 200, `${host}: ${describe(res)}`)
  }
  t.assert.equal(o.v4.requests.length, allowed.length)
  const refused = [
    `good.test:${p}`, // the apex is not matched by *.good.test
    `other.test:${p}`, `evilallowed.test:${p}`, `allowed.test.evil.test:${p}`, `notgood.test:${p}`,
    `good.test.evil.test:${p}`, `127.0.0.1:${p}`, `2130706433:${p}`, `[::1]:${o.v6.port}`, `localhost:${p}`
  ]
  const before = o.contacts()
  for (const host of refused) {
    for (const form of [`/${host}/x`, `http://${host}/x`]) assertForbidden(t, await send(port, get(form)), 'allow-list', form)
  }
  t.assert.equal(o.contacts(), before)
})

test('UPSTREAM_DENY: listed names and *.suffix wildcards are refused; the rest goes through', async (t) => {
  const o = await origins(t)
  const { port } = await app(t, { ALLOW_PRIVATE_UPSTREAMS: 'true', UPSTREAM_PORTS: '*', UPSTREAM_DENY: 'denied.test,*.bad.test,127.0.0.1' }, { '*.test': '127.0.0.1' })
  const p = o.v4.port
  const refused = [`denied.test:${p}`, `DENIED.TEST.:${p}`, `x.bad.test:${p}`, `x.y.bad.test:${p}`, `127.0.0.1:${p}`, `2130706433:${p}`, `0x7f.1:${p}`, `[::ffff:127.0.0.1]:${p}`]
  for (const host of refused) {
    for (const form of [`/${host}/x`, `/https://${host}/x`, `http://${host}/x`]) assertForbidden(t, await send(port, get(form)), 'deny-list', form)
  }
  t.assert.equal(o.contacts(), 0)
  for (const host of [`bad.test:${p}`, `ok.test:${p}`, `notdenied.test:${p}`, `denied.test.ok.test:${p}`]) {
    const res = await send(port, get(`/${host}/x`))
    t.assert.equal(res.status, 200, `${host}: ${describe(res)}`)
  }
})

test('UPSTREAM_DENY wins over UPSTREAM_ALLOW', async (t) => {
  const o = await origins(t)
  const { port } = await app(t, { ALLOW_PRIVATE_UPSTREAMS: 'true', UPSTREAM_PORTS: '*', UPSTREAM_ALLOW: '*.corp.test', UPSTREAM_DENY: 'admin.corp.test' }, { '*.test': '127.0.0.1' })
  t.assert.equal((await send(port, get(`/www.corp.test:${o.v4.port}/x`))).status, 200)
  assertForbidden(t, await send(port, get(`/admin.corp.test:${o.v4.port}/x`)), 'deny-list', 'admin.corp.test')
  t.assert.equal(o.v4.requests.length, 1)
})

test('loops: a request whose Via already names caching-proxy is 508, never forwarded', async (t) => {
  const o = await origins(t)
  const { port } = await app(t, { ALLOW_PRIVATE_UPSTREAMS: 'true', UPSTREAM_PORTS: '*' })
  const loops = ['1.1 caching-proxy', '1.0 other, 1.1 caching-proxy', 'HTTP/1.1 caching-proxy', '1.1 Caching-Proxy', '1.1 a,1.1 caching-proxy (cache)', '1.1 caching-proxy, 1.1 other']
  for (const via of loops) {
    for (const form of [`/${o.v4.host}/x`, `http://${o.v4.host}/x`]) {
      const res = await send(port, get(form, [['Via', via]]))
      t.assert.equal(res.status, 508, `Via: ${via} (${form}): ${describe(res)}`)
      const body = json(res)
      t.assert.equal(body?.code, 'CPX_LOOP_DETECTED', via)
    }
  }
  // Repeated Via fields are combined.
  const repeated = await send(port, requestHead('GET', `/${o.v4.host}/x`, [['Connection', 'close'], ['Via', '1.1 other'], ['Via', '1.1 caching-proxy']]))
  t.assert.equal(repeated.status, 508, describe(repeated))
  t.assert.equal(o.contacts(), 0)
  // Other proxies in Via are fine, and this proxy adds itself.
  for (const via of ['1.1 other', '1.1 caching-proxy-2', '1.1 my-caching-proxy']) {
    const res = await send(port, get(`/${o.v4.host}/x`, [['Via', via]]))
    t.assert.equal(res.status, 200, `Via: ${via}: ${describe(res)}`)
  }
  t.assert.equal(o.v4.requests.length, 3)
  t.assert.equal(o.v4.requests[0].headers.via, '1.1 other, 1.1 caching-proxy')
})

test('loops: an upstream that is the proxy\'s own listening address and port is 508 (rule "self")', async (t) => {
  for (const allowPrivate of ['false', 'true']) {
    const own = await freePort()
    const instance = await buildApp(testConfig({ PORT: String(own), ALLOW_PRIVATE_UPSTREAMS: allowPrivate, UPSTREAM_PORTS: '*', UPSTREAM_TIMEOUT_MS: '3000' }))
    t.after(async () => { await instance.close() })
    const port = await listen(instance, own)
    t.assert.equal(port, own)
    let served = 0
    instance.server.on('request', () => { served++ })
    const forms = [
      `/127.0.0.1:${own}/x`, `/localhost:${own}/x`, `/LOCALHOST.:${own}/x`, `/127.0.0.2:${own}/x`, `/2130706433:${own}/x`,
      `/0x7f.1:${own}/x`, `/[::1]:${own}/x`, `/[::ffff:127.0.0.1]:${own}/x`, `/0.0.0.0:${own}/x`, `/[::]:${own}/x`,
      `/http://127.0.0.1:${own}/x`, `/https://127.0.0.1:${own}/x`, `http://127.0.0.1:${own}/x`, `http://localhost:${own}/`
    ]
    for (const form of forms) {
      const res = await send(port, get(form))
      t.assert.equal(res.status, 508, `ALLOW_PRIVATE_UPSTREAMS=${allowPrivate} ${form}: ${describe(res)}`)
      const body = json(res)
      t.assert.equal(body?.code, 'CPX_LOOP_DETECTED', form)
      t.assert.equal(body?.rule, 'self', form)
    }
    // Each request was answered once: none came back in through the proxy.
    await sleep(50)
    t.assert.equal(served, forms.length, `ALLOW_PRIVATE_UPSTREAMS=${allowPrivate}: requests the proxy answered`)
  }
})

test('loops: a name that resolves to the proxy itself ends after one hop (508 through Via)', async (t) => {
  const own = await freePort()
  const instance = await buildApp(testConfig({ PORT: String(own), ALLOW_PRIVATE_UPSTREAMS: 'true', UPSTREAM_PORTS: '*', UPSTREAM_TIMEOUT_MS: '3000' }), { resolver: tableResolver({ 'me.test': '127.0.0.1' }) })
  t.after(async () => { await instance.close() })
  const port = await listen(instance, own)
  let served = 0
  instance.server.on('request', () => { served++ })
  const res = await send(port, get(`/me.test:${own}/x`))
  t.assert.equal(res.status, 508, describe(res))
  await sleep(50)
  t.assert.equal(served, 2, 'the outer request and one inner hop')
})

test('redirects are passed to the client, never followed (not even to a forbidden address)', async (t) => {
  const o = await origins(t)
  const inner = await echoOrigin({
    '/redirect': (_req, res) => {
      res.writeHead(302, { location: `http://127.0.0.1:${o.v4.port}/secret` })
      res.end()
    },
    '/redirect-name': (_req, res) => {
      res.writeHead(307, { location: `http://public.test:${o.v4.port}/secret` })
      res.end()
    }
  })
  t.after(() => inner.close())
  const { port } = await app(t, { ALLOW_PRIVATE_UPSTREAMS: 'true', UPSTREAM_PORTS: '*' }, { 'public.test': '127.0.0.1' })
  for (const path of ['/redirect', '/redirect-name']) {
    const res = await send(port, get(`/${inner.host}${path}`))
    t.assert.equal([302, 307].includes(res.status), true, describe(res))
    t.assert.match(res.headers.location ?? '', /\/secret$/)
  }
  await sleep(50)
  t.assert.equal(o.contacts(), 0)
})

test('revalidation targets follow the same rules: no background refresh or revalidation reaches a forbidden address', async (t) => {
  const dir = tempDir(t)
  const store = `sqlite://${dir}/cache.sqlite`
  let version = 0
  const origin = await echoOrigin({
    '/swr': (_req, res) => {
      version++
      res.writeHead(200, { 'cache-control': 'max-age=0, stale-while-revalidate=600', etag: `"v${version}"`, 'content-type': 'text/plain' })
      res.end(`swr v${version}`)
    },
    '/reval': (_req, res) => {
      version++
      res.writeHead(200, { 'cache-control': 'max-age=0', etag: `"r${version}"`, 'content-type': 'text/plain' })
      res.end(`reval v${version}`)
    }
  })
  t.after(() => origin.close())
  const names = { 'svc.test': '127.0.0.1' }
  // A permissive proxy (private upstreams allowed) fills the shared store...
  const filler = await buildApp(testConfig({ CACHE_STORE: store, ALLOW_PRIVATE_UPSTREAMS: 'true' }), { resolver: tableResolver(names) })
  t.after(async () => { await filler.close() })
  for (const path of ['/swr', '/reval']) {
    const res = await filler.inject(`/svc.test:${origin.port}${path}`)
    t.assert.equal(res.statusCode, 200)
    t.assert.match(String(res.headers['cache-status']), /fwd=miss; fwd-status=200$/) // chunked: stored, without saying so
  }
  await filler.close()
  const contacts = origin.connections()
  t.assert.equal(origin.requests.length, 2)

  // ...then a guarded proxy on the same store finds the stale entries and must not refresh
  // them from the private address the name resolves to.
  const guarded = await buildApp(testConfig({ CACHE_STORE: store, ALLOW_PRIVATE_UPSTREAMS: 'false', UPSTREAM_PORTS: '*' }), { resolver: tableResolver(names) })
  t.after(async () => { await guarded.close() })
  const stale = await guarded.inject(`/svc.test:${origin.port}/swr`)
  t.assert.equal(stale.statusCode, 200, 'stale-while-revalidate serves the stored response')
  t.assert.equal(stale.body, 'swr v1')
  t.assert.match(String(stale.headers['cache-status']), /fwd=stale/)
  await sleep(500) // the background refresh runs (and must be refused)
  t.assert.equal(origin.connections(), contacts, 'the background refresh connected to a forbidden address')

  const reval = await guarded.inject(`/svc.test:${origin.port}/reval`)
  t.assert.equal(reval.statusCode, 403, `foreground revalidation: ${reval.statusCode} ${reval.body}`)
  t.assert.equal(reval.json().rule, 'loopback')
  t.assert.equal(origin.connections(), contacts, 'the revalidation connected to a forbidden address')
  await guarded.close()

  // Control: the same store and name with private upstreams allowed does revalidate.
  const open = await buildApp(testConfig({ CACHE_STORE: store, ALLOW_PRIVATE_UPSTREAMS: 'true' }), { resolver: tableResolver(names) })
  t.after(async () => { await open.close() })
  const again = await open.inject(`/svc.test:${origin.port}/swr`)
  t.assert.equal(again.statusCode, 200)
  t.assert.equal(await waitFor(() => origin.requests.length === 3, 3000), true, 'the background refresh reached the origin')
  t.assert.equal(origin.requests[2].headers['if-none-match'], '"v1"')
})

test('a fresh cached response from an upstream that is now forbidden is not served (rules are checked before the cache)', async (t) => {
  const dir = tempDir(t)
  const store = `sqlite://${dir}/cache.sqlite`
  const origin = await echoOrigin({
    '/page': (_req, res) => { res.writeHead(200, { 'cache-control': 'public, max-age=600' }); res.end('cached secret') }
  })
  t.after(() => origin.close())
  const names = { 'intranet.test': '127.0.0.1' }
  const filler = await buildApp(testConfig({ CACHE_STORE: store, ALLOW_PRIVATE_UPSTREAMS: 'true' }), { resolver: tableResolver(names) })
  t.after(async () => { await filler.close() })
  for (const target of [`/127.0.0.1:${origin.port}/page`, `/intranet.test:${origin.port}/page`]) {
    t.assert.equal((await filler.inject(target)).statusCode, 200)
    t.assert.equal((await filler.inject(target)).headers['x-cache'], 'HIT')
  }
  await filler.close()
  const guarded = await buildApp(testConfig({ CACHE_STORE: store, ALLOW_PRIVATE_UPSTREAMS: 'false', UPSTREAM_PORTS: '*', UPSTREAM_DENY: 'intranet.test' }), { resolver: tableResolver(names) })
  t.after(async () => { await guarded.close() })
  const literal = await guarded.inject(`/127.0.0.1:${origin.port}/page`)
  t.assert.equal(literal.statusCode, 403, literal.body)
  t.assert.equal(literal.json().rule, 'loopback')
  const denied = await guarded.inject(`/intranet.test:${origin.port}/page`)
  t.assert.equal(denied.statusCode, 403, denied.body)
  t.assert.equal(denied.json().rule, 'deny-list')
  t.assert.equal(origin.requests.length, 2)
})
