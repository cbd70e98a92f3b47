import type { TestContext } from 'node:test'
import { openStore, type CacheStore, type StoreOptions } from '../../src/store/index.ts'

/** Opens a store that the test closes when it ends. */
export async function openForTest (t: TestContext, uri: string, options?: StoreOptions): Promise<CacheStore> {
  const store = await openStore(uri, options)
  t.after(() => store.close())
  return store
}

/** A 1000-byte value filled with `fill`. */
export const KB = (fill: number): Buffer => Buffer.alloc(1000, fill)

/** The keys that `store` holds a value for, in the order given. */
export async function present (store: CacheStore, keys: string[]): Promise<string[]> {
  const values = await Promise.all(keys.map((key) => store.get(key)))
  return keys.filter((_key, i) => values[i] !== undefined)
}

/** k<from> ... k<to - 1>. */
export const range = (from: number, to: number): string[] => Array.from({ length: to - from }, (_v, i) => `k${from + i}`)
