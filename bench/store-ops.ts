/**
 * The store calls of the proxy's miss and hit paths, without HTTP, for two builds side by side
 * (issue #13: on a loaded 2-core machine, CPU per call of the store alone is steadier than req/s):
 *   node --import tsx bench/store-ops.ts <dist A> <dist B> [rounds=6] [ops=3000]
 * miss: get (none) + acquireLease + set (1.3 KB, with expiry) + releaseLease, 50 at a time;
 * read: get of a random key among 100,000 stored. The CPU of this whole process (every thread,
 * from /proc/self/stat) per operation, interleaved rounds, medians and B/A ratios.
 */
import { readFileSync, mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { fmt, median } from './stats.ts'

interface Store {
  get: (key: string) => Promise<Buffer | undefined>
  set: (key: string, value: Buffer, options?: { expiresAt?: number }) => Promise<void>
  acquireLease: (key: string, ttlMs: number) => Promise<boolean>
  releaseLease: (key: string) => Promise<void>
  onRemoteChange: (listener: (key: string) => void) => void
  close: () => Promise<void>
}
type Open = (uri: string, options?: object) => Promise<Store>

const [distA, distB, roundsArg = '6', opsArg = '3000'] = process.argv.slice(2)
const ROUNDS = Number(roundsArg)
const OPS = Number(opsArg)
const CONCURRENCY = 50
const STORED = 100_000
const VALUE = Buffer.alloc(1300, 7)

function cpuTicks (): number {
  const stat = readFileSync('/proc/self/stat', 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(fields[11]) + Number(fields[12])
}

async function measure (ops: number, op: (i: number) => Promise<unknown>): Promise<{ us: number, perSecond: number }> {
  const before = cpuTicks()
  const started = performance.now()
  let next = 0
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => { while (next < ops) await op(next++) }))
  const ms = performance.now() - started
  return { us: (cpuTicks() - before) * 10_000 / ops, perSecond: ops / ms * 1000 }
}

async function main (): Promise<void> {
  if (distA === undefined || distB === undefined) throw new Error('usage: store-ops.ts <dist A> <dist B> [rounds] [ops]')
  const dir = mkdtempSync(path.join(os.tmpdir(), 'caching-proxy-store-ops-'))
  try {
    interface Figures { us: number, perSecond: number }
    const sides: Array<{ name: string, store: Store, miss: Figures[], read: Figures[] }> = []
    for (const [name, dist] of [['A', distA], ['B', distB]] as const) {
      const { openStore } = await import(pathToFileURL(path.resolve(dist, 'src', 'store', 'index.js')).href) as { openStore: Open }
      const store = await openStore(`sqlite://${path.join(dir, `${name}.sqlite`)}`, { sweepIntervalMs: 0 })
      store.onRemoteChange(() => {}) // as the proxy does: writes are logged for other processes
      const fill = await measure(STORED, async (i) => await store.set(`GET http://origin/r-${i}`, VALUE))
      console.error(`${name}: ${STORED} entries stored at ${fmt(fill.perSecond)}/s`)
      sides.push({ name, store, miss: [], read: [] })
    }
    let fresh = 0
    for (let round = 0; round < ROUNDS; round++) {
      for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
        const { store } = side
        side.miss.push(await measure(OPS, async () => {
          const key = `GET http://origin/fill-${fresh++}`
          await store.get(key)
          if (await store.acquireLease(key, 5000)) {
            await store.set(key, VALUE, { expiresAt: Date.now() + 3_600_000 })
            await store.releaseLease(key)
          }
        }))
        side.read.push(await measure(OPS * 3, async () => await store.get(`GET http://origin/r-${Math.floor(Math.random() * STORED)}`)))
        console.error(`round ${round + 1} ${side.name}: miss ${fmt(side.miss.at(-1)?.us ?? NaN, 1)} µs ${fmt(side.miss.at(-1)?.perSecond ?? NaN)}/s, ` +
          `read ${fmt(side.read.at(-1)?.us ?? NaN, 1)} µs ${fmt(side.read.at(-1)?.perSecond ?? NaN)}/s`)
      }
    }
    for (const side of sides) {
      console.log(`${side.name}: miss ${fmt(median(side.miss.map((m) => m.us)), 1)} µs CPU ${fmt(median(side.miss.map((m) => m.perSecond)))}/s; ` +
        `read ${fmt(median(side.read.map((m) => m.us)), 1)} µs CPU ${fmt(median(side.read.map((m) => m.perSecond)))}/s`)
      await side.store.close()
    }
    const ratio = (key: 'miss' | 'read'): number => median(sides[0][key].map((a, i) => a.us / sides[1][key][i].us))
    console.log(`A µs / B µs (> 1: B is cheaper): miss ${fmt(ratio('miss'), 2)}, read ${fmt(ratio('read'), 2)}`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

main().then(() => process.exit(0), (error: unknown) => { console.error(error); process.exit(1) })
