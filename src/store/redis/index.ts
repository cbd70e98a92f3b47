import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type { CacheStore, SetOptions, StoreStatus, StoreStats, SweepResult } from '../contract.ts'
import { noop, type Settings } from '../settings.ts'
import { ChangeChannel } from './changes.ts'
import { Connection } from './connection.ts'
import { RedisLeases } from './leases.ts'
import { DELETE, GET, SET, STATS, SWEEP, TOUCH } from './scripts.ts'

/** Key prefix of everything this store writes (one Redis database can hold other data too). */
const PREFIX = 'cp:'
/** Entries stay in Redis this long past their expiresAt, so that a sweep (not Redis) counts them as expired. */
const MIN_EXPIRY_MARGIN_MS = 120_000
/** A sweep deletes at most this many entries per script call (Redis runs a script without interruption). */
const SWEEP_BATCH = 500
/** Access times of memory-tier hits are sent at most this often, or at this many keys. */
const TOUCH_FLUSH_MS = 1000
const TOUCH_FLUSH_KEYS = 500
/** How long opening the store waits for Redis before it starts serving uncached. */
const OPEN_WAIT_MS = 2000

/**
 * redis:// or rediss://: every entry, its size, LRU rank and expiry live in Redis and
 * change together (scripts.ts); leases are Redis keys (leases.ts); writes are announced on
 * a pub/sub channel (changes.ts). Redis' own TTL drops an entry past its useful life,
 * `maxmemory` + `allkeys-lru` bound Redis as a whole; maxBytes and sweep() bound this
 * store's share as on the other backends. Any call rejects within the command timeout
 * while Redis is down or slow; the connections reconnect in the background.
 */
class RedisCacheStore implements CacheStore {
  private readonly owner = `${hostname()}/${process.pid}/${randomUUID()}`
  private readonly redis: Connection
  private readonly changes: ChangeChannel
  private readonly leases: RedisLeases
  private readonly expiryMarginMs: number
  private touched = new Set<string>()
  private touchTimer: NodeJS.Timeout | undefined
  private sweepTimer: NodeJS.Timeout | undefined
  private sweepChain: Promise<unknown> = Promise.resolve()
  private writtenSinceSweep = 0
  private autoSweepQueued = false
  private closed = false
  private readonly swept: SweepResult = { expired: 0, evicted: 0 }

  constructor (url: string, private readonly settings: Settings) {
    this.redis = new Connection(url, settings.commandTimeoutMs, 'entries', settings.log)
    this.changes = new ChangeChannel(url, settings.commandTimeoutMs, `${PREFIX}changes`, this.owner, settings.log)
    this.leases = new RedisLeases(this.redis, PREFIX, this.owner)
    this.expiryMarginMs = Math.max(MIN_EXPIRY_MARGIN_MS, 2 * settings.sweepIntervalMs)
  }

  async start (): Promise<void> {
    await Promise.all([this.redis.start(OPEN_WAIT_MS), this.changes.start(OPEN_WAIT_MS)])
    if (this.settings.sweepIntervalMs > 0) {
      this.sweepTimer = setInterval(() => { this.sweep().catch(noop) }, this.settings.sweepIntervalMs)
      this.sweepTimer.unref()
    }
  }

  async get (key: string): Promise<Buffer | undefined> {
    const value = await this.redis.eval(GET, [PREFIX, key])
    return Buffer.isBuffer(value) ? value : undefined
  }

  async set (key: string, value: Buffer, options: SetOptions = {}): Promise<void> {
    if (value.length > this.settings.maxBytes) {
      await this.delete(key)
      if (options.releaseLease !== undefined) await this.releaseLease(options.releaseLease)
      return
    }
    const { expiresAt } = options
    // Redis drops the entry a margin after it became useless (a sweep normally deletes it first).
    const ttl = expiresAt === undefined ? 0 : Math.max(expiresAt - Date.now(), 0) + this.expiryMarginMs
    await this.redis.eval(SET, [PREFIX, key, value, ttl, expiresAt ?? '', this.changes.channel, this.changes.message(key)])
    this.wrote(value.length)
    if (options.releaseLease !== undefined) await this.releaseLease(options.releaseLease)
  }

