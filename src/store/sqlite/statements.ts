import sqlite3 from 'sqlite3'
import type { Query } from './schema.ts'

type Row = Record<string, unknown>

/**
 * One sqlite3 connection whose statements are prepared once and reused. node-sqlite3's
 * `Database#all` (what @keyv/sqlite calls) prepares every statement anew: two thread-pool
 * round trips per call (prepare, then run) instead of one, and each round trip wakes a
 * pool thread, which dominated the CPU of a stored miss (issue #13, measured with perf).
 * Calls of one statement queue behind each other inside node-sqlite3; the connection
 * serialises statements anyway.
 */
export class StatementCache {
  private readonly statements = new Map<string, Promise<sqlite3.Statement>>()
  private closing = false

  private constructor (private readonly db: sqlite3.Database) {}

  /** Opens the file (creating it); rejects with SQLite's error when it cannot be opened. */
  static async open (path: string, busyTimeoutMs: number): Promise<StatementCache> {
    const db = await new Promise<sqlite3.Database>((resolve, reject) => {
      const opened: sqlite3.Database = new sqlite3.Database(path, (error) => { if (error === null) resolve(opened); else reject(error) })
    })
    db.configure('busyTimeout', busyTimeoutMs)
    return new StatementCache(db)
  }

  /** Runs `sql` with `params` on a cached prepared statement; the rows (none for a write without RETURNING). */
  readonly query: Query = async (sql, ...params) => {
    if (this.closing) throw new Error('the cache store connection is closed')
    let prepared = this.statements.get(sql)
    if (prepared === undefined) {
      prepared = this.prepare(sql)
      this.statements.set(sql, prepared)
    }
    let statement: sqlite3.Statement
    try {
      statement = await prepared
    } catch (error) {
      if (this.statements.get(sql) === prepared) this.statements.delete(sql)
      throw error
    }
    try {
      return await new Promise<Row[]>((resolve, reject) => {
        statement.all(params, (error: Error | null, rows: Row[]) => { if (error === null) resolve(rows); else reject(error) })
      })
    } catch (error) {
      // A statement that failed is not reset by SQLite: it would keep its read snapshot (every
      // later read stale, every write SQLITE_BUSY). It is finalized and prepared again next time.
      if (this.statements.get(sql) === prepared) this.statements.delete(sql)
      statement.finalize()
      throw error
    }
  }

  private async prepare (sql: string): Promise<sqlite3.Statement> {
    return await new Promise((resolve, reject) => {
      const statement: sqlite3.Statement = this.db.prepare(sql, (error) => { if (error === null) resolve(statement); else reject(error) })
    })
  }

  /** Finalizes the statements (SQLite refuses to close a connection with live ones), then closes. */
  async close (): Promise<void> {
    this.closing = true
    const prepared = [...this.statements.values()]
    this.statements.clear()
    for (const pending of prepared) {
      const statement = await pending.catch(() => undefined)
      if (statement !== undefined) await new Promise<void>((resolve) => statement.finalize(() => resolve()))
    }
    await new Promise<void>((resolve, reject) => this.db.close((error) => { if (error === null) resolve(); else reject(error) }))
  }
}
