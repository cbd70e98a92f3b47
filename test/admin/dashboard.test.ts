import { test } from 'node:test'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ServerResponse } from 'node:http'
import { tempDir, testApp } from '../helpers/app.ts'
import { startOrigin } from '../helpers/origin.ts'
import { LiveStats } from '../../src/admin/live-stats.ts'

// GET /_proxy/stats and /_proxy/ (plugins/dashboard.ts) through inject(): guarded like the
// other admin routes; with a sqlite:// store another worker's published stats are merged in.

const TOKEN = 'dashboard-token-0123456789'

test('the dashboard and its stats are admin routes: token and loopback', { timeout: 20_000 }, async (t) => {
  const app = await testApp(t, { ADMIN_TOKEN: TOKEN })
  for (const url of ['/_proxy/', '/_proxy/stats']) {
    t.assert.equal((await app.inject({ url, headers: { accept: 'application/json' } })).statusCode, 401, url)
    t.assert.equal((await app.inject({ url, headers: { authorization: `Bearer ${TOKEN}` }, remoteAddress: '203.0.113.5' })).statusCode, 403, url)
    const ok = await app.inject({ url, headers: { authorization: `Bearer ${TOKEN}` } })
    t.assert.equal(ok.statusCode, 200, url)
    t.assert.equal(ok.headers['cache-control'], 'no-store')
  }
  const page = await app.inject({ url: '/_proxy/', headers: { authorization: `Bearer ${TOKEN}` } })
  t.assert.match(String(page.headers['content-type']), /^text\/html/)
  t.assert.match(page.body, /fetch\('stats'/)
})

test('stats merge the other workers\' published snapshots (sqlite:// store): totals, per worker, top URLs', { timeout: 20_000 }, async (t) => {
  const dir = tempDir(t)
  const origin = await startOrigin({
    '/a': (_req: unknown, res: ServerResponse) => { res.setHeader('cache-control', 'max-age=60'); res.end('aaaa') }
  })
  t.after(() => origin.close())
  const app = await testApp(t, { CACHE_STORE: `sqlite://${join(dir, 'cache.sqlite')}` })
  // Another worker, as it would have published itself: 4 hits of /a, 100 bytes each.
  const other = new LiveStats('99999')
  for (let i = 0; i < 4; i++) other.record(`http://${origin.host}/a`, 200, { kind: 'hit', hit: true }, 100)
  mkdirSync(join(dir, 'cache.sqlite-stats'), { recursive: true })
  writeFileSync(join(dir, 'cache.sqlite-stats', '99999.json'), JSON.stringify(other.snapshot({ memoryTier: { entries: 1, bytes: 50 }, underPressure: false })))

  for (let i = 0; i < 3; i++) await app.inject({ url: `/${origin.host}/a` }) // 1 miss, 2 hits here
  const stats = (await app.inject({ url: '/_proxy/stats' })).json()
  t.assert.equal(stats.total.requests, 7)
  t.assert.equal(stats.total.hitRatio1m, 6 / 7)
  t.assert.equal(stats.total.bytesSaved, 4 * 100 + 2 * 4)
  t.assert.deepEqual(stats.total.outcomes, { miss: 1, hit: 6 })
  t.assert.deepEqual(stats.workers.map((w: { worker: string, requests: number }) => [w.worker, w.requests]).sort(),
    [[String(process.pid), 3], ['99999', 4]].sort())
  t.assert.deepEqual(stats.topHits, [{ url: `http://${origin.host}/a`, count: 6 }])
  t.assert.deepEqual(stats.topMisses, [{ url: `http://${origin.host}/a`, count: 1 }])
  t.assert.equal(stats.store.entries, 1)
  t.assert.equal(stats.store.maxBytes, 1073741824)
  t.assert.equal(origin.hits('/a'), 1)
})
