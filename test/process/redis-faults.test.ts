import { test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { openStore } from '../../src/store/index.ts'
import { get, type ProxyProcess, type Reply } from '../helpers/process.ts'
import { noRedis, startRedis } from '../helpers/redis.ts'
import { Random, seedFrom } from '../helpers/random.ts'
import { startFleet } from '../helpers/redis-fleet.ts'

// Issue #12: Redis down or slow never fails a client request; caching resumes when it is back.

/** Polls `check` every 50 ms for up to `ms`; true once it holds. */
async function within (ms: number, check: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + ms
  for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
    if (await check()) return true
    await sleep(50)
  }
  return false
}

test('store calls reject within the command timeout while Redis is down, status() says why, and all recover', { skip: noRedis, timeout: 60_000 }, async (t: TestContext) => {
  const redis = await startRedis(t)
  const store = await openStore(redis.url, { commandTimeoutMs: 50, sweepIntervalMs: 0 })
  t.after(() => store.close())
  t.assert.deepEqual(store.status(), { ok: true })
  await store.set('k', Buffer.from('v'))

  await redis.kill()
  t.assert.ok(await within(5000, async () => !store.status().ok), 'status() reports the outage')
  t.assert.match(String(store.status().reason), /Redis/)
  for (const call of [() => store.get('k'), () => store.set('k', Buffer.from('w')), () => store.acquireLease('k', 1000), () => store.hasLease('k'), () => store.stats()]) {
    const started = Date.now()
    await t.assert.rejects(call())
    t.assert.ok(Date.now() - started < 500, `rejected in ${Date.now() - started} ms`)
  }
  t.assert.equal(store.changedElsewhere(), false, 'nobody listens: nothing to tell')
  await store.syncChanges() // never rejects

  await redis.restart()
  t.assert.ok(await within(10_000, async () => store.status().ok), 'status() is ok again after the restart')
  await store.set('k', Buffer.from('back'))
  t.assert.equal((await store.get('k'))?.toString(), 'back')
})

test('a stuck Redis (SIGSTOP) costs a request tens of ms, never an error; it caches again once Redis resumes', { skip: noRedis, timeout: 90_000 }, async (t: TestContext) => {
  const { redis, origin, a, b } = await startFleet(t, ['/s/cached', '/s/new', '/s/later'], { REDIS_TIMEOUT_MS: '50' })
  await get(`${a.url}/${origin.host}/s/cached`, 10_000)
  const pid = redis.pid() as number
  process.kill(pid, 'SIGSTOP')
  t.after(() => { try { process.kill(pid, 'SIGCONT') } catch {} })
  const slow: string[] = []
  for (let i = 0; i < 20; i++) {
    const node = i % 2 === 0 ? a : b
    const path = i % 4 < 2 ? '/s/cached' : '/s/new'
    const started = Date.now()
    const reply = await get(`${node.url}/${origin.host}${path}`, 10_000)
    const ms = Date.now() - started
    t.assert.equal(reply.status, 200, `${path}: ${reply.body}`)
    t.assert.match(reply.body, new RegExp(`^${path} v1$`))
    if (ms > 1500) slow.push(`${path} ${ms} ms`)
  }
  t.assert.deepEqual(slow, [], 'each request is bounded by the command timeouts, not by Redis')
  const degraded = await get(`${a.url}/_proxy/ready`, 5000)
  t.assert.equal(degraded.status, 503, degraded.body)
  t.assert.match(degraded.body, /"status":"degraded".*Redis/)
  process.kill(pid, 'SIGCONT')
  t.assert.ok(await within(10_000, async () => (await get(`${a.url}/_proxy/ready`, 5000)).status === 200), '/_proxy/ready says ready again')
  t.assert.ok(await within(15_000, async () => {
    await get(`${a.url}/${origin.host}/s/later`, 10_000)
    return (await get(`${b.url}/${origin.host}/s/later`, 10_000)).headers['x-cache'] === 'HIT'
  }), 'an entry stored by A is a hit on B again')
})

test('Redis killed mid-load (SIGKILL) and restarted on its port: 0 failed requests, caching resumes', { skip: noRedis, timeout: 120_000 }, async (t: TestContext) => {
  const paths = Array.from({ length: 10 }, (_v, i) => `/load/${i}`)
  const { redis, origin, a, b } = await startFleet(t, [...paths, '/after'], { REDIS_TIMEOUT_MS: '50' })
  const seed = seedFrom('REDIS_FAULTS_SEED')
  const random = new Random(seed)
  const failures: string[] = []
  let done = 0
  const LOAD_MS = 5000
  const started = Date.now()
  const client = async (): Promise<void> => {
    while (Date.now() - started < LOAD_MS && done < 5000) {
      const node: ProxyProcess = random.chance(0.5) ? a : b
      const path = random.pick(paths)
      let reply: Reply | undefined
      try {
        reply = await get(`${node.url}/${origin.host}${path}`, 5000)
      } catch (error) {
        failures.push(`${path}: ${(error as Error).message}`)
        continue
      }
      done++
      if (reply.status !== 200 || reply.body !== `${path} v1`) failures.push(`${path}: ${reply.status} ${reply.body.slice(0, 80)}`)
    }
  }
  const chaos = (async () => {
    await sleep(1500)
    await redis.kill()
    await sleep(1500)
    await redis.restart()
  })()
  await Promise.all([...Array.from({ length: 8 }, client), chaos])
  t.assert.deepEqual(failures.slice(0, 10), [], `${failures.length} of ${done} requests failed (seed ${seed})`)
  t.assert.ok(done > 100, `${done} requests made`)

  // The restarted Redis is empty: an entry stored by A after it came back is a hit on B.
  t.assert.ok(await within(15_000, async () => {
    await get(`${a.url}/${origin.host}/after`, 5000)
    return (await get(`${b.url}/${origin.host}/after`, 5000)).headers['x-cache'] === 'HIT'
  }), 'caching across the nodes resumes after the restart')
  for (const node of [a, b]) {
    const lines = node.output().split('\n').filter((line) => /Redis cache store unreachable/.test(line))
    t.assert.ok(lines.length >= 1 && lines.length <= 2, `the outage is logged once per connection, not per request: ${lines.length} lines`)
  }
})
