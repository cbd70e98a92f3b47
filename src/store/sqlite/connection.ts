import { mkdirSync, renameSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import Keyv from 'keyv'
import KeyvSqlite from '@keyv/sqlite'
import { RAW_VALUES } from '../keyv-store.ts'
import { noop } from '../settings.ts'
import type { StoreLogger } from '../contract.ts'
import { ENTRIES_TABLE, prepareSchema, type Query } from './schema.ts'
import { StatementCache } from './statements.ts'

/** One open SQLite connection, replaced as a whole when the file has to be reopened. */
export interface Connection {
  /** The entries front (keyv's public API). */
  keyv: Keyv
  /** Runs other SQL on the same connection (prepared statements, reused). */
  query: Query
  /** The file's inode when opened: a corrupt file is moved aside only if it is still this one. */
  ino: number | undefined
  /** Closes keyv and the connection; never rejects. */
  close: () => Promise<void>
}

/**
 * @keyv/sqlite with its SQL run through our connection's prepared statements (its public
 * `query` member, replaced): it prepares each statement anew (see statements.ts). Its own
 * connection is opened on `:memory:` and stays unused.
 */
class PreparedKeyvSqlite extends KeyvSqlite {
  constructor (query: Query) {
    super({ uri: 'sqlite://:memory:', table: ENTRIES_TABLE, keySize: 8192 })
    this.query = query
  }
}

/**
 * SQLite result codes (node-sqlite3 puts them in `code`) meaning the file is damaged: it
 * is moved aside to `<file>.corrupt-<epoch ms>` (with its -wal and -shm) and recreated.
 */
export const CORRUPT_CODES = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB'])
const BUSY_CODES = new Set(['SQLITE_BUSY', 'SQLITE_LOCKED'])
const BUSY_RETRIES = 8
/**
 * Codes meaning this connection cannot use the file (any more): the connection is closed
 * and the file opened again, at once and then every reopenIntervalMs. SQLITE_READONLY also
 * covers a file renamed or deleted under an open connection (another process moved a
 * corrupt file aside). SQLITE_FULL is not among them: that write fails, reads go on, and
 * a later write succeeds on the same connection once there is room.
 */
export const REOPEN_CODES = new Set(['SQLITE_READONLY', 'SQLITE_CANTOPEN', 'SQLITE_IOERR'])

export function errorCode (error: unknown): string {
  const code = (error as { code?: unknown } | null | undefined)?.code
  return typeof code === 'string' ? code : ''
}

export function inodeOf (path: string): number | undefined {
  try {
    return statSync(path).ino
  } catch {
    return undefined
  }
}

/**
 * Opens a connection, prepares the schema, then runs `prepare` on it; rejects (with the
 * connection closed) if the file cannot be used. `onFailure` runs before that close: closing
 * deletes the -wal and -shm, which a corrupt file is moved aside with.
 */
export async function openConnection (path: string, ino: number | undefined, prepare: (query: Query) => Promise<void>, onFailure?: (error: unknown) => void): Promise<Connection> {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
  const db = await StatementCache.open(path, 5000)
  const { query } = db
  const keyv = new Keyv({ store: new PreparedKeyvSqlite(query), ...RAW_VALUES })
  keyv.on('error', noop) // errors are thrown to the caller (throwOnErrors)
  const close = async (): Promise<void> => {
    await keyv.disconnect().catch(noop)
    await db.close().catch(noop)
  }
  try {
    await retryOnBusy(async () => {
      await prepareSchema(query)
      await prepare(query)
    })
  } catch (error) {
    onFailure?.(error)
    await close()
    throw error
  }
  return { keyv, query, ino: ino ?? inodeOf(path), close }
}

/**
 * Runs idempotent schema steps, again after SQLITE_BUSY: several processes opening a new file
 * at once can meet SQLite's lock-upgrade deadlock, which answers BUSY at once instead of
 * waiting (busy_timeout does not apply to it). Used by every SQLite file of the project.
 */
export async function retryOnBusy (steps: () => Promise<void>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await steps()
      return
    } catch (error) {
      if (!BUSY_CODES.has(errorCode(error)) || attempt >= BUSY_RETRIES) throw error
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 80))
    }
  }
}

/**
 * Moves the corrupt file and its -wal and -shm aside, unless it is no longer the file
 * opened as `ino` (another process already did). False if the file stays in place.
 */
export function moveAside (path: string, ino: number | undefined, log: StoreLogger | undefined): boolean {
  if (path === ':memory:') return false
  const current = inodeOf(path)
  if (current === undefined || (ino !== undefined && current !== ino)) return true
  const aside = `${path}.corrupt-${Date.now()}`
  try {
    renameSync(path, aside)
  } catch (error) {
    log?.warn({ err: error, path }, 'cannot move the corrupt cache store aside')
    return false
  }
  for (const suffix of ['-wal', '-shm']) {
    try {
      renameSync(path + suffix, aside + suffix)
    } catch {
      // Not there: nothing to move.
    }
  }
  log?.warn({ path, movedTo: aside }, 'cache store file corrupt: moved aside, starting an empty one')
  return true
}
