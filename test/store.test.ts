import { test } from 'node:test'
import { join } from 'node:path'
import { openStore } from '../src/store.ts'
import { tempDir } from './helpers/app.ts'

// One suite that every store implementation passes.
const stores: Array<[string, (dir: string) => string]> = [
  ['memory', () => 'memory://'],
  ['sqlite', (dir) => `sqlite://${join(dir, 'nested', 'cache.sqlite')}`]
]

for (const [name, uriFor] of stores) {
  test(`${name} store: keeps bytes exactly, overwrites, deletes`, async (t) => {
    const store = await openStore(uriFor(tempDir(t)))
    t.after(() => store.close())
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

  test(`${name} store: long keys and many concurrent writes`, async (t) => {
    const store = await openStore(uriFor(tempDir(t)))
    t.after(() => store.close())
    const key = `GET http://a/${'x'.repeat(6000)}`
    await store.set(key, Buffer.from('long'))
    t.assert.equal((await store.get(key))?.toString(), 'long')
    await Promise.all(Array.from({ length: 200 }, (_, i) => store.set(`k${i}`, Buffer.from(String(i)))))
    const values = await Promise.all(Array.from({ length: 200 }, (_, i) => store.get(`k${i}`)))
    t.assert.deepEqual(values.map((v) => v?.toString()), Array.from({ length: 200 }, (_, i) => String(i)))
  })
}

test('sqlite store: another process sharing the file sees the change', async (t) => {
  const uri = `sqlite://${join(tempDir(t), 'shared.sqlite')}`
  const a = await openStore(uri, { changePollMs: 20 })
  const b = await openStore(uri, { changePollMs: 20 })
  t.after(async () => { await a.close(); await b.close() })
  const seen: string[] = []
  a.onRemoteChange((key) => seen.push(key))
  b.onRemoteChange(() => {})
  await b.set('GET http://x/', Buffer.from('1'))
  await b.delete('GET http://y/')
  for (let i = 0; i < 100 && seen.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.assert.deepEqual(seen, ['GET http://x/', 'GET http://y/'])
  t.assert.equal((await a.get('GET http://x/'))?.toString(), '1')
})
