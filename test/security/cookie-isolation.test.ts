import { test } from 'node:test'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { startOrigin, type Origin } from '../helpers/origin.ts'
import { testApp } from '../helpers/app.ts'
import { fakeClock, settle } from '../helpers/clock.ts'
import { startPm2App } from '../helpers/pm2.ts'
import { requestHead, send } from '../helpers/raw-http.ts'
import { waitFor } from '../helpers/poll.ts'

// A cookie the origin issues in answer to one request is that client's alone: a 304 to a
// revalidation, or a background (stale-while-revalidate) refresh, that carries Set-Cookie
// must never put the cookie into the shared entry, where later hits would hand it to
// everybody. The first responses carry no cookie, so any cookie a hit carries leaked.

/** The Set-Cookie values of a response (inject gives a string or an array). */
function cookiesOf (headers: Record<string, unknown>): string[] {
  const value = headers['set-cookie']
  return value === undefined ? [] : (Array.isArray(value) ? value : [value]).map(String)
}

interface CookieOrigin { origin: Origin, issued: () => number }

/**
 * `/r` answers 200 (`cache-control` as given, ETag "a", no cookie) to an unconditional GET;
 * a conditional one (If-None-Match) gets `conditional` (304, or a new 200) with a fresh
 * `Set-Cookie: sid=<n>` and `refreshedCacheControl`, after `delayMs`.
 */
async function cookieOrigin (t: { after: (fn: () => Promise<void>) => void }, cacheControl: string, conditional: 304 | 200, delayMs = 0, refreshedCacheControl = cacheControl): Promise<CookieOrigin> {
  let issued = 0
  const origin = await startOrigin({
    '/r': (req: IncomingMessage, res: ServerResponse) => {
      if (req.headers['if-none-match'] === undefined) {
        res.writeHead(200, { 'cache-control': cacheControl, etag: '"a"', 'content-type': 'text/plain' })
        res.end('shared body')
        return
      }
      const sid = ++issued
      setTimeout(() => {
        res.writeHead(conditional, { 'cache-control': refreshedCacheControl, etag: conditional === 304 ? '"a"' : '"b"', 'set-cookie': `sid=${sid}; Path=/; HttpOnly` })
        res.end(conditional === 304 ? undefined : 'new body')
      }, delayMs)
    }
  })
  t.after(() => origin.close())
  return { origin, issued: () => issued }
}

// With CACHE_SET_COOKIE=false no cookie is ever shared. (With true the operator chose to
// store and replay responses that carry Set-Cookie, so only "never twice" is asserted there.)
test('CACHE_SET_COOKIE=false: a 304 carrying Set-Cookie reaches only the client that caused the revalidation, once; later hits never carry it', { timeout: 20_000 }, async (t) => {
  const clock = fakeClock(t)
  const { origin, issued } = await cookieOrigin(t, 'max-age=60', 304, 50)
  const app = await testApp(t, { CACHE_SET_COOKIE: 'false' })
  const url = `/${origin.host}/r`
  const first = await app.inject(url)
  t.assert.equal(first.body, 'shared body')
  t.assert.deepEqual(cookiesOf(first.headers), [])
  clock.advance(61)
  // Ten clients at once: one revalidation; the others wait for it (or for its entry).
  const stale = await Promise.all(Array.from({ length: 10 }, () => app.inject(url)))
  t.assert.equal(issued(), 1, 'one revalidation')
  t.assert.deepEqual(stale.map((r) => [r.statusCode, r.body]), stale.map(() => [200, 'shared body']))
  const withCookie = stale.filter((r) => cookiesOf(r.headers).length > 0)
  t.assert.equal(withCookie.length, 1, `the cookie went to ${withCookie.length} clients: ${JSON.stringify(stale.map((r) => cookiesOf(r.headers)))}`)
  t.assert.deepEqual(cookiesOf(withCookie[0].headers), ['sid=1; Path=/; HttpOnly'], 'exactly once, to the revalidating client')
  await settle()
  const later = await Promise.all(Array.from({ length: 5 }, () => app.inject(url)))
  t.assert.deepEqual(later.map((r) => r.headers['x-cache']), later.map(() => 'HIT'), 'the refreshed entry serves the later requests')
  t.assert.deepEqual(later.map((r) => cookiesOf(r.headers)), later.map(() => []), 'a later hit carried the cookie')
  t.assert.equal(origin.requests.length, 2)
})

