import type Keyv from 'keyv'
import { StoreUnavailableError } from '../contract.ts'
import { noop, type Settings } from '../settings.ts'
import { CORRUPT_CODES, REOPEN_CODES, errorCode, inodeOf, moveAside, openConnection, type Connection } from './connection.ts'
import type { Query } from './schema.ts'

/**
 * Keeps a usable connection to one SQLite file. A file that cannot be used (its directory
 * missing, unreadable, read-only, corrupt, I/O errors) makes every call reject with
 * StoreUnavailableError while the file is tried again in the background; a corrupt file is
 * moved aside and recreated; a file deleted or replaced under the open connection is
 * opened again. Every call goes through `query` or `entries`, which see its errors.
 */
export class RecoveringConnection {
  /** The usable connection; undefined while the file cannot be used, and after close. */
  private conn: Connection | undefined
  private closed = false
  /** Why the file cannot be used: the error of the last open attempt or failed call. */
  private lastError: unknown = new Error('not opened yet')
  /** True from an outage being logged until the recovery is. */
  private down = false
  /** Closing a broken connection, moving a corrupt file aside, open attempts: one at a time. */
  private recovery: Promise<void> = Promise.resolve()
  private reopenTimer: NodeJS.Timeout | undefined
  /** Looks for the file having been deleted or replaced under the open connection. */
  private checkTimer: NodeJS.Timeout | undefined

  /** `prepare` runs on every connection opened, before it is used. */
  constructor (private readonly path: string, private readonly settings: Settings, private readonly prepare: (query: Query) => Promise<void>) {}

  /** Opens the file, or starts retrying in the background if it cannot be used; never throws. */
  async start (): Promise<void> {
    this.recover(undefined, false)
    await this.recovery
    if (this.path === ':memory:') return
    this.checkTimer = setInterval(() => this.checkFile(), this.settings.reopenIntervalMs)
    this.checkTimer.unref()
  }

  private connection (): Connection {
    if (this.conn !== undefined) return this.conn
    if (this.closed) throw new Error('the cache store is closed')
    throw new StoreUnavailableError(this.path, this.lastError)
  }

  /** Runs SQL on the current connection. */
  query (sql: string, ...params: unknown[]): Promise<Array<Record<string, unknown>>> {
    return this.run((conn) => conn.query(sql, ...params))
  }

  /** Runs a keyv call on the current connection. */
  entries<T> (call: (keyv: Keyv) => Promise<T>): Promise<T> {
    return this.run((conn) => call(conn.keyv))
  }

  /** Every call goes through here: an error that means the file is unusable starts a recovery. */
  private async run<T> (call: (conn: Connection) => Promise<T>): Promise<T> {
    const conn = this.connection()
    try {
      return await call(conn)
    } catch (error) {
      this.failed(conn, error)
      throw error
    }
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
        fresh = await openConnection(this.path, inodeOf(this.path), this.prepare)
      } catch (error) {
        if (this.conn === old) this.failed(old, error, true)
        return
      }
      if (this.conn !== old || this.closed) {
        await fresh.close()
        return
      }
      this.conn = fresh
      await old.close()
      this.settings.log?.info({ path: this.path }, 'cache store file deleted or replaced: reopened it')
    }).catch(noop)
  }

  /** Queues: close `broken` (if any), move a corrupt file aside, try to open the file. */
  private recover (broken: Connection | undefined, corrupt: boolean): void {
    this.recovery = this.recovery.then(async () => {
      if (broken !== undefined) await broken.close()
      if (corrupt && !this.closed) moveAside(this.path, broken?.ino, this.settings.log)
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
      let movedAside = false
      try {
        conn = await openConnection(this.path, ino, this.prepare, (error) => {
          if (CORRUPT_CODES.has(errorCode(error)) && !this.closed) movedAside = moveAside(this.path, ino, this.settings.log)
        })
      } catch (error) {
        failure = error
        if (!movedAside) break
      }
    }
    if (this.closed) {
      await conn?.close()
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

  /** A call failed: if the error means the file is unusable (or `always`), drop the connection and recover. */
  private failed (conn: Connection, error: unknown, always = false): void {
    const code = errorCode(error)
    const corrupt = CORRUPT_CODES.has(code)
    if ((!always && !corrupt && !REOPEN_CODES.has(code)) || conn !== this.conn || this.closed) return
    this.conn = undefined
    this.markDown(error)
    this.recover(conn, corrupt)
  }

  /** From now on nothing is reopened or recovered; calls go on using the open connection. */
  stop (): void {
    this.closed = true
    if (this.reopenTimer !== undefined) clearTimeout(this.reopenTimer)
    if (this.checkTimer !== undefined) clearInterval(this.checkTimer)
  }

  /** Waits for a recovery under way, runs `finish` (its last calls), then closes the connection. */
  async close (finish: () => Promise<void>): Promise<void> {
    this.stop()
    await this.recovery
    await finish().catch(noop)
    const conn = this.conn
    this.conn = undefined
    await conn?.close()
  }
}
