import { test } from 'node:test'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { LookupAddress } from 'node:dns'
import { Agent, request } from 'undici'
import { judgeAddress } from '../../src/upstream/address-ranges.ts'
import { classifyHost, compileHostPatterns, normalizeHost } from '../../src/upstream/host-names.ts'
import { checkLiteral, guardedConnector, guardedLookup, UpstreamForbiddenError } from '../../src/upstream/address-guard.ts'
import type { Resolver } from '../../src/upstream/address-guard.ts'

// [address, expected rule or 'allowed', expected `via` for embedded IPv4]
const ADDRESSES: Array<[string, string, string?]> = [
  // IPv4
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['10.0.0.1', 'private-rfc1918'],
  ['10.255.255.255', 'private-rfc1918'],
  ['172.16.0.1', 'private-rfc1918'],
  ['172.31.255.255', 'private-rfc1918'],
  ['172.15.255.255', 'allowed'],
  ['172.32.0.0', 'allowed'],
  ['192.168.1.1', 'private-rfc1918'],
  ['169.254.169.254', 'link-local'],
  ['169.254.0.1', 'link-local'],
  ['100.64.0.1', 'cgnat'],
  ['100.127.255.255', 'cgnat'],
  ['100.63.255.255', 'allowed'],
  ['100.128.0.0', 'allowed'],
  ['0.0.0.0', 'this-network'],
  ['0.1.2.3', 'this-network'],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['240.0.0.1', 'reserved'],
  ['255.255.255.254', 'reserved'],
  ['255.255.255.255', 'broadcast'],
  ['192.0.0.8', 'reserved'],
  ['192.0.2.1', 'documentation'],
  ['198.18.0.1', 'benchmarking'],
  ['198.19.255.255', 'benchmarking'],
  ['198.20.0.0', 'allowed'],
  ['198.51.100.7', 'documentation'],
  ['203.0.113.9', 'documentation'],
  ['192.88.99.1', 'reserved'],
  ['8.8.8.8', 'allowed'],
  ['93.184.215.14', 'allowed'],
  ['1.1.1.1', 'allowed'],
  ['223.255.255.255', 'allowed'],
  // IPv6
  ['::1', 'loopback'],
  ['[::1]', 'loopback'],
  ['0:0:0:0:0:0:0:1', 'loopback'],
  ['::', 'unspecified'],
  ['fe80::1', 'link-local'],
  ['fe80::1%eth0', 'link-local'],
  ['febf::1', 'link-local'],
  ['fec0::1', 'ipv6-site-local'],
  ['fc00::1', 'ipv6-ula'],
  ['fd12:3456:789a::1', 'ipv6-ula'],
  ['ff02::1', 'multicast'],
  ['FF05::2', 'multicast'],
  ['2001:db8::1', 'documentation'],
  ['3fff::1', 'documentation'],
  ['2001:2::1', 'benchmarking'],
  ['2001::1', 'teredo'],
  ['2001:20::1', 'reserved'],
  ['100::1', 'reserved'],
  ['64:ff9b:1::1', 'reserved'],
  ['4000::1', 'reserved'],
  ['5f00::1', 'reserved'],
  ['2606:4700:4700::1111', 'allowed'],
  ['2001:4860:4860::8888', 'allowed'],
  // IPv4 embedded in IPv6
  ['::ffff:127.0.0.1', 'loopback', 'ipv4-mapped'],
  ['::ffff:7f00:1', 'loopback', 'ipv4-mapped'],
  ['::ffff:a9fe:a9fe', 'link-local', 'ipv4-mapped'],
  ['::ffff:10.1.2.3', 'private-rfc1918', 'ipv4-mapped'],
  ['::ffff:0:0', 'this-network', 'ipv4-mapped'],
  ['::ffff:8.8.8.8', 'allowed'],
  ['64:ff9b::127.0.0.1', 'loopback', 'nat64'],
  ['64:ff9b::a00:1', 'private-rfc1918', 'nat64'],
  ['64:ff9b::8.8.8.8', 'allowed'],
  ['2002:7f00:1::', 'loopback', '6to4'],
  ['2002:c0a8:101::1', 'private-rfc1918', '6to4'],
  ['2002:a9fe:a9fe:1::5', 'link-local', '6to4'],
  ['2002:808:808::1', 'allowed'],
  ['::127.0.0.1', 'loopback', 'ipv4-compatible'],
  ['::a00:1', 'private-rfc1918', 'ipv4-compatible'],
  ['::2', 'this-network', 'ipv4-compatible'],
  // not IP addresses in standard text form: fail closed
  ['127.1', 'invalid'],
  ['2130706433', 'invalid'],
  ['localhost', 'invalid'],
  ['', 'invalid'],
  ['1.2.3.4.5', 'invalid']
]

