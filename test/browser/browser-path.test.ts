/**
 * Path-prefix browsing in a real browser (Debian chromium through playwright-core): site A
 * and site B (test/helpers/test-site.ts) browsed as `http://localhost:<proxy>/<host:port>/`.
 * Screenshots go to test-artifacts/.
 */
import { test, type TestContext } from 'node:test'
import { mkdirSync, writeFileSync } from 'node:fs'
import type { BrowserContext, Page } from 'playwright-core'
import { PNG } from 'pngjs'
import pixelmatch from 'pixelmatch'
import type { SiteOrigin } from '../helpers/test-site.ts'
import { launchChromium, siteBehindProxy, SKIP_WITHOUT_CHROMIUM } from '../helpers/browser.ts'

// Runs in the page (page.evaluate): the DOM, not Node.
declare const document: { getElementById: (id: string) => { textContent: string | null } | null, fonts: { ready: Promise<unknown>, check: (font: string) => boolean } }

const ARTIFACTS = 'test-artifacts'
const SKIP = SKIP_WITHOUT_CHROMIUM
const VIEWPORT = { width: 800, height: 600 }

/** Opens `url` and waits until the page's script has written the fetched JSON and its fonts are ready. */
async function openHome (context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage()
  await page.goto(url, { waitUntil: 'load' })
  await page.waitForFunction(() => document.getElementById('data')?.textContent !== 'loading', undefined, { timeout: 10_000 })
  await page.evaluate(async () => { await document.fonts.ready })
  return page
}

/** Paths (query included) an origin received since `from`, favicon left out (browsers ask for it on their own). */
function pathsSince (origin: SiteOrigin, from: number): string[] {
  return [...new Set(origin.requests.slice(from).map((r) => r.path).filter((p) => p !== '/favicon.ico'))].sort()
}

function cookieSet (text: string | null): string[] {
  return (text ?? '').split(';').map((c) => c.trim()).filter(Boolean).sort()
}

test('path-prefix browsing: renders like the site, stays in the proxy, isolates cookies, hits the cache', { timeout: 90_000, skip: SKIP }, async (t: TestContext) => {
  mkdirSync(ARTIFACTS, { recursive: true })
  const { site, proxy } = await siteBehindProxy(t)
  const A = site.a.host
  const B = site.b.host
  const browser = await launchChromium(t)

  // The site as it is, straight from the origins.
  const direct = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1 })
  const directPage = await openHome(direct, `${site.a.origin}/`)
  const directShot = await directPage.screenshot({ path: `${ARTIFACTS}/path-mode-direct.png` })
  await direct.close()
  const directA = pathsSince(site.a, 0)
  const directB = pathsSince(site.b, 0)
  t.assert.ok(directA.includes('/fonts/test.ttf') && directA.includes('/api/data.json') && directB.includes('/img/badge.png'), directA.join(' '))

  // The same site through the proxy, opened without its trailing slash.
  const fromA = site.a.requests.length
  const fromB = site.b.requests.length
  const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1 })
  const seen: string[] = []
  const serverErrors: string[] = []
  context.on('request', (request) => seen.push(request.url()))
  context.on('response', (response) => { if (response.status() >= 500) serverErrors.push(`${response.status()} ${response.url()}`) })
  const page = await openHome(context, `${proxy}/${A}`)
  t.assert.equal(page.url(), `${proxy}/${A}/`)
  t.assert.equal(await page.textContent('#data'), 'data fetched from /api/data.json')
  const proxiedShot = await page.screenshot({ path: `${ARTIFACTS}/path-mode-proxied.png` })

  // Every resource the page needs came through the proxy, and nothing went straight to an origin.
  t.assert.deepEqual(pathsSince(site.a, fromA), directA)
  t.assert.deepEqual(pathsSince(site.b, fromB), directB)
  for (const r of [...site.a.requests.slice(fromA), ...site.b.requests.slice(fromB)]) t.assert.match(String(r.headers.via), /caching-proxy/, r.path)
  const leaked = seen.filter((url) => !url.startsWith(`${proxy}/`) && !url.startsWith('data:'))
  t.assert.deepEqual(leaked, [])

  // The proxied page looks like the real one.
  const one = PNG.sync.read(directShot)
  const two = PNG.sync.read(proxiedShot)
  const diff = new PNG({ width: one.width, height: one.height })
  const differing = pixelmatch(one.data, two.data, diff.data, one.width, one.height, { threshold: 0.1 })
  writeFileSync(`${ARTIFACTS}/path-mode-diff.png`, PNG.sync.write(diff))
  t.assert.ok(differing <= one.width * one.height * 0.002, `${differing} pixels differ (see ${ARTIFACTS}/path-mode-diff.png)`)
  if (site.realFont) {
    // The web font changed the rendering, so its loading through the proxy is what the comparison saw.
    t.assert.notEqual(await page.evaluate(() => document.fonts.check('bold 28px TestFont')), false)
  }

  // Links, redirects and the form land on the right page, still inside the proxy.
  await Promise.all([page.waitForURL(`${proxy}/${A}/about.html`), page.click('#about')])
  t.assert.equal(await page.textContent('#where'), 'About A')
  await page.goBack()
  await Promise.all([page.waitForURL(`${proxy}/${A}/about.html?from=abs`), page.click('#abs-redirect')])
  t.assert.equal(await page.textContent('#where'), 'About A?from=abs')
  await page.goBack()
  await Promise.all([page.waitForURL(`${proxy}/${A}/about.html?from=rel`), page.click('#rel-redirect')])
  await page.goBack()
  await page.fill('input[name=q]', 'through the cache')
  await Promise.all([page.waitForURL(`${proxy}/${A}/search?q=through+the+cache`), page.click('#go')])
  t.assert.equal(await page.textContent('#results'), 'Results for through the cache')
  await page.goBack()
  await Promise.all([page.waitForURL(`${proxy}/${B}/`), page.click('#site-b')])
  t.assert.equal(await page.textContent('h1'), 'Site B')

  // Cookies, set by each site's server and by its script, stay with their site.
  await page.goto(`${proxy}/${A}/set-cookie`)
  await page.goto(`${proxy}/${B}/set-cookie`)
  await page.goto(`${proxy}/${A}/read-cookie`)
  t.assert.deepEqual(cookieSet(await page.textContent('#server')), ['jsA=1', 'pref=A', 'sid=A-secret'])
  t.assert.deepEqual(cookieSet(await page.textContent('#script')), ['jsA=1', 'pref=A', 'sid=A-secret'])
  await page.goto(`${proxy}/${B}/read-cookie`)
  t.assert.deepEqual(cookieSet(await page.textContent('#server')), ['jsB=1', 'pref=B', 'sid=B-secret'])
  t.assert.deepEqual(cookieSet(await page.textContent('#script')), ['jsB=1', 'pref=B', 'sid=B-secret'])
  for (const r of site.a.requests) t.assert.doesNotMatch(String(r.headers.cookie ?? ''), /B/, r.path)
  for (const r of site.b.requests) t.assert.doesNotMatch(String(r.headers.cookie ?? ''), /A/, r.path)
  t.assert.deepEqual(serverErrors, [])
  await context.close()

  // A second visit in a fresh browser (empty browser cache) is served by the proxy's cache.
  const countA = site.a.requests.length
  const countB = site.b.requests.length
  const again = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1 })
  const hits: string[] = []
  again.on('response', (response) => { if (response.headers()['x-cache'] === 'HIT') hits.push(new URL(response.url()).pathname) })
  const second = await openHome(again, `${proxy}/${A}/`)
  t.assert.equal(await second.textContent('#data'), 'data fetched from /api/data.json')
  t.assert.deepEqual(site.a.requests.slice(countA).map((r) => r.path), [])
  t.assert.deepEqual(site.b.requests.slice(countB).map((r) => r.path), [])
  t.assert.ok(hits.includes(`/${A}/css/site.css`) && hits.includes(`/${B}/img/badge.png`), hits.join(' '))
  await again.close()
})

