import { test, type TestContext } from 'node:test'
import { join } from 'node:path'
import { BatchedReads } from '../../src/store/sqlite/reads.ts'
import { prepareSchema, WRITE_ENTRY, type Query } from '../../src/store/sqlite/schema.ts'
import { StatementCache } from '../../src/store/sqlite/statements.ts'
import { tempDir } from '../helpers/app.ts'
import { openForTest as open } from '../helpers/store.ts'

// Entry reads share statements (src/store/sqlite/reads.ts): each caller still gets its own
// key's bytes, whatever else is read beside it.

async function connection (t: TestContext): Promise<{ query: Query, statements: () => number }> {
  const db = await StatementCache.open(join(tempDir(t), 'reads.sqlite'), 5000)
  t.after(async () => await db.close())
  await prepareSchema(db.query)
  let count = 0
  const query: Query = async (sql, ...params) => {
    if (sql.startsWith('SELECT')) count++
    return await db.query(sql, ...params)
  }
  return { query, statements: () => count }
}

const write = async (query: Query, key: string, value: Buffer): Promise<void> => {
  await query(WRITE_ENTRY, key, value, null, Date.now(), null, Date.now())
}

test('sqlite reads: concurrent gets share statements and each gets its own value', { timeout: 30_000 }, async (t: TestContext) => {
  const { query, statements } = await connection(t)
  const keys = Array.from({ length: 300 }, (_, i) => `GET http://origin/${i}?q=${'x'.repeat(i % 7)}`)
  // Odd keys stored, even ones missing; one key with a lone surrogate, one with JSON's specials.
  const odd = keys.filter((_, i) => i % 2 === 1)
  const special = ['GET http://o/\ud800lone', 'GET http://o/"quote"\\back\nline', 'GET http://o/ünï€']
  for (const key of [...odd, ...special]) await write(query, key, Buffer.from(`value of ${key}`))
  const reads = new BatchedReads(query)
  const asked = [...keys, ...special, keys[1], keys[2]] // duplicates too
  const got = await Promise.all(asked.map(async (key) => await reads.get(key)))
  asked.forEach((key, i) => {
    const stored = odd.includes(key) || special.includes(key)
    t.assert.deepEqual(got[i], stored ? Buffer.from(`value of ${key}`) : undefined, key)
  })
  // 305 distinct keys at most 64 a statement, the lone surrogate alone: far fewer than one each.
  t.assert.ok(statements() <= 8, `${statements()} statements`)
  t.assert.ok(statements() >= 6, `${statements()} statements`)
})

test('sqlite reads: a get sees every write finished before it; a failed read rejects its batch only', { timeout: 30_000 }, async (t: TestContext) => {
  const { query } = await connection(t)
  let fail = false
  const reads = new BatchedReads(async (sql, ...params) => {
    if (fail) throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' })
    return await query(sql, ...params)
  })
  for (let i = 0; i < 50; i++) {
    const pending = reads.get('other') // a read in flight while the write happens
    await write(query, 'k', Buffer.from(String(i)))
    t.assert.deepEqual(await reads.get('k'), Buffer.from(String(i)))
    await pending
  }
  fail = true
  const failed = await Promise.allSettled([reads.get('k'), reads.get('a'), reads.get('b')])
  t.assert.deepEqual(failed.map((r) => r.status), ['rejected', 'rejected', 'rejected'])
  fail = false
  t.assert.deepEqual(await reads.get('k'), Buffer.from('49'))
})

test('sqlite store: many concurrent gets through the store', { timeout: 30_000 }, async (t: TestContext) => {
  const store = await open(t, `sqlite://${join(tempDir(t), 'store.sqlite')}`, { sweepIntervalMs: 0 })
  for (let i = 0; i < 200; i += 2) await store.set(`k${i}`, Buffer.alloc(1000 + i, i))
  const got = await Promise.all(Array.from({ length: 200 }, async (_, i) => await store.get(`k${i}`)))
  got.forEach((value, i) => t.assert.deepEqual(value, i % 2 === 0 ? Buffer.alloc(1000 + i, i) : undefined, `k${i}`))
})
