import { test } from 'node:test'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { startOrigin, type Origin } from '../helpers/origin.ts'
import { startPm2App, type Pm2App } from '../helpers/pm2.ts'
import { bursts, type BurstRun } from '../helpers/bursts.ts'
import { json, requestHead, send, type RawResponse } from '../helpers/raw-http.ts'

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
      // max-age=2: Date has a resolution of one second, so the entry lives 1-2 s after each answer.
      if (req.headers['if-none-match'] === '"r1"') { res.writeHead(304, { etag: '"r1"', 'cache-control': 'max-age=2' }); res.end(); return }
      res.writeHead(200, { etag: '"r1"', 'cache-control': 'max-age=2' }); res.end(BODY)
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
  `${res.status}${res.timedOut ? ' (timed out)' : ''}${res.truncated ? ' (truncated)' : ''} x-cache=${res.headers['x-cache']} cache-status=${res.headers['cache-status']} body ${JSON.stringify(res.text.slice(0, 40))} ${JSON.stringify(res.raw.subarray(0, 100).toString('latin1'))}`

/** The problems in a run: hangs, and answers `ok` does not accept. */
function problems (run: BurstRun, ok: (res: RawResponse, i: number) => boolean): string[] {
  return run.responses.flatMap((res, i) => {
    if (res.timedOut) return [`#${i} not answered within the client's 8 s limit: ${describe(res)}`]
    return ok(res, i) ? [] : [`#${i} unexpected: ${describe(res)}`]
  })
}

const isClean5xx = (res: RawResponse, statuses = [502, 504]): boolean => statuses.includes(res.status) && typeof json(res)?.error === 'string'

interface Context { app: Pm2App, origin: Origin }

/** The origin heals; one more request must then be answered within FOLLOW_UP_MS. Returns what is wrong, if anything. */
async function followUp ({ app, origin }: Context, path: string, expect?: string): Promise<string[]> {
  healed.add(path)
  const res = await send(app.port, requestHead('GET', `/${origin.host}${path}`, [['Connection', 'close']]), { timeoutMs: FOLLOW_UP_MS })
  if (res.timedOut) return [`${path}: the request after the bursts was not answered within ${FOLLOW_UP_MS} ms`]
  if (res.status !== 200 || (expect !== undefined && res.text !== expect)) return [`${path}: after the bursts: ${describe(res)}`]
  return []
}

function summary (path: string, run: BurstRun, origin: Origin): string {
  const hits = run.responses.filter((r) => r.headers['x-cache'] === 'HIT').length
  const times = run.responses.map((r) => r.elapsedMs).sort((a, b) => a - b)
  const latency = `latency min/median/max ${times[0]}/${times[times.length >> 1]}/${times[times.length - 1]} ms`
  const statuses = new Map<number, number>()
  for (const res of run.responses) statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
  const histogram = [...statuses].map(([status, n]) => `${status}:${n}`).join(' ')
  return `${path}: ${run.responses.length} requests (${histogram}) in ${run.durations.length} bursts (${run.durations.join('/')} ms), ${latency}, ${hits} hits, origin saw ${origin.hits(path)}`
}

interface Kind {
  name: string
  path: string
  method?: string
  headers?: (i: number) => Array<[string, string]>
  minMs?: number
  maxBursts?: number
  /** Before the bursts (priming the cache, switching the origin). */
  before?: (ctx: Context) => Promise<void>
  /** Whether one answer is right. */
  ok: (res: RawResponse, i: number) => boolean
  /** Further checks on the whole run (origin hits as HTTP allows, latency). */
  check?: (run: BurstRun, ctx: Context, startHits: number, perBurst: number[]) => string[]
  /** The body the request after the bursts must get (the origin healed), when known. */
  after?: string
}

const hitsOnlyOnce = (path: string) => (_run: BurstRun, { origin }: Context): string[] =>
  origin.hits(path) === 1 ? [] : [`${path}: ${origin.hits(path)} origin requests, HTTP allows one`]
const everyRequestReaches = (path: string) => (run: BurstRun, { origin }: Context, startHits: number): string[] =>
  origin.hits(path) - startHits === run.responses.length ? [] : [`${path}: ${origin.hits(path) - startHits} origin requests for ${run.responses.length} clients: each must reach the origin`]