test('per-site origins (<host>.<port>.localhost): each site its own browser origin, through the cache', { timeout: 60_000, skip: SKIP }, async (t: TestContext) => {
  mkdirSync(ARTIFACTS, { recursive: true })
  const { site, port } = await siteBehindProxy(t)
  const siteA = `http://127.0.0.1.${site.a.host.split(':')[1]}.localhost:${port}`
  const siteB = `http://127.0.0.2.${site.b.host.split(':')[1]}.localhost:${port}`
  const browser = await launchChromium(t)

  const direct = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1 })
  const directShot = await (await openHome(direct, `${site.a.origin}/`)).screenshot()
  await direct.close()
  const directA = pathsSince(site.a, 0)
  const directB = pathsSince(site.b, 0)

  const fromA = site.a.requests.length
  const fromB = site.b.requests.length
  const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1 })
  const seen: string[] = []
  const serverErrors: string[] = []
  context.on('request', (request) => seen.push(request.url()))
  context.on('response', (response) => { if (response.status() >= 500) serverErrors.push(`${response.status()} ${response.url()}`) })
  const page = await openHome(context, `${siteA}/`)
  const shot = await page.screenshot({ path: `${ARTIFACTS}/site-origin-proxied.png` })
  t.assert.equal(await page.textContent('#data'), 'data fetched from /api/data.json')
  t.assert.deepEqual(pathsSince(site.a, fromA), directA)
  t.assert.deepEqual(pathsSince(site.b, fromB), directB)
  t.assert.deepEqual(seen.filter((url) => !url.startsWith(`${siteA}/`) && !url.startsWith(`${siteB}/`) && !url.startsWith('data:')), [])
  const one = PNG.sync.read(directShot)
  const two = PNG.sync.read(shot)
  const differing = pixelmatch(one.data, two.data, undefined, one.width, one.height, { threshold: 0.1 })
  t.assert.ok(differing <= one.width * one.height * 0.002, `${differing} pixels differ`)

  await Promise.all([page.waitForURL(`${siteA}/about.html?from=abs`), page.click('#abs-redirect')])
  await page.goBack()
  await Promise.all([page.waitForURL(`${siteB}/`), page.click('#site-b')])

  // Cookies are the browser's own per origin; a script of site A cannot read site B's pages.
  await page.goto(`${siteA}/set-cookie`)
  await page.goto(`${siteB}/set-cookie`)
  await page.goto(`${siteA}/read-cookie`)
  t.assert.deepEqual(cookieSet(await page.textContent('#server')), ['jsA=1', 'pref=A', 'sid=A-secret'])
  t.assert.deepEqual(cookieSet(await page.textContent('#script')), ['jsA=1', 'pref=A', 'sid=A-secret'])
  const crossRead = await page.evaluate(async (url: string) => await fetch(url, { credentials: 'include' }).then(async (r) => await r.text(), (e: Error) => `blocked: ${e.message}`), `${siteB}/read-cookie`)
  t.assert.match(crossRead, /^blocked/)
  await page.goto(`${siteB}/read-cookie`)
  t.assert.deepEqual(cookieSet(await page.textContent('#server')), ['jsB=1', 'pref=B', 'sid=B-secret'])
  t.assert.deepEqual(serverErrors, [])
  await context.close()
})
