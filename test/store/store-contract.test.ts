import { after, before, beforeEach, test, type TestContext } from 'node:test'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { basename, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { openStore, type CacheStore, type StoreOptions } from '../../src/store/index.ts'
import { tempDir } from '../helpers/app.ts'
import { KB, openForTest, present, range } from '../helpers/store.ts'
import { noRedis, redisCommand, startRedis, type RedisServer } from '../helpers/redis.ts'

// The store contract (src/store/contract.ts): one suite that every backend passes. Opening
// the same URI twice gives two store instances over the same data, as two worker processes
// would have: a named memory store is shared within the process, a SQLite file by every
// process. A new backend is one more line here.
interface Backend {
  name: string
  /** A URI for a new, empty store in `dir`. */
  uriFor: (dir: string) => string
  /** Shared by several processes: change notifications and lease holders in other processes. */
  crossProcess: boolean
}

const backends: Backend[] = [
  { name: 'memory', uriFor: (dir) => `memory://${basename(dir)}`, crossProcess: false },
  { name: 'sqlite', uriFor: (dir) => `sqlite://${join(dir, 'nested', 'cache.sqlite')}`, crossProcess: true }
]

// Redis: one redis-server for the file, emptied before each test (FLUSHALL). Its command
// timeout is raised from 50 ms: this suite checks meaning, not speed on a loaded machine
// (test/redis-faults.test.ts checks the timeout).
const open = async (t: TestContext, uri: string, options: StoreOptions = {}): Promise<CacheStore> =>
  await openForTest(t, uri, uri.startsWith('redis://') ? { commandTimeoutMs: 2000, ...options } : options)
let redis: RedisServer | undefined
if (noRedis === false) {
  backends.push({ name: 'redis', uriFor: () => (redis as RedisServer).url, crossProcess: true })
  before(async () => { redis = await startRedis(() => {}) })
  after(async () => { await redis?.kill() })
  beforeEach(async () => { if (redis !== undefined) await redisCommand(redis.port, 'FLUSHALL') })
} else {
  test('redis store: the contract suite', { skip: noRedis }, () => {})
}

/** Polls `check` for up to `ms`; returns its last answer. */
async function eventually (check: () => Promise<boolean>, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms
  for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
    if (await check()) return true
    await sleep(10)
  }
  return await check()
}