/** A response not storable is learnt from the first burst; later bursts must not queue behind one another. */
const notSerialised = (originMs: number) => (run: BurstRun): string[] => {
  const slow = run.durations.slice(1).filter((ms) => ms > originMs + 1500)
  const first = run.durations[0] > 2 * originMs + 1500 ? [`the first burst took ${run.durations[0]} ms (origin ${originMs} ms: at most one wait for a leader)`] : []
  return [...first, ...slow.map((ms) => `a later burst took ${ms} ms (origin ${originMs} ms): requests queue behind one another`)]
}

const LANGS = ['en', 'fr']

const KINDS: Kind[] = [
  { name: 'cacheable: one origin request in all (the first burst coalesced across both workers)', path: '/cacheable', ok: (res) => res.status === 200 && res.text === BODY, check: hitsOnlyOnce('/cacheable'), after: BODY },
  {
    name: 'no-store: every request reaches the origin, none waits for another',
    path: '/no-store',
    ok: (res) => res.status === 200 && res.text === BODY && res.headers['x-cache'] !== 'HIT',
    before: async () => { maxInFlight = 0 },
    check: (run, ctx, startHits) => [
      ...everyRequestReaches('/no-store')(run, ctx, startHits),
      ...notSerialised(200)(run),
      ...(maxInFlight >= 25 ? [] : [`only ${maxInFlight} requests were at the origin at once: they queue behind one another`])
    ],
    after: 'healed /no-store'
  },
  { name: 'private: never shared, every request reaches the origin', path: '/private', ok: (res) => res.status === 200 && res.text === BODY && res.headers['x-cache'] !== 'HIT', check: everyRequestReaches('/private'), after: 'healed /private' },
  {
    name: 'Set-Cookie: not shared; each client gets its own cookie, none another\'s',
    path: '/set-cookie',
    ok: (res) => res.status === 200 && res.text === BODY && /^sid=\d+; Path=\/$/.test(res.headers['set-cookie'] ?? ''),
    check: (run, ctx, startHits) => {
      const seen = run.responses.map((res) => res.headers['set-cookie'])
      return [...everyRequestReaches('/set-cookie')(run, ctx, startHits), ...(new Set(seen).size === seen.length ? [] : ['a cookie was handed to two clients'])]
    },
    after: 'healed /set-cookie'
  },
  {
    name: 'Vary: each variant answered with its own body; no origin request after the first burst',
    path: '/vary',
    headers: (i) => [['Accept-Language', LANGS[i % 2]]],
    ok: (res, i) => res.status === 200 && res.text === `lang ${LANGS[i % 2]}`,
    // A variant another worker stored a moment ago may still be on its way: a few misses
    // after the first burst are allowed (2 variants × 2 workers), none in the last one.
    check: (_run, _ctx, _start, perBurst) => {
      const later = perBurst.slice(1).reduce((a, b) => a + b, 0)
      const last = perBurst[perBurst.length - 1]
      return [...(later <= 4 ? [] : [`${later} origin requests after the first burst (${perBurst[0]} in it)`]), ...(last === 0 ? [] : [`${last} origin requests in the last burst`])]
    }
  },
  {
    name: 'revalidated by 304 (max-age=2): every client gets the stored body; revalidations coalesced',
    path: '/revalidated',
    minMs: 3500,
    maxBursts: 400,
    ok: (res) => res.status === 200 && res.text === BODY,
    check: (run, { origin }) => {
      const revalidations = origin.requests.filter((r) => r.url === '/revalidated' && r.headers['if-none-match'] === '"r1"').length
      const bound = 2 * (Math.ceil(run.elapsedMs / 1000) + 2)
      return [
        ...(revalidations >= 1 ? [] : ['the entry never went stale and was never revalidated']),
        ...(origin.hits('/revalidated') <= bound ? [] : [`${origin.hits('/revalidated')} origin requests for ${run.responses.length} clients (bound ${bound}: one per worker per second)`])
      ]
    }
  },
  { name: '500: passed on to every client', path: '/error-500', ok: (res) => res.status === 500 && res.text === 'origin error', after: 'healed /error-500' },
  {
    name: '503 with stale-if-error: every client gets the stored response',
    path: '/stale-if-error',
    before: async ({ app, origin }) => {
      await send(app.port, requestHead('GET', `/${origin.host}/stale-if-error`, [['Connection', 'close']]), { timeoutMs: 5000 })
      await sleep(1100) // stale now
      overrides.set('/stale-if-error', (_req, res) => { res.writeHead(503, { 'retry-after': '1' }); res.end('down') })
    },
    ok: (res) => res.status === 200 && res.text === BODY
  },
  { name: 'reset mid-body: a cut-off response (the client can tell) or a clean 502; nothing stored', path: '/reset', ok: (res) => isClean5xx(res) || (res.status === 200 && res.truncated && res.closed), after: 'healed /reset' },
  {
    // The worker whose request leads times out once and hands the 504 to its waiters; the other
    // worker's requests learn only from the lease being released, then try once themselves:
    // at most twice the timeout plus the lease polling (a chain of waits would be three times).
    name: 'timeout: a clean 504 for every client, within twice the upstream timeout (plus lease polling)',
    path: '/timeout',
    minMs: 0,
    maxBursts: 1,
    ok: (res) => isClean5xx(res, [504]) && res.elapsedMs < 2 * UPSTREAM_TIMEOUT_MS + 2000,
    after: 'healed /timeout'
  },
  { name: 'slow 2 s (no-store): bursts take about 2 s, not 50 × 2 s', path: '/slow', minMs: 60_000, maxBursts: 2, ok: (res) => res.status === 200 && res.text === BODY, check: notSerialised(SLOW_MS), after: 'healed /slow' },
  { name: 'HEAD: every client gets the head without a body', path: '/head', method: 'HEAD', ok: (res) => res.status === 200 && res.raw.toString('latin1').endsWith('\r\n\r\n') && !res.truncated },
  {
    name: 'Range: every client gets exactly its bytes (or, as RFC 9110 §14.2 allows, the whole body)',
    path: '/range',
    headers: () => [['Range', 'bytes=10-19']],
    ok: (res) => (res.status === 206 && res.text === BODY.slice(10, 20) && res.headers['content-range'] === `bytes 10-19/${BODY.length}`) ||
      (res.status === 200 && res.text === BODY)
  }
]

