import { test } from 'node:test'
import { writeFileSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { tempDir, testApp } from '../helpers/app.ts'
import { cacheableOrigin, mapLimit, type Reply } from '../helpers/process.ts'
import { requestsLoggedBy, startPm2App } from '../helpers/pm2.ts'

// Issue #7 item 10: RATE_LIMIT_PER_MINUTE holds for the whole proxy, not per worker.

/**
 * One GET on a new connection from the client address `from` (any 127/8 address works on
 * Linux): the limit is per client address, and the helpers' start-up probe came from 127.0.0.1.
 */
function getFrom (from: string, url: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, localAddress: from, headers: { connection: 'close' }, timeout: 15_000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within 15 s`)))
    req.on('error', reject)
  })
}

test('RATE_LIMIT_PER_MINUTE=20 with 2 PM2 workers: exactly 20 of 40 requests pass, the rest are 429 with Retry-After', { timeout: 120_000 }, async (t) => {
  const { url: proxy, workers } = await startPm2App(t, { RATE_LIMIT_PER_MINUTE: '20' })
  const paths = Array.from({ length: 8 }, (_v, i) => `/limited/${i}`)
  const origin = await cacheableOrigin(t, paths)
  const from = Date.now()

  // Each request on a new connection, so the cluster primary spreads them over both workers.
  const replies = await mapLimit(Array.from({ length: 40 }, (_v, i) => i), 4, (i) => getFrom('127.0.0.2', `${proxy}/${origin.host}${paths[i % paths.length]}`))
  const statuses = replies.map((r) => r.status)
  t.assert.equal(statuses.filter((s) => s === 200).length, 20, `statuses: ${statuses.join(',')}`)
  t.assert.equal(statuses.filter((s) => s === 429).length, 20, `statuses: ${statuses.join(',')}`)
  for (const reply of replies.filter((r) => r.status === 429)) {
    const retryAfter = Number(reply.headers['retry-after'])
    t.assert.equal(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, true, `Retry-After: ${reply.headers['retry-after']}`)
  }

  // Both workers answered some of the 40: the limit held across processes. (Every 429 is
  // logged; hits answered from a worker's memory may be logged later or not at all.)
  const list = await workers()
  // A request refused by the limit is logged with its target, a forwarded one with the upstream URL.
  const logged = new Set(paths.flatMap((path) => [`http://${origin.host}${path}`, `/${origin.host}${path}`]))
  let perWorker: number[] = []
  for (let round = 0; round < 100; round++) {
    perWorker = list.map((p) => requestsLoggedBy(p.pm2_env.pm_out_log_path, p.pid, logged, from))
    if (perWorker.reduce((a, b) => a + b, 0) >= replies.length && perWorker.every((n) => n > 0)) break
    await sleep(50) // PM2 writes the logs asynchronously
  }
  t.diagnostic(`requests per worker: ${perWorker.join(', ')}`)
  t.assert.equal(perWorker.reduce((a, b) => a + b, 0) >= 20, true, 'at least the 429s are logged')
  t.assert.equal(perWorker.every((n) => n > 0), true, 'both workers answered')

  // Another client address has its own count.
  t.assert.equal((await getFrom('127.0.0.3', `${proxy}/${origin.host}${paths[0]}`)).status, 200)
})

test('a rate-limit store that cannot open its file lets requests through', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'not-a-dir'), 'x')
  const app = await testApp(t, { RATE_LIMIT_PER_MINUTE: '2', CACHE_STORE: `sqlite://${join(dir, 'not-a-dir', 'cache.sqlite')}` })
  const statuses: number[] = []
  for (let i = 0; i < 6; i++) statuses.push((await app.inject({ method: 'GET', url: '/' })).statusCode)
  t.assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200])
})

test('RATE_LIMIT_PER_MINUTE with a sqlite:// store counts in the file: a second app over it sees the first one\'s requests', async (t) => {
  const uri = `sqlite://${join(tempDir(t), 'cache.sqlite')}`
  const a = await testApp(t, { RATE_LIMIT_PER_MINUTE: '3', CACHE_STORE: uri })
  const b = await testApp(t, { RATE_LIMIT_PER_MINUTE: '3', CACHE_STORE: uri })
  const statuses: number[] = []
  for (const app of [a, b, a, b, a]) statuses.push((await app.inject({ method: 'GET', url: '/' })).statusCode)
  t.assert.deepEqual(statuses, [200, 200, 200, 429, 429])
})
