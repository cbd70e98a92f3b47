import { test } from 'node:test'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { listen, json, send, get as rawGet, type RawResponse } from '../helpers/raw-http.ts'
import { startRawOrigin, rawHead, type RawAnswer, type RawOrigin } from '../helpers/raw-origin.ts'
import { coverageGaps, hostileCases, type HostileCase } from '../helpers/hostile-responses.ts'
import { Random, seedFrom } from '../helpers/random.ts'
import { startPm2App } from '../helpers/pm2.ts'
import { testApp } from '../helpers/app.ts'
import { mapLimit } from '../helpers/process.ts'

// Hostile origins: every response a broken or malicious origin can send must end as a
// complete response or a clean 502/504, never as a crashed worker, a hang, or a poisoned
// cache entry. Replay a failure with HOSTILE_SEED=<seed> node --import tsx --test test/hostile-origin.test.ts
const SEED = seedFrom('HOSTILE_SEED')
const CASES = Number(process.env.HOSTILE_CASES ?? 1000)
const CONCURRENCY = 24
const RUN_BUDGET_MS = 60_000
const CLIENT_TIMEOUT_MS = 10_000

function marker (index: number): Buffer {
  return Buffer.from(`known-good marker ${index}`)
}

function markerAnswer (url: string): RawAnswer {
  const body = marker(Number(/\/h\/(\d+)/.exec(url)?.[1] ?? -1))
  return { parts: [rawHead('HTTP/1.1 200 OK', [['Cache-Control', 'no-store'], ['Content-Length', String(body.length)]]), body], end: 'keep' }
}

function caseOf (cases: HostileCase[], url: string): HostileCase | undefined {
  const match = /^\/h\/(\d+)$/.exec(url)
  return match === null ? undefined : cases[Number(match[1])]
}

function show (c: HostileCase, res: RawResponse): string {
  const flags = [res.timedOut && 'timed out', res.truncated && 'truncated', res.closed && 'closed'].filter(Boolean).join(',')
  return `#${c.index} [${c.label}] valid=${c.valid} → ${res.status} (${flags}) x-cache=${res.headers['x-cache']} body ${res.body.length}/${c.body.length} B ${JSON.stringify(res.raw.subarray(0, 120).toString('latin1'))}`
}

const isCleanError = (res: RawResponse): boolean =>
  (res.status === 502 || res.status === 504) && !res.truncated && typeof json(res)?.error === 'string'

/** What is wrong with one answer during the run, or undefined. */
function judgeRun (c: HostileCase, res: RawResponse): string | undefined {
  if (res.timedOut) return `no complete answer within ${CLIENT_TIMEOUT_MS} ms: ${show(c, res)}`
  if (res.status === 0) return `connection closed without a response: ${show(c, res)}`
  if (isCleanError(res)) return c.valid && !c.mayFail ? `a valid response was answered ${res.status}: ${show(c, res)}` : undefined
  if (res.status >= 500 && res.status !== c.status) return `an error that is not a clean 502/504 JSON: ${show(c, res)}`
  if (res.headers['x-cache'] === 'HIT' && res.headers['set-cookie'] !== undefined) return `a hit carried Set-Cookie: ${show(c, res)}`
  const framed = res.headers['content-length'] !== undefined || /chunked/i.test(res.headers['transfer-encoding'] ?? '')
  if (res.truncated) {
    // Cut short after the head went out: fine for a broken origin, if the client can tell.
    return c.valid ? `a valid response arrived truncated: ${show(c, res)}` : res.closed ? undefined : `truncated, connection left open: ${show(c, res)}`
  }
  if (res.status !== c.status) return `status ${res.status}, origin meant ${c.status}: ${show(c, res)}`
  if (!res.body.equals(c.body)) {
    return framed ? `complete-looking body differs from what the origin meant: ${show(c, res)}` : `cut-off body passed on close-delimited (the client cannot tell): ${show(c, res)}`
  }
  return undefined
}

/** What is wrong with an answer once the origin sends a known-good marker, or undefined. */
function judgeAfter (c: HostileCase, res: RawResponse): string | undefined {
  if (res.timedOut || res.truncated || res.status === 0) return `after the run: no complete answer: ${show(c, res)}`
  if (res.status === 200 && res.body.equals(marker(c.index))) return undefined
  // Anything else came from the cache: it must be the whole response the origin meant, without a cookie.
  if (res.headers['set-cookie'] !== undefined) return `after the run: a cached entry carries Set-Cookie: ${show(c, res)}`
  if (!res.body.equals(c.body) || res.status !== c.status) return `after the run: a truncated or poisoned entry was stored: ${show(c, res)}`
  return undefined
}

