import { test, type TestContext } from 'node:test'
import vm from 'node:vm'
import { pacScript, proxyAddress } from '../../src/browsing/pac.ts'
import { testApp } from '../helpers/app.ts'

/** Runs a PAC script as a browser would: with the Netscape helper functions it may call. */
function findProxy (script: string): (url: string) => string {
  const context = vm.createContext({
    isPlainHostName: (host: string) => !host.includes('.'),
    dnsDomainIs: (host: string, domain: string) => host.endsWith(domain),
    shExpMatch: (text: string, pattern: string) => new RegExp('^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$').test(text),
    dnsResolve: () => { throw new Error('the PAC script must not resolve names (slow in browsers)') }
  })
  vm.runInContext(script, context, { timeout: 1000 })
  return (url) => {
    const host = new URL(url).hostname
    return vm.runInContext(`FindProxyForURL(${JSON.stringify(url)}, ${JSON.stringify(host)})`, context, { timeout: 1000 }) as string
  }
}

function expectRoutes (t: TestContext, script: string, routes: Record<string, string>): void {
  const find = findProxy(script)
  for (const [url, expected] of Object.entries(routes)) t.assert.equal(find(url), expected, url)
}

test('proxyAddress takes host[:port] from the Host header and refuses anything else', (t) => {
  t.assert.equal(proxyAddress('localhost:8888'), 'localhost:8888')
  t.assert.equal(proxyAddress('Proxy.Example.COM'), 'proxy.example.com:80')
  t.assert.equal(proxyAddress('192.168.1.5:3128'), '192.168.1.5:3128')
  t.assert.equal(proxyAddress('[::1]:8888'), '[::1]:8888')
  for (const bad of [undefined, '', 'a b:1', 'x:99999', 'x:1/y', 'evil";alert(1);"', 'a@b:1', 'x:1\r\nSet-Cookie: a', "a'b", 'a\\b']) {
    t.assert.equal(proxyAddress(bad), undefined, JSON.stringify(bad))
  }
})

test('the PAC script proxies web traffic and leaves local and intranet hosts direct', (t) => {
  const PROXY = 'PROXY proxy.lan:8888; DIRECT'
  expectRoutes(t, pacScript({ proxy: 'proxy.lan:8888', allowPrivate: false }), {
    'http://example.com/a?b': PROXY,
    'https://example.com/': PROXY,
    'https://WWW.Example.org:8443/': PROXY,
    'wss://chat.example.com/socket': PROXY,
    'http://93.184.216.34/': PROXY,
    'http://proxy.lan:8888/proxy.pac': 'DIRECT', // the proxy itself
    'http://intranet/': 'DIRECT', // a plain host name
    'http://localhost:3000/': 'DIRECT',
    'http://app.localhost/': 'DIRECT',
    'http://127.0.0.1:9000/': 'DIRECT',
    'http://[::1]:9000/': 'DIRECT',
    'http://10.0.0.7/': 'DIRECT', // the proxy would refuse private addresses
    'http://172.20.1.1/': 'DIRECT',
    'http://192.168.1.1/': 'DIRECT',
    'http://[fd00::1]/': 'DIRECT',
    'http://172.32.0.1/': PROXY, // outside 172.16/12
    'ftp://example.com/': 'DIRECT',
    'ws://example.com/': 'DIRECT' // plain WebSockets cannot go through this proxy
  })
  // With ALLOW_PRIVATE_UPSTREAMS, private literals go through the proxy; loopback stays the browser's own.
  expectRoutes(t, pacScript({ proxy: '[::1]:8888', allowPrivate: true }), {
    'http://10.0.0.7/': 'PROXY [::1]:8888; DIRECT',
    'http://[::1]:8888/': 'DIRECT',
    'http://localhost/': 'DIRECT'
  })
})

test('GET /proxy.pac serves the script for the address the client used, without credentials', async (t) => {
  const app = await testApp(t, { PROXY_AUTH: 'alice:pw' })
  const res = await app.inject({ url: '/proxy.pac', headers: { host: '127.0.0.1:8888' } })
  t.assert.equal(res.statusCode, 200)
  t.assert.equal(res.headers['content-type'], 'application/x-ns-proxy-autoconfig')
  t.assert.equal(res.headers['x-cache'], undefined, 'answered by the proxy, not fetched from a host named proxy.pac')
  expectRoutes(t, res.body, { 'https://example.com/': 'PROXY 127.0.0.1:8888; DIRECT', 'http://127.0.0.1:8888/': 'DIRECT' })
  const other = await app.inject({ url: '/proxy.pac', headers: { host: 'cache.example.net:3128' } })
  expectRoutes(t, other.body, { 'http://example.com/': 'PROXY cache.example.net:3128; DIRECT' })
  t.assert.equal((await app.inject({ method: 'HEAD', url: '/proxy.pac' })).statusCode, 200)
  const bad = await app.inject({ url: '/proxy.pac', headers: { host: 'evil"/x' } })
  t.assert.equal(bad.statusCode, 400)
  t.assert.match(bad.json().message, /Host header/)
  t.assert.equal((await app.inject('/proxy.pac/x')).statusCode, 401, 'only the PAC path itself is public')
})
