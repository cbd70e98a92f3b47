import { test } from 'node:test'
import type { ServerResponse } from 'node:http'
import { testApp } from '../helpers/app.ts'
import { startOrigin } from '../helpers/origin.ts'

// The request log line (plugins/request-log.ts): typed outcome and its detail, origin time,
// body bytes, worker, at LOG_LEVEL=info; none at warn.

async function site (t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const origin = await startOrigin({
    '/a': (_req: unknown, res: ServerResponse) => { res.setHeader('cache-control', 'max-age=60'); setTimeout(() => res.end('twelve bytes'), 30) },
    '/private': (_req: unknown, res: ServerResponse) => { res.setHeader('cache-control', 'private'); res.end('mine') }
  })
  t.after(() => origin.close())
  return origin.host
}

test('each proxied request logs outcome, detail, upstream time, bytes and worker', { timeout: 20_000 }, async (t) => {
  const host = await site(t)
  const lines: Array<Record<string, unknown>> = []
  const app = await testApp(t, { LOG_LEVEL: 'info' }, { logStream: { write: (line) => { lines.push(JSON.parse(line)) } } })
  await app.inject({ url: `/${host}/a` })
  await app.inject({ url: `/${host}/a` })
  await app.inject({ url: `/${host}/private` })
  await app.inject({ url: '/127.0.0.1:1/down' })
  const requests = lines.filter((line) => line.msg === 'request')
  t.assert.equal(requests.length, 4)
  const [miss, hit, notStored, failed] = requests
  t.assert.equal(miss.outcome, 'miss')
  t.assert.equal(miss.bytes, 12)
  t.assert.equal(miss.worker, process.pid)
  t.assert.equal(typeof miss.upstreamMs, 'number')
  t.assert.equal((miss.upstreamMs as number) >= 25 && (miss.upstreamMs as number) <= (miss.ms as number), true, `upstreamMs ${String(miss.upstreamMs)}, ms ${String(miss.ms)}`)
  t.assert.equal(hit.outcome, 'hit')
  t.assert.equal(hit.cache, 'HIT')
  t.assert.equal(hit.bytes, 12)
  t.assert.equal(hit.upstreamMs, undefined, 'a hit did not wait for the origin')
  t.assert.equal(notStored.outcome, 'miss')
  t.assert.equal(notStored.detail, 'private')
  t.assert.equal(notStored.bytes, 4)
  t.assert.equal(failed.outcome, 'error')
  t.assert.equal(failed.detail, 'ECONNREFUSED')
  t.assert.equal(failed.status, 502)
})

test('at LOG_LEVEL=warn there is no request line', { timeout: 20_000 }, async (t) => {
  const host = await site(t)
  const lines: string[] = []
  const app = await testApp(t, { LOG_LEVEL: 'warn' }, { logStream: { write: (line) => { lines.push(line) } } })
  t.assert.equal((await app.inject({ url: `/${host}/a` })).statusCode, 200)
  t.assert.deepEqual(lines, [])
})
