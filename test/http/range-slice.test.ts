import { test } from 'node:test'
import { Readable } from 'node:stream'
import { text } from 'node:stream/consumers'
import { sliceStream } from '../../src/http/range-slice.ts'

function chunks (...parts: string[]): Readable {
  return Readable.from(parts.map((part) => Buffer.from(part)))
}

test('the slice spans chunk boundaries, and enough is called once it is complete', async (t) => {
  let enough = 0
  const out = sliceStream(chunks('abc', 'def', 'ghi'), 2, 6, () => { enough++ })
  t.assert.equal(await text(out), 'cdefg')
  t.assert.equal(enough, 1)
})

test('a slice to the end, and a slice inside one chunk', async (t) => {
  t.assert.equal(await text(sliceStream(chunks('abc', 'def'), 4, 5, () => {})), 'ef')
  t.assert.equal(await text(sliceStream(chunks('abcdef'), 1, 1, () => {})), 'b')
})
