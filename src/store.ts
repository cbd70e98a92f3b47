import { mkdirSync, renameSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import Keyv, { type KeyvOptions } from 'keyv'
import KeyvSqlite from '@keyv/sqlite'
import { MemoryTier } from './memory-tier.ts'
import { SharedGeneration } from './generation.ts'

/**
 * Where encoded cache entries live. Values are opaque bytes (see entry.ts); every
 * implementation passes test/store.test.ts.
 *
 * Errors of get/set/delete and the lease calls reject (callers log and serve uncached);
 * the background work (sweeping, access-time flushing, change polling) never throws.
 */
export interface CacheStore {
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
  /** Records an access served from a process-local memory tier (batched, cheap, never throws). */
  touch (key: string): void
  /** Calls `listener` with each key that another process sharing the store changed. */
  onRemoteChange (listener: (key: string) => void): void
  /**
   * True when another process may have changed entries that the listeners have not been
   * told about yet: synchronous and cheap (a memory-tier hit asks it every time).
   */
  changedElsewhere (): boolean
  /** Tells the onRemoteChange listeners about every change logged before this call; never rejects. */
  syncChanges (): Promise<void>
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
  /** Number of entries and total bytes of their values. */
  stats (): Promise<StoreStats>
  /** Deletes the entries past their expiresAt, then evicts the least recently used until bytes <= maxBytes. */
  sweep (): Promise<SweepResult>
  /** Stops the timers, flushes pending access times, releases this instance's leases. */
  close (): Promise<void>
}

export interface SetOptions {
  /** Epoch ms after which the entry is useless and may be swept. */
  expiresAt?: number
}

export interface StoreStats { entries: number, bytes: number }
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
  /** Where the store reports an outage, its recovery and a corrupt file moved aside (once each). */
  log?: StoreLogger
}

/** The part of a pino / Fastify logger the store uses. */
export interface StoreLogger {
  info (details: object, message: string): void
  warn (details: object, message: string): void
}

/**
 * What the calls of a SQLite store reject with while its file cannot be used; `cause` is
 * the SQLite (or file system) error of the last attempt (pino logs its message after this
 * one). The store keeps retrying.
 */
export class StoreUnavailableError extends Error {
  readonly code = 'CACHE_STORE_UNAVAILABLE'
  constructor (path: string, cause: unknown) {
    super(`cache store ${path} is unavailable, retrying in the background`, { cause })
    this.name = 'StoreUnavailableError'
  }
}

export const DEFAULT_MAX_BYTES = 1024 ** 3
const DEFAULT_SWEEP_INTERVAL_MS = 60_000
const DEFAULT_CHANGE_POLL_MS = 200
const DEFAULT_REOPEN_INTERVAL_MS = 2000
/** Access times are written to a shared store at most this often... */
const TOUCH_FLUSH_MS = 1000
/** ...or as soon as this many distinct keys are waiting. */
const TOUCH_FLUSH_KEYS = 2000
/** A sweep starts soon after this process wrote this fraction of maxBytes since the last one. */
const AUTO_SWEEP_FRACTION = 0.1

interface Settings {
  maxBytes: number
  sweepIntervalMs: number
  changePollMs: number
  reopenIntervalMs: number
  log: StoreLogger | undefined
}

/**
 * Opens the store named by a CACHE_STORE URI: `memory://` (private to this store) or
 * `memory://<name>` (shared by the stores opened with that name in this process, e.g. to
 * test two "processes"), or `sqlite://<path>` (shared by every process using the file).
 */
