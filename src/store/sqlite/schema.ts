/** Epoch ms inside SQLite (same clock as Date.now()), for rows the triggers create. */
const SQL_NOW_MS = "((julianday('now') - 2440587.5) * 86400000.0)"

/** The table @keyv/sqlite keeps the values in: `entries(key, value)`. */
export const ENTRIES_TABLE = 'entries'

/**
 * Schema next to @keyv/sqlite's `entries(key, value)`. Triggers on `entries` keep one
 * `entry_meta` row per entry in the same statement that writes or deletes the entry, and
 * triggers on `entry_meta` keep the totals in `store_totals`; so the sizes and totals can
 * never drift from the values, whichever process (or crash) interleaves.
 */
const SCHEMA = [
  // @keyv/sqlite's own table, as it creates it (its connection is not this one: connection.ts).
  `CREATE TABLE IF NOT EXISTS ${ENTRIES_TABLE}(key VARCHAR(8192) PRIMARY KEY, value TEXT )`,
  'CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, writer TEXT NOT NULL, at INTEGER NOT NULL)',
  'CREATE TABLE IF NOT EXISTS entry_meta (key TEXT PRIMARY KEY, size INTEGER NOT NULL, expires_at INTEGER, accessed_at REAL NOT NULL)',
  'CREATE INDEX IF NOT EXISTS entry_meta_accessed ON entry_meta (accessed_at)',
  'CREATE INDEX IF NOT EXISTS entry_meta_expires ON entry_meta (expires_at) WHERE expires_at IS NOT NULL',
  'CREATE TABLE IF NOT EXISTS store_totals (id INTEGER PRIMARY KEY CHECK (id = 0), entries INTEGER NOT NULL, bytes INTEGER NOT NULL)',
  'INSERT OR IGNORE INTO store_totals (id, entries, bytes) VALUES (0, 0, 0)',
  'CREATE TABLE IF NOT EXISTS leases (key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at INTEGER NOT NULL)',
  ...['INSERT', 'UPDATE OF value'].map((event) => `CREATE TRIGGER IF NOT EXISTS entries_meta_${event === 'INSERT' ? 'insert' : 'update'} AFTER ${event} ON entries BEGIN
    INSERT INTO entry_meta (key, size, expires_at, accessed_at) VALUES (new.key, octet_length(new.value), NULL, ${SQL_NOW_MS})
    ON CONFLICT (key) DO UPDATE SET size = excluded.size, expires_at = NULL, accessed_at = excluded.accessed_at;
  END`),
  'CREATE TRIGGER IF NOT EXISTS entries_meta_delete AFTER DELETE ON entries BEGIN DELETE FROM entry_meta WHERE key = old.key; END',
  'CREATE TRIGGER IF NOT EXISTS entry_meta_totals_insert AFTER INSERT ON entry_meta BEGIN UPDATE store_totals SET entries = entries + 1, bytes = bytes + new.size WHERE id = 0; END',
  'CREATE TRIGGER IF NOT EXISTS entry_meta_totals_update AFTER UPDATE OF size ON entry_meta BEGIN UPDATE store_totals SET bytes = bytes - old.size + new.size WHERE id = 0; END',
  'CREATE TRIGGER IF NOT EXISTS entry_meta_totals_delete AFTER DELETE ON entry_meta BEGIN UPDATE store_totals SET entries = entries - 1, bytes = bytes - old.size WHERE id = 0; END',
  // One INSERT here writes an entry, its expiry and access time, and its change-log row (when
  // `writer` is set), and releases the lease `lease` of `lease_owner` (when set), in one
  // statement: one transaction and one thread-pool trip instead of four. (`entry_writes`, the
  // same without the lease, is what the previous version wrote through: files keep it while
  // its workers may still run during a reload.)
  'CREATE VIEW IF NOT EXISTS entry_puts AS SELECT NULL AS key, NULL AS value, NULL AS expires_at, NULL AS accessed_at, NULL AS writer, NULL AS at, NULL AS lease, NULL AS lease_owner',
  `CREATE TRIGGER IF NOT EXISTS entry_puts_insert INSTEAD OF INSERT ON entry_puts BEGIN
    INSERT INTO ${ENTRIES_TABLE} (key, value) VALUES (new.key, new.value) ON CONFLICT (key) DO UPDATE SET value = excluded.value;
    UPDATE entry_meta SET expires_at = new.expires_at, accessed_at = new.accessed_at WHERE key = new.key;
    INSERT INTO changes (key, writer, at) SELECT new.key, new.writer, new.at WHERE new.writer IS NOT NULL;
    DELETE FROM leases WHERE new.lease IS NOT NULL AND key = new.lease AND owner = new.lease_owner;
  END`
]

/** Writes (key, value, expires_at, accessed_at, writer or null, at, lease key or null, lease owner): see entry_puts above. */
export const WRITE_ENTRY = 'INSERT INTO entry_puts (key, value, expires_at, accessed_at, writer, at, lease, lease_owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'

/**
 * Repairs a file written before the triggers existed (or by hand): every entry gets its
 * meta row, meta rows without an entry go, and the totals are recounted. Each statement
 * is atomic, so running this while other processes write is safe.
 */
const REPAIR = [
  `INSERT INTO entry_meta (key, size, expires_at, accessed_at)
    SELECT key, octet_length(value), NULL, ${SQL_NOW_MS} FROM entries
    WHERE NOT EXISTS (SELECT 1 FROM entry_meta m WHERE m.key = entries.key)`,
  'DELETE FROM entry_meta WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.key = entry_meta.key)',
  `UPDATE store_totals SET entries = (SELECT COUNT(*) FROM entry_meta),
    bytes = (SELECT COALESCE(SUM(size), 0) FROM entry_meta) WHERE id = 0`
]

/** SQLite's page cache per connection, KiB. */
const CACHE_KIB = 16 * 1024

export type Query = (sql: string, ...params: unknown[]) => Promise<Array<Record<string, unknown>>>

/** Sets the connection's mode and creates (or repairs) the schema; rejects if the file cannot be used. */
export async function prepareSchema (query: Query): Promise<void> {
  // WAL lets several worker processes read while one writes; NORMAL sync is safe with WAL.
  await query('PRAGMA journal_mode=WAL')
  await query('PRAGMA synchronous=NORMAL')
  // A bigger page cache than SQLite's 2 MB default, per connection. No mmap_size: a store file
  // truncated by another program while mapped kills the process with SIGBUS (SQLite's docs).
  await query(`PRAGMA cache_size=-${CACHE_KIB}`)
  for (const sql of SCHEMA) await query(sql)
  for (const sql of REPAIR) await query(sql)
}
