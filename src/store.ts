import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Keyv, { type KeyvOptions } from 'keyv'
import KeyvSqlite from '@keyv/sqlite'

/**
 * Where encoded cache entries live. Values are opaque bytes (see entry.ts); every
 * implementation passes test/store.test.ts.
 */
export interface CacheStore {
  get (key: string): Promise<Buffer | undefined>
  set (key: string, value: Buffer): Promise<void>
  delete (key: string): Promise<void>
  /** Calls `listener` with each key that another process sharing the store changed. */
  onRemoteChange (listener: (key: string) => void): void
  close (): Promise<void>
}

export interface StoreOptions {
  /** How often to look for keys changed by other processes (shared stores only). */
  changePollMs?: number
}

/** Opens the store named by a CACHE_STORE URI: `memory://` or `sqlite://<path>`. */
export async function openStore (uri: string, options: StoreOptions = {}): Promise<CacheStore> {
  if (uri === 'memory://') return new KeyvCacheStore(new Keyv({ store: new Map(), ...RAW }))
  const path = uri.replace(/^sqlite:\/\//, '')
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
  const adapter = new KeyvSqlite({ uri: `sqlite://${path}`, table: 'entries', keySize: 8192, busyTimeout: 5000 })
  // WAL lets several worker processes read while one writes; NORMAL sync is safe with WAL.
  await adapter.query('PRAGMA journal_mode=WAL')
  await adapter.query('PRAGMA synchronous=NORMAL')
  const store = new SqliteCacheStore(new Keyv({ store: adapter, ...RAW }), adapter, options.changePollMs ?? 200)
  await store.init()
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

class KeyvCacheStore implements CacheStore {
  constructor (protected readonly keyv: Keyv) {
    keyv.on('error', () => {}) // errors are thrown to the caller (throwOnErrors)
  }

  async get (key: string): Promise<Buffer | undefined> {
    const raw: unknown = await this.keyv.get(key, { raw: true })
    if (raw === undefined || raw === null) return undefined
    return Buffer.isBuffer(raw) ? raw : Buffer.from(raw as string)
  }

  async set (key: string, value: Buffer): Promise<void> {
    await this.keyv.set(key, value)
  }

  async delete (key: string): Promise<void> {
    await this.keyv.delete(key)
  }

  onRemoteChange (_listener: (key: string) => void): void {}

  async close (): Promise<void> {
    await this.keyv.disconnect()
  }
}

type Query = (sql: string, ...params: unknown[]) => Promise<Array<Record<string, unknown>>>

/**
 * SQLite through @keyv/sqlite, shared by every worker. Each write also appends the key
 * to a short change log that the other processes poll, so their in-memory tiers drop
 * copies that another process replaced or invalidated.
 */
class SqliteCacheStore extends KeyvCacheStore {
  private readonly query: Query
  private readonly listeners: Array<(key: string) => void> = []
  private lastSeq = 0
  private timer: NodeJS.Timeout | undefined
  private polling = false
  private readonly writer = `${process.pid}-${Math.random().toString(36).slice(2)}`

  constructor (keyv: Keyv, adapter: KeyvSqlite, private readonly pollMs: number) {
    super(keyv)
    this.query = adapter.query as unknown as Query
  }

  async init (): Promise<void> {
    await this.query('CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, writer TEXT NOT NULL, at INTEGER NOT NULL)')
    const rows = await this.query('SELECT MAX(seq) AS seq FROM changes')
    this.lastSeq = Number(rows[0]?.seq ?? 0)
  }

  override async set (key: string, value: Buffer): Promise<void> {
    await super.set(key, value)
    await this.logChange(key)
  }

  override async delete (key: string): Promise<void> {
    await super.delete(key)
    await this.logChange(key)
  }

  override onRemoteChange (listener: (key: string) => void): void {
    this.listeners.push(listener)
    if (this.timer === undefined) {
      this.timer = setInterval(() => { this.poll().catch(() => {}) }, this.pollMs)
      this.timer.unref()
    }
  }

  private async logChange (key: string): Promise<void> {
    if (this.listeners.length === 0) return
    await this.query('INSERT INTO changes (key, writer, at) VALUES (?, ?, ?)', key, this.writer, Date.now())
  }

  private async poll (): Promise<void> {
    if (this.polling) return
    this.polling = true
    try {
      const rows = await this.query('SELECT seq, key, writer FROM changes WHERE seq > ? ORDER BY seq', this.lastSeq)
      for (const row of rows) {
        this.lastSeq = Number(row.seq)
        if (row.writer === this.writer) continue
        for (const listener of this.listeners) listener(String(row.key))
      }
      if (Math.random() < 0.02) await this.query('DELETE FROM changes WHERE at < ?', Date.now() - 60_000)
    } catch {
      // A failing store is reported by the requests that use it.
    } finally {
      this.polling = false
    }
  }

  override async close (): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer)
    await super.close()
  }
}
