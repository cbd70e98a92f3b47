import Keyv from 'keyv'
import type { CacheStore, StoreStats, SweepResult } from './contract.ts'
import { KeyvCacheStore, RAW_VALUES } from './keyv-store.ts'
import { MemoryTier } from './memory-tier.ts'
import { noop, type Settings } from './settings.ts'

interface MemoryItem { value: Buffer, expiresAt: number | undefined }
interface Lease { owner: string, expiresAt: number }

/**
 * The byte-bounded LRU of memory-tier.ts, shaped like the Map keyv expects. Inserting
 * evicts the oldest entries at once, so it never exceeds maxBytes. keyv passes a ttl (ms)
 * to `set`; it becomes the entry's expiresAt.
 */
class ByteLruMap {
  private readonly tier: MemoryTier<MemoryItem>

  constructor (maxBytes: number) {
    this.tier = new MemoryTier(maxBytes)
  }

  get size (): number { return this.tier.size }
  get bytes (): number { return this.tier.totalBytes }

  get (key: string): Buffer | undefined {
    return this.tier.get(key)?.value
  }

  has (key: string): boolean {
    return this.tier.has(key)
  }

  /** Marks `key` as most recently used. */
  bump (key: string): MemoryItem | undefined {
    return this.tier.get(key)
  }

  set (key: string, value: Buffer, ttl?: number): this {
    this.tier.set(key, { value, expiresAt: typeof ttl === 'number' ? Date.now() + ttl : undefined }, value.length)
    return this
  }

  delete (key: string): boolean {
    return this.tier.delete(key)
  }

  clear (): void {
    this.tier.clear()
  }

  /** Deletes the entries past their expiresAt; returns how many. */
  deleteExpired (now: number): number {
    const expired: string[] = []
    for (const [key, item] of this.tier.entries()) {
      if (item.expiresAt !== undefined && item.expiresAt <= now) expired.push(key)
    }
    for (const key of expired) this.tier.delete(key)
    return expired.length
  }

  /** The keys starting with `prefix`. */
  keysWith (prefix: string): string[] {
    const keys: string[] = []
    for (const [key] of this.tier.entries()) if (key.startsWith(prefix)) keys.push(key)
    return keys
  }

  takeEvicted (): number {
    return this.tier.takeEvictions()
  }
}

/** The data behind one memory:// store, or behind every store opened as memory://<name>. */
class MemoryBackend {
  private static readonly named = new Map<string, MemoryBackend>()
  readonly leases = new Map<string, Lease>()
  readonly lru: ByteLruMap
  private refs = 0

  private constructor (private readonly name: string, maxBytes: number) {
    this.lru = new ByteLruMap(maxBytes)
  }

  static open (name: string, maxBytes: number): MemoryBackend {
    let backend = name === '' ? undefined : MemoryBackend.named.get(name)
    if (backend === undefined) {
      backend = new MemoryBackend(name, maxBytes)
      if (name !== '') MemoryBackend.named.set(name, backend)
    }
    backend.refs++
    return backend
  }

  release (): void {
    if (--this.refs === 0 && MemoryBackend.named.get(this.name) === this) MemoryBackend.named.delete(this.name)
  }
}

/** memory://[name]: keyv over a byte-bounded LRU, private to this process. */
class MemoryCacheStore extends KeyvCacheStore {
  private readonly keyv: Keyv

  constructor (private readonly backend: MemoryBackend, settings: Settings) {
    super(settings)
    this.keyv = new Keyv({ store: backend.lru, ...RAW_VALUES })
    this.keyv.on('error', noop) // errors are thrown to the caller (throwOnErrors)
    this.startSweepTimer()
  }

  protected entries<T> (call: (keyv: Keyv) => Promise<T>): Promise<T> {
    return call(this.keyv)
  }

  protected async write (key: string, value: Buffer, expiresAt: number | undefined): Promise<boolean> {
    // keyv hands the ttl to ByteLruMap.set; keyv reads a ttl of 0 as "none", so an
    // expiresAt that has already passed becomes -1.
    let ttl = expiresAt === undefined ? undefined : expiresAt - Date.now()
    if (ttl !== undefined && ttl <= 0) ttl = -1
    await this.keyv.set(key, value, ttl)
    return false
  }

  touch (key: string): void {
    this.backend.lru.bump(key)
  }

  async acquireLease (key: string, ttlMs: number): Promise<boolean> {
    const now = Date.now()
    const lease = this.backend.leases.get(key)
    if (lease !== undefined && lease.expiresAt > now && lease.owner !== this.owner) return false
    this.backend.leases.set(key, { owner: this.owner, expiresAt: now + ttlMs })
    return true
  }

  async releaseLease (key: string): Promise<void> {
    if (this.backend.leases.get(key)?.owner === this.owner) this.backend.leases.delete(key)
  }

  async hasLease (key: string): Promise<boolean> {
    const lease = this.backend.leases.get(key)
    return lease !== undefined && lease.expiresAt > Date.now()
  }

  async keys (prefix: string): Promise<string[]> {
    return this.backend.lru.keysWith(prefix)
  }

  async stats (): Promise<StoreStats> {
    return { entries: this.backend.lru.size, bytes: this.backend.lru.bytes }
  }

  protected async sweepOnce (): Promise<SweepResult> {
    const now = Date.now()
    const expired = this.backend.lru.deleteExpired(now)
    for (const [key, lease] of this.backend.leases) {
      if (lease.expiresAt <= now) this.backend.leases.delete(key)
    }
    // The map evicts as it is filled; report the evictions since the last sweep.
    return { expired, evicted: this.backend.lru.takeEvicted() }
  }

  protected async shutdown (): Promise<void> {
    for (const [key, lease] of this.backend.leases) {
      if (lease.owner === this.owner) this.backend.leases.delete(key)
    }
    this.backend.release()
    await this.keyv.disconnect()
  }
}

export function openMemoryStore (name: string, settings: Settings): CacheStore {
  return new MemoryCacheStore(MemoryBackend.open(name, settings.maxBytes), settings)
}
