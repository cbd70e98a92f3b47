import { test, type TestContext } from 'node:test'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { startOrigin, type Origin } from './helpers/origin.ts'
import { startPm2App, type Pm2App } from './helpers/pm2.ts'
import { bursts, type BurstRun } from './helpers/bursts.ts'
import { json, requestHead, send, type RawResponse } from './helpers/raw-http.ts'

// Bursts of 50 identical concurrent requests for ≥ 2 s per response kind, through two PM2
// workers; then one more request (the origin healed) that must be answered within 2 s.
// A hang anywhere (a flight, lease or store read that never settles) fails by timeout.

const UPSTREAM_TIMEOUT_MS = 2500
const SLOW_MS = 2000
const BODY = 'x'.repeat(1024)
const FOLLOW_UP_MS = 2000

type Handler = (req: IncomingMessage, res: ServerResponse) => void

/** Per-path state the origin handlers share with the test. */
const healed = new Set<string>()
/** Handlers that replace a route for a while (an origin that starts failing). */
const overrides = new Map<string, Handler>()
let inFlight = 0
let maxInFlight = 0
let cookies = 0

function delayed (ms: number, fn: Handler): Handler {
  return (req, res) => {
    inFlight++
    maxInFlight = Math.max(maxInFlight, inFlight)
    setTimeout(() => { inFlight--; fn(req, res) }, ms)
  }
}

/** The origin's routes; a healed path answers `healed <path>` (no-store) at once. */
function routes (): Record<string, Handler> {
  const table: Record<string, Handler> = {
    '/cacheable': delayed(50, (_req, res) => { res.writeHead(200, { 'cache-control': 'public, max-age=600' }); res.end(BODY) }),
    '/no-store': delayed(200, (_req, res) => { res.writeHead(200, { 'cache-control': 'no-store', 'content-length': BODY.length }); res.end(BODY) }),
    '/private': delayed(50, (_req, res) => { res.writeHead(200, { 'cache-control': 'private, max-age=600' }); res.end(BODY) }),
    '/set-cookie': delayed(50, (_req, res) => { res.writeHead(200, { 'cache-control': 'public, max-age=600', 'set-cookie': `sid=${++cookies}; Path=/` }); res.end(BODY) }),
    '/vary': delayed(50, (req, res) => {
      res.writeHead(200, { 'cache-control': 'public, max-age=600', vary: 'Accept-Language' })
      res.end(`lang ${req.headers['accept-language']}`)
    }),
    '/revalidated': delayed(20, (req, res) => {
      if (req.headers['if-none-match'] === '"r1"') { res.writeHead(304, { etag: '"r1"', 'cache-control': 'max-age=1' }); res.end(); return }
      res.writeHead(200, { etag: '"r1"', 'cache-control': 'max-age=1' }); res.end(BODY)
    }),
    '/error-500': delayed(20, (_req, res) => { res.writeHead(500, { 'content-type': 'text/plain' }); res.end('origin error') }),
    '/stale-if-error': (_req, res) => { res.writeHead(200, { 'cache-control': 'max-age=1, stale-if-error=600' }); res.end(BODY) },
    '/reset': (_req, res) => {
      res.writeHead(200, { 'cache-control': 'public, max-age=600', 'content-length': 100_000 })
      res.write(Buffer.alloc(20_000, 97), () => setTimeout(() => res.socket?.destroy(), 20))
    },
    '/timeout': () => {}, // never answers
    '/slow': delayed(SLOW_MS, (_req, res) => { res.writeHead(200, { 'cache-control': 'no-store' }); res.end(BODY) }),
    '/head': delayed(20, (_req, res) => { res.writeHead(200, { 'cache-control': 'public, max-age=600', 'content-length': BODY.length }); res.end(BODY) }),
    '/range': delayed(20, (req, res) => {
      const match = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''))
      if (match === null) { res.writeHead(200, { 'cache-control': 'public, max-age=600' }); res.end(BODY); return }
      const [start, end] = [Number(match[1]), Number(match[2])]
      res.writeHead(206, { 'cache-control': 'public, max-age=600', 'content-range': `bytes ${start}-${end}/${BODY.length}` })
      res.end(BODY.slice(start, end + 1))
    })
  }
  for (const [path, handler] of Object.entries(table)) {
    table[path] = (req, res) => {
      if (!healed.has(path)) { (overrides.get(path) ?? handler)(req, res); return }
      res.writeHead(200, { 'cache-control': 'no-store' })
      res.end(`healed ${path}`)
    }
  }
  return table
}

const describe = (res: RawResponse): string =>
  `${res.status}${res.timedOut ? ' (timed out)' : ''}${res.truncated ? ' (truncated)' : ''} x-cache=${res.headers['x-cache']} ${JSON.stringify(res.raw.subarray(0, 160).toString('latin1'))}`

/** The problems in a run: hangs, and answers `ok` does not accept. */
function problems (run: BurstRun, ok: (res: RawResponse, i: number) => boolean): string[] {
  return run.responses.flatMap((res, i) => {
    if (res.timedOut) return [`#${i} hung: ${describe(res)}`]
    return ok(res, i) ? [] : [`#${i} unexpected: ${describe(res)}`]
  })
}

