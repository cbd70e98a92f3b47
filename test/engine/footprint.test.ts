import { test, type TestContext } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { encodeEntry, type CacheEntry } from '../../src/cache/entry.ts'
import { targetList } from '../../src/cache/targeted-cache-control.ts'
import { footprint, ownBytes } from '../../src/engine/footprint.ts'
import { Lookup } from '../../src/engine/lookup.ts'
import type { CacheStore } from '../../src/store/index.ts'
import type { StoreCalls } from '../../src/engine/store-calls.ts'
import type { EngineLogger } from '../../src/engine/types.ts'

setFlagsFromString('--expose_gc')
const gc = runInNewContext('gc') as () => void

function lookup (memoryCacheBytes: number): Lookup {
  const store = { onRemoteChange () {}, touch () {} } as unknown as CacheStore
  const freshness = { heuristicMaxSeconds: 86400, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 0, staleOnErrorSeconds: 0 }
  return new Lookup(store, { freshness, targets: targetList('cdn-cache-control'), cacheControlField: 'cdn-cache-control', memoryCacheBytes }, {} as StoreCalls, {} as EngineLogger)
}

function entry (i: number, bodyBytes: number): CacheEntry {
  // Built from two chunks like a body read off the network: Buffer.concat takes small ones from Node's pool.
  const body = Buffer.concat([Buffer.alloc(bodyBytes >> 1, 120), Buffer.alloc(bodyBytes - (bodyBytes >> 1), 121)])
  const now = Date.now()
  return {
    url: `http://127.0.0.1:8080/fill/${i}`,
    status: 200,
    headers: { 'content-type': 'text/plain', 'content-length': String(bodyBytes), 'cache-control': 'public, max-age=3600', date: new Date(now).toUTCString(), etag: `"${i}-5f3a"`, 'last-modified': 'Mon, 30 Nov 2026 10:00:00 GMT' },
    requestTime: now,
    responseTime: now,
    body
  }
}

test('a small body cut from a shared allocation is copied into its own before it is kept', { timeout: 5000 }, (t: TestContext) => {
  const pooled = Buffer.concat([Buffer.from('ab'), Buffer.from('cd')])
  t.assert.ok(pooled.buffer.byteLength > 1024, 'Node pools a 4-byte concat')
  const own = ownBytes(pooled)
  t.assert.equal(own.buffer.byteLength, 4)
  t.assert.deepEqual(own, pooled)
  const big = Buffer.allocUnsafeSlow(10_000)
  t.assert.equal(ownBytes(big), big, 'a body that owns its allocation is kept as is')
  t.assert.equal(ownBytes(big.subarray(100)).buffer, big.buffer, 'nor one that uses most of it')
})

for (const bodyBytes of [100, 1024, 16 * 1024]) {
  test(`entries of ${bodyBytes} body bytes are counted at no less than the memory they hold (and not absurdly more)`, { timeout: 30_000 }, (t: TestContext) => {
    const n = bodyBytes > 8192 ? 3000 : 10_000
    // A measurement can only be too high (garbage, e.g. the encoded buffers' external memory, not yet
    // released when it is read): the lowest of five is the closest to what the entries hold.
    const heldEach: number[] = []
    let counted = 0
    for (let attempt = 0; attempt < 5; attempt++) {
      const tier = lookup(2 ** 40)
      gc()
      gc()
      const before = process.memoryUsage()
      for (let i = 0; i < n; i++) {
        const e = entry(i, bodyBytes)
        const encoded = encodeEntry(e)
        tier.remember(`GET ${e.url}`, tier.prepare(e), encoded.length)
      }
      gc()
      const after = process.memoryUsage()
      heldEach.push((after.heapUsed - before.heapUsed + after.arrayBuffers - before.arrayBuffers) / n)
      counted = tier.memory.totalBytes / n
      tier.memory.clear()
    }
    const held = Math.min(...heldEach)
    t.diagnostic(`per entry: held ${held.toFixed(0)} bytes (heap + array buffers; ${heldEach.map((h) => h.toFixed(0)).join(', ')}), counted ${counted.toFixed(0)}`)
    t.assert.ok(counted >= held, `counted ${counted.toFixed(0)} < held ${held.toFixed(0)}`)
    t.assert.ok(counted <= 3 * held, `counted ${counted.toFixed(0)} > 3 × held ${held.toFixed(0)}`)
  })
}

test('the estimate grows with the key, the metadata and the body', { timeout: 5000 }, (t: TestContext) => {
  const body = Buffer.allocUnsafeSlow(1000)
  const base = footprint('k', body, 1400)
  t.assert.ok(footprint('k'.repeat(101), body, 1400) >= base + 100)
  t.assert.ok(footprint('k', body, 2400) >= base + 1000)
  t.assert.ok(footprint('k', Buffer.allocUnsafeSlow(2000), 2400) >= base + 1000)
})