test('judgeAddress: every range, allowed neighbours and embedded IPv4', (t) => {
  t.assert.equal(ADDRESSES.length >= 40, true, `only ${ADDRESSES.length} cases`)
  for (const [address, expected, via] of ADDRESSES) {
    const verdict = judgeAddress(address)
    if (expected === 'allowed') {
      t.assert.deepEqual(verdict, { allowed: true }, address)
    } else {
      t.assert.equal(verdict.allowed, false, address)
      if (!verdict.allowed) {
        t.assert.equal(verdict.rule, expected, address)
        t.assert.equal(verdict.via, via, address)
      }
    }
  }
})

test('the WHATWG URL parser already canonicalizes IPv4 encodings in hostname', (t) => {
  const cases: Array<[string, string]> = [
    ['2130706433', '127.0.0.1'],
    ['0x7f000001', '127.0.0.1'],
    ['0177.0.0.1', '127.0.0.1'],
    ['127.1', '127.0.0.1'],
    ['0x7f.1', '127.0.0.1'],
    ['[::ffff:127.0.0.1]', '[::ffff:7f00:1]'],
    ['[::127.0.0.1]', '[::7f00:1]']
  ]
  for (const [host, hostname] of cases) {
    t.assert.equal(new URL(`http://${host}/`).hostname, hostname, host)
  }
})

test('normalizeHost: alternative encodings become the canonical address', (t) => {
  const cases: Array<[string, string]> = [
    ['2130706433', '127.0.0.1'],
    ['0x7f000001', '127.0.0.1'],
    ['0X7F000001', '127.0.0.1'],
    ['0177.0.0.1', '127.0.0.1'],
    ['0177.0000.0000.0001', '127.0.0.1'],
    ['127.1', '127.0.0.1'],
    ['127.0.1', '127.0.0.1'],
    ['0x7f.1', '127.0.0.1'],
    ['0x7f.0x0.0.1', '127.0.0.1'],
    ['127.0.0.1.', '127.0.0.1'],
    ['0', '0.0.0.0'],
    ['0x', '0.0.0.0'],
    ['4294967295', '255.255.255.255'],
    ['0300.0250.0.1', '192.168.0.1'],
    ['3232235777', '192.168.1.1'],
    ['0xa9.0xfe.0xa9.0xfe', '169.254.169.254'],
    ['１２７.０.０.１', '127.0.0.1'],
    ['127。0。0。1', '127.0.0.1'],
    ['[::ffff:127.0.0.1]', '127.0.0.1'],
    ['[::ffff:7f00:1]', '127.0.0.1'],
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['[::1]', '::1'],
    ['[0:0:0:0:0:0:0:1]', '::1'],
    ['[::127.0.0.1]', '::7f00:1'],
    ['[64:ff9b::127.0.0.1]', '64:ff9b::7f00:1'],
    ['[FE80::1%25eth0]', 'fe80::1'],
    ['[2001:DB8:0:0:1:0:0:1]', '2001:db8::1:0:0:1'],
    ['Example.COM', 'example.com'],
    ['example.com.', 'example.com'],
    ['bücher.ch', 'xn--bcher-kva.ch'],
    ['my_host.internal', 'my_host.internal'],
    ['0x7f.example', '0x7f.example'],
    ['0x1g', '0x1g']
  ]
  for (const [host, expected] of cases) {
    t.assert.equal(normalizeHost(host), expected, host)
  }
  // agrees with the URL parser wherever the URL parser gives an IPv4
  for (const host of ['2130706433', '0x7f000001', '0177.0.0.1', '127.1', '0x7f.1', '0x', '4294967295']) {
    t.assert.equal(normalizeHost(host), new URL(`http://${host}/`).hostname, host)
  }
})

