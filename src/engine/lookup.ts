import type { IncomingHttpHeaders } from 'node:http'
import { allowsAuthorizedDirectives } from '../cache/cache-policy.ts'
import { decodeEntry, type CacheEntry } from '../cache/entry.ts'
import { evaluateReuse, freshness, type FreshnessOptions } from '../cache/freshness.ts'
import { policyHeaders, withoutOwnField } from '../cache/targeted-cache-control.ts'
import { variantKey } from '../cache/vary.ts'
import { appendVia } from '../http/headers.ts'
import type { CacheStore } from '../store/index.ts'
import { MemoryTier } from '../store/memory-tier.ts'
import { footprint, ownBytes } from './footprint.ts'
import type { StoreCalls } from './store-calls.ts'
import type { Cached, EngineLogger } from './types.ts'

export interface LookupSettings {
  freshness: FreshnessOptions
  /** The targeted fields this cache decides by (src/cache/targeted-cache-control.ts). */
  targets: readonly string[]
  cacheControlField: string
  memoryCacheBytes: number
}

/** What a request finds: the entry of its variant, if any, and the key it lives under. */
export interface Found {
  cached?: Cached
  storeKey: string
  /** The URL has variants, but none for this request. */
  varyMiss?: boolean
  /** The stamp of the URL's Vary index (see src/cache/vary.ts). */
  epoch?: number
}

/**
 * Finding stored responses: the worker's memory tier first, then the store (concurrent reads
 * of one key share a single store read), following a URL's Vary index to the variant.
 */
export class Lookup {
  readonly memory: MemoryTier<Cached>
  private readonly reads = new Map<string, Promise<Cached | undefined>>()
  // Bumped whenever an entry changes under this process: a store read started before a
  // change must not put what it read into the memory tier.
  private changeEpoch = 0
  private readonly forgetting: Array<(key: string) => void> = []

  constructor (
    private readonly store: CacheStore,
    private readonly settings: LookupSettings,
    private readonly calls: StoreCalls,
    private readonly log: EngineLogger
  ) {
    this.memory = new MemoryTier<Cached>(settings.memoryCacheBytes)
    store.onRemoteChange((key) => this.forget(key))
  }

  /** Decodes what the reuse decisions need of an entry, once. */
  prepare (entry: CacheEntry): Cached {
    const fresh = freshness(entry.status, policyHeaders(entry.headers, this.settings.targets), entry, this.settings.freshness)
    return {
      entry,
      fresh,
      headers: { ...withoutOwnField(entry.headers, this.settings.cacheControlField), via: appendVia(entry.headers.via) },
      allowsAuthorized: allowsAuthorizedDirectives(fresh.cc)
    }
  }

  /** Drops this worker's copy of `key`; a store read under way will not bring it back. */
  forget (key: string): void {
    this.changeEpoch++
    this.memory.delete(key)
    this.reads.delete(key)
    for (let i = 0; i < this.forgetting.length; i++) this.forgetting[i](key)
  }

  /** Calls `fn` with every key forgotten here (purges, changes by other processes). */
  onForget (fn: (key: string) => void): void {
    this.forgetting.push(fn)
  }

  /**
   * Keeps a just-written entry (`storedBytes` encoded) in the memory tier, counted at what it
   * really holds (footprint.ts); a body that is a view of a larger allocation is copied first.
   */
  remember (key: string, cached: Cached, storedBytes: number): void {
    const body = ownBytes(cached.entry.body)
    const kept = body === cached.entry.body ? cached : { ...cached, entry: { ...cached.entry, body } }
    this.memory.set(key, kept, footprint(key, body, storedBytes))
  }

  async get (key: string, skipMemory = false): Promise<Cached | undefined> {
    if (!skipMemory) {
      const inMemory = this.memory.get(key)
      if (inMemory !== undefined) {
        this.store.touch(key)
        return inMemory
      }
    }
    let read = this.reads.get(key)
    if (read === undefined) {
      read = this.readStore(key).finally(() => this.reads.delete(key))
      this.reads.set(key, read)
    }
    return await read
  }

  private async readStore (key: string): Promise<Cached | undefined> {
    const epoch = this.changeEpoch
    let raw: Buffer | undefined
    try {
      raw = await this.store.get(key)
    } catch (error) {
      this.calls.failed(error, 'get')
      return undefined
    }
    if (raw === undefined) return undefined
    let cached: Cached
    try {
      cached = this.prepare(decodeEntry(raw))
    } catch (error) {
      this.log.warn({ err: error, key }, 'deleting a cache entry that cannot be decoded')
      this.calls.track(this.store.delete(key), 'delete')
      return undefined
    }
    if (epoch === this.changeEpoch) this.remember(key, cached, raw.length)
    return cached
  }

  /** Finds the stored response for a request, following the URL's Vary index to its variant. */
  async find (key: string, headers: IncomingHttpHeaders, skipMemory = false): Promise<Found> {
    const found = await this.get(key, skipMemory)
    if (found?.entry.vary === undefined) return { cached: found, storeKey: key }
    const epoch = found.entry.responseTime
    const storeKey = variantKey(key, found.entry.vary, headers, epoch)
    const cached = await this.get(storeKey, skipMemory)
    return { cached, storeKey, varyMiss: cached === undefined, epoch }
  }

  /** The fast path: a fresh, plain hit from the memory tier, found without a promise. */
  memoryHit (key: string, headers: IncomingHttpHeaders): Cached | undefined {
    if (headers.authorization !== undefined) return undefined
    let cached = this.memory.get(key)
    // Another process changed entries since this one last looked: not before catching up. Asked
    // only when there is an entry (a read of the shared generation word): a miss or pass needs none.
    if (cached === undefined || this.store.changedElsewhere()) return undefined
    if (cached.entry.vary !== undefined) {
      const variant = variantKey(key, cached.entry.vary, headers, cached.entry.responseTime)
      cached = this.memory.get(variant)
      if (cached !== undefined) this.store.touch(variant)
    } else {
      this.store.touch(key)
    }
    return cached !== undefined && evaluateReuse(cached.fresh, headers, this.settings.freshness) === 'fresh' ? cached : undefined
  }
}
