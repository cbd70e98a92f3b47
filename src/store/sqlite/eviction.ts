import type { SweepResult } from '../contract.ts'
import type { Query } from './schema.ts'

/** Rows deleted per statement when sweeping, so that no write transaction runs long. */
const BATCH = 100

/** Deletes up to ? entries past their expiry (?). The trigger deletes their meta. */
const DELETE_EXPIRED = `DELETE FROM entries WHERE key IN (
  SELECT key FROM entry_meta WHERE expires_at <= ? ORDER BY expires_at LIMIT ?
) RETURNING 1 AS gone`

/**
 * Deletes the least recently used entries (among the oldest ? rows) whose bytes are needed
 * to bring the total down to ? (maxBytes). One statement: the total and the order are read
 * under the write lock, so two processes sweeping at once do not both evict the excess.
 */
const EVICT_LRU = `DELETE FROM entries WHERE key IN (
  SELECT key FROM (
    SELECT key, SUM(size) OVER (ORDER BY accessed_at, rowid ROWS UNBOUNDED PRECEDING) - size AS before
    FROM (SELECT rowid, key, size, accessed_at FROM entry_meta ORDER BY accessed_at, rowid LIMIT ?)
  ) WHERE before < (SELECT bytes FROM store_totals WHERE id = 0) - ?
) RETURNING 1 AS gone`

/** Runs `statement` in batches until a batch deletes fewer than BATCH rows; the total deleted. */
async function inBatches (query: Query, statement: string, ...params: unknown[]): Promise<number> {
  let total = 0
  for (;;) {
    const gone = (await query(statement, ...params)).length
    total += gone
    if (gone < BATCH) return total
  }
}

/** Deletes the entries expired at `now`, then the least recently used down to `maxBytes`. */
export async function evictEntries (query: Query, now: number, maxBytes: number): Promise<SweepResult> {
  const expired = await inBatches(query, DELETE_EXPIRED, now, BATCH)
  const evicted = await inBatches(query, EVICT_LRU, BATCH, maxBytes)
  return { expired, evicted }
}

export async function entryTotals (query: Query): Promise<{ entries: number, bytes: number }> {
  const rows = await query('SELECT entries, bytes FROM store_totals WHERE id = 0')
  return { entries: Number(rows[0]?.entries ?? 0), bytes: Number(rows[0]?.bytes ?? 0) }
}
