import { test, type TestContext } from 'node:test'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import KeyvSqlite from '@keyv/sqlite'
import { openStore } from '../../src/store/index.ts'
import { tempDir } from '../helpers/app.ts'
import { openForTest as open, present, range } from '../helpers/store.ts'

// What only the SQLite backend does (the contract cases are in store-contract.test.ts):
// each instance sweeps to its own maxBytes, files written by older versions are
// repaired, a closed store's timers stay quiet. Faults of the file: store-faults.test.ts.

test('sqlite store: one sweep evicts many entries, in several batches', async (t) => {
  const uri = `sqlite://${join(tempDir(t), 'many.sqlite')}`
  const writer = await open(t, uri, { sweepIntervalMs: 0 }) // 1 GiB: never sweeps here
  const sweeper = await open(t, uri, { maxBytes: 10_000, sweepIntervalMs: 0 })
  for (let i = 0; i < 700; i++) await writer.set(`k${i}`, Buffer.alloc(100, i))
  t.assert.deepEqual(await sweeper.sweep(), { expired: 0, evicted: 600 })
  t.assert.deepEqual(await writer.stats(), { entries: 100, bytes: 10_000 })
  t.assert.deepEqual(await present(writer, range(0, 700)), range(600, 700))
})

test('sqlite store: a file written without meta rows is repaired on open', async (t: TestContext) => {
  const path = join(tempDir(t), 'legacy.sqlite')
  const legacy = new KeyvSqlite({ uri: `sqlite://${path}`, table: 'entries', keySize: 8192 })
  await legacy.set('old-a', Buffer.alloc(300))
  await legacy.set('old-b', Buffer.alloc(700))
  await legacy.disconnect()

  const store = await open(t, `sqlite://${path}`, { maxBytes: 800, sweepIntervalMs: 0 })
  t.assert.deepEqual(await store.stats(), { entries: 2, bytes: 1000 })
  await store.get('old-b')
  t.assert.deepEqual(await store.sweep(), { expired: 0, evicted: 1 })
  t.assert.deepEqual(await present(store, ['old-a', 'old-b']), ['old-b'])
  t.assert.deepEqual(await store.stats(), { entries: 1, bytes: 700 })
})

test('sqlite store: errors reject; a closed store fails its calls', async (t: TestContext) => {
  const store = await openStore(`sqlite://${join(tempDir(t), 'closed.sqlite')}`, { sweepIntervalMs: 5 })
  await store.set('a', Buffer.from('a'))
  store.touch('a')
  await store.close()
  await t.assert.rejects(store.get('a'))
  await t.assert.rejects(store.set('b', Buffer.from('b')))
  await t.assert.rejects(store.acquireLease('a', 1000))
  store.touch('a') // never throws
  await sleep(30) // no timer fires into the closed database and crashes the process
})

test('sqlite store: writes that timed out on another connection\'s lock leave no stale snapshot behind', { timeout: 60_000 }, async (t: TestContext) => {
  // Statements are prepared once and reused (statements.ts): one that failed must not keep
  // its read snapshot, or every later read misses newer rows and every write is SQLITE_BUSY.
  const path = join(tempDir(t), 'busy.sqlite')
  const store = await open(t, `sqlite://${path}`, { sweepIntervalMs: 0 })
  await store.set('a', Buffer.from('a'))
  const other = new KeyvSqlite({ uri: `sqlite://${path}`, table: 'entries', keySize: 8192 })
  t.after(async () => await other.disconnect())
  await other.query('BEGIN IMMEDIATE')
  await other.query("INSERT INTO entries (key, value) VALUES ('late', x'6c')")
  store.touch('a')
  // The sweep writes the pending access time first, then evicts: both wait out the 5 s busy timeout.
  const sweep = store.sweep()
  // Reads on the same connection while the writes wait (one of them shared the failed write's snapshot).
  const reads = Promise.all(Array.from({ length: 20 }, async (_, i) => { await sleep(i * 50); return await store.get('a') }))
  await t.assert.rejects(sweep, (error: Error & { code?: string }) => error.code === 'SQLITE_BUSY')
  t.assert.equal((await reads).every((value) => value?.equals(Buffer.from('a'))), true)
  await other.query('COMMIT')
  t.assert.deepEqual(await store.get('late'), Buffer.from('l'))
  await store.set('b', Buffer.from('b'))
  t.assert.deepEqual(await store.get('b'), Buffer.from('b'))
})
