import { test } from 'node:test'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { startOrigin } from '../helpers/origin.ts'
import { requestsLoggedBy, startPm2App } from '../helpers/pm2.ts'
import { setTimeout as sleep } from 'node:timers/promises'
import { requestHead, send, type RawResponse } from '../helpers/raw-http.ts'

// Read-your-writes through two PM2 workers: once a client has the response of a request
// that invalidated (POST, PUT, DELETE; RFC 9111 §4.4) or replaced (a revalidation that got a
// new 200) an entry, no worker may serve the old one. Every request is a new connection,
// so the cluster primary spreads them over both workers.

const PAIRS = Number(process.env.RYW_PAIRS ?? 100)
const PRIMES = 3 // GETs before each write: the entry gets into both workers' memory tiers
const TIMEOUT_MS = 5000
const BUDGET_MS = 150_000 // the pairs stop here even if the proxy hangs on every request

/** The origin's current version of each path; GET answers it cacheably, a write bumps it. */
const versions = new Map<string, number>()

function resource (req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '/').split('?')[0]
  let version = versions.get(path) ?? 1
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    versions.set(path, ++version)
    res.writeHead(req.method === 'POST' ? 201 : req.method === 'DELETE' ? 204 : 200, { 'cache-control': 'no-store' })
    res.end(req.method === 'DELETE' ? undefined : `wrote v${version}`)
    return
  }
  res.writeHead(200, { 'cache-control': 'public, max-age=600', etag: `"v${version}"`, 'content-type': 'text/plain' })
  res.end(`v${version}`)
}

const describe = (res: RawResponse): string => `${res.status}${res.timedOut ? ' (timed out)' : ''} x-cache=${res.headers['x-cache']} cache-status=${res.headers['cache-status']} body=${JSON.stringify(res.text.slice(0, 60))}`

test(`read-your-writes through 2 PM2 workers: ${PAIRS} each of POST→GET, PUT→GET, DELETE→GET and revalidate→GET on new connections, 0 stale`, { timeout: 240_000 }, async (t) => {
  const paths = ['/rw/post', '/rw/put', '/rw/delete', '/rw/revalidate']
  const origin = await startOrigin(Object.fromEntries(paths.map((path) => [path, resource])))
  t.after(() => origin.close())
  const app = await startPm2App(t, { WORKERS: '2', LOG_LEVEL: 'info' }) // info: one line per request, to see both workers served
  const before = await app.workers()

  const get = async (path: string, headers: Array<[string, string]> = []): Promise<RawResponse> =>
    await send(app.port, requestHead('GET', `/${origin.host}${path}`, [['Connection', 'close'], ...headers]), { timeoutMs: TIMEOUT_MS })
  const write = async (method: string, path: string): Promise<RawResponse> => {
    const body = method === 'DELETE' ? '' : `new content ${Date.now()}`
    const headers: Array<[string, string]> = [['Connection', 'close'], ['Content-Type', 'text/plain'], ['Content-Length', String(body.length)]]
    return await send(app.port, requestHead(method, `/${origin.host}${path}`, headers) + body, { timeoutMs: TIMEOUT_MS })
  }

  const stale: Record<string, string[]> = {}
  const primedStale: string[] = []
  const failed: string[] = []
  const started = Date.now()
  for (const path of paths) {
    const kind = path.slice('/rw/'.length)
    stale[kind] = []
    for (let pair = 0; pair < PAIRS && Date.now() - started < BUDGET_MS; pair++) {
      // Prime: the current version is cached, in both workers' memory tiers.
      for (let i = 0; i < PRIMES; i++) {
        const res = await get(path)
        if (res.text !== `v${versions.get(path) ?? 1}`) primedStale.push(`${kind} #${pair} prime ${i}: want v${versions.get(path) ?? 1}, got ${describe(res)}`)
      }
      let done: RawResponse
      if (kind === 'revalidate') {
        // The origin changes behind the cache's back; a client asks for a revalidation (no-cache),
        // and its 200 replaces the entry.
        versions.set(path, (versions.get(path) ?? 1) + 1)
        done = await get(path, [['Cache-Control', 'no-cache']])
        if (done.status !== 200 || done.text !== `v${versions.get(path)}`) failed.push(`${kind} #${pair}: the revalidating request itself got ${describe(done)}, want v${versions.get(path)}`)
      } else {
        done = await write(kind.toUpperCase(), path)
        if (done.status < 200 || done.status >= 300 || done.timedOut) failed.push(`${kind} #${pair}: the ${kind.toUpperCase()} got ${describe(done)}`)
      }
      // The client has the response: the next GET, on a new connection, must see the write.
      const res = await get(path)
      const want = `v${versions.get(path)}`
      if (res.status !== 200 || res.text !== want) stale[kind].push(`#${pair}: want ${want}, got ${describe(res)}`)
    }
  }
  const elapsed = Date.now() - started
  t.assert.equal(elapsed < BUDGET_MS, true, `the pairs did not finish within ${BUDGET_MS} ms`)
  const counts = Object.entries(stale).map(([kind, list]) => `${kind} ${list.length}/${PAIRS}`).join(', ')
  t.diagnostic(`${PAIRS * paths.length} pairs in ${elapsed} ms; stale GETs after the write: ${counts}; stale primes (GET after the previous pair): ${primedStale.length}; origin saw ${origin.requests.length}`)
  const after = await app.workers()
  // Both workers answered: the pairs really crossed processes.
  let served = before.map(() => 0)
  for (let round = 0; round < 50 && served.some((n) => n === 0); round++) {
    served = before.map((p) => requestsLoggedBy(p.pm2_env.pm_out_log_path, p.pid))
    if (served.some((n) => n === 0)) await sleep(100) // PM2 writes the logs asynchronously
  }
  t.diagnostic(`requests logged per worker: ${served.join(', ')}`)
  t.assert.equal(served.every((n) => n > 0), true, `one worker served nothing: ${served.join(', ')}`)

  t.assert.deepEqual(failed.slice(0, 10), [], 'every write and revalidation succeeded')
  for (const [kind, list] of Object.entries(stale)) {
    t.assert.equal(list.length, 0, `${kind}→GET: ${list.length} of ${PAIRS} GETs after the write were stale, first ones:\n${list.slice(0, 5).join('\n')}`)
  }
  t.assert.deepEqual(primedStale.slice(0, 10), [], `${primedStale.length} later GETs were stale`)
  t.assert.deepEqual(after.map((p) => [p.pid, p.pm2_env.restart_time]), before.map((p) => [p.pid, p.pm2_env.restart_time]), 'no worker restarted')
  // The cache did its job between the writes: primes were mostly hits, not all origin requests.
  const gets = origin.requests.filter((r) => r.method === 'GET').length
  t.assert.equal(gets < PAIRS * paths.length * (PRIMES + 1), true, `the origin saw ${gets} GETs: nothing was cached, so nothing was tested`)
})
