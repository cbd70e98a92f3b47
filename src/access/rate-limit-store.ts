import { mkdirSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import sqlite3 from 'sqlite3'
import { retryOnBusy } from '../store/sqlite/connection.ts'

/** The result @fastify/rate-limit expects from a store: requests counted in the window, ms left. */
export interface RateCount { current: number, ttl: number }
export type IncrCallback = (error: Error | null, result?: RateCount) => void

/** @fastify/rate-limit's store contract (`incr`, `child`), plus `close`. */
export interface RateLimitStore {
  incr (key: string, callback: IncrCallback, timeWindow: number, max: number): void
  child (routeOptions: { routeInfo?: { method?: string, url?: string } }): RateLimitStore
  close (): Promise<void>
}

export interface SqliteRateLimitOptions {
  /** Called with a store failure; the request it concerns is let through (fail open). */
  onError: (error: Error) => void
  /** Longest wait for the database before a request is let through (ms). */
  timeoutMs?: number
  /** After a failure, requests are let through without trying the database for this long (ms). */
  retryMs?: number
  now?: () => number
}

// One statement, so two workers can never both read the same count: a fixed window per
// key that starts at the first request and restarts once it has expired. $n requests of
// one key that arrived while the previous statement for it ran are counted at once.
const INCR = `INSERT INTO rate_limit (key, count, expires) VALUES ($key, $n, $now + $window)
  ON CONFLICT(key) DO UPDATE SET
    count = CASE WHEN expires <= $now THEN $n ELSE count + $n END,
    expires = CASE WHEN expires <= $now THEN $now + $window ELSE expires END
  RETURNING count, expires`
const CHECK_MS = 2000
const BUSY_TIMEOUT_MS = 5000 // as the cache store: a worker holding the write lock is waited for
const SWEEP_EVERY = 30 // checks: expired counts are deleted once a minute

interface Connection { db: sqlite3.Database, incr: sqlite3.Statement, inode: number }
interface Batch { timeWindow: number, callbacks: IncrCallback[] }

/**
 * A rate-limit store in its own table of the cache's SQLite file, so that every worker
 * (and every process using the file) counts against one limit. It has its own
 * connection (WAL, like the cache store's); per key, one statement at a time is in
 * flight, and the requests that arrive meanwhile are counted together by the next one,
 * so a flood from one client costs one statement per round trip.
 *
 * It fails open: a request with no count within `timeoutMs` is let through (it is still
 * counted when the statement runs); a database error lets the requests through, drops
 * the connection and tries again `retryMs` later; a file replaced under it (moved aside,
 * deleted) is reopened.
 */
export class SqliteRateLimitStore implements RateLimitStore {
  private connection: Promise<Connection> | undefined
  private retryAt = 0
  /** Requests waiting for a statement, per key; a key is here while its statement runs. */
  private readonly queued = new Map<string, Batch>()
  private readonly running = new Set<string>()
  private checks = 0
  private readonly timer: NodeJS.Timeout
  private readonly timeoutMs: number
  private readonly retryMs: number
  private readonly now: () => number

  constructor (private readonly path: string, private readonly options: SqliteRateLimitOptions) {
    this.timeoutMs = options.timeoutMs ?? 1000
    this.retryMs = options.retryMs ?? 2000
    this.now = options.now ?? Date.now
    this.timer = setInterval(() => { this.check() }, CHECK_MS).unref()
  }

  incr (key: string, callback: IncrCallback, timeWindow: number, _max?: number): void {
    if (this.now() < this.retryAt) return callback(new Error('rate-limit store unavailable'))
    let answered = false
    const timer = setTimeout(() => {
      answered = true
      const error = new Error(`rate-limit store: no count within ${this.timeoutMs} ms`)
      this.options.onError(error)
      callback(error)
    }, this.timeoutMs)
    const answer: IncrCallback = (error, result) => {
      if (answered) return
      answered = true
      clearTimeout(timer)
      callback(error, result)
    }
    const batch = this.queued.get(key)
    if (batch !== undefined) batch.callbacks.push(answer)
    else this.queued.set(key, { timeWindow, callbacks: [answer] })
    if (!this.running.has(key)) this.run(key)
  }

  /** Counts the queued requests of `key` in one statement, then the next batch, if any. */
  private run (key: string): void {
    const batch = this.queued.get(key)
    if (batch === undefined) return
    this.queued.delete(key)
    if (this.now() < this.retryAt) {
      for (const callback of batch.callbacks) callback(new Error('rate-limit store unavailable'))
      return
    }
    this.running.add(key)
    const n = batch.callbacks.length
    const now = this.now()
    const done = (error: Error | null, row?: { count: number, expires: number }): void => {
      this.running.delete(key)
      if (error !== null || row === undefined) {
        this.fail(error ?? new Error('rate-limit store: the upsert returned no row'))
        for (const callback of batch.callbacks) callback(error)
      } else {
        const ttl = Math.min(batch.timeWindow, Math.max(0, row.expires - this.now()))
        // This batch's requests are the last n counted, in arrival order.
        batch.callbacks.forEach((callback, i) => callback(null, { current: row.count - n + 1 + i, ttl }))
      }
      this.run(key)
    }
    this.open().then(({ incr }) => {
      // all(), not get(): a statement stepped only once keeps its write transaction open.
      incr.all({ $key: key, $n: n, $now: now, $window: batch.timeWindow }, (error: Error | null, rows?: Array<{ count: number, expires: number }>) => {
        done(error, rows?.[0])
      })
    }, (error: unknown) => done(error instanceof Error ? error : new Error(String(error))))
  }

  /** A route with its own limit counts under its own key prefix, in the same table. */
  child (routeOptions: { routeInfo?: { method?: string, url?: string } }): RateLimitStore {
    const prefix = `${routeOptions.routeInfo?.method ?? ''}${routeOptions.routeInfo?.url ?? ''}-`
    return {
      incr: (key, callback, timeWindow, max) => this.incr(prefix + key, callback, timeWindow, max),
      child: (options) => this.child(options),
      close: async () => {}
    }
  }

  async close (): Promise<void> {
    clearInterval(this.timer)
    const connection = this.connection
    this.connection = undefined
    await closeConnection(connection)
  }

  private open (): Promise<Connection> {
    this.connection ??= (async () => {
      mkdirSync(dirname(this.path), { recursive: true })
      const db = await new Promise<sqlite3.Database>((resolve, reject) => {
        const opened: sqlite3.Database = new sqlite3.Database(this.path, (error) => error === null ? resolve(opened) : reject(error))
      })
      try {
        await retryOnBusy(async () => {
          await exec(db, `PRAGMA busy_timeout=${BUSY_TIMEOUT_MS}`)
          await exec(db, 'PRAGMA journal_mode=WAL')
          await exec(db, 'PRAGMA synchronous=NORMAL') // counts need no fsync per request
          await exec(db, 'CREATE TABLE IF NOT EXISTS rate_limit (key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires INTEGER NOT NULL) WITHOUT ROWID')
        })
        const incr = await new Promise<sqlite3.Statement>((resolve, reject) => {
          const statement: sqlite3.Statement = db.prepare(INCR, (error: Error | null) => error === null ? resolve(statement) : reject(error))
        })
        return { db, incr, inode: statSync(this.path).ino }
      } catch (error) {
        db.close()
        throw error
      }
    })()
    return this.connection
  }

  private fail (error: Error): void {
    this.options.onError(error)
    this.retryAt = this.now() + this.retryMs
    this.drop()
  }

  private drop (): void {
    const connection = this.connection
    this.connection = undefined
    closeConnection(connection).catch(() => {})
  }

  /** Reopens a file that was replaced under the connection; deletes expired counts now and then. */
  private check (): void {
    const connection = this.connection
    if (connection === undefined) return
    const sweep = ++this.checks % SWEEP_EVERY === 0
    connection.then(({ db, inode }) => {
      let current: number | undefined
      try { current = statSync(this.path).ino } catch { current = undefined }
      if (current !== inode) {
        if (this.connection === connection) this.drop()
      } else if (sweep) {
        db.run('DELETE FROM rate_limit WHERE expires <= ?', [this.now()], () => {})
      }
    }, () => {})
  }
}

function exec (db: sqlite3.Database, sql: string): Promise<void> {
  return new Promise((resolve, reject) => db.exec(sql, (error) => error === null ? resolve() : reject(error)))
}

async function closeConnection (connection: Promise<Connection> | undefined): Promise<void> {
  if (connection === undefined) return
  const opened = await connection.catch(() => undefined)
  if (opened === undefined) return
  await new Promise<void>((resolve) => opened.incr.finalize(() => opened.db.close(() => resolve())))
}
