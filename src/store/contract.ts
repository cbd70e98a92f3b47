/**
 * The store contract, in two parts. A backend implements both (CacheStore); every backend
 * passes test/store-contract.test.ts.
 *
 * Errors of the entry calls and the lease calls reject (callers log and serve uncached);
 * the background work (sweeping, access-time flushing, change polling) never throws.
 */

/** Where encoded cache entries live. Values are opaque bytes (see src/cache/entry.ts). */
export interface EntryStore {
  /** The stored bytes, or undefined. Counts as an access for the LRU order. */
  get (key: string): Promise<Buffer | undefined>
  /**
   * Stores `value` whole (or not at all). `expiresAt` (epoch ms) marks when the entry
   * becomes useless and may be swept; without it the entry stays until LRU evicts it.
   * A value larger than `maxBytes` is not stored (and any older value is dropped).
   * Expiry is a sweeping hint: get() does not check it, callers judge freshness.
   */
  set (key: string, value: Buffer, options?: SetOptions): Promise<void>
  delete (key: string): Promise<void>
  /**
   * The keys of the stored entries that start with `prefix` (all of them for ''), in no
   * particular order; entries past their expiresAt but not swept yet are included. Purging
   * by prefix or host (plugins/admin.ts) enumerates with it.
   */
  keys (prefix: string): Promise<string[]>
  /** Records an access served from a process-local memory tier (batched, cheap, never throws). */
  touch (key: string): void
  /** Number of entries and total bytes of their values. */
  stats (): Promise<StoreStats>
  /** Deletes the entries past their expiresAt, then evicts the least recently used until bytes <= maxBytes. */
  sweep (): Promise<SweepResult>
  /** What this instance's sweeps (timer, automatic or called) deleted since it opened (metrics). */
  sweepTotals (): SweepResult
  /**
   * Whether the storage can be used now (synchronous, cheap), for a readiness report: a
   * store that is not ok rejects its calls and is being reconnected or reopened.
   */
  status (): StoreStatus
  /** Stops the timers, flushes pending access times, releases this instance's leases. */
  close (): Promise<void>
}

/** What the processes sharing one store tell each other: leases and change notifications. */
export interface Coordination {
  /**
   * Takes a short-lived lock on `key` for coalescing requests across the processes that
   * share the store. True if this store instance now holds it (also when it already held
   * it; that renews it for `ttlMs`). A lease whose holder died expires after `ttlMs`.
   */
  acquireLease (key: string, ttlMs: number): Promise<boolean>
  /** Releases the lease on `key` if this store instance holds it. */
  releaseLease (key: string): Promise<void>
  /** True while some unexpired lease on `key` exists, whoever holds it. */
  hasLease (key: string): Promise<boolean>
  /** Calls `listener` with each key that another process sharing the store changed. */
  onRemoteChange (listener: (key: string) => void): void
  /**
   * True when another process may have changed entries that the listeners have not been
   * told about yet: synchronous and cheap (a memory-tier hit asks it every time).
   */
  changedElsewhere (): boolean
  /** Tells the onRemoteChange listeners about every change logged before this call; never rejects. */
  syncChanges (): Promise<void>
}

export type CacheStore = EntryStore & Coordination

export interface SetOptions {
  /** Epoch ms after which the entry is useless and may be swept. */
  expiresAt?: number
  /**
   * A key whose lease this instance holds, released once the value is stored (or refused as too
   * large), as releaseLease() would: in the same statement where the backend can (SQLite).
   * A set that rejects leaves the lease to the caller.
   */
  releaseLease?: string
}

export interface StoreStats { entries: number, bytes: number }
export interface StoreStatus { ok: boolean, reason?: string }
export interface SweepResult { expired: number, evicted: number }

export interface StoreOptions {
  /** How often to look for keys changed by other processes (shared stores only). Default 200 ms. */
  changePollMs?: number
  /** Bound on the total bytes of stored values. Default 1 GiB. */
  maxBytes?: number
  /** How often to sweep in the background. Default 60 000 ms; 0 = no timer. */
  sweepIntervalMs?: number
  /**
   * How often an unusable SQLite file (missing directory, unreadable, read-only, full,
   * I/O errors) is tried again in the background. Default 2000 ms.
   */
  reopenIntervalMs?: number
  /** Bound on each command to a networked store (Redis), in ms. Default 50. */
  commandTimeoutMs?: number
  /** Where the store reports an outage, its recovery and a corrupt file moved aside (once each). */
  log?: StoreLogger
}

/** The part of a pino / Fastify logger the store uses. */
export interface StoreLogger {
  info (details: object, message: string): void
  warn (details: object, message: string): void
}

/**
 * What the calls of a store reject with while its storage cannot be used; `cause` is the
 * error of the last attempt (pino logs its message after this one). The store keeps retrying.
 */
export class StoreUnavailableError extends Error {
  readonly code = 'CACHE_STORE_UNAVAILABLE'
  constructor (path: string, cause: unknown) {
    super(`cache store ${path} is unavailable, retrying in the background`, { cause })
    this.name = 'StoreUnavailableError'
  }
}