export async function openStore (uri: string, options: StoreOptions = {}): Promise<CacheStore> {
  const settings: Settings = {
    maxBytes: options.maxBytes ?? DEFAULT_MAX_BYTES,
    sweepIntervalMs: options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS,
    changePollMs: options.changePollMs ?? DEFAULT_CHANGE_POLL_MS,
    reopenIntervalMs: options.reopenIntervalMs ?? DEFAULT_REOPEN_INTERVAL_MS,
    log: options.log
  }
  if (!(settings.maxBytes > 0)) throw new Error(`maxBytes must be positive, got ${settings.maxBytes}`)
  if (!(settings.reopenIntervalMs > 0)) throw new Error(`reopenIntervalMs must be positive, got ${settings.reopenIntervalMs}`)
  if (uri.startsWith('memory://')) return new MemoryCacheStore(MemoryBackend.open(uri.slice('memory://'.length), settings.maxBytes), settings)
  // A file that cannot be used yet does not fail the open: the store rejects its calls and
  // keeps trying in the background (see SqliteCacheStore).
  const store = new SqliteCacheStore(uri.replace(/^sqlite:\/\//, ''), settings)
  await store.start()
  return store
}

// Values are stored as raw bytes: keyv's JSON serializer would base64 every body.
const RAW: Omit<KeyvOptions, 'store'> = {
  namespace: '',
  useKeyPrefix: false,
  throwOnErrors: true,
  serialize: (data: { value?: unknown }) => data.value as string, // a Buffer, stored as a BLOB
  deserialize: <Value>(data: unknown) => ({ value: data as Value })
}

function noop (): void {}

/**
 * Access stamps: epoch ms with a sub-millisecond counter, so that accesses within one
 * millisecond keep their order in this process (2^-10 ms steps are exact in a double).
 */
let lastMs = 0
let sameMs = 0
function stamp (): number {
  const now = Date.now()
  if (now !== lastMs) {
    lastMs = now
    sameMs = 0
  } else if (sameMs < 1023) {
    sameMs++
  }
  return now + sameMs / 1024
}

function processAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** What both stores share: keyv for the values, the sweep schedule, the write accounting. */
abstract class KeyvCacheStore implements CacheStore {
  /** Identifies this store instance as a lease holder and change writer. */
  protected readonly owner = `${hostname()}/${process.pid}/${randomUUID()}`
  protected closed = false
  private sweepTimer: NodeJS.Timeout | undefined
  private sweepChain: Promise<unknown> = Promise.resolve()
  private autoSweepQueued = false
  private writtenSinceSweep = 0

  constructor (protected readonly settings: Settings) {}

  /** The keyv over the backing store (throwOnErrors: its calls reject). */
  protected abstract get keyv (): Keyv

  protected startSweepTimer (): void {
    if (this.settings.sweepIntervalMs <= 0) return
    this.sweepTimer = setInterval(() => { this.sweep().catch(noop) }, this.settings.sweepIntervalMs)
    this.sweepTimer.unref()
  }

  async get (key: string): Promise<Buffer | undefined> {
    const raw: unknown = await this.keyv.get(key, { raw: true })
    if (raw === undefined || raw === null) return undefined
    this.touch(key)
    return Buffer.isBuffer(raw) ? raw : Buffer.from(raw as string)
  }

  async set (key: string, value: Buffer, options: SetOptions = {}): Promise<void> {
    if (value.length > this.settings.maxBytes) {
      await this.delete(key)
      return
    }
    await this.write(key, value, options.expiresAt)
    this.wrote(value.length)
  }

  async delete (key: string): Promise<void> {
    await this.keyv.delete(key)
  }

  abstract touch (key: string): void
  abstract acquireLease (key: string, ttlMs: number): Promise<boolean>
  abstract releaseLease (key: string): Promise<void>
  abstract hasLease (key: string): Promise<boolean>
  abstract stats (): Promise<StoreStats>
  protected abstract write (key: string, value: Buffer, expiresAt: number | undefined): Promise<void>
  protected abstract sweepOnce (): Promise<SweepResult>

  onRemoteChange (_listener: (key: string) => void): void {}
  changedElsewhere (): boolean { return false }
  async syncChanges (): Promise<void> {}

  /** Sweeps run one at a time; each call gets a sweep that starts after it was called. */
  sweep (): Promise<SweepResult> {
    const run = this.sweepChain.then(async () => {
      this.writtenSinceSweep = 0
      return await this.sweepOnce()
    })
    this.sweepChain = run.catch(noop)
    return run
  }

  /** Sweeps soon once this process has written a tenth of maxBytes since the last sweep. */
  private wrote (bytes: number): void {
    this.writtenSinceSweep += bytes
    if (this.closed || this.autoSweepQueued || this.writtenSinceSweep <= this.settings.maxBytes * AUTO_SWEEP_FRACTION) return
    this.autoSweepQueued = true
    setImmediate(() => {
      this.autoSweepQueued = false
      if (!this.closed) this.sweep().catch(noop)
    }).unref()
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer)
    await this.sweepChain
    await this.shutdown()
  }

  /** Subclass cleanup, closing the connection last; must not throw. */
  protected abstract shutdown (): Promise<void>
}

// ---------------------------------------------------------------------------------------
// memory://

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

class MemoryCacheStore extends KeyvCacheStore {
  protected readonly keyv: Keyv

  constructor (private readonly backend: MemoryBackend, settings: Settings) {
    super(settings)
    this.keyv = new Keyv({ store: backend.lru, ...RAW })
    this.keyv.on('error', noop) // errors are thrown to the caller (throwOnErrors)
    this.startSweepTimer()
  }

  protected async write (key: string, value: Buffer, expiresAt: number | undefined): Promise<void> {
    // keyv hands the ttl to ByteLruMap.set; keyv reads a ttl of 0 as "none", so an
    // expiresAt that has already passed becomes -1.
    let ttl = expiresAt === undefined ? undefined : expiresAt - Date.now()
    if (ttl !== undefined && ttl <= 0) ttl = -1
    await this.keyv.set(key, value, ttl)
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

// ---------------------------------------------------------------------------------------
// sqlite://

type Query = (sql: string, ...params: unknown[]) => Promise<Array<Record<string, unknown>>>

/** Rows deleted per statement when sweeping, so that no write transaction runs long. */
const SWEEP_BATCH = 100
/** Access times per UPDATE when flushing. */
const TOUCH_BATCH = 500
/** Epoch ms inside SQLite (same clock as Date.now()), for rows the triggers create. */
const SQL_NOW_MS = "((julianday('now') - 2440587.5) * 86400000.0)"

/**
 * Schema next to @keyv/sqlite's `entries(key, value)`. Triggers on `entries` keep one
 * `entry_meta` row per entry in the same statement that writes or deletes the entry, and
 * triggers on `entry_meta` keep the totals in `store_totals`; so the sizes and totals can
 * never drift from the values, whichever process (or crash) interleaves.
 */
const SCHEMA = [
  'CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, writer TEXT NOT NULL, at INTEGER NOT NULL)',
  'CREATE TABLE IF NOT EXISTS entry_meta (key TEXT PRIMARY KEY, size INTEGER NOT NULL, expires_at INTEGER, accessed_at REAL NOT NULL)',
  'CREATE INDEX IF NOT EXISTS entry_meta_accessed ON entry_meta (accessed_at)',
  'CREATE INDEX IF NOT EXISTS entry_meta_expires ON entry_meta (expires_at) WHERE expires_at IS NOT NULL',
  'CREATE TABLE IF NOT EXISTS store_totals (id INTEGER PRIMARY KEY CHECK (id = 0), entries INTEGER NOT NULL, bytes INTEGER NOT NULL)',
  'INSERT OR IGNORE INTO store_totals (id, entries, bytes) VALUES (0, 0, 0)',
  'CREATE TABLE IF NOT EXISTS leases (key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at INTEGER NOT NULL)',
  ...['INSERT', 'UPDATE OF value'].map((event) => `CREATE TRIGGER IF NOT EXISTS entries_meta_${event === 'INSERT' ? 'insert' : 'update'} AFTER ${event} ON entries BEGIN
    INSERT INTO entry_meta (key, size, expires_at, accessed_at) VALUES (new.key, octet_length(new.value), NULL, ${SQL_NOW_MS})
    ON CONFLICT (key) DO UPDATE SET size = excluded.size, expires_at = NULL, accessed_at = excluded.accessed_at;
  END`),
  'CREATE TRIGGER IF NOT EXISTS entries_meta_delete AFTER DELETE ON entries BEGIN DELETE FROM entry_meta WHERE key = old.key; END',
  'CREATE TRIGGER IF NOT EXISTS entry_meta_totals_insert AFTER INSERT ON entry_meta BEGIN UPDATE store_totals SET entries = entries + 1, bytes = bytes + new.size WHERE id = 0; END',
  'CREATE TRIGGER IF NOT EXISTS entry_meta_totals_update AFTER UPDATE OF size ON entry_meta BEGIN UPDATE store_totals SET bytes = bytes - old.size + new.size WHERE id = 0; END',
  'CREATE TRIGGER IF NOT EXISTS entry_meta_totals_delete AFTER DELETE ON entry_meta BEGIN UPDATE store_totals SET entries = entries - 1, bytes = bytes - old.size WHERE id = 0; END'
]

/**
 * Repairs a file written before the triggers existed (or by hand): every entry gets its
 * meta row, meta rows without an entry go, and the totals are recounted. Each statement
 * is atomic, so running this while other processes write is safe.
 */
const REPAIR = [
  `INSERT INTO entry_meta (key, size, expires_at, accessed_at)
    SELECT key, octet_length(value), NULL, ${SQL_NOW_MS} FROM entries
    WHERE NOT EXISTS (SELECT 1 FROM entry_meta m WHERE m.key = entries.key)`,
  'DELETE FROM entry_meta WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.key = entry_meta.key)',
  `UPDATE store_totals SET entries = (SELECT COUNT(*) FROM entry_meta),
    bytes = (SELECT COALESCE(SUM(size), 0) FROM entry_meta) WHERE id = 0`
]

/** Deletes up to ? entries past their expiry (?). The trigger deletes their meta. */
const DELETE_EXPIRED = `DELETE FROM entries WHERE key IN (
  SELECT key FROM entry_meta WHERE expires_at <= ? ORDER BY expires_at LIMIT ?
) RETURNING 1 AS gone`

/**
 * Deletes the least recently used entries (among the oldest ? rows) whose bytes are needed
 * to bring the total down to ? (maxBytes). One statement: the total and the order are read
 * under the write lock, so two processes sweeping at once do not both evict the excess.
 */
const EVICT_LRU = `DELETE FROM entries WHERE key IN (
  SELECT key FROM (
    SELECT key, SUM(size) OVER (ORDER BY accessed_at, rowid ROWS UNBOUNDED PRECEDING) - size AS before
    FROM (SELECT rowid, key, size, accessed_at FROM entry_meta ORDER BY accessed_at, rowid LIMIT ?)
  ) WHERE before < (SELECT bytes FROM store_totals WHERE id = 0) - ?
) RETURNING 1 AS gone`

/** Sets accessed_at from [[key, stamp], ...] (JSON), never moving it back. */
const FLUSH_TOUCHES = `UPDATE entry_meta SET accessed_at = t.at
  FROM (SELECT value ->> 0 AS key, value ->> 1 AS at FROM json_each(?)) AS t
  WHERE entry_meta.key = t.key AND entry_meta.accessed_at < t.at`

/**
 * Takes the lease on ? for owner ? until ?, unless an unexpired lease (at time ?) of
 * another owner exists. Returns the row only when it was inserted or taken over.
 */
const ACQUIRE_LEASE = `INSERT INTO leases (key, owner, expires_at) VALUES (?, ?, ?)
  ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
  WHERE leases.expires_at <= ? OR leases.owner = excluded.owner
  RETURNING owner`

/**
 * SQLite result codes (node-sqlite3 puts them in `code`) meaning the file is damaged: it
 * is moved aside to `<file>.corrupt-<epoch ms>` (with its -wal and -shm) and recreated.
 */
const CORRUPT_CODES = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB'])
/**
 * Codes meaning this connection cannot use the file (any more): the connection is closed
 * and the file opened again, at once and then every reopenIntervalMs. SQLITE_READONLY also
 * covers a file renamed or deleted under an open connection (another process moved a
 * corrupt file aside). SQLITE_FULL is not among them: that write fails, reads go on, and
 * a later write succeeds on the same connection once there is room.
 */
const REOPEN_CODES = new Set(['SQLITE_READONLY', 'SQLITE_CANTOPEN', 'SQLITE_IOERR'])

function errorCode (error: unknown): string {
  const code = (error as { code?: unknown } | null | undefined)?.code
  return typeof code === 'string' ? code : ''
}

function inodeOf (path: string): number | undefined {
  try {
    return statSync(path).ino
  } catch {
    return undefined
  }
}

/** One open SQLite connection, replaced as a whole when the file has to be reopened. */
interface Connection {
  keyv: Keyv
  /** Runs SQL on this connection (keyv's calls go through it too). */
  query: Query
  /** The file's inode when opened: a corrupt file is moved aside only if it is still this one. */
  ino: number | undefined
}

/**
 * SQLite through @keyv/sqlite, shared by every worker. Each write also appends the key
 * to a short change log that the other processes poll, so their in-memory tiers drop
 * copies that another process replaced or invalidated.
 *
 * A file that cannot be used (its directory missing, unreadable, read-only, corrupt, I/O
 * errors) makes every call reject with StoreUnavailableError while the store tries to open
 * it again in the background; a corrupt file is moved aside and recreated. A full disk
 * fails the writes only. Each SQLite statement is atomic, so an entry is stored whole or
 * not at all whatever fails or is killed.
 */
class SqliteCacheStore extends KeyvCacheStore {
  /** The usable connection; undefined while the file cannot be used, and after close. */
  private conn: Connection | undefined
  /** Why the file cannot be used: the error of the last open attempt or failed call. */
  private lastError: unknown = new Error('not opened yet')
  /** True from an outage being logged until the recovery is. */
  private down = false
  /** Closing a broken connection, moving a corrupt file aside, open attempts: one at a time. */
  private recovery: Promise<void> = Promise.resolve()
  private reopenTimer: NodeJS.Timeout | undefined
  /** Looks for the file having been deleted or replaced under the open connection. */
  private checkTimer: NodeJS.Timeout | undefined
  private readonly listeners: Array<(key: string) => void> = []
  /** The last change seen; +Infinity until the first open reads the current one. */
  private lastSeq = Number.POSITIVE_INFINITY
  private pollTimer: NodeJS.Timeout | undefined
  /** Polls of the change log run one after the other; `pollQueued` is one not started yet. */
  private pollChain: Promise<void> = Promise.resolve()
  private pollQueued: Promise<void> | undefined
  /** Bumped after every logged change, read before every memory-tier hit (see generation.ts). */
  private generation: SharedGeneration | undefined
  private syncing: Promise<void> | undefined
  /** Access times not yet written: key → stamp. */
  private touches = new Map<string, number>()
  private flushTimer: NodeJS.Timeout | undefined
  private flushChain: Promise<void> = Promise.resolve()
  private flushQueued = false

  constructor (private readonly path: string, settings: Settings) {
    super(settings)
  }

  protected get keyv (): Keyv {
    return this.connection().keyv
  }

  private connection (): Connection {
    if (this.conn !== undefined) return this.conn
    if (this.closed) throw new Error('the cache store is closed')
    throw new StoreUnavailableError(this.path, this.lastError)
  }

  private async query (sql: string, ...params: unknown[]): Promise<Array<Record<string, unknown>>> {
    return await this.connection().query(sql, ...params)
  }

  /** Opens the file, or starts retrying in the background if it cannot be used; never throws. */
  async start (): Promise<void> {
    this.recover(undefined, false)
    await this.recovery
    this.flushTimer = setInterval(() => { this.flushTouches().catch(noop) }, TOUCH_FLUSH_MS)
    this.flushTimer.unref()
    if (this.path !== ':memory:') {
      this.generation = SharedGeneration.open(`${this.path}-gen`)
      this.checkTimer = setInterval(() => this.checkFile(), this.settings.reopenIntervalMs)
      this.checkTimer.unref()
    }
    this.startSweepTimer()
  }

  /**
   * A file deleted (or moved aside by another process) under an open connection goes on
   * taking writes that nobody else sees, so the path is opened again: a new connection
   * replaces the old one without a gap.
   */
  private checkFile (): void {
    const old = this.conn
    if (old === undefined || this.closed || inodeOf(this.path) === old.ino) return
    this.recovery = this.recovery.then(async () => {
      if (this.conn !== old || this.closed) return
      let fresh: Connection
      try {
        fresh = await this.connect(inodeOf(this.path))
      } catch (error) {
        if (this.conn === old) this.failed(old, error, true)
        return
      }
      if (this.conn !== old || this.closed) {
        await fresh.keyv.disconnect().catch(noop)
        return
      }
      this.conn = fresh
      await old.keyv.disconnect().catch(noop)
      this.settings.log?.info({ path: this.path }, 'cache store file deleted or replaced: reopened it')
    }).catch(noop)
  }

  /** Queues: close `broken` (if any), move a corrupt file aside, try to open the file. */
  private recover (broken: Connection | undefined, corrupt: boolean): void {
    this.recovery = this.recovery.then(async () => {
      if (broken !== undefined) await broken.keyv.disconnect().catch(noop)
      if (corrupt && !this.closed) this.moveAside(broken?.ino)
      await this.attempt()
    }).catch(noop)
  }

  private async attempt (): Promise<void> {
    this.reopenTimer = undefined
    if (this.closed || this.conn !== undefined) return
    let conn: Connection | undefined
    let failure: unknown
    // A file found corrupt on opening is moved aside and a new one opened straight away.
    for (let tries = 0; tries < 2 && conn === undefined; tries++) {
      const ino = inodeOf(this.path)
      try {
        conn = await this.connect(ino)
      } catch (error) {
        failure = error
        if (!CORRUPT_CODES.has(errorCode(error)) || !this.moveAside(ino)) break
      }
    }
    if (this.closed) {
      await conn?.keyv.disconnect().catch(noop)
      return
    }
    if (conn === undefined) {
      this.markDown(failure)
      this.reopenTimer = setTimeout(() => this.recover(undefined, false), this.settings.reopenIntervalMs)
      this.reopenTimer.unref()
      return
    }
    this.conn = conn
    if (this.down) {
      this.down = false
      this.settings.log?.info({ path: this.path }, 'cache store usable again')
    }
  }

  private markDown (error: unknown): void {
    this.lastError = error
    if (this.down) return
    this.down = true
    this.settings.log?.warn({ err: error, path: this.path, retryMs: this.settings.reopenIntervalMs }, 'cache store unusable; retrying in the background')
  }

  /** Opens a connection and prepares the schema; rejects (with the connection closed) if the file cannot be used. */
  private async connect (ino: number | undefined): Promise<Connection> {
    if (this.path !== ':memory:') mkdirSync(dirname(this.path), { recursive: true })
    const adapter = new KeyvSqlite({ uri: `sqlite://${this.path}`, table: 'entries', keySize: 8192, busyTimeout: 5000 })
    const keyv = new Keyv({ store: adapter, ...RAW })
    keyv.on('error', noop) // errors are thrown to the caller (throwOnErrors)
    const raw = adapter.query as unknown as Query
    const conn: Connection = {
      keyv,
      ino,
      query: async (sql, ...params) => {
        try {
          return await raw(sql, ...params)
        } catch (error) {
          this.failed(conn, error)
          throw error
        }
      }
    }
    adapter.query = conn.query as unknown as typeof adapter.query // keyv's own statements too
    try {
      // WAL lets several worker processes read while one writes; NORMAL sync is safe with WAL.
      await conn.query('PRAGMA journal_mode=WAL')
      await conn.query('PRAGMA synchronous=NORMAL')
      for (const sql of SCHEMA) await conn.query(sql)
      for (const sql of REPAIR) await conn.query(sql)
      const rows = await conn.query('SELECT MAX(seq) AS seq FROM changes')
      // After a reopen, changes made meanwhile are still reported (unless it is a new file).
      this.lastSeq = Math.min(this.lastSeq, Number(rows[0]?.seq ?? 0))
    } catch (error) {
      await keyv.disconnect().catch(noop)
      throw error
    }
    conn.ino ??= inodeOf(this.path)
    return conn
  }

  /** A call failed: if the error means the file is unusable (or `always`), drop the connection and recover. */
  private failed (conn: Connection, error: unknown, always = false): void {
    const code = errorCode(error)
    const corrupt = CORRUPT_CODES.has(code)
    if ((!always && !corrupt && !REOPEN_CODES.has(code)) || conn !== this.conn || this.closed) return
    this.conn = undefined
    this.markDown(error)
    this.recover(conn, corrupt)
  }

  /**
   * Moves the corrupt file and its -wal and -shm aside, unless it is no longer the file
   * opened as `ino` (another process already did). False if the file stays in place.
   */
  private moveAside (ino: number | undefined): boolean {
    if (this.path === ':memory:') return false
    const current = inodeOf(this.path)
    if (current === undefined || (ino !== undefined && current !== ino)) return true
    const aside = `${this.path}.corrupt-${Date.now()}`
    try {
      renameSync(this.path, aside)
    } catch (error) {
      this.settings.log?.warn({ err: error, path: this.path }, 'cannot move the corrupt cache store aside')
      return false
    }
    for (const suffix of ['-wal', '-shm']) {
      try {
        renameSync(this.path + suffix, aside + suffix)
      } catch {
        // Not there: nothing to move.
      }
    }
    this.settings.log?.warn({ path: this.path, movedTo: aside }, 'cache store file corrupt: moved aside, starting an empty one')
    return true
  }

  protected async write (key: string, value: Buffer, expiresAt: number | undefined): Promise<void> {
    // The entry row and (by trigger) its size are written in one statement; the expiry
    // and access time follow. If that second statement is lost, the entry is kept until
    // LRU evicts it.
    await this.keyv.set(key, value)
    this.touches.delete(key)
    await this.query('UPDATE entry_meta SET expires_at = ?, accessed_at = ? WHERE key = ?', expiresAt ?? null, stamp(), key)
    await this.logChange(key)
  }

  override async delete (key: string): Promise<void> {
    this.touches.delete(key)
    await super.delete(key)
    await this.logChange(key)
  }

  touch (key: string): void {
    this.touches.set(key, stamp())
    if (this.touches.size >= TOUCH_FLUSH_KEYS && !this.flushQueued && !this.closed) {
      this.flushQueued = true
      setImmediate(() => {
        this.flushQueued = false
        this.flushTouches().catch(noop)
      }).unref()
    }
  }

  /** Writes the pending access times; one flush at a time. A failed batch is dropped. */
  private flushTouches (): Promise<void> {
    const run = this.flushChain.then(async () => {
      if (this.touches.size === 0) return
      const batch = [...this.touches]
      this.touches = new Map()
      for (let i = 0; i < batch.length; i += TOUCH_BATCH) {
        await this.query(FLUSH_TOUCHES, JSON.stringify(batch.slice(i, i + TOUCH_BATCH)))
      }
    })
    this.flushChain = run.catch(noop)
    return run
  }

  async acquireLease (key: string, ttlMs: number): Promise<boolean> {
    const now = Date.now()
    const rows = await this.query(ACQUIRE_LEASE, key, this.owner, now + ttlMs, now)
    if (rows[0]?.owner === this.owner) return true
    // A holder on this host whose process is gone will never release it: take over now
    // rather than when it expires.
    if (await this.dropDeadLease(key)) {
      const retry = await this.query(ACQUIRE_LEASE, key, this.owner, now + ttlMs, now)
      return retry[0]?.owner === this.owner
    }
    return false
  }

  /** Deletes the lease on `key` when its holder was a process of this host that no longer runs. */
  private async dropDeadLease (key: string): Promise<boolean> {
    const rows = await this.query('SELECT owner FROM leases WHERE key = ?', key)
    const holder = String(rows[0]?.owner ?? '')
    const [host, pid] = holder.split('/')
    if (host !== hostname() || !/^\d+$/.test(pid ?? '') || processAlive(Number(pid))) return false
    await this.query('DELETE FROM leases WHERE key = ? AND owner = ?', key, holder)
    return true
  }

  async releaseLease (key: string): Promise<void> {
    await this.query('DELETE FROM leases WHERE key = ? AND owner = ?', key, this.owner)
  }

  async hasLease (key: string): Promise<boolean> {
    const rows = await this.query('SELECT 1 AS held FROM leases WHERE key = ? AND expires_at > ?', key, Date.now())
    if (rows.length === 0) return false
    return !(await this.dropDeadLease(key))
  }

  async stats (): Promise<StoreStats> {
    const rows = await this.query('SELECT entries, bytes FROM store_totals WHERE id = 0')
    return { entries: Number(rows[0]?.entries ?? 0), bytes: Number(rows[0]?.bytes ?? 0) }
  }

  protected async sweepOnce (): Promise<SweepResult> {
    await this.flushTouches().catch(noop) // the LRU order should include recent reads
    const now = Date.now()
    let expired = 0
    for (;;) {
      const gone = (await this.query(DELETE_EXPIRED, now, SWEEP_BATCH)).length
      expired += gone
      if (gone < SWEEP_BATCH) break
    }
    let evicted = 0
    for (;;) {
      const gone = (await this.query(EVICT_LRU, SWEEP_BATCH, this.settings.maxBytes)).length
      evicted += gone
      if (gone < SWEEP_BATCH) break
    }
    await this.query('DELETE FROM leases WHERE expires_at <= ?', now)
    await this.query('DELETE FROM changes WHERE at < ?', now - 60_000)
    return { expired, evicted }
  }

  override onRemoteChange (listener: (key: string) => void): void {
    this.listeners.push(listener)
    if (this.pollTimer === undefined && !this.closed) {
      this.pollTimer = setInterval(() => { this.poll().catch(noop) }, this.settings.changePollMs)
      this.pollTimer.unref()
    }
  }

  override changedElsewhere (): boolean {
    return this.listeners.length > 0 && this.generation !== undefined && this.generation.changed()
  }

  /** One sync at a time; a caller arriving during one waits for it and syncs again if the word moved since. */
  override async syncChanges (): Promise<void> {
    const generation = this.generation
    if (generation === undefined) return
    for (let round = 0; round < 3 && this.changedElsewhere(); round++) {
      if (this.syncing === undefined) {
        const seen = generation.read()
        this.syncing = this.poll().then(() => generation.mark(seen), noop).finally(() => { this.syncing = undefined })
      }
      await this.syncing
    }
  }

  private async logChange (key: string): Promise<void> {
    if (this.listeners.length === 0) return
    await this.query('INSERT INTO changes (key, writer, at) VALUES (?, ?, ?)', key, this.owner, Date.now())
    this.generation?.bump()
  }

  /** Reads the change log once, after any poll already running; polls asked for meanwhile share one. */
  private poll (): Promise<void> {
    if (this.pollQueued !== undefined) return this.pollQueued
    const queued = this.pollChain.then(async () => {
      this.pollQueued = undefined
      await this.pollOnce()
    })
    this.pollQueued = queued
    this.pollChain = queued.catch(noop)
    return queued
  }

  private async pollOnce (): Promise<void> {
    try {
      const rows = await this.query('SELECT seq, key, writer FROM changes WHERE seq > ? ORDER BY seq', this.lastSeq)
      for (const row of rows) {
        this.lastSeq = Number(row.seq)
        if (row.writer === this.owner) continue
        for (const listener of this.listeners) {
          try {
            listener(String(row.key))
          } catch {
            // A listener's failure must not stop the others or the polling.
          }
        }
      }
      if (Math.random() < 0.02) await this.query('DELETE FROM changes WHERE at < ?', Date.now() - 60_000)
    } catch {
      // A failing store is reported by the requests that use it.
    }
  }

  protected async shutdown (): Promise<void> {
    if (this.pollTimer !== undefined) clearInterval(this.pollTimer)
    if (this.flushTimer !== undefined) clearInterval(this.flushTimer)
    if (this.reopenTimer !== undefined) clearTimeout(this.reopenTimer)
    if (this.checkTimer !== undefined) clearInterval(this.checkTimer)
    await this.recovery
    await this.flushTouches().catch(noop)
    await this.query('DELETE FROM leases WHERE owner = ?', this.owner).catch(noop)
    this.generation?.close()
    const conn = this.conn
    this.conn = undefined
    await conn?.keyv.disconnect().catch(noop)
  }
}