for (const { name, uriFor, crossProcess } of backends) {
  test(`${name} store: keeps bytes exactly, overwrites, deletes`, async (t: TestContext) => {
    const store = await open(t, uriFor(tempDir(t)))
    const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7) % 256))
    t.assert.equal(await store.get('GET http://a/'), undefined)
    await store.set('GET http://a/', bytes)
    t.assert.equal((await store.get('GET http://a/'))?.equals(bytes), true)
    await store.set('GET http://a/', Buffer.from('second'))
    t.assert.equal((await store.get('GET http://a/'))?.toString(), 'second')
    await store.delete('GET http://a/')
    t.assert.equal(await store.get('GET http://a/'), undefined)
    await store.delete('GET http://never-stored/')
  })

  test(`${name} store: keys lists the stored keys that start with a prefix`, async (t: TestContext) => {
    const uri = uriFor(tempDir(t))
    const store = await open(t, uri, { sweepIntervalMs: 0 })
    const stored = ['GET http://a/x', 'GET http://a/x\nvary@1\naccept: */*', 'GET http://a/xy', 'GET http://a/[*?]', 'GET https://a/x', 'GET http://b/']
    for (const key of stored) await store.set(key, Buffer.from(key))
    await store.set('GET http://a/gone', Buffer.from('1'))
    await store.delete('GET http://a/gone')
    const sorted = async (prefix: string): Promise<string[]> => (await store.keys(prefix)).sort()
    t.assert.deepEqual(await sorted(''), [...stored].sort())
    t.assert.deepEqual(await sorted('GET http://a/'), ['GET http://a/[*?]', 'GET http://a/x', 'GET http://a/x\nvary@1\naccept: */*', 'GET http://a/xy'])
    t.assert.deepEqual(await sorted('GET http://a/x\n'), ['GET http://a/x\nvary@1\naccept: */*'])
    // Glob and LIKE wildcards in a prefix are plain characters; case matters.
    t.assert.deepEqual(await sorted('GET http://a/[*?'), ['GET http://a/[*?]'])
    t.assert.deepEqual(await sorted('GET http://a/*'), [])
    t.assert.deepEqual(await sorted('GET http://a/%'), [])
    t.assert.deepEqual(await sorted('GET HTTP://A/'), [])
    // Another instance over the same data lists the same keys.
    const other = await open(t, uri, { sweepIntervalMs: 0 })
    t.assert.deepEqual((await other.keys('GET http://b/')), ['GET http://b/'])
  })

  test(`${name} store: long keys and many concurrent writes`, async (t: TestContext) => {
    const store = await open(t, uriFor(tempDir(t)))
    const key = `GET http://a/${'x'.repeat(6000)}`
    await store.set(key, Buffer.from('long'))
    t.assert.equal((await store.get(key))?.toString(), 'long')
    await Promise.all(Array.from({ length: 200 }, (_, i) => store.set(`k${i}`, Buffer.from(String(i)))))
    const values = await Promise.all(Array.from({ length: 200 }, (_, i) => store.get(`k${i}`)))
    t.assert.deepEqual(values.map((v) => v?.toString()), Array.from({ length: 200 }, (_, i) => String(i)))
  })

  test(`${name} store: stats count entries and value bytes`, async (t: TestContext) => {
    const store = await open(t, uriFor(tempDir(t)), { sweepIntervalMs: 0 })
    t.assert.deepEqual(await store.stats(), { entries: 0, bytes: 0 })
    await store.set('a', Buffer.alloc(10))
    await store.set('b', Buffer.alloc(20), { expiresAt: Date.now() + 60_000 })
    t.assert.deepEqual(await store.stats(), { entries: 2, bytes: 30 })
    await store.set('a', Buffer.alloc(5))
    t.assert.deepEqual(await store.stats(), { entries: 2, bytes: 25 })
    await store.delete('b')
    await store.delete('b')
    t.assert.deepEqual(await store.stats(), { entries: 1, bytes: 5 })
  })

  test(`${name} store: sweep evicts the least recently used down to maxBytes`, async (t: TestContext) => {
    const store = await open(t, uriFor(tempDir(t)), { maxBytes: 10_000, sweepIntervalMs: 0 })
    for (let i = 0; i < 10; i++) await store.set(`k${i}`, KB(i)) // exactly maxBytes
    await store.sweep()
    t.assert.deepEqual(await store.stats(), { entries: 10, bytes: 10_000 })
    // Use k0 and k1 (get) and k2 (touch: served from a process-local tier), then overflow.
    t.assert.equal((await store.get('k0'))?.equals(KB(0)), true)
    t.assert.equal((await store.get('k1'))?.equals(KB(1)), true)
    store.touch('k2')
    store.touch('never-stored') // harmless
    await store.set('k10', KB(10))
    const result = await store.sweep() // starts before the automatic sweep that set() queued
    t.assert.deepEqual(result, { expired: 0, evicted: 1 })
    t.assert.deepEqual(store.sweepTotals(), { expired: 0, evicted: 1 })
    t.assert.deepEqual(await store.stats(), { entries: 10, bytes: 10_000 })
    t.assert.equal(await store.get('k3'), undefined, 'the least recently used entry is gone')

    for (let i = 11; i < 15; i++) await store.set(`k${i}`, KB(i))
    await store.sweep()
    const stats = await store.stats()
    t.assert.ok(stats.bytes <= 10_000, `${stats.bytes} bytes after the sweep`)
    t.assert.deepEqual(await present(store, range(0, 15)), ['k0', 'k1', 'k2', 'k8', 'k9', 'k10', 'k11', 'k12', 'k13', 'k14'])
  })

  test(`${name} store: writing past maxBytes sweeps by itself`, async (t: TestContext) => {
    const store = await open(t, uriFor(tempDir(t)), { maxBytes: 20_000, sweepIntervalMs: 0 })
    for (let i = 0; i < 60; i++) {
      await store.set(`k${i}`, KB(i))
      if (i % 10 === 9) await store.get('k0') // k0 stays in use
    }
    // No sweep() call: the writes (more than a tenth of maxBytes) start one.
    t.assert.ok(await eventually(async () => (await store.stats()).bytes <= 20_000), 'the store shrank back to maxBytes')
    const stats = await store.stats()
    t.assert.ok(stats.bytes <= 20_000 && stats.entries >= 10, JSON.stringify(stats))
    t.assert.deepEqual(await present(store, range(50, 60)), range(50, 60), 'the most recent writes survive')
    t.assert.deepEqual(await present(store, range(1, 30)), [], 'the oldest are gone')
    t.assert.ok(await store.get('k0') !== undefined, 'an entry read all along survives')
  })

  test(`${name} store: a value larger than maxBytes is not stored`, async (t: TestContext) => {
    const store = await open(t, uriFor(tempDir(t)), { maxBytes: 1000, sweepIntervalMs: 0 })
    await store.set('big', Buffer.alloc(500))
    await store.set('big', Buffer.alloc(1001))
    t.assert.equal(await store.get('big'), undefined, 'the older value is dropped too')
    t.assert.deepEqual(await store.stats(), { entries: 0, bytes: 0 })
  })

  test(`${name} store: sweep deletes the entries past expiresAt`, async (t: TestContext) => {
    const store = await open(t, uriFor(tempDir(t)), { sweepIntervalMs: 0 })
    const now = Date.now()
    await store.set('past', Buffer.from('p'), { expiresAt: now - 1 })
    await store.set('now', Buffer.from('n'), { expiresAt: now })
    await store.set('soon', Buffer.from('s'), { expiresAt: now + 1000 })
    await store.set('later', Buffer.from('l'), { expiresAt: now + 60_000 })
    await store.set('kept', Buffer.from('k'))
    await store.set('renewed', Buffer.from('r'), { expiresAt: now - 1 })
    await store.set('renewed', Buffer.from('R'))
    t.assert.equal((await store.get('past'))?.toString(), 'p', 'get() leaves freshness to the caller')
    t.assert.deepEqual(await store.sweep(), { expired: 2, evicted: 0 })
    t.assert.deepEqual(await present(store, ['past', 'now', 'soon', 'later', 'kept', 'renewed']), ['soon', 'later', 'kept', 'renewed'])

    t.mock.timers.enable({ apis: ['Date'], now: Date.now() })
    t.mock.timers.tick(1001)
    t.assert.deepEqual(await store.sweep(), { expired: 1, evicted: 0 })
    t.mock.timers.tick(59_000)
    t.assert.deepEqual(await store.sweep(), { expired: 1, evicted: 0 })
    t.assert.deepEqual(await present(store, ['soon', 'later', 'kept', 'renewed']), ['kept', 'renewed'])
    t.assert.deepEqual(await store.stats(), { entries: 2, bytes: 2 })
    t.assert.deepEqual(store.sweepTotals(), { expired: 4, evicted: 0 }, 'what the sweeps deleted, added up')
  })

  test(`${name} store: the sweep timer deletes expired entries`, async (t: TestContext) => {
    const store = await open(t, uriFor(tempDir(t)), { sweepIntervalMs: 20 })
    await store.set('gone', Buffer.from('g'), { expiresAt: Date.now() - 1 })
    await store.set('kept', Buffer.from('k'))
    t.assert.ok(await eventually(async () => (await store.stats()).entries === 1), 'swept without a sweep() call')
    t.assert.equal(await store.get('gone'), undefined)
    // The totals are added once the whole sweep (leases, change log) is over.
    t.assert.ok(await eventually(async () => store.sweepTotals().expired === 1), 'the timer\'s sweeps count too')
    t.assert.deepEqual(store.sweepTotals(), { expired: 1, evicted: 0 })
  })

  test(`${name} store: a lease has one holder until released or expired`, async (t: TestContext) => {
    const uri = uriFor(tempDir(t))
    const a = await open(t, uri, { sweepIntervalMs: 0 })
    const b = await open(t, uri, { sweepIntervalMs: 0 })
    t.assert.equal(await a.hasLease('L'), false)
    t.assert.equal(await a.acquireLease('L', 10_000), true)
    t.assert.equal(await a.acquireLease('L', 10_000), true, 'the holder may acquire again')
    t.assert.equal(await b.acquireLease('L', 10_000), false, 'another store instance may not')
    t.assert.equal(await a.hasLease('L'), true)
    t.assert.equal(await b.hasLease('L'), true)
    t.assert.equal(await b.hasLease('other'), false)
    await b.releaseLease('L') // not the holder: no effect
    t.assert.equal(await b.acquireLease('L', 10_000), false)
    await a.releaseLease('L')
    t.assert.equal(await b.hasLease('L'), false)
    t.assert.equal(await b.acquireLease('L', 10_000), true)
    t.assert.equal(await a.acquireLease('L', 10_000), false)
    await b.releaseLease('L')

    // A holder that never releases (it died): the lease expires after its ttl.
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() })
    t.assert.equal(await a.acquireLease('E', 1000), true)
    t.mock.timers.tick(999)
    t.assert.equal(await b.acquireLease('E', 1000), false)
    t.assert.equal(await b.hasLease('E'), true)
    t.mock.timers.tick(1)
    t.assert.equal(await b.hasLease('E'), false)
    t.assert.equal(await b.acquireLease('E', 1000), true, 'an expired lease can be taken over')
    t.assert.equal(await a.acquireLease('E', 1000), false)
    await a.releaseLease('E') // a lost it: no effect
    t.assert.equal(await a.hasLease('E'), true)
    t.mock.timers.reset()

    // Closing a store releases its leases.
    const c = await openStore(uri, { sweepIntervalMs: 0, commandTimeoutMs: 2000 })
    t.assert.equal(await c.acquireLease('C', 60_000), true)
    await c.close()
    t.assert.equal(await a.acquireLease('C', 60_000), true)
  })

  test(`${name} store: a set may release the writer's lease, never another holder's`, async (t: TestContext) => {
    const uri = uriFor(tempDir(t))
    const a = await open(t, uri, { maxBytes: 1000, sweepIntervalMs: 0 })
    const b = await open(t, uri, { maxBytes: 1000, sweepIntervalMs: 0 })
    t.assert.equal(await a.acquireLease('L', 10_000), true)
    await b.set('other', Buffer.from('x'), { releaseLease: 'L' }) // b does not hold L
    t.assert.equal(await b.hasLease('L'), true, 'a set by another instance leaves the lease')
    await a.set('k', Buffer.from('value'), { expiresAt: Date.now() + 60_000, releaseLease: 'L' })
    t.assert.deepEqual(await b.get('k'), Buffer.from('value'))
    t.assert.equal(await b.hasLease('L'), false, 'released with the write')
    t.assert.equal(await b.acquireLease('L', 10_000), true)
    // A value refused as too large still releases the lease.
    t.assert.equal(await a.acquireLease('M', 10_000), true)
    await a.set('big', Buffer.alloc(1001), { releaseLease: 'M' })
    t.assert.equal(await a.get('big'), undefined)
    t.assert.equal(await b.hasLease('M'), false, 'released although nothing was stored')
  })

  test(`${name} store: concurrent acquires across store instances have one winner`, async (t: TestContext) => {
    const uri = uriFor(tempDir(t))
    const instances = await Promise.all(Array.from({ length: 10 }, () => open(t, uri, { sweepIntervalMs: 0 })))
    for (let round = 0; round < 5; round++) {
      const won = await Promise.all(instances.map((store) => store.acquireLease(`R${round}`, 10_000)))
      t.assert.equal(won.filter(Boolean).length, 1, `round ${round}: ${won.join(' ')}`)
    }
  })

  test(`${name} store: 20 concurrent acquires from two instances, one holder`, async (t: TestContext) => {
    const uri = uriFor(tempDir(t))
    const a = await open(t, uri, { sweepIntervalMs: 0 })
    const b = await open(t, uri, { sweepIntervalMs: 0 })
    for (let round = 0; round < 10; round++) {
      const key = `GET http://coalesce/${round}`
      const calls = Array.from({ length: 20 }, (_v, i) => ({ store: i % 2 === 0 ? a : b, name: i % 2 === 0 ? 'a' : 'b' }))
      const won = await Promise.all(calls.map(async ({ store, name }) => ({ name, ok: await store.acquireLease(key, 10_000) })))
      const winners = new Set(won.filter((w) => w.ok).map((w) => w.name))
      // The holder's own repeated calls also answer true (it already holds the lease).
      t.assert.equal(winners.size, 1, `round ${round}: ${JSON.stringify(won)}`)
      t.assert.equal(won.filter((w) => w.ok).length, 10, 'every call of the holder answers true, every other call false')
      const loser = winners.has('a') ? b : a
      t.assert.equal(await loser.acquireLease(key, 10_000), false)
    }
  })

  test(`${name} store: accesses in another instance count for the LRU order`, async (t: TestContext) => {
    const uri = uriFor(tempDir(t))
    const a = await open(t, uri, { maxBytes: 5000, sweepIntervalMs: 0 })
    const b = await open(t, uri, { sweepIntervalMs: 0 })
    for (let i = 0; i < 5; i++) await b.set(`k${i}`, KB(i))
    b.touch('k0')
    await b.get('k1')
    await b.sweep() // flushes b's access times (b's own maxBytes is not reached)
    await a.set('k5', KB(5))
    t.assert.deepEqual(await a.sweep(), { expired: 0, evicted: 1 })
    t.assert.deepEqual(await present(b, range(0, 6)), ['k0', 'k1', 'k3', 'k4', 'k5'])
  })

  if (!crossProcess) continue

  test(`${name} store: another process sharing the store sees the change`, async (t: TestContext) => {
    const uri = uriFor(tempDir(t))
    const a = await open(t, uri, { changePollMs: 20 })
    const b = await open(t, uri, { changePollMs: 20 })
    const seen: string[] = []
    a.onRemoteChange((key) => seen.push(key))
    b.onRemoteChange(() => {})
    await b.set('GET http://x/', Buffer.from('1'))
    await b.delete('GET http://y/')
    for (let i = 0; i < 100 && seen.length < 2; i++) await sleep(20)
    t.assert.deepEqual(seen, ['GET http://x/', 'GET http://y/'])
    t.assert.equal((await a.get('GET http://x/'))?.toString(), '1')
  })

  test(`${name} store: a lease whose holder process died is taken over at once, not at expiry`, async (t) => {
    const uri = uriFor(tempDir(t))
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `
      import { openStore } from ${JSON.stringify(new URL('../../src/store/index.ts', import.meta.url).href)}
      // A generous command timeout: a timed-out Redis call under load reconnects, and a lease taken
      // on the old connection would then look like a dead holder's.
      const store = await openStore(${JSON.stringify(uri)}, { commandTimeoutMs: 2000 })
      console.log(await store.acquireLease('GET http://dead/', 600000))
      setInterval(() => {}, 1000)
    `], { stdio: ['ignore', 'pipe', 'inherit'] })
    t.after(() => { child.kill('SIGKILL') })
    const [line] = await once(child.stdout, 'data') as [Buffer]
    t.assert.equal(line.toString().trim(), 'true')
    const store = await openStore(uri, { commandTimeoutMs: 2000 })
    t.after(() => store.close())
    t.assert.equal(await store.acquireLease('GET http://dead/', 600000), false, 'held by a live process')
    child.kill('SIGKILL')
    await once(child, 'exit')
    // "At once" is as soon as the store's server has seen the socket close (Redis handles the
    // dead client's EOF on a later turn of its event loop than our next command): well within a
    // second, against the lease's 600 s expiry.
    const deadline = Date.now() + 2000
    while (await store.hasLease('GET http://dead/') && Date.now() < deadline) await sleep(10)
    t.assert.equal(await store.hasLease('GET http://dead/'), false)
    t.assert.equal(await store.acquireLease('GET http://dead/', 600000), true)
  })
}