test('classifyHost: hosts the URL parser rejects are invalid', (t) => {
  for (const host of ['4294967296', '1.2.3.4.5', '1.2.3.09', '09.1.1.1', '256.1.1.1', '1.2.65536', 'a.0x7f',
    '[::1', '[zz::1]', '[1.2.3.4]', 'evil.com@127.0.0.1', 'evil.com/x', '127.0.0.1/x', 'a?b', 'a#b', 'exa%41mple.com', 'a\\b', 'a b', 'a\tb',
    'xn--zz', '']) {
    t.assert.deepEqual(classifyHost(host), { kind: 'invalid' }, host)
    t.assert.equal(normalizeHost(host), host, host)
  }
})

test('checkLiteral judges IP literals in every encoding and leaves names to the lookup', (t) => {
  const refused: Array<[string, string]> = [
    ['127.0.0.1', 'loopback'],
    ['2130706433', 'loopback'],
    ['0x7f000001', 'loopback'],
    ['0177.0.0.1', 'loopback'],
    ['127.1', 'loopback'],
    ['0x7f.1', 'loopback'],
    ['[::ffff:127.0.0.1]', 'loopback'],
    ['[::1]', 'loopback'],
    ['::1', 'loopback'],
    ['[::]', 'unspecified'],
    ['0', 'this-network'],
    ['0xa9fea9fe', 'link-local'],
    ['[fd00::1]', 'ipv6-ula'],
    ['[64:ff9b::10.0.0.1]', 'private-rfc1918'],
    ['[2002:c0a8:1::]', 'private-rfc1918'],
    ['1.2.3.09', 'invalid']
  ]
  for (const [host, rule] of refused) {
    const verdict = checkLiteral(host)
    t.assert.equal(verdict.allowed ? 'allowed' : verdict.rule, rule, host)
    t.assert.deepEqual(checkLiteral(host, { allowPrivate: true }), { allowed: true }, host)
  }
  for (const host of ['8.8.8.8', '134744072', '[2606:4700::1]', 'example.com', 'localhost', 'rebind.test']) {
    t.assert.deepEqual(checkLiteral(host), { allowed: true }, host)
  }
})

test('compileHostPatterns: exact names, *.suffix wildcards, IPs in any encoding', (t) => {
  const patterns = ['example.com', '*.example.org', '127.0.0.1', '[::1]', 'bücher.ch']
  const yes = ['example.com', 'EXAMPLE.com.', 'a.example.org', 'a.b.example.org', 'A.Example.Org',
    '127.0.0.1', '0x7f000001', '127.1', '[::ffff:127.0.0.1]', '::1', '[0::1]', 'xn--bcher-kva.ch']
  const no = ['www.example.com', 'example.org', 'notexample.org', 'example.org.evil.com', 'aexample.org',
    'example.com.evil', '127.0.0.2', '[::2]', '1.2.3.09', '']
  for (const host of yes) t.assert.equal(compileHostPatterns(patterns)(host), true, host)
  for (const host of no) t.assert.equal(compileHostPatterns(patterns)(host), false, host)

  t.assert.equal(compileHostPatterns(['*'])('anything.test'), true)
  t.assert.equal(compileHostPatterns(['*'])('10.0.0.1'), true)
  t.assert.equal(compileHostPatterns([])('example.com'), false)
  // wildcards only ever match names, never the apex itself
  t.assert.equal(compileHostPatterns(['*.example.org'])('example.org'), false)
  t.assert.equal(compileHostPatterns(['example.org', '*.example.org'])('example.org'), true)

  for (const bad of ['', '*.', 'foo.*.com', '*example.com', '**.example.com', '*.127.0.0.1', '.example.com',
    'a..b', '1.2.3.09', '[::1', 'evil.com/x']) {
    t.assert.throws(() => compileHostPatterns([bad]), TypeError, bad)
  }
})

