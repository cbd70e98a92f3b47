import { ENTRIES_TABLE, type Query } from './schema.ts'

/** Keys per statement: bounds the rows (and bytes) one result holds at once. */
const MAX_KEYS = 64
const ONE = `SELECT value FROM ${ENTRIES_TABLE} WHERE key = ?`
const MANY = `SELECT key, value FROM ${ENTRIES_TABLE} WHERE key IN (SELECT value FROM json_each(?))`
/** A lone surrogate would not survive JSON into SQLite unchanged: such a key is read alone. */
const LONE_SURROGATE = /[\ud800-\udfff]/u

interface Waiter { resolve: (value: unknown) => void, reject: (error: unknown) => void }

/**
 * Entry reads, several keys per statement (issue #13). Every statement is a thread-pool round
 * trip in node-sqlite3, and its wake-ups (futex, context switches) cost the event loop more
 * CPU than the read itself (perf, random hits over 100k entries). One read runs at a time, as
 * the connection serialises them anyway; the keys asked for meanwhile go in the next one. A
 * read starts after the call that asked for it, so it sees every write finished before.
 */
export class BatchedReads {
  private waiting = new Map<string, Waiter[]>()
  private running = false

  constructor (private readonly query: Query) {}

  /** The stored value of `key` (a Buffer for a BLOB), or undefined; rejects with the statement's error. */
  get (key: string): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const waiters = this.waiting.get(key)
      if (waiters === undefined) this.waiting.set(key, [{ resolve, reject }])
      else waiters.push({ resolve, reject })
      if (!this.running) {
        this.running = true
        queueMicrotask(() => this.next()) // gets asked in this same tick join the first read
      }
    })
  }

  private next (): void {
    if (this.waiting.size === 0) {
      this.running = false
      return
    }
    const batch = new Map<string, Waiter[]>()
    for (const [key, waiters] of this.waiting) {
      if (batch.size >= MAX_KEYS) break
      const alone = LONE_SURROGATE.test(key)
      if (alone && batch.size > 0) continue
      batch.set(key, waiters)
      this.waiting.delete(key)
      if (alone) break
    }
    this.read(batch).then(() => this.next(), () => this.next())
  }

  private async read (batch: Map<string, Waiter[]>): Promise<void> {
    try {
      const values = new Map<string, unknown>()
      if (batch.size === 1) {
        const [key] = batch.keys()
        const rows = await this.query(ONE, key)
        if (rows.length > 0) values.set(key, rows[0].value)
      } else {
        const rows = await this.query(MANY, JSON.stringify([...batch.keys()]))
        for (const row of rows) values.set(String(row.key), row.value)
      }
      for (const [key, waiters] of batch) for (const waiter of waiters) waiter.resolve(values.get(key))
    } catch (error) {
      for (const waiters of batch.values()) for (const waiter of waiters) waiter.reject(error)
    }
  }
}
