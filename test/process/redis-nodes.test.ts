import { test, type TestContext } from 'node:test'
import { get, type ProxyProcess } from '../helpers/process.ts'
import { noRedis } from '../helpers/redis.ts'
import { send, startFleet } from '../helpers/redis-fleet.ts'

// Issue #12: two proxy nodes (separate processes, separate ports) sharing one Redis.

test('two nodes on one Redis: a miss on A is a hit on B, and the reverse', { skip: noRedis, timeout: 90_000 }, async (t: TestContext) => {
  const { origin, a, b } = await startFleet(t, ['/from-a', '/from-b'])
  for (const [writer, reader, path] of [[a, b, '/from-a'], [b, a, '/from-b']] as const) {
    const miss = await get(`${writer.url}/${origin.host}${path}`, 10_000)
    t.assert.equal(miss.status, 200)
    t.assert.equal(miss.headers['x-cache'], 'MISS', path)
    // The entry reaches Redis just after the answer: allow that moment (bounded).
    let hit = await get(`${reader.url}/${origin.host}${path}`, 10_000)
    for (let i = 0; i < 50 && hit.headers['x-cache'] !== 'HIT'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20))
      hit = await get(`${reader.url}/${origin.host}${path}`, 10_000)
    }
    t.assert.equal(hit.status, 200)
    t.assert.equal(hit.headers['x-cache'], 'HIT', `${path} on the other node: ${String(hit.headers['cache-status'])}`)
    t.assert.equal(hit.body, `${path} v1`)
    t.assert.equal(origin.hits(path), 1, 'one origin request for both nodes')
  }
})

test('two nodes × two processes on one Redis: 100 cold concurrent requests over all four reach the origin once', { skip: noRedis, timeout: 120_000 }, async (t: TestContext) => {
  const paths = ['/cold/1', '/cold/2', '/cold/3']
  const { origin, all } = await startFleet(t, paths, {}, 300, 4)
  for (const path of paths) {
    const started = Date.now()
    const replies = await Promise.all(Array.from({ length: 100 }, (_v, i) => get(`${all[i % all.length].url}/${origin.host}${path}`, 20_000)))
    const elapsed = Date.now() - started
    t.assert.deepEqual([...new Set(replies.map((r) => r.status))], [200], path)
    t.assert.deepEqual([...new Set(replies.map((r) => r.body))], [`${path} v1`], path)
    t.assert.equal(origin.hits(path), 1, `${path}: ${origin.hits(path)} origin requests for 100 cold requests over 4 processes`)
    const collapsed = replies.filter((r) => /collapsed/.test(String(r.headers['cache-status']))).length
    t.assert.ok(collapsed >= 1, `${path}: some requests waited for the other node's fetch (${collapsed})`)
    // Waiters on the other node are woken by the notification, not by a late poll.
    t.assert.ok(elapsed < 5000, `${path}: all answered in ${elapsed} ms`)
  }
})

test('two nodes on one Redis: a POST on A, then at once a GET on B, is a miss (read-your-writes across nodes)', { skip: noRedis, timeout: 120_000 }, async (t: TestContext) => {
  const { origin, a, b } = await startFleet(t, ['/rw'])
  const url = (node: ProxyProcess): string => `${node.url}/${origin.host}/rw`
  const stale: string[] = []
  const ROUNDS = 40
  for (let round = 1; round <= ROUNDS; round++) {
    // Prime: version `round` is cached and in B's memory tier (a memory-tier hit is what could go stale).
    let primed = await get(url(b), 10_000)
    for (let i = 0; i < 50 && primed.headers['x-cache'] !== 'HIT'; i++) primed = await get(url(b), 10_000)
    t.assert.equal(primed.body, `/rw v${round}`, `round ${round}: primed`)
    t.assert.equal(await send('POST', url(a)), 201)
    const after = await get(url(b), 10_000)
    t.assert.equal(after.status, 200)
    if (after.body !== `/rw v${round + 1}`) stale.push(`round ${round}: ${after.body} x-cache=${String(after.headers['x-cache'])}`)
  }
  t.assert.deepEqual(stale, [], `${stale.length} of ${ROUNDS} GETs on B served the entry A had invalidated`)
})

test('two nodes on one Redis: a purge on A (one URL, then a host) is seen at once on B', { skip: noRedis, timeout: 120_000 }, async (t: TestContext) => {
  const { origin, a, b } = await startFleet(t, ['/p/1', '/p/2'])
  const prime = async (path: string): Promise<void> => {
    let reply = await get(`${b.url}/${origin.host}${path}`, 10_000)
    for (let i = 0; i < 50 && reply.headers['x-cache'] !== 'HIT'; i++) reply = await get(`${b.url}/${origin.host}${path}`, 10_000)
    t.assert.equal(reply.headers['x-cache'], 'HIT', `${path} primed on B`)
  }
  await prime('/p/1')
  await prime('/p/2')
  const before = origin.hits('/p/1')
  t.assert.equal(await send('PURGE', `${a.url}/${origin.host}/p/1`), 200)
  const after = await get(`${b.url}/${origin.host}/p/1`, 10_000)
  t.assert.equal(after.headers['x-cache'], 'MISS', 'B forgot the purged URL')
  t.assert.equal(origin.hits('/p/1'), before + 1)

  await prime('/p/1')
  t.assert.equal(await send('DELETE', `${a.url}/_proxy/cache?host=${encodeURIComponent(origin.host)}`), 200)
  for (const path of ['/p/1', '/p/2']) {
    const reply = await get(`${b.url}/${origin.host}${path}`, 10_000)
    t.assert.equal(reply.headers['x-cache'], 'MISS', `${path}: B forgot everything of the purged host`)
  }
})
