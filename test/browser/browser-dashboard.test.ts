import { test } from 'node:test'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import type { ServerResponse } from 'node:http'
import { buildApp } from '../../src/app.ts'
import { testConfig } from '../helpers/app.ts'
import { launchChromium, SKIP_WITHOUT_CHROMIUM } from '../helpers/browser.ts'
import { startOrigin } from '../helpers/origin.ts'

// The dashboard (GET /_proxy/, plugins/dashboard.ts) in Debian chromium after known traffic:
// the numbers the page shows are those of the traffic. Screenshot: test-artifacts/dashboard.png.

const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts')

test('the dashboard shows the hit ratio, requests, store fill, top URLs and recent problems of known traffic', { skip: SKIP_WITHOUT_CHROMIUM, timeout: 60_000 }, async (t) => {
  const body = 'x'.repeat(1000)
  const cacheable = (_req: unknown, res: ServerResponse): void => {
    res.setHeader('cache-control', 'public, max-age=600')
    res.setHeader('content-type', 'text/plain')
    res.end(body)
  }
  const origin = await startOrigin({ '/p1': cacheable, '/p2': cacheable, '/p3': cacheable })
  t.after(() => origin.close())
  const app = await buildApp(testConfig({ UPSTREAM_DENY: 'denied.example', MAX_CACHE_BYTES: '1000000' }))
  t.after(async () => { await app.close() })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const get = async (path: string): Promise<Response> => await fetch(base + path, { signal: AbortSignal.timeout(5000) })

  // 3 misses, then 7 hits of /p1; one origin that refuses connections (an error); one denied host (a refusal).
  for (const path of ['/p1', '/p2', '/p3']) t.assert.equal((await get(`/${origin.host}${path}`)).headers.get('x-cache'), 'MISS')
  for (let i = 0; i < 7; i++) t.assert.equal((await get(`/${origin.host}/p1`)).headers.get('x-cache'), 'HIT')
  t.assert.equal((await get('/127.0.0.1:1/down')).status, 502)
  t.assert.equal((await get('/denied.example/x')).status, 403)
  t.assert.equal(origin.requests.length, 3)

  const browser = await launchChromium(t)
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  await page.goto(`${base}/_proxy/`, { timeout: 10_000 })
  await page.waitForFunction("document.getElementById('requests-total')?.textContent === '11'", undefined, { timeout: 10_000 })
  const text = async (id: string): Promise<string> => await page.locator(`#${id}`).innerText()
  // 7 of 11 requests (the error is one) came from the cache.
  t.assert.equal(await text('hit-ratio-1m'), '63.6 %')
  t.assert.equal(await text('hit-ratio-5m'), '63.6 %')
  t.assert.equal(await text('bytes-saved'), '6.8 KiB') // 7 × 1000 bytes
  t.assert.match(await text('store-detail'), /of 976\.6 KiB, 3 entries$/)
  t.assert.match(await text('store-fill'), /^0\.[3-9]\d %$/) // ~3.5 KB of 1 MB: the entries' bodies and headers
  const hits = await page.locator('#top-hits tr').allInnerTexts()
  t.assert.deepEqual(hits.map((row) => row.replace(/\s+/g, ' ').trim()), [`http://${origin.host}/p1 7`])
  const misses = await page.locator('#top-misses tr').allInnerTexts()
  t.assert.deepEqual(misses.map((row) => row.replace(/\s+/g, ' ').trim()), ['p1', 'p2', 'p3'].map((p) => `http://${origin.host}/${p} 1`))
  const recent = (await page.locator('#recent').innerText()).replace(/\s+/g, ' ')
  t.assert.match(recent, /refusal 403 CPX_UPSTREAM_FORBIDDEN \/denied\.example\/x/)
  t.assert.match(recent, /error 502 ECONNREFUSED http:\/\/127\.0\.0\.1:1\/down/)
  const workers = await page.locator('#workers tr').allInnerTexts()
  t.assert.equal(workers.length, 1)
  t.assert.match(workers[0], new RegExp(`^${process.pid}\\s`))
  t.assert.match(await text('status'), /^1 worker$/)
  mkdirSync(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true })

  // Explain, as a browser gets it: the HTML page (Accept: text/html first).
  const explain = await browser.newPage({ viewport: { width: 1000, height: 800 } })
  await explain.goto(`${base}/_proxy/explain?url=${encodeURIComponent(`http://${origin.host}/p1`)}`, { timeout: 10_000 })
  t.assert.equal(await explain.locator('h1').innerText(), `Explain http://${origin.host}/p1`)
  const page1 = (await explain.locator('body').innerText()).replace(/\s+/g, ' ')
  t.assert.match(page1, /Stored: 1 response\./)
  t.assert.match(page1, /Freshness left \d+ s of 600 s/)
  t.assert.match(page1, /Outcome hit Stored answered from the cache/)
  await explain.screenshot({ path: join(ARTIFACTS, 'explain.png'), fullPage: true })
})
