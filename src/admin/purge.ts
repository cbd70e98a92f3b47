import type { CacheStore } from '../store/index.ts'
import { decodeEntry, encodeEntry } from '../cache/entry.ts'
import type { FreshnessOptions } from '../cache/freshness.ts'
import { responsesAmong, type PurgeTarget } from './purge-target.ts'
import { softPurged } from './soft-purge.ts'

export interface PurgeContext {
  store: CacheStore
  /** Drops a key from this worker's memory tier (other workers hear of it from the store's change log). */
  forget (key: string): void
  /** This worker's memory-tier keys (entries may be there and not, or no longer, in the store). */
  memoryKeys (): Iterable<string>
  /** The cache's targeted cache-control fields and freshness settings (soft purge judges freshness). */
  targets: readonly string[]
  options: FreshnessOptions
}

/** Writes to the store run this many at a time. */
const PARALLEL = 16

/**
 * The change-log key that tells the other workers to drop every memory-tier key starting
 * with what follows (cache keys start with a method, so it is never one). Deleting it from
 * the store logs it like any delete; `forgetPurged` is the receiving end.
 */
export const PURGE_MARKER = 'purge-prefix\n'

/**
 * A purge reaches entries another worker holds only in memory (the store evicted them, or
 * a write failed): the other workers drop the exact keys and their keys under each prefix too.
 */
async function broadcast (context: PurgeContext, target: PurgeTarget, done: string[]): Promise<void> {
  // An exact key not found here may still be in another worker's memory: its delete is logged all the same.
  for (const key of target.keys) if (!done.includes(key)) await context.store.delete(key)
  for (const prefix of target.prefixes) await context.store.delete(PURGE_MARKER + prefix)
}

/** Called with each key another worker changed: a purge marker drops this worker's keys under its prefix. */
export function forgetPurged (context: Pick<PurgeContext, 'forget' | 'memoryKeys'>, changed: string): void {
  if (!changed.startsWith(PURGE_MARKER)) return
  const prefix = changed.slice(PURGE_MARKER.length)
  for (const key of [...context.memoryKeys()]) if (key.startsWith(prefix)) context.forget(key)
}

/** The stored keys a target names (the store's, then this worker's memory-only ones). */
async function keysOf (context: PurgeContext, target: PurgeTarget): Promise<string[]> {
  const found = new Set<string>()
  const exact = new Set(target.keys)
  const matches = (key: string): boolean => exact.has(key) || target.prefixes.some((prefix) => key.startsWith(prefix))
  for (const key of target.keys) for (const stored of await context.store.keys(key)) if (stored === key) found.add(key)
  for (const prefix of target.prefixes) for (const key of await context.store.keys(prefix)) found.add(key)
  for (const key of context.memoryKeys()) if (matches(key)) found.add(key)
  // A URL's Vary index goes before its variants, so no request finds a variant half-purged.
  return [...found].sort((a, b) => a.length - b.length)
}

async function inBatches (keys: string[], fn: (key: string) => Promise<void>): Promise<void> {
  for (let i = 0; i < keys.length; i += PARALLEL) await Promise.all(keys.slice(i, i + PARALLEL).map(fn))
}

/**
 * Removes the entries a target names (every Vary variant too) from the store and from this
 * worker's memory tier; each delete, and each prefix (broadcast), is logged for the other
 * workers, which drop their copies before answering from memory again (src/store/sqlite/changes.ts). Resolves, once
 * all of it is done, with how many stored responses went; rejects when the store fails.
 */
export async function purge (context: PurgeContext, target: PurgeTarget): Promise<number> {
  const keys = await keysOf(context, target)
  await inBatches(keys, async (key) => {
    context.forget(key)
    await context.store.delete(key)
    context.forget(key) // a read that began before the delete must not have refilled the memory tier
  })
  await broadcast(context, target, keys)
  return responsesAmong(keys)
}

/**
 * Marks the responses a target names stale instead (src/admin/soft-purge.ts): stale-while-
 * revalidate and stale-if-error still apply. Resolves with how many responses are now stale.
 */
export async function softPurge (context: PurgeContext, target: PurgeTarget): Promise<number> {
  const keys = await keysOf(context, target)
  let stale = 0
  await inBatches(keys, async (key) => {
    const raw = await context.store.get(key)
    context.forget(key)
    if (raw === undefined) return
    let entry
    try {
      entry = decodeEntry(raw)
    } catch {
      await context.store.delete(key) // unreadable: it could never be served anyway
      return
    }
    if (entry.vary !== undefined) return // a Vary index: its variants are among the keys
    stale++
    const softened = softPurged(entry, context.targets, context.options)
    if (softened === undefined) return // stale already
    await context.store.set(key, encodeEntry(softened.entry), { expiresAt: softened.expiresAt })
    context.forget(key)
  })
  await broadcast(context, target, keys)
  return stale
}
