import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type Keyv from 'keyv'
import type { KeyvOptions } from 'keyv'
import type { CacheStore, SetOptions, StoreStats, StoreStatus, SweepResult } from './contract.ts'
import { noop, type Settings } from './settings.ts'

/** A sweep starts soon after this process wrote this fraction of maxBytes since the last one. */
const AUTO_SWEEP_FRACTION = 0.1

// Values are stored as raw bytes: keyv's JSON serializer would base64 every body.
export const RAW_VALUES: Omit<KeyvOptions, 'store'> = {
  namespace: '',
  useKeyPrefix: false,
  throwOnErrors: true,
  serialize: (data: { value?: unknown }) => data.value as string, // a Buffer, stored as a BLOB
  deserialize: <Value>(data: unknown) => ({ value: data as Value })
}

/**
 * What both backends share: keyv (public API only) for the values, the sweep schedule,
 * the write accounting. A backend adds its lease and change calls, and how it runs a keyv call.
 */
export abstract class KeyvCacheStore implements CacheStore {
  /** Identifies this store instance as a lease holder and change writer: host/pid/random. */
  protected readonly owner = `${hostname()}/${process.pid}/${randomUUID()}`
  protected closed = false
  private sweepTimer: NodeJS.Timeout | undefined
  private sweepChain: Promise<unknown> = Promise.resolve()
  private autoSweepQueued = false
  private writtenSinceSweep = 0
  private readonly swept: SweepResult = { expired: 0, evicted: 0 }

  constructor (protected readonly settings: Settings) {}

  /** Runs `call` on the keyv over the backing store (throwOnErrors: it rejects). */
  protected abstract entries<T> (call: (keyv: Keyv) => Promise<T>): Promise<T>

  protected startSweepTimer (): void {
    if (this.settings.sweepIntervalMs <= 0) return
    this.sweepTimer = setInterval(() => { this.sweep().catch(noop) }, this.settings.sweepIntervalMs)
    this.sweepTimer.unref()
  }

  async get (key: string): Promise<Buffer | undefined> {
    const raw: unknown = await this.entries((keyv) => keyv.get(key, { raw: true }))
    if (raw === undefined || raw === null) return undefined
    this.touch(key)
    return Buffer.isBuffer(raw) ? raw : Buffer.from(raw as string)
  }

  async set (key: string, value: Buffer, options: SetOptions = {}): Promise<void> {
    if (value.length > this.settings.maxBytes) {
      await this.delete(key)
      if (options.releaseLease !== undefined) await this.releaseLease(options.releaseLease)
      return
    }
    const released = await this.write(key, value, options.expiresAt, options.releaseLease)
    this.wrote(value.length)
    if (!released && options.releaseLease !== undefined) await this.releaseLease(options.releaseLease)
  }

  async delete (key: string): Promise<void> {
    await this.entries((keyv) => keyv.delete(key))
  }

  abstract touch (key: string): void
  abstract keys (prefix: string): Promise<string[]>
  abstract acquireLease (key: string, ttlMs: number): Promise<boolean>
  abstract releaseLease (key: string): Promise<void>
  abstract hasLease (key: string): Promise<boolean>
  abstract stats (): Promise<StoreStats>
  /** Stores the value; true when it also released the lease on `releaseLease` (else set() does). */
  protected abstract write (key: string, value: Buffer, expiresAt: number | undefined, releaseLease?: string): Promise<boolean>
  protected abstract sweepOnce (): Promise<SweepResult>

  onRemoteChange (_listener: (key: string) => void): void {}
  changedElsewhere (): boolean { return false }
  async syncChanges (): Promise<void> {}
  status (): StoreStatus { return { ok: true } }

  /** Sweeps run one at a time; each call gets a sweep that starts after it was called. */
  sweep (): Promise<SweepResult> {
    const run = this.sweepChain.then(async () => {
      this.writtenSinceSweep = 0
      const result = await this.sweepOnce()
      this.swept.expired += result.expired
      this.swept.evicted += result.evicted
      return result
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

  /** Backend cleanup, closing the connection last; must not throw. */
  protected abstract shutdown (): Promise<void>
}