test('concurrency stress: bursts of 50 identical requests per response kind through 2 PM2 workers, then a prompt answer', { timeout: 170_000 }, async (t) => {
  const origin = await startOrigin(routes())
  t.after(() => origin.close())
  const app = await startPm2App(t, { WORKERS: '2', UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS), LOG_LEVEL: 'warn' })
  const before = await app.workers()
  const ctx: Context = { app, origin }

  for (const kind of KINDS) {
    await t.test(kind.name, async (t) => {
      await kind.before?.(ctx)
      const startHits = origin.hits(kind.path)
      // Origin requests so far, read as each burst starts.
      const marks: number[] = []
      const headers = (i: number): Array<[string, string]> => {
        if (i % 50 === 0) marks.push(origin.hits(kind.path) - startHits)
        return kind.headers?.(i) ?? []
      }
      const run = await bursts(app.port, `/${origin.host}${kind.path}`, { method: kind.method, headers, minMs: kind.minMs, maxBursts: kind.maxBursts })
      overrides.delete(kind.path)
      marks.push(origin.hits(kind.path) - startHits)
      const perBurst = marks.slice(1).map((n, i) => n - marks[i])
      t.diagnostic(`${summary(kind.path, run, origin)}; per burst ${perBurst.join('/')}`)
      const minMs = Math.min(kind.minMs ?? 2000, 2000)
      const sustained = run.elapsedMs >= minMs || run.durations.length === kind.maxBursts ? [] : [`the bursts lasted ${run.elapsedMs} ms, not ${minMs} ms`]
      const found = [...problems(run, kind.ok).slice(0, 5), ...sustained, ...(kind.check?.(run, ctx, startHits, perBurst) ?? []), ...await followUp(ctx, kind.path, kind.after)]
      t.assert.deepEqual(found, [])
    })
  }

  // The first burst for a URL whose response varies is where the workers coalesce across
  // processes: many cold URLs, one burst each. Every client must get its own variant.
  await t.test('Vary, cold: 40 new URLs, one burst each; no client gets the other language', async (t) => {
    healed.delete('/vary') // the Vary kind's follow-up healed it
    const wrong: string[] = []
    for (let round = 0; round < 40; round++) {
      const run = await bursts(app.port, `/${origin.host}/vary?cold=${round}`, { headers: (i) => [['Accept-Language', LANGS[i % 2]]], minMs: 0, maxBursts: 1 })
      wrong.push(...problems(run, (res, i) => res.status === 200 && res.text === `lang ${LANGS[i % 2]}`).map((p) => `URL ${round}: ${p}`))
    }
    t.diagnostic(`${wrong.length} of 2000 answers wrong`)
    t.assert.deepEqual(wrong.slice(0, 5), [])
  })

  const after = await app.workers()
  t.assert.deepEqual(after.map((p) => [p.pid, p.pm2_env.restart_time]), before.map((p) => [p.pid, p.pm2_env.restart_time]), 'no worker restarted')
})