const isClean5xx = (res: RawResponse, statuses = [502, 504]): boolean => statuses.includes(res.status) && typeof json(res)?.error === 'string'

interface Context { app: Pm2App, origin: Origin }

async function followUp (t: TestContext, { app, origin }: Context, path: string, expect?: string): Promise<void> {
  healed.add(path)
  const res = await send(app.port, requestHead('GET', `/${origin.host}${path}`, [['Connection', 'close']]), { timeoutMs: FOLLOW_UP_MS })
  t.assert.equal(res.timedOut, false, `${path}: the request after the bursts was not answered within ${FOLLOW_UP_MS} ms`)
  t.assert.equal(res.status, 200, `${path}: after the bursts: ${describe(res)}`)
  if (expect !== undefined) t.assert.equal(res.text, expect, `${path}: after the bursts`)
}

function summary (path: string, run: BurstRun, origin: Origin): string {
  const hits = run.responses.filter((r) => r.headers['x-cache'] === 'HIT').length
  return `${path}: ${run.responses.length} requests in ${run.durations.length} bursts (${run.durations.join('/')} ms), ${hits} hits, origin saw ${origin.hits(path)}`
}

test('concurrency stress: bursts of 50 identical requests per response kind through 2 PM2 workers, then a prompt answer', { timeout: 170_000 }, async (t) => {
  const origin = await startOrigin(routes())
  t.after(() => origin.close())
  const app = await startPm2App(t, { WORKERS: '2', UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS), LOG_LEVEL: 'warn' })
  const before = await app.workers()
  const ctx: Context = { app, origin }
  const target = (path: string): string => `/${origin.host}${path}`

  await t.test('cacheable: one origin request for the first burst, across both workers; hits afterwards', async (t) => {
    const run = await bursts(app.port, target('/cacheable'))
    t.diagnostic(summary('/cacheable', run, origin))
    t.assert.deepEqual(problems(run, (res) => res.status === 200 && res.text === BODY).slice(0, 5), [])
    t.assert.equal(origin.hits('/cacheable'), 1, 'one origin request in all')
    await followUp(t, ctx, '/cacheable', BODY)
  })

  await t.test('no-store: every request reaches the origin, none waits for another', async (t) => {
    maxInFlight = 0
    const run = await bursts(app.port, target('/no-store'))
    t.diagnostic(`${summary('/no-store', run, origin)}; at most ${maxInFlight} at the origin at once`)
    t.assert.deepEqual(problems(run, (res) => res.status === 200 && res.text === BODY && res.headers['x-cache'] !== 'HIT').slice(0, 5), [])
    t.assert.equal(origin.hits('/no-store'), run.responses.length, 'every request reached the origin')
    // 50 requests of 200 ms each: serialised per worker that is ≥ 5 s a burst.
    t.assert.equal(maxInFlight >= 25, true, `only ${maxInFlight} requests were at the origin at once: they queue behind one another`)
    t.assert.equal(Math.max(...run.durations) < 1500, true, `a burst took ${Math.max(...run.durations)} ms (200 ms at the origin)`)
    await followUp(t, ctx, '/no-store', 'healed /no-store')
  })

  await t.test('private: never shared, every request reaches the origin', async (t) => {
    const run = await bursts(app.port, target('/private'))
    t.diagnostic(summary('/private', run, origin))
    t.assert.deepEqual(problems(run, (res) => res.status === 200 && res.text === BODY && res.headers['x-cache'] !== 'HIT').slice(0, 5), [])
    t.assert.equal(origin.hits('/private'), run.responses.length)
    await followUp(t, ctx, '/private', 'healed /private')
  })

  await t.test('Set-Cookie: not shared; each client gets its own cookie, none gets another\'s', async (t) => {
    const run = await bursts(app.port, target('/set-cookie'))
    t.diagnostic(summary('/set-cookie', run, origin))
    t.assert.deepEqual(problems(run, (res) => res.status === 200 && res.text === BODY && /^sid=\d+; Path=\/$/.test(res.headers['set-cookie'] ?? '')).slice(0, 5), [])
    const seen = run.responses.map((res) => res.headers['set-cookie'])
    t.assert.equal(new Set(seen).size, seen.length, 'a cookie was handed to two clients')
    t.assert.equal(origin.hits('/set-cookie'), run.responses.length)
    await followUp(t, ctx, '/set-cookie', 'healed /set-cookie')
  })

  await t.test('Vary: each variant answered with its own body; no origin request after the first burst', async (t) => {
    const langs = ['en', 'fr']
    let afterFirst = 0
    const run = await bursts(app.port, target('/vary'), { headers: (i) => { if (i === 50) afterFirst = origin.hits('/vary'); return [['Accept-Language', langs[i % 2]]] } })
    t.diagnostic(`${summary('/vary', run, origin)} (${afterFirst} after the first burst)`)
    t.assert.deepEqual(problems(run, (res, i) => res.status === 200 && res.text === `lang ${langs[i % 2]}`).slice(0, 5), [])
    t.assert.equal(origin.hits('/vary'), afterFirst, 'the later bursts were all hits')
    await followUp(t, ctx, '/vary')
  })

  await t.test('revalidated by 304: every client gets the stored body; revalidations are coalesced', async (t) => {
    const run = await bursts(app.port, target('/revalidated'), { minMs: 2500 })
    const revalidations = origin.requests.filter((r) => r.url === '/revalidated' && r.headers['if-none-match'] === '"r1"').length
    t.diagnostic(`${summary('/revalidated', run, origin)}, ${revalidations} revalidations`)
    t.assert.deepEqual(problems(run, (res) => res.status === 200 && res.text === BODY).slice(0, 5), [])
    t.assert.equal(revalidations >= 1, true, 'the entry went stale and was revalidated')
    const bound = 2 * (Math.ceil(run.elapsedMs / 1000) + 2)
    t.assert.equal(origin.hits('/revalidated') <= bound, true, `${origin.hits('/revalidated')} origin requests for ${run.responses.length} clients (bound ${bound})`)
    await followUp(t, ctx, '/revalidated')
  })

  await t.test('500: passed on to every client, nothing hangs', async (t) => {
    const run = await bursts(app.port, target('/error-500'))
    t.diagnostic(summary('/error-500', run, origin))
    t.assert.deepEqual(problems(run, (res) => res.status === 500 && res.text === 'origin error').slice(0, 5), [])
    await followUp(t, ctx, '/error-500', 'healed /error-500')
  })

  await t.test('503 with stale-if-error: every client gets the stored response', async (t) => {
    const primed = await send(app.port, requestHead('GET', target('/stale-if-error'), [['Connection', 'close']]), { timeoutMs: 5000 })
    t.assert.equal(primed.text, BODY)
    await sleep(1100) // stale now
    const before = origin.hits('/stale-if-error')
    overrides.set('/stale-if-error', (_req, res) => { res.writeHead(503, { 'retry-after': '1' }); res.end('down') })
    const run = await bursts(app.port, target('/stale-if-error'))
    overrides.delete('/stale-if-error')
    t.diagnostic(`${summary('/stale-if-error', run, origin)} (${origin.hits('/stale-if-error') - before} while failing)`)
    t.assert.deepEqual(problems(run, (res) => res.status === 200 && res.text === BODY).slice(0, 5), [])
    await followUp(t, ctx, '/stale-if-error')
  })

  await t.test('reset mid-body: each client sees a cut-off response or a clean 502, nothing stored', async (t) => {
    const run = await bursts(app.port, target('/reset'))
    t.diagnostic(summary('/reset', run, origin))
    t.assert.deepEqual(problems(run, (res) => isClean5xx(res) || (res.status === 200 && res.truncated && res.closed)).slice(0, 5), [])
    await followUp(t, ctx, '/reset', 'healed /reset')
  })

  await t.test('timeout: each client gets a clean 504 within the upstream timeout', async (t) => {
    const run = await bursts(app.port, target('/timeout'), { minMs: 0, maxBursts: 1 })
    t.diagnostic(summary('/timeout', run, origin))
    t.assert.deepEqual(problems(run, (res) => isClean5xx(res, [504]) && res.elapsedMs < UPSTREAM_TIMEOUT_MS + 2000).slice(0, 5), [])
    await followUp(t, ctx, '/timeout', 'healed /timeout')
  })

  await t.test('slow 2 s (no-store): the burst takes about 2 s, not 50 × 2 s', async (t) => {
    const run = await bursts(app.port, target('/slow'), { minMs: 0, maxBursts: 1 })
    t.diagnostic(summary('/slow', run, origin))
    t.assert.deepEqual(problems(run, (res) => res.status === 200 && res.text === BODY).slice(0, 5), [])
    t.assert.equal(run.durations[0] < SLOW_MS + 1500, true, `the burst took ${run.durations[0]} ms`)
    await followUp(t, ctx, '/slow', 'healed /slow')
  })

  await t.test('HEAD: every client gets the head without a body', async (t) => {
    const run = await bursts(app.port, target('/head'), { method: 'HEAD' })
    t.diagnostic(summary('/head', run, origin))
    t.assert.deepEqual(problems(run, (res) => res.status === 200 && res.raw.toString('latin1').endsWith('\r\n\r\n') && !res.truncated).slice(0, 5), [])
    await followUp(t, ctx, '/head')
  })

  await t.test('Range: every client gets exactly its bytes', async (t) => {
    const run = await bursts(app.port, target('/range'), { headers: () => [['Range', 'bytes=10-19']] })
    t.diagnostic(summary('/range', run, origin))
    t.assert.deepEqual(problems(run, (res) => res.status === 206 && res.text === BODY.slice(10, 20) && res.headers['content-range'] === `bytes 10-19/${BODY.length}`).slice(0, 5), [])
    await followUp(t, ctx, '/range')
  })

  const after = await app.workers()
  t.assert.deepEqual(after.map((p) => [p.pid, p.pm2_env.restart_time]), before.map((p) => [p.pid, p.pm2_env.restart_time]), 'no worker restarted')
})
