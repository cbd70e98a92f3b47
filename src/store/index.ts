import type { CacheStore, StoreOptions } from './contract.ts'
import { resolveSettings } from './settings.ts'
import { openMemoryStore } from './memory.ts'
import { openSqliteStore } from './sqlite/index.ts'
import { openRedisStore } from './redis/index.ts'

export type { CacheStore, Coordination, EntryStore, SetOptions, StoreLogger, StoreOptions, StoreStats, StoreStatus, SweepResult } from './contract.ts'
export { StoreUnavailableError } from './contract.ts'
export { DEFAULT_MAX_BYTES } from './settings.ts'

/**
 * Opens the store named by a CACHE_STORE URI: `memory://` (private to this store) or
 * `memory://<name>` (shared by the stores opened with that name in this process, e.g. to
 * test two "processes"), or `sqlite://<path>` (shared by every process using the file), or
 * `redis[s]://[user:pass@]host[:port][/db]` (shared by every node using that Redis).
 * A new backend is one more line here and one more folder or file beside sqlite/.
 */
export async function openStore (uri: string, options: StoreOptions = {}): Promise<CacheStore> {
  const settings = resolveSettings(options)
  if (uri.startsWith('memory://')) return openMemoryStore(uri.slice('memory://'.length), settings)
  if (/^rediss?:\/\//.test(uri)) return await openRedisStore(uri, settings)
  return await openSqliteStore(uri.replace(/^sqlite:\/\//, ''), settings)
}
