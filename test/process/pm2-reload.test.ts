import { test } from 'node:test'
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { startOrigin } from '../helpers/origin.ts'
import { startPm2App } from '../helpers/pm2.ts'

// Issue #7 item 8: `pm2 reload` under load must fail no request, also for keep-alive
// clients, which (like wrk or undici) retry nothing when a reused socket is reset.

const CACHED = Array.from({ length: 16 }, (_v, i) => `/cached/${i}`)
const cachedBody = (path: string): string => `${path}\n${'c'.repeat(1500)}`
const passBody = (url: string): string => `${url}\n${'p'.repeat(3000)}`

interface Outcome { ok: number, failures: string[] }

/** One GET; resolves to an error message, or undefined when the answer is exactly the expected one. */
function check (url: string, expected: string, agent: http.Agent | false): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent, timeout: 20_000, headers: agent === false ? { connection: 'close' } : {} }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('error', (error) => resolve(`${url}: body ${error.message}`))
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8')
        if (res.statusCode !== 200) resolve(`${url}: status ${res.statusCode} ${body.slice(0, 100)}`)
        else if (!res.complete) resolve(`${url}: incomplete body (${body.length} bytes)`)
        else if (body !== expected) resolve(`${url}: wrong body (${body.length} bytes, expected ${expected.length})`)
        else resolve(undefined)
      })
    })
    req.on('timeout', () => req.destroy(new Error('no answer within 20 s')))
    req.on('error', (error: NodeJS.ErrnoException) => resolve(`${url}: ${error.code ?? ''} ${error.message}`))
  })
}

/**
 * `clients` loops of GETs, a cached URL three times in four and an uncacheable one
 * otherwise, until `stop()` says so or a bound is hit (count and time).
 */
function load (proxy: string, originHost: string, clients: number, agent: http.Agent | false, stop: () => boolean): Promise<Outcome> {
  const outcome: Outcome = { ok: 0, failures: [] }
  const deadline = Date.now() + 90_000
  let sent = 0
  async function client (id: number): Promise<void> {
    while (!stop() && sent < 400_000 && Date.now() < deadline) {
      const n = sent++
      let url: string
      let expected: string
      if (n % 4 === 3) {
        const path = `/pass?c=${id}&n=${n}`
        url = `${proxy}/${originHost}${path}`
        expected = passBody(path)
      } else {
        const path = CACHED[n % CACHED.length]
        url = `${proxy}/${originHost}${path}`
        expected = cachedBody(path)
      }
      const failure = await check(url, expected, agent)
      if (failure === undefined) outcome.ok++
      else outcome.failures.push(`${new Date().toISOString()} ${failure}`)
    }
  }
  return Promise.all(Array.from({ length: clients }, (_v, id) => client(id))).then(() => outcome)
}

test('pm2 reload under load: 0 failed requests for keep-alive (two reloads) and new-connection clients (one)', { timeout: 240_000 }, async (t) => {
  const origin = await startOrigin({
    '/pass': (req: IncomingMessage, res: ServerResponse) => {
      res.setHeader('cache-control', 'no-store')
      res.end(passBody(req.url ?? ''))
    },
    ...Object.fromEntries(CACHED.map((path) => [path, (_req: IncomingMessage, res: ServerResponse) => {
      res.setHeader('cache-control', 'public, max-age=600')
      res.end(cachedBody(path))
    }]))
  })
  t.after(() => origin.close())
  const { name, url: proxy, pm2, workers } = await startPm2App(t, { LOG_LEVEL: 'warn' })

  async function reloadUnderLoad (t: { diagnostic: (m: string) => void }, reloads: number, clients: number, agent: http.Agent | false): Promise<Outcome> {
    const before = (await workers()).map((p) => p.pid)
    let done = false
    const running = load(proxy, origin.host, clients, agent, () => done)
    await sleep(1000)
    const started = Date.now()
    try {
      for (let i = 0; i < reloads; i++) {
        if (i > 0) await sleep(500)
        await pm2('reload', name)
        t.diagnostic(`reload ${i + 1} done at +${Date.now() - started} ms, pids ${(await workers()).map((p) => p.pid).join(',')}`)
      }
      await sleep(1000)
    } finally {
      done = true
    }
    const outcome = await running
    const after = await workers()
    t.diagnostic(`${reloads} reload(s) from ${before.join(',')} took ${Date.now() - started} ms; ${outcome.ok} answered in full, ${outcome.failures.length} failed; pids now ${after.map((p) => p.pid).join(',')}`)
    const replaced = after.filter((p) => before.includes(p.pid))
    if (replaced.length > 0) outcome.failures.push(`workers ${replaced.map((p) => p.pid).join(',')} were not replaced`)
    if (outcome.failures.length > 0) t.diagnostic(outcome.failures.slice(0, 10).join('\n'))
    return outcome
  }

  await t.test('50 keep-alive clients', async (t) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 50 })
    t.after(() => agent.destroy())
    const outcome = await reloadUnderLoad(t, 2, 50, agent)
    t.assert.deepEqual(outcome.failures.slice(0, 10), [])
    t.assert.equal(outcome.ok > 1000, true, `the load ran (${outcome.ok} requests)`)
    const list = await workers()
    t.assert.deepEqual(list.map((p) => p.pm2_env.status), ['online', 'online'])
  })

  await t.test('50 clients, a new connection per request, one reload', async (t) => {
    const outcome = await reloadUnderLoad(t, 1, 50, false)
    t.assert.deepEqual(outcome.failures.slice(0, 10), [])
    t.assert.equal(outcome.ok > 500, true, `the load ran (${outcome.ok} requests)`)
  })
})
