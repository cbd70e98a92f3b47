import { test } from 'node:test'
import { HitForPass } from '../../src/cache/hit-for-pass.ts'

test('a key passes until its time is up, and a storable response ends it', (t) => {
  const passes = new HitForPass(1000)
  passes.add('a', 0)
  t.assert.equal(passes.has('a', 999), true)
  t.assert.equal(passes.has('a', 1000), false)
  passes.add('b', 0)
  passes.delete('b')
  t.assert.equal(passes.has('b', 1), false)
})

test('bounded: the oldest key goes first; 0 s turns it off', (t) => {
  const passes = new HitForPass(1000, 2)
  passes.add('a', 0)
  passes.add('b', 0)
  passes.add('c', 0)
  t.assert.deepEqual(['a', 'b', 'c'].map((k) => passes.has(k, 1)), [false, true, true])
  const off = new HitForPass(0)
  off.add('a', 0)
  t.assert.equal(off.has('a', 0), false)
})