  async delete (key: string): Promise<void> {
    this.touched.delete(key)
    await this.redis.eval(DELETE, [PREFIX, key, this.changes.channel, this.changes.message(key)])
  }

  async keys (prefix: string): Promise<string[]> {
    // Byte order: every key starting with `prefix` lies between it and it + 0xff (never in UTF-8).
    const from = prefix === '' ? '-' : Buffer.from(`[${prefix}`)
    const to = prefix === '' ? '+' : Buffer.concat([Buffer.from(`[${prefix}`), Buffer.from([0xff])])
    const found = await this.redis.command(['ZRANGEBYLEX', `${PREFIX}keys`, from, to]) as Buffer[]
    return found.map((key) => key.toString('utf8'))
  }

  touch (key: string): void {
    if (this.closed) return
    this.touched.delete(key) // keeps the Set in access order
    this.touched.add(key)
    if (this.touched.size >= TOUCH_FLUSH_KEYS) this.flushTouches().catch(noop)
    else if (this.touchTimer === undefined) {
      this.touchTimer = setTimeout(() => { this.flushTouches().catch(noop) }, TOUCH_FLUSH_MS)
      this.touchTimer.unref()
    }
  }

  private async flushTouches (): Promise<void> {
    clearTimeout(this.touchTimer)
    this.touchTimer = undefined
    if (this.touched.size === 0) return
    const keys = [...this.touched]
    this.touched = new Set()
    await this.redis.eval(TOUCH, [PREFIX, ...keys])
  }

  async stats (): Promise<StoreStats> {
    const [entries, bytes] = await this.redis.eval(STATS, [PREFIX]) as number[]
    return { entries: Number(entries), bytes: Math.max(Number(bytes), 0) }
  }

  /** Sweeps run one at a time; each call gets a sweep that starts after it was called. */
  sweep (): Promise<SweepResult> {
    const run = this.sweepChain.then(async () => {
      this.writtenSinceSweep = 0
      await this.flushTouches().catch(noop) // the LRU order should include memory-tier hits
      const total = { expired: 0, evicted: 0 }
      for (let round = 0; round < 100; round++) {
        const [expired, evicted] = await this.redis.eval(SWEEP, [PREFIX, Date.now(), this.settings.maxBytes, SWEEP_BATCH]) as number[]
        total.expired += Number(expired)
        total.evicted += Number(evicted)
        if (Number(expired) < SWEEP_BATCH && Number(evicted) < SWEEP_BATCH) break
      }
      this.swept.expired += total.expired
      this.swept.evicted += total.evicted
      return total
    })
    this.sweepChain = run.catch(noop)
    return run
  }

  sweepTotals (): SweepResult {
    return { ...this.swept }
  }

  /** Sweeps soon once this process has written a tenth of maxBytes since the last sweep. */
  private wrote (bytes: number): void {
    this.writtenSinceSweep += bytes
    if (this.closed || this.autoSweepQueued || this.writtenSinceSweep <= this.settings.maxBytes * 0.1) return
    this.autoSweepQueued = true
    setImmediate(() => {
      this.autoSweepQueued = false
      if (!this.closed) this.sweep().catch(noop)
    }).unref()
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

  onRemoteChange (listener: (key: string) => void): void {
    this.changes.onRemoteChange(listener)
  }

  changedElsewhere (): boolean {
    return this.changes.changedElsewhere()
  }

  async syncChanges (): Promise<void> {
    await this.changes.sync()
  }

  status (): StoreStatus {
    const reason = this.redis.reason ?? this.changes.reason
    return reason === undefined ? { ok: true } : { ok: false, reason: `Redis: ${reason}` }
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.sweepTimer)
    await this.sweepChain
    await this.flushTouches().catch(noop)
    await this.leases.releaseAll()
    await Promise.all([this.changes.close(), this.redis.close()])
  }
}

export async function openRedisStore (url: string, settings: Settings): Promise<CacheStore> {
  // Redis down at start does not fail the open: calls reject until it is reachable.
  const store = new RedisCacheStore(url, settings)
  await store.start()
  return store
}
