import { test, type TestContext } from 'node:test'
import { MemoryTier } from '../../src/store/memory-tier.ts'

test('the total size stays within the bound; a value larger than the bound is not kept', { timeout: 5000 }, (t: TestContext) => {
  const tier = new MemoryTier<string>(100)
  for (let i = 0; i < 50; i++) tier.set(`k${i}`, `v${i}`, 30)
  t.assert.ok(tier.totalBytes <= 100, `total ${tier.totalBytes}`)
  t.assert.equal(tier.size, 3)
  t.assert.equal(tier.takeEvictions(), 47)
  tier.set('huge', 'x', 101)
  t.assert.equal(tier.get('huge'), undefined)
  t.assert.equal(tier.size, 3)
})

test('an entry read since it was stored survives the next eviction; one never read goes first', { timeout: 5000 }, (t: TestContext) => {
  const tier = new MemoryTier<string>(3)
  tier.set('a', 'A', 1)
  tier.set('b', 'B', 1)
  tier.set('c', 'C', 1)
  t.assert.equal(tier.get('a'), 'A')
  tier.set('d', 'D', 1)
  t.assert.equal(tier.get('b'), undefined, 'b, the oldest not read, is evicted')
  t.assert.deepEqual([...tier.entries()].map(([k]) => k).sort(), ['a', 'c', 'd'])
  // a's second chance put it behind d: c goes, then d, then a unless it is read again.
  tier.set('e', 'E', 1)
  t.assert.equal(tier.has('c'), false)
  tier.set('f', 'F', 1)
  t.assert.equal(tier.has('d'), false)
  tier.set('g', 'G', 1)
  t.assert.equal(tier.has('a'), false)
  t.assert.deepEqual([...tier.entries()].map(([k]) => k).sort(), ['e', 'f', 'g'])
})

test('when every entry was read, the oldest goes, never the entry just stored', { timeout: 5000 }, (t: TestContext) => {
  const tier = new MemoryTier<number>(3)
  for (const k of ['a', 'b', 'c']) tier.set(k, 0, 1)
  for (const k of ['c', 'a', 'b']) tier.get(k)
  tier.set('d', 0, 1)
  t.assert.equal(tier.size, 3)
  t.assert.equal(tier.has('a'), false, 'every bit cleared in insertion order, then the oldest goes')
  t.assert.ok(tier.has('d'), 'the new entry is kept')
})

test('replacing and deleting keep the byte count exact', { timeout: 5000 }, (t: TestContext) => {
  const tier = new MemoryTier<string>(1000)
  tier.set('a', 'x', 10)
  tier.set('a', 'y', 25)
  tier.set('b', 'z', 5)
  t.assert.equal(tier.totalBytes, 30)
  t.assert.equal(tier.delete('a'), true)
  t.assert.equal(tier.delete('a'), false)
  t.assert.equal(tier.totalBytes, 5)
  tier.clear()
  t.assert.equal(tier.totalBytes, 0)
  t.assert.equal(tier.size, 0)
})

test('a random workload never exceeds the bound and keeps the count equal to the sum of sizes', { timeout: 10_000 }, (t: TestContext) => {
  const seed = Number(process.env.TEST_SEED ?? Date.now() % 1_000_000)
  let state = seed
  const random = (n: number): number => { state = (state * 1103515245 + 12345) % 2147483648; return state % n }
  const tier = new MemoryTier<number>(500)
  const sizes = new Map<string, number>()
  for (let i = 0; i < 20_000; i++) {
    const key = `k${random(200)}`
    const op = random(10)
    if (op < 5) tier.get(key)
    else if (op < 9) { const size = 1 + random(60); tier.set(key, size, size); sizes.set(key, size) } else tier.delete(key)
    t.assert.ok(tier.totalBytes <= 500, `seed ${seed}: over the bound at step ${i}`)
  }
  let sum = 0
  for (const [key, value] of tier.entries()) { sum += value; t.assert.equal(value, sizes.get(key), `seed ${seed}`) }
  t.assert.equal(tier.totalBytes, sum, `seed ${seed}`)
})
