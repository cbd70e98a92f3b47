import { test } from 'node:test'
import { join } from 'node:path'
import { SharedGeneration } from '../../src/store/sqlite/generation.ts'
import { tempDir } from '../helpers/app.ts'

test('a bump by one opener is seen by another until it marks it as seen', (t) => {
  const path = join(tempDir(t), 'gen')
  const a = SharedGeneration.open(path)
  const b = SharedGeneration.open(path)
  t.after(() => { a.close(); b.close() })
  t.assert.equal(b.changed(), false)
  a.bump()
  t.assert.equal(b.changed(), true)
  const seen = b.read()
  a.bump()
  b.mark(seen)
  t.assert.equal(b.changed(), true, 'a bump after the read is still pending')
  b.mark(b.read())
  t.assert.equal(b.changed(), false)
})

test('a file that cannot be opened reports no changes and does not throw', (t) => {
  const gen = SharedGeneration.open('/nonexistent-dir/x/gen')
  t.assert.equal(gen.usable, false)
  gen.bump()
  t.assert.equal(gen.changed(), false)
})