function fakeResolver (table: Record<string, string[]>): Resolver & { calls: string[] } {
  const calls: string[] = []
  const resolver = async (hostname: string): Promise<LookupAddress[]> => {
    calls.push(hostname)
    const addresses = table[hostname]
    if (addresses === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' })
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))
  }
  return Object.assign(resolver, { calls })
}

type LookupResult = { error: (Error & { code?: string, rule?: string, via?: string }) | null, address: unknown, family?: number }

async function callLookup (lookup: ReturnType<typeof guardedLookup>, hostname: string, options: object): Promise<LookupResult> {
  return await new Promise((resolve) => {
    lookup(hostname, options, (error, address, family) => { resolve({ error, address, family }) })
  })
}

test('guardedLookup judges every resolved address', async (t) => {
  const resolver = fakeResolver({
    'public.test': ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'],
    'rebind.test': ['127.0.0.1'],
    'mixed.test': ['93.184.215.14', '10.0.0.5'],
    'mapped.test': ['::ffff:169.254.169.254'],
    'garbage.test': ['not-an-ip']
  })
  const lookup = guardedLookup({ resolver })

  const all = await callLookup(lookup, 'public.test', { all: true })
  t.assert.equal(all.error, null)
  t.assert.deepEqual(all.address, [
    { address: '93.184.215.14', family: 4 },
    { address: '2606:2800:21f:cb07:6820:80da:af6b:8b2c', family: 6 }
  ])
  const one = await callLookup(lookup, 'public.test', {})
  t.assert.deepEqual([one.error, one.address, one.family], [null, '93.184.215.14', 4])
  const v6 = await callLookup(lookup, 'public.test', { family: 6 })
  t.assert.deepEqual([v6.error, v6.address, v6.family], [null, '2606:2800:21f:cb07:6820:80da:af6b:8b2c', 6])

  const rebind = await callLookup(lookup, 'rebind.test', { all: true })
  t.assert.equal(rebind.error instanceof UpstreamForbiddenError, true)
  const forbidden = rebind.error as UpstreamForbiddenError
  t.assert.equal(forbidden.code, 'CPX_UPSTREAM_FORBIDDEN')
  t.assert.equal(forbidden.rule, 'loopback')
  t.assert.equal(forbidden.statusCode, 403)
  t.assert.equal(forbidden.address, '127.0.0.1')
  t.assert.match(forbidden.message, /rebind\.test resolves to 127\.0\.0\.1.*loopback/)

  const mixed = await callLookup(lookup, 'mixed.test', { all: true })
  t.assert.equal(mixed.error?.rule, 'private-rfc1918')
  const filtered = await callLookup(guardedLookup({ resolver, onMixed: 'filter' }), 'mixed.test', { all: true })
  t.assert.deepEqual([filtered.error, filtered.address], [null, [{ address: '93.184.215.14', family: 4 }]])
  const onlyBad = await callLookup(guardedLookup({ resolver, onMixed: 'filter' }), 'rebind.test', {})
  t.assert.equal(onlyBad.error?.rule, 'loopback')

  const mapped = await callLookup(lookup, 'mapped.test', {})
  t.assert.deepEqual([mapped.error?.rule, mapped.error?.via], ['link-local', 'ipv4-mapped'])
  const garbage = await callLookup(lookup, 'garbage.test', {})
  t.assert.equal(garbage.error?.rule, 'invalid')

  // no addresses of the requested family, and resolver errors pass through unchanged
  t.assert.equal((await callLookup(lookup, 'rebind.test', { family: 6 })).error?.code, 'ENOTFOUND')
  t.assert.equal((await callLookup(lookup, 'missing.test', {})).error?.code, 'ENOTFOUND')

  // IP literals (any encoding) are judged without asking the resolver
  const before = resolver.calls.length
  t.assert.equal((await callLookup(lookup, '0x7f000001', {})).error?.rule, 'loopback')
  const literal = await callLookup(lookup, '8.8.8.8', { all: true })
  t.assert.deepEqual(literal.address, [{ address: '8.8.8.8', family: 4 }])
  t.assert.equal(resolver.calls.length, before)

  const open = await callLookup(guardedLookup({ resolver, allowPrivate: true }), 'rebind.test', {})
  t.assert.deepEqual([open.error, open.address, open.family], [null, '127.0.0.1', 4])
})

