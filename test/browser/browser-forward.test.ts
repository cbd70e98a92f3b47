import { test, type TestContext } from 'node:test'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { buildApp } from '../../src/app.ts'
import { loadConfig } from '../../config/index.ts'
import { tempDir } from '../helpers/app.ts'
import { startOrigin } from '../helpers/origin.ts'
import { listen, tableResolver } from '../helpers/raw-http.ts'
import { selfSignedCert, startTlsOrigin } from '../helpers/tunnel.ts'
import { testSiteRoutes } from '../helpers/test-site.ts'
import { launchChromium, CHROMIUM } from '../helpers/browser.ts'

const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts')
const SUBRESOURCES = ['/', '/style.css', '/logo.png', '/app.js', '/data.json']

const launch = launchChromium

interface Visit { page: Page, responses: Array<{ url: string, status: number, xCache?: string, via?: string }> }

/** Opens `url` in a fresh browser context and waits for the script's JSON to show. */
async function visit (browser: Browser, url: string, shot: string): Promise<Visit> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true })
  const page = await context.newPage()
  const responses: Visit['responses'] = []
  page.on('response', (res) => {
    const headers = res.headers()
    responses.push({ url: res.url(), status: res.status(), xCache: headers['x-cache'], via: headers.via })
  })
  await page.goto(url, { waitUntil: 'load', timeout: 15_000 })
  // Browser-side code as strings: the project's TypeScript has no DOM types.
  await page.waitForFunction("document.getElementById('data')?.textContent?.includes('arrived') === true", undefined, { timeout: 10_000 })
  mkdirSync(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: join(ARTIFACTS, shot) })
  return { page, responses }
}

/** What a user sees: the CSS applied, the image decoded, the fetched JSON shown. */
async function assertRendered (t: TestContext, page: Page, label: string): Promise<void> {
  const seen = await page.evaluate(`({
    title: document.getElementById('title')?.textContent,
    color: getComputedStyle(document.getElementById('title')).color,
    background: getComputedStyle(document.body).backgroundColor,
    imageWidth: document.getElementById('logo').naturalWidth,
    data: document.getElementById('data')?.textContent
  })`)
  t.assert.deepEqual(seen, {
    title: label,
    color: 'rgb(200, 10, 20)',
    background: 'rgb(240, 248, 255)',
    imageWidth: 120,
    data: `data for ${label} arrived`
  })
}