test('CACHE_SET_COOKIE=true: the client whose revalidation got a 304 with Set-Cookie gets the cookie once, never twice', { timeout: 20_000 }, async (t) => {
  const clock = fakeClock(t)
  const { origin } = await cookieOrigin(t, 'max-age=60', 304)
  const app = await testApp(t, { CACHE_SET_COOKIE: 'true' })
  const url = `/${origin.host}/r`
  t.assert.equal((await app.inject(url)).body, 'shared body')
  clock.advance(61)
  const revalidated = await app.inject(url)
  t.assert.equal(revalidated.body, 'shared body')
  t.assert.deepEqual(cookiesOf(revalidated.headers), ['sid=1; Path=/; HttpOnly'])
  await settle()
  const later = await Promise.all(Array.from({ length: 5 }, () => app.inject(url)))
  for (const r of later) t.assert.equal(cookiesOf(r.headers).length <= 1, true, `a hit carried ${JSON.stringify(cookiesOf(r.headers))}`)
})

for (const refresh of [304, 200] as const) {
  test(`CACHE_SET_COOKIE=false: a stale-while-revalidate refresh whose ${refresh} carries Set-Cookie hands the cookie to nobody`, { timeout: 20_000 }, async (t) => {
    const clock = fakeClock(t)
    const { origin, issued } = await cookieOrigin(t, 'max-age=60, stale-while-revalidate=600', refresh)
    const app = await testApp(t, { CACHE_SET_COOKIE: 'false' })
    const url = `/${origin.host}/r`
    t.assert.equal((await app.inject(url)).body, 'shared body')
    clock.advance(61)
    const served = await app.inject(url)
    t.assert.equal(served.body, 'shared body')
    t.assert.match(String(served.headers['cache-status']), /fwd=stale/, 'served stale while the refresh runs')
    t.assert.deepEqual(cookiesOf(served.headers), [])
    t.assert.equal(await waitFor(() => issued() === 1, 3000), true, 'the background refresh reached the origin')
    await settle(100)
    const later = await Promise.all(Array.from({ length: 5 }, () => app.inject(url)))
    const leaked = later.flatMap((r) => cookiesOf(r.headers))
    t.assert.deepEqual(leaked, [], `later responses carried the refresh's cookie: ${JSON.stringify(later.map((r) => [r.headers['cache-status'], r.body]))}`)
    for (const r of later) t.assert.equal(r.statusCode, 200)
  })
}

test('two PM2 workers: a 304 cookie goes to one client per revalidation, never to a later hit', { timeout: 90_000 }, async (t) => {
  const { origin, issued } = await cookieOrigin(t, 'max-age=1', 304, 100, 'max-age=60')
  const app = await startPm2App(t, { WORKERS: '2', LOG_LEVEL: 'warn' })
  const get = async (): Promise<ReturnType<typeof send>> => await send(app.port, requestHead('GET', `/${origin.host}/r`, [['Connection', 'close']]), { timeoutMs: 5000 })
  // Cached in both workers, then stale.
  for (let i = 0; i < 4; i++) t.assert.equal((await get()).text, 'shared body')
  await sleep(1200)
  const stale = await Promise.all(Array.from({ length: 20 }, get))
  await sleep(300)
  const later = await Promise.all(Array.from({ length: 20 }, get))
  const handed = [...stale, ...later].flatMap((res) => (res.headers['set-cookie'] ?? '').split(/, (?=sid=)/).filter((c) => c !== ''))
  t.diagnostic(`${issued()} cookies issued by revalidations; handed out: ${JSON.stringify(handed)}`)
  t.assert.deepEqual([...stale, ...later].map((res) => res.text), [...stale, ...later].map(() => 'shared body'))
  t.assert.equal(new Set(handed).size, handed.length, 'a cookie was handed to two clients')
  t.assert.equal(handed.length <= issued(), true)
  t.assert.deepEqual(later.map((res) => res.headers['set-cookie']), later.map(() => undefined), 'a later hit carried a cookie')
})
