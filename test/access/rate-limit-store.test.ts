import { test } from 'node:test'
import { writeFileSync } from 'node:fs'
import sqlite3 from 'sqlite3'
import { join } from 'node:path'
import { tempDir } from '../helpers/app.ts'
import { SqliteRateLimitStore, type RateCount, type RateLimitStore } from '../../src/access/rate-limit-store.ts'

const WINDOW = 60_000

function incr (store: RateLimitStore, key: string, window = WINDOW): Promise<RateCount> {
  return new Promise((resolve, reject) => store.incr(key, (error, result) => error !== null || result === undefined ? reject(error ?? new Error('no result')) : resolve(result), window, 20))
}

function open (t: { after: (fn: () => Promise<void>) => void }, path: string, now?: () => number): { store: SqliteRateLimitStore, errors: Error[] } {
  const errors: Error[] = []
  const store = new SqliteRateLimitStore(path, { onError: (error) => errors.push(error), now })
  t.after(() => store.close())
  return { store, errors }
}

test('two stores over one file count against one limit, one request at a time', async (t) => {
  const path = join(tempDir(t), 'cache.sqlite')
  const a = open(t, path)
  const b = open(t, path)
  const seen: number[] = []
  for (let i = 0; i < 40; i++) seen.push((await incr(i % 2 === 0 ? a.store : b.store, '10.0.0.1')).current)
  t.assert.deepEqual(seen, Array.from({ length: 40 }, (_v, i) => i + 1))
  t.assert.equal((await incr(a.store, '10.0.0.2')).current, 1, 'another client counts apart')
  t.assert.deepEqual([...a.errors, ...b.errors], [])
})

test('concurrent increments from two stores never read the same count', async (t) => {
  const path = join(tempDir(t), 'cache.sqlite')
  const a = open(t, path)
  const b = open(t, path)
  const counts = await Promise.all(Array.from({ length: 100 }, (_v, i) => incr(i % 2 === 0 ? a.store : b.store, 'k')))
  t.assert.deepEqual(counts.map((c) => c.current).sort((x, y) => x - y), Array.from({ length: 100 }, (_v, i) => i + 1))
  for (const c of counts) t.assert.equal(c.ttl > 0 && c.ttl <= WINDOW, true, `ttl ${c.ttl}`)
})

test('the window starts at the first request and restarts once expired', async (t) => {
  let now = 1_000_000
  const { store } = open(t, join(tempDir(t), 'cache.sqlite'), () => now)
  t.assert.deepEqual(await incr(store, 'k'), { current: 1, ttl: WINDOW })
  now += 15_000
  t.assert.deepEqual(await incr(store, 'k'), { current: 2, ttl: WINDOW - 15_000 })
  now += WINDOW - 15_000 // exactly at the end of the window
  t.assert.deepEqual(await incr(store, 'k'), { current: 1, ttl: WINDOW })
})

test('a route with its own limit counts apart (child store)', async (t) => {
  const { store } = open(t, join(tempDir(t), 'cache.sqlite'))
  const child = store.child({ routeInfo: { method: 'GET', url: '/x' } })
  t.assert.equal((await incr(store, 'k')).current, 1)
  t.assert.equal((await incr(child, 'k')).current, 1)
  t.assert.equal((await incr(child, 'k')).current, 2)
})

test('a store that cannot open its file answers with an error at once and waits before trying again', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'not-a-dir'), 'x')
  const { store, errors } = open(t, join(dir, 'not-a-dir', 'cache.sqlite'))
  const started = Date.now()
  const outcomes = await Promise.all(Array.from({ length: 5 }, () => incr(store, 'k').then(() => 'counted', (error: Error) => error.message)))
  t.assert.equal(outcomes.every((o) => o !== 'counted'), true, outcomes.join('; '))
  t.assert.equal(Date.now() - started < 1000, true, 'no waiting')
  const later = await incr(store, 'k').then(() => 'counted', (error: Error) => error.message)
  t.assert.match(later, /unavailable/, 'within the retry time the file is not tried again')
  t.assert.equal(errors.length >= 1, true)
})

test('a flood of 5,000 concurrent requests from one client is counted exactly, in arrival order, none timed out', async (t) => {
  const { store, errors } = open(t, join(tempDir(t), 'cache.sqlite'))
  const started = Date.now()
  const counts = await Promise.all(Array.from({ length: 5000 }, () => incr(store, 'flood')))
  t.assert.deepEqual(counts.map((c) => c.current), Array.from({ length: 5000 }, (_v, i) => i + 1), 'in arrival order')
  t.assert.deepEqual(errors, [])
  t.diagnostic(`5000 concurrent increments in ${Date.now() - started} ms`)
})

test('a request that gets no count in time is let through, and is counted once the file is free', async (t) => {
  const path = join(tempDir(t), 'cache.sqlite')
  const errors: Error[] = []
  const store = new SqliteRateLimitStore(path, { onError: (error) => errors.push(error), timeoutMs: 200 })
  t.after(() => store.close())
  t.assert.equal((await incr(store, 'k')).current, 1)
  // Another process holds the write lock for 700 ms.
  const other = await new Promise<sqlite3.Database>((resolve, reject) => {
    const db: sqlite3.Database = new sqlite3.Database(path, (error) => error === null ? resolve(db) : reject(error))
  })
  t.after(() => new Promise<void>((resolve) => other.close(() => resolve())))
  await new Promise<void>((resolve, reject) => other.exec('BEGIN IMMEDIATE', (error) => error === null ? resolve() : reject(error)))
  const release = new Promise<void>((resolve) => setTimeout(() => other.exec('COMMIT', () => resolve()), 700))
  const started = Date.now()
  await t.assert.rejects(incr(store, 'k'), /no count within 200 ms/)
  t.assert.equal(Date.now() - started < 600, true, 'answered at the timeout, not at the lock release')
  await release
  t.assert.equal((await incr(store, 'k')).current, 3, 'the let-through request was counted')
  t.assert.equal(errors.length, 1)
})
