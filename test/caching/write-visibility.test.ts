import { test } from 'node:test'
import { join } from 'node:path'
import { buildApp } from '../../src/app.ts'
import { startOrigin } from '../helpers/origin.ts'
import { tempDir, testConfig } from '../helpers/app.ts'

/** Two apps over one SQLite file: two workers, as far as the store and the memory tiers are concerned. */
async function twoWorkers (t: Parameters<typeof tempDir>[0] & { after: (fn: () => Promise<void>) => void }): Promise<[Awaited<ReturnType<typeof buildApp>>, Awaited<ReturnType<typeof buildApp>>]> {
  const file = join(tempDir(t), 'cache.sqlite')
  const config = testConfig({ CACHE_STORE: `sqlite://${file}` })
  const a = await buildApp(config)
  const b = await buildApp(config)
  t.after(async () => { await a.close(); await b.close() })
  return [a, b]
}

test('after an unsafe request on one worker has been answered, the other worker never serves the old entry', async (t) => {
  let version = 0
  const origin = await startOrigin({
    '/doc': (req, res) => {
      if (req.method !== 'GET') version++
      res.writeHead(req.method === 'GET' ? 200 : 204, req.method === 'GET' ? { 'cache-control': 'max-age=600' } : {})
      res.end(req.method === 'GET' ? `v${version}` : undefined)
    }
  })
  t.after(() => origin.close())
  const [a, b] = await twoWorkers(t)
  const url = `/${origin.host}/doc`
  let stale = 0
  for (let i = 0; i < 60; i++) {
    const method = (['POST', 'PUT', 'DELETE'] as const)[i % 3]
    // Prime both memory tiers with the current version.
    for (const app of [a, b, a, b]) await app.inject(url)
    t.assert.equal((await b.inject(url)).headers['x-cache'], 'HIT')
    await a.inject({ method, url, payload: 'x' })
    const after = await b.inject(url)
    if (after.body !== `v${version}`) stale++
  }
  t.assert.equal(stale, 0, 'GETs on the other worker served the entry an unsafe request had invalidated')
})

test('a revalidation that replaced the entry on one worker is what the other worker serves next', async (t) => {
  let version = 0
  const origin = await startOrigin({
    '/page': (_req, res) => {
      // Every revalidation finds a new version.
      version++
      res.writeHead(200, { etag: `"${version}"`, 'cache-control': 'max-age=600' })
      res.end(`v${version}`)
    }
  })
  t.after(() => origin.close())
  const [a, b] = await twoWorkers(t)
  const url = `/${origin.host}/page`
  let stale = 0
  for (let i = 0; i < 30; i++) {
    for (const app of [a, b, a, b]) await app.inject(url)
    // The client asks for revalidation on worker A: the origin sends a new version.
    const replaced = await a.inject({ url, headers: { 'cache-control': 'no-cache' } })
    const next = await b.inject(url)
    if (next.body !== replaced.body) stale++
  }
  t.assert.equal(stale, 0)
})
