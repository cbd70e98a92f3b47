import type Keyv from 'keyv'
import type { CacheStore, StoreStats, SweepResult } from '../contract.ts'
import { KeyvCacheStore } from '../keyv-store.ts'
import { noop, type Settings } from '../settings.ts'
import { AccessTimes, stamp } from './access-times.ts'
import { ChangeFeed } from './changes.ts'
import { entryTotals, evictEntries } from './eviction.ts'
import { SqliteLeases } from './leases.ts'
import { BatchedReads } from './reads.ts'
import { RecoveringConnection } from './recovery.ts'
import { WRITE_ENTRY, type Query } from './schema.ts'

/**
 * sqlite://<path>: SQLite through @keyv/sqlite, shared by every worker. The values are
 * keyv's; sizes, expiry and access times sit beside them (schema.ts), leases in their own
 * table (leases.ts), and each write is logged for the other processes (changes.ts). A file
 * that cannot be used is reopened in the background (recovery.ts). Each SQLite statement
 * is atomic, so an entry is stored whole or not at all whatever fails or is killed.
 */
class SqliteCacheStore extends KeyvCacheStore {
  private readonly file: RecoveringConnection
  private readonly query: Query
  private readonly changes: ChangeFeed
  private readonly accessTimes: AccessTimes
  private readonly leases: SqliteLeases
  private readonly reads: BatchedReads

  constructor (private readonly path: string, settings: Settings) {
    super(settings)
    this.query = (sql, ...params) => this.file.query(sql, ...params)
    this.changes = new ChangeFeed(this.query, this.owner, settings.changePollMs)
    this.file = new RecoveringConnection(path, settings, this.changes.prepare)
    this.accessTimes = new AccessTimes(this.query)
    this.leases = new SqliteLeases(this.query, this.owner)
    this.reads = new BatchedReads(this.query)
  }

  /** Opens the file, or starts retrying in the background if it cannot be used; never throws. */
  async start (): Promise<void> {
    await this.file.start()
    this.accessTimes.start()
    if (this.path !== ':memory:') this.changes.openGeneration(this.path)
    this.startSweepTimer()
  }

  protected entries<T> (call: (keyv: Keyv) => Promise<T>): Promise<T> {
    return this.file.entries(call)
  }

  /** Not keyv.get: concurrent reads share one statement (reads.ts). */
  override async get (key: string): Promise<Buffer | undefined> {
    const value = await this.reads.get(key)
    if (value === undefined || value === null) return undefined
    this.touch(key)
    return Buffer.isBuffer(value) ? value : Buffer.from(String(value))
  }

  protected async write (key: string, value: Buffer, expiresAt: number | undefined, releaseLease?: string): Promise<boolean> {
    // Not keyv.set: it cannot carry the expiry, so the entry, its meta and its change-log row
    // took three statements; the entry_puts trigger (schema.ts) writes them in one, and
    // releases the lease the write ends (one thread-pool round trip less per stored miss).
    this.accessTimes.forget(key)
    const writer = this.changes.writer()
    await this.query(WRITE_ENTRY, key, value, expiresAt ?? null, stamp(), writer, Date.now(), releaseLease ?? null, this.owner)
    if (writer !== null) this.changes.logged()
    return releaseLease !== undefined
  }

  override async delete (key: string): Promise<void> {
    this.accessTimes.forget(key)
    await super.delete(key)
    await this.changes.log(key)
  }

  touch (key: string): void {
    this.accessTimes.touch(key)
  }

  async acquireLease (key: string, ttlMs: number): Promise<boolean> {
    return await this.leases.acquire(key, ttlMs)
  }

  async releaseLease (key: string): Promise<void> {
    await this.leases.release(key)
  }

  async hasLease (key: string): Promise<boolean> {
    return await this.leases.has(key)
  }

  async keys (prefix: string): Promise<string[]> {
    // GLOB is case-sensitive like the keys; its wildcards in the prefix are escaped as [*], [?], [[].
    const pattern = prefix.replace(/[*?[]/g, '[$&]') + '*'
    const rows = await this.query('SELECT key FROM entry_meta WHERE key GLOB ?', pattern)
    return rows.map((row) => String(row.key))
  }

  async stats (): Promise<StoreStats> {
    return await entryTotals(this.query)
  }

  protected async sweepOnce (): Promise<SweepResult> {
    await this.accessTimes.flush().catch(noop) // the LRU order should include recent reads
    const now = Date.now()
    const result = await evictEntries(this.query, now, this.settings.maxBytes)
    await this.leases.deleteExpired(now)
    await this.changes.prune(now)
    return result
  }

  override onRemoteChange (listener: (key: string) => void): void {
    this.changes.onRemoteChange(listener)
  }

  override changedElsewhere (): boolean {
    return this.changes.changedElsewhere()
  }

  override async syncChanges (): Promise<void> {
    await this.changes.sync()
  }

  override async close (): Promise<void> {
    if (!this.closed) {
      this.file.stop()
      this.accessTimes.stop()
      this.changes.stop()
    }
    await super.close()
  }

  protected async shutdown (): Promise<void> {
    await this.file.close(async () => {
      await this.accessTimes.flush().catch(noop)
      await this.leases.releaseAll().catch(noop)
      this.changes.close()
    })
  }
}

export async function openSqliteStore (path: string, settings: Settings): Promise<CacheStore> {
  // A file that cannot be used yet does not fail the open: the store rejects its calls and
  // keeps trying in the background (see recovery.ts).
  const store = new SqliteCacheStore(path, settings)
  await store.start()
  return store
}