test('guardedLookup uses dns.lookup by default', async (t) => {
  const result = await callLookup(guardedLookup(), 'localhost', { all: true })
  t.assert.equal(result.error?.code, 'CPX_UPSTREAM_FORBIDDEN')
  t.assert.equal(result.error?.rule, 'loopback')
  const open = await callLookup(guardedLookup({ allowPrivate: true }), 'localhost', { family: 4 })
  t.assert.deepEqual([open.error, open.address], [null, '127.0.0.1'])
})

async function startOrigin (t: { after: (fn: () => Promise<void>) => void }): Promise<{ port: number, hits: () => number }> {
  let hits = 0
  const server = createServer((req, res) => { hits++; res.end('origin') })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(async () => { await new Promise<void>((resolve) => server.close(() => resolve())) })
  return { port: (server.address() as AddressInfo).port, hits: () => hits }
}

async function requestError (url: string, dispatcher: Agent): Promise<(Error & { code?: string, rule?: string }) | undefined> {
  try {
    const response = await request(url, { dispatcher })
    await response.body.dump()
    return undefined
  } catch (error) {
    return error as Error & { code?: string, rule?: string }
  }
}

test('end to end: undici Agent with guardedLookup refuses a name resolving to 127.0.0.1', async (t) => {
  const origin = await startOrigin(t)
  const resolver = fakeResolver({ 'rebind.test': ['127.0.0.1'] })

  const guarded = new Agent({ connect: { lookup: guardedLookup({ resolver }) } })
  t.after(async () => { await guarded.close() })
  const error = await requestError(`http://rebind.test:${origin.port}/`, guarded)
  t.assert.equal(error instanceof UpstreamForbiddenError, true, String(error))
  t.assert.equal(error?.code, 'CPX_UPSTREAM_FORBIDDEN')
  t.assert.equal(error?.rule, 'loopback')
  t.assert.equal(origin.hits(), 0)

  const open = new Agent({ connect: { lookup: guardedLookup({ resolver, allowPrivate: true }) } })
  t.after(async () => { await open.close() })
  const response = await request(`http://rebind.test:${origin.port}/`, { dispatcher: open })
  t.assert.equal(response.statusCode, 200)
  t.assert.equal(await response.body.text(), 'origin')
  t.assert.equal(origin.hits(), 1)
})

test('end to end: an IP literal bypasses lookup, guardedConnector catches it', async (t) => {
  const origin = await startOrigin(t)

  // net.connect does not call lookup for 127.0.0.1: the lookup hook alone lets it through
  const lookupOnly = new Agent({ connect: { lookup: guardedLookup() } })
  t.after(async () => { await lookupOnly.close() })
  const through = await request(`http://127.0.0.1:${origin.port}/`, { dispatcher: lookupOnly })
  await through.body.dump()
  t.assert.equal(origin.hits(), 1)

  const resolver = fakeResolver({ 'rebind.test': ['127.0.0.1'] })
  const guarded = new Agent({ connect: guardedConnector({ resolver }) })
  t.after(async () => { await guarded.close() })
  for (const host of ['127.0.0.1', '0x7f000001', '2130706433', '127.1', '[::ffff:127.0.0.1]', 'rebind.test']) {
    const error = await requestError(`http://${host}:${origin.port}/`, guarded)
    t.assert.equal(error?.code, 'CPX_UPSTREAM_FORBIDDEN', host)
    t.assert.equal(error?.rule, 'loopback', host)
  }
  t.assert.equal(origin.hits(), 1)

  const open = new Agent({ connect: guardedConnector({ resolver, allowPrivate: true }) })
  t.after(async () => { await open.close() })
  for (const host of ['127.0.0.1', 'rebind.test']) {
    const response = await request(`http://${host}:${origin.port}/`, { dispatcher: open })
    t.assert.equal(await response.body.text(), 'origin')
  }
  t.assert.equal(origin.hits(), 3)
})
