import { hostname } from 'node:os'
import type { Query } from './schema.ts'

/**
 * Takes the lease on ? for owner ? until ?, unless an unexpired lease (at time ?) of
 * another owner exists. Returns the row only when it was inserted or taken over.
 */
const ACQUIRE = `INSERT INTO leases (key, owner, expires_at) VALUES (?, ?, ?)
  ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
  WHERE leases.expires_at <= ? OR leases.owner = excluded.owner
  RETURNING owner`

function processAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Leases in the `leases` table, held by `owner` (host/pid/random, see KeyvCacheStore). */
export class SqliteLeases {
  constructor (private readonly query: Query, private readonly owner: string) {}

  async acquire (key: string, ttlMs: number): Promise<boolean> {
    const now = Date.now()
    const rows = await this.query(ACQUIRE, key, this.owner, now + ttlMs, now)
    if (rows[0]?.owner === this.owner) return true
    // A holder on this host whose process is gone will never release it: take over now
    // rather than when it expires.
    if (await this.dropDead(key)) {
      const retry = await this.query(ACQUIRE, key, this.owner, now + ttlMs, now)
      return retry[0]?.owner === this.owner
    }
    return false
  }

  /** Deletes the lease on `key` when its holder was a process of this host that no longer runs. */
  private async dropDead (key: string): Promise<boolean> {
    const rows = await this.query('SELECT owner FROM leases WHERE key = ?', key)
    const holder = String(rows[0]?.owner ?? '')
    const [host, pid] = holder.split('/')
    if (host !== hostname() || !/^\d+$/.test(pid ?? '') || processAlive(Number(pid))) return false
    await this.query('DELETE FROM leases WHERE key = ? AND owner = ?', key, holder)
    return true
  }

  async release (key: string): Promise<void> {
    await this.query('DELETE FROM leases WHERE key = ? AND owner = ?', key, this.owner)
  }

  async has (key: string): Promise<boolean> {
    const rows = await this.query('SELECT 1 AS held FROM leases WHERE key = ? AND expires_at > ?', key, Date.now())
    if (rows.length === 0) return false
    return !(await this.dropDead(key))
  }

  /** Deletes the leases expired at `now`, whoever held them. */
  async deleteExpired (now: number): Promise<void> {
    await this.query('DELETE FROM leases WHERE expires_at <= ?', now)
  }

  /** Releases every lease this owner holds (on close). */
  async releaseAll (): Promise<void> {
    await this.query('DELETE FROM leases WHERE owner = ?', this.owner)
  }
}