function logText (path: string): string {
  try { return readFileSync(path, 'utf8') } catch { return '' }
}

test(`hostile origin through 2 PM2 workers: ≥ 2,000 responses, no restart, complete or clean 502/504, nothing poisoned stored (seed ${SEED})`, { timeout: 240_000 }, async (t) => {
  t.diagnostic(`HOSTILE_SEED=${SEED}`)
  const cases = hostileCases(SEED, CASES)
  t.assert.deepEqual(coverageGaps(cases), [], `HOSTILE_SEED=${SEED}: kinds of hostile response no case exercises`)
  const origin: RawOrigin = await startRawOrigin((request) => {
    const c = caseOf(cases, request.url)
    if (c !== undefined) return c.answer
    const body = Buffer.from(`normal ${request.url}`)
    return { parts: [rawHead('HTTP/1.1 200 OK', [['Cache-Control', 'public, max-age=600'], ['Content-Length', String(body.length)]]), body], end: 'keep' }
  })
  t.after(() => origin.close())
  const app = await startPm2App(t, { WORKERS: '2', UPSTREAM_TIMEOUT_MS: '2000', LOG_LEVEL: 'warn' })
  const before = await app.workers()
  t.assert.equal(before.length, 2)

  // Every case is requested twice (the second often a hit), in a seeded order.
  const r = new Random(SEED + 7)
  const order = [...cases, ...cases].map((c) => ({ c, key: r.next() })).sort((a, b) => a.key - b.key).map((x) => x.c)
  const started = Date.now()
  const deadline = started + RUN_BUDGET_MS
  let skipped = 0
  const problems: string[] = []
  const outcomes = await mapLimit(order, CONCURRENCY, async (c) => {
    if (Date.now() > deadline) { skipped++; return undefined }
    const res = await send(app.port, rawGet(`/${origin.host}/h/${c.index}`), { timeoutMs: CLIENT_TIMEOUT_MS })
    const problem = judgeRun(c, res)
    if (problem !== undefined) problems.push(problem)
    return res
  })
  const elapsed = Date.now() - started
  const answered = outcomes.filter((o) => o !== undefined) as RawResponse[]
  const statuses = new Map<string, number>()
  for (const o of answered) statuses.set(`${o.status}${o.headers['x-cache'] === 'HIT' ? 'H' : ''}`, (statuses.get(`${o.status}${o.headers['x-cache'] === 'HIT' ? 'H' : ''}`) ?? 0) + 1)
  t.diagnostic(`${answered.length} responses in ${elapsed} ms (${skipped} skipped), origin saw ${origin.requests.length}: ${[...statuses].map(([k, v]) => `${k}:${v}`).join(' ')}`)

  // Re-request every URL with the origin now answering a known-good, uncacheable marker.
  origin.setHandler((request) => markerAnswer(request.url))
  const verifyDeadline = Date.now() + RUN_BUDGET_MS
  const after = await mapLimit(cases, CONCURRENCY, async (c) => {
    if (Date.now() > verifyDeadline) { skipped++; return undefined }
    const res = await send(app.port, rawGet(`/${origin.host}/h/${c.index}`), { timeoutMs: CLIENT_TIMEOUT_MS })
    const problem = judgeAfter(c, res)
    if (problem !== undefined) problems.push(problem)
    return res
  })
  t.diagnostic(`after the run: ${after.filter((res) => res?.headers['x-cache'] === 'HIT').length} of ${cases.length} URLs served from the cache (${skipped} requests skipped in all)`)

  // Normal requests still work: a miss, then a hit.
  origin.setHandler((request) => {
    const body = Buffer.from(`normal ${request.url}`)
    return { parts: [rawHead('HTTP/1.1 200 OK', [['Cache-Control', 'public, max-age=600'], ['Content-Length', String(body.length)]]), body], end: 'keep' }
  })
  const normal = await send(app.port, rawGet(`/${origin.host}/normal`), { timeoutMs: 5000 })
  await sleep(300)
  const normalAgain = await send(app.port, rawGet(`/${origin.host}/normal`), { timeoutMs: 5000 })

  const now = await app.workers()
  const logs = before.flatMap((p) => [p.pm2_env.pm_out_log_path, p.pm2_env.pm_err_log_path]).map(logText).join('\n')
  const alreadySent = logs.split('\n').filter((line) => /Reply was already sent/.test(line))
  const uncaught = logs.split('\n').filter((line) => /uncaught|unhandled|TypeError/i.test(line))
  t.diagnostic(`log lines: ${alreadySent.length} "Reply was already sent", ${uncaught.length} uncaught/TypeError; first: ${uncaught[0]?.slice(0, 300) ?? '-'}`)

  const failures = problems.length
  // One line per kind of problem, so that a fix can be aimed at the class.
  const kinds = new Map<string, number>()
  for (const problem of problems) {
    const kind = problem.replace(/#\d+ /, '').replace(/\] .*$/s, ']').replace(/\(\d+ B\)|\d+ ms/g, 'n')
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
  }
  for (const [kind, count] of [...kinds].sort((a, b) => b[1] - a[1])) t.diagnostic(`${count} × ${kind}`)
  t.assert.deepEqual(now.map((p) => [p.pid, p.pm2_env.restart_time, p.pm2_env.status]), before.map((p) => [p.pid, p.pm2_env.restart_time, 'online']),
    `HOSTILE_SEED=${SEED}: worker restarts (pid, restart_time, status) before ${JSON.stringify(before.map((p) => [p.pid, p.pm2_env.restart_time]))}`)
  t.assert.equal(failures, 0, `HOSTILE_SEED=${SEED}: ${failures} problem(s), first ones:\n${problems.slice(0, 20).join('\n')}`)
  t.assert.equal(skipped, 0, `HOSTILE_SEED=${SEED}: ${skipped} requests skipped: the time budget ran out`)
  t.assert.equal(answered.length >= 2000, true, `HOSTILE_SEED=${SEED}: only ${answered.length} responses within ${RUN_BUDGET_MS} ms`)
  t.assert.equal(elapsed <= RUN_BUDGET_MS + CLIENT_TIMEOUT_MS, true, `the run took ${elapsed} ms`)
  t.assert.equal(normal.status, 200, `a normal request afterwards: ${normal.status} ${normal.text.slice(0, 200)}`)
  t.assert.equal(normal.text, 'normal /normal')
  t.assert.equal(normalAgain.text, 'normal /normal')
  t.assert.equal(origin.hits('/normal'), 1, 'the normal URL was cached')
  t.assert.deepEqual(alreadySent, [], 'no "Reply was already sent" in the workers\' logs')
})

// ---------------------------------------------------------------------------------------
// In-process: the specific cases, quickly.

async function inProcess (t: Parameters<typeof testApp>[0], respond: (url: string) => RawAnswer): Promise<{ port: number, origin: RawOrigin, log: string[] }> {
  const origin = await startRawOrigin((request) => respond(request.url))
  t.after(() => origin.close())
  const log: string[] = []
  const app = await testApp(t, { LOG_LEVEL: 'info', UPSTREAM_TIMEOUT_MS: '2000' }, { logStream: { write: (line) => { log.push(line) } } })
  return { port: await listen(app), origin, log }
}

function answer (status: string, headers: Array<[string, string]>, body: string): RawAnswer {
  return { parts: [rawHead(`HTTP/1.1 ${status}`, [...headers, ['Content-Length', String(Buffer.byteLength(body))]]), Buffer.from(body)], end: 'keep' }
}

test('two Cache-Control lines (max-age=60, public) are one field: stored, the second request is a hit', async (t) => {
  const { port, origin } = await inProcess(t, () => answer('200 OK', [['Cache-Control', 'max-age=60'], ['Cache-Control', 'public']], 'two lines'))
  const first = await send(port, rawGet(`/${origin.host}/two`), { timeoutMs: 5000 })
  t.assert.equal(first.status, 200, `first request: status ${first.status} (0: no response, the process died?) ${JSON.stringify(first.raw.toString('latin1').slice(0, 300))}`)
  t.assert.equal(first.text, 'two lines')
  await sleep(100)
  const second = await send(port, rawGet(`/${origin.host}/two`), { timeoutMs: 5000 })
  t.assert.equal(second.status, 200)
  t.assert.equal(second.text, 'two lines')
  t.assert.equal(second.headers['x-cache'], 'HIT')
  t.assert.equal(origin.hits('/two'), 1)
})

for (const value of ['PRIVATE, MAX-AGE=600', 'NO-STORE, max-age=600', 'Private, max-age=600', 'max-age=600, No-Store']) {
  test(`Cache-Control: ${value} is never shared (directive names are case-insensitive, RFC 9111 §5.2)`, async (t) => {
    const { port, origin } = await inProcess(t, () => answer('200 OK', [['Cache-Control', value]], 'personal'))
    for (let i = 0; i < 2; i++) {
      const res = await send(port, rawGet(`/${origin.host}/upper`), { timeoutMs: 5000 })
      t.assert.equal(res.status, 200)
      t.assert.notEqual(res.headers['x-cache'], 'HIT', `request ${i + 1} was a hit`)
      await sleep(100)
    }
    t.assert.equal(origin.hits('/upper'), 2, 'both requests reached the origin')
  })
}

for (const status of ['999 Odd', '600 Odd', '000 Zero']) {
  test(`an origin status ${status.slice(0, 3)} is answered with exactly one clean 502, and the log has no "Reply was already sent"`, async (t) => {
    const { port, origin, log } = await inProcess(t, () => answer(status, [['Cache-Control', 'public, max-age=60']], 'odd status body'))
    const res = await send(port, rawGet(`/${origin.host}/odd`), { timeoutMs: 5000, closeWaitMs: 200 })
    t.assert.equal(res.status, 502, res.raw.toString('latin1').slice(0, 300))
    t.assert.equal(typeof json(res)?.error, 'string')
    // Exactly one response on the socket: nothing after the first one's body.
    const responses = res.raw.toString('latin1').match(/HTTP\/1\.1 \d{3}/g) ?? []
    t.assert.equal(responses.length, 1, `responses on the socket: ${JSON.stringify(responses)}`)
    await sleep(100)
    // One log line for the failed request at most (RFC 9110 §15: a status is three digits, 1xx-5xx).
    t.assert.deepEqual(log.filter((line) => /Reply was already sent/.test(line)).map((line) => line.slice(0, 200)), [])
    const warnings = log.filter((line) => (JSON.parse(line) as { level: number }).level >= 40)
    t.assert.equal(warnings.length <= 1, true, `more than one warning or error logged: ${warnings.map((line) => line.slice(0, 160)).join('\n')}`)
    const after = await send(port, rawGet(`/${origin.host}/odd`), { timeoutMs: 5000 })
    t.assert.equal(after.status, 502, 'the next request is answered too')
  })
}

const CUT_OFF: Record<string, RawAnswer> = {
  'reset right after the head': { parts: [rawHead('HTTP/1.1 200 OK', [['Cache-Control', 'public, max-age=600'], ['Content-Length', '2000']])], end: 'reset' },
  'close right after the head': { parts: [rawHead('HTTP/1.1 200 OK', [['Cache-Control', 'public, max-age=600'], ['Content-Length', '2000']])], end: 'close' },
  'close inside the first chunk': { parts: [rawHead('HTTP/1.1 200 OK', [['Cache-Control', 'public, max-age=600'], ['Transfer-Encoding', 'chunked']]), Buffer.from('200\r\nabc')], end: 'close' }
}

for (const [name, cut] of Object.entries(CUT_OFF)) {
  test(`an origin that breaks off (${name}): a clean 502 without the origin's caching headers, or a cut-off response; nothing stored`, async (t) => {
    let healed = false
    const { port, origin } = await inProcess(t, () => healed ? answer('200 OK', [['Cache-Control', 'no-store']], 'healed') : cut)
    const res = await send(port, rawGet(`/${origin.host}/cut`), { timeoutMs: 5000, closeWaitMs: 200 })
    const shown = JSON.stringify(res.raw.toString('latin1').slice(0, 400))
    t.assert.equal(res.timedOut, false, shown)
    if (res.status === 200) {
      t.assert.equal(res.truncated && res.closed, true, `a 200 must be visibly cut off: ${shown}`)
    } else {
      t.assert.equal(res.status, 502, `a proxy error for an upstream failure is 502: ${shown}`)
      t.assert.equal(typeof json(res)?.error, 'string', shown)
      // An error page carrying the origin's "public, max-age=600" would be cached downstream.
      t.assert.equal(res.headers['cache-control'], undefined, `the error carries the origin's Cache-Control: ${shown}`)
    }
    healed = true
    const after = await send(port, rawGet(`/${origin.host}/cut`), { timeoutMs: 5000 })
    t.assert.equal(after.text, 'healed', 'the broken response was not stored')
  })
}