test('Chromium browses http and https sites through the proxy in forward mode; http is cached across contexts', { skip: !existsSync(CHROMIUM) && 'no /usr/bin/chromium' }, async (t) => {
  const site = await startOrigin(testSiteRoutes('Plain site'))
  t.after(site.close)
  const tls = selfSignedCert(tempDir(t))
  const secureRoutes = testSiteRoutes('Secure site')
  const secure = await startTlsOrigin(tls, (req, res) => {
    const handler = secureRoutes[(req.url ?? '/').split('?')[0]]
    if (handler === undefined) { res.statusCode = 404; res.end(); return }
    handler(req, res)
  })
  t.after(secure.close)

  const logs: Array<Record<string, any>> = []
  const app = await buildApp(loadConfig({
    LOG_LEVEL: 'info',
    CACHE_STORE: 'memory://',
    PORT: '0',
    ALLOW_PRIVATE_UPSTREAMS: 'true',
    UPSTREAM_ALLOW: '127.0.0.1,site.test',
    UPSTREAM_PORTS: String(site.port),
    CONNECT_PORTS: String(secure.port)
  }), { logStream: { write: (line) => logs.push(JSON.parse(line)) }, resolver: tableResolver({ 'site.test': '127.0.0.1' }) as never })
  t.after(async () => {
    app.server.closeAllConnections() // a browser still connected (a failed assertion skips its close) must not hold the close
    await app.close()
  })
  const proxyPort = await listen(app)

  // --proxy-bypass-list=<-loopback>: without it Chromium never proxies 127.0.0.1.
  const browser = await launch(t, [`--proxy-server=http://127.0.0.1:${proxyPort}`, '--proxy-bypass-list=<-loopback>', '--ignore-certificate-errors'])

  // http: every request goes through the proxy (it adds Via and X-Cache), and reaches the origin once.
  const first = await visit(browser, `http://127.0.0.1:${site.port}/`, 'forward-http-first.png')
  await assertRendered(t, first.page, 'Plain site')
  const fromSite = first.responses.filter((r) => r.url.startsWith(`http://127.0.0.1:${site.port}/`))
  t.assert.deepEqual(fromSite.map((r) => new URL(r.url).pathname).sort(), [...SUBRESOURCES].sort())
  for (const r of fromSite) {
    t.assert.equal(r.status, 200, r.url)
    t.assert.match(r.via ?? '', /caching-proxy/, `${r.url} came through the proxy`)
    t.assert.equal(r.xCache, 'MISS', r.url)
  }
  for (const path of SUBRESOURCES) t.assert.equal(site.hits(path), 1, `origin saw ${path} once`)

  // A fresh context has an empty browser cache: everything comes from the proxy's cache.
  const second = await visit(browser, `http://127.0.0.1:${site.port}/`, 'forward-http-second.png')
  await assertRendered(t, second.page, 'Plain site')
  const again = second.responses.filter((r) => r.url.startsWith(`http://127.0.0.1:${site.port}/`))
  t.assert.equal(again.length, SUBRESOURCES.length)
  for (const r of again) t.assert.equal(r.xCache, 'HIT', r.url)
  for (const path of SUBRESOURCES) t.assert.equal(site.hits(path), 1, `origin still saw ${path} once`)
  t.assert.deepEqual(site.requests.map((r) => r.url).sort(), [...SUBRESOURCES].sort(), 'nothing else reached the origin')

  // A refused upstream: the browser shows the proxy's HTML error page, which names the rule.
  const errorPage = await (await browser.newContext()).newPage()
  const refused = await errorPage.goto(`http://127.0.0.1:${secure.port}/`)
  t.assert.equal(refused?.status(), 403)
  t.assert.match(await errorPage.locator('body').innerText(), /403 Forbidden[\s\S]*port \d+ is not allowed \(UPSTREAM_PORTS\)[\s\S]*What to try/)
  await errorPage.screenshot({ path: join(ARTIFACTS, 'forward-error-403.png') })

  // https: a CONNECT tunnel; the page renders, nothing is cached (the proxy cannot read it).
  const tlsFirst = await visit(browser, `https://127.0.0.1:${secure.port}/`, 'forward-https.png')
  await assertRendered(t, tlsFirst.page, 'Secure site')
  t.assert.deepEqual(secure.requests.map((r) => r.url).sort(), [...SUBRESOURCES].sort())
  const fresh = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage()
  t.assert.equal((await fresh.goto(`https://127.0.0.1:${secure.port}/data.json`))?.status(), 200)
  t.assert.equal(secure.requests.filter((r) => r.url === '/data.json').length, 2, 'tunnelled responses are not cached')
  await browser.close()
  // Chromium's own background requests (update checks) are refused by the upstream rules.
  const tunnels = logs.filter((line) => line.tunnel !== undefined).map((line) => line.tunnel)
  const ours = tunnels.filter((tunnel) => tunnel.target === `127.0.0.1:${secure.port}`)
  t.assert.equal(ours.length >= 1, true, 'the proxy logged the tunnels')
  for (const tunnel of ours) t.assert.equal(tunnel.status, 200, JSON.stringify(tunnel))
  for (const tunnel of tunnels.filter((x) => !ours.includes(x))) t.assert.equal(tunnel.status, 403, JSON.stringify(tunnel))
  const siteUrl = `http://127.0.0.1:${site.port}/`
  const proxied = logs.filter((line) => line.msg === 'request' && String(line.url).startsWith(siteUrl)).map((line) => new URL(line.url).pathname)
  t.assert.deepEqual(proxied.sort(), [...SUBRESOURCES, ...SUBRESOURCES].sort(), 'the proxy saw each http request of both visits')

  // The PAC file, as a user would set it up: a named site goes through the proxy.
  const pacBrowser = await launch(t, [`--proxy-pac-url=http://127.0.0.1:${proxyPort}/proxy.pac`, '--ignore-certificate-errors'])
  const viaPac = await visit(pacBrowser, `http://site.test:${site.port}/`, 'forward-pac.png')
  await assertRendered(t, viaPac.page, 'Plain site')
  const pacResponses = viaPac.responses.filter((r) => r.url.startsWith(`http://site.test:${site.port}/`))
  t.assert.equal(pacResponses.length, SUBRESOURCES.length)
  for (const r of pacResponses) t.assert.match(r.via ?? '', /caching-proxy/, `${r.url} came through the proxy (PAC)`)
  // Closed here, not by its after hook: hooks run in the order they were added, and the proxy's
  // close would wait for this browser's open connection to it (a clean-clone run hung there).
  await pacBrowser.close()
})
