import type { IncomingHttpHeaders } from 'node:http'
import type { Dispatcher } from 'undici'
import { HitForPass } from '../cache/hit-for-pass.ts'
import { targetList } from '../cache/targeted-cache-control.ts'
import type { CacheStore } from '../store/index.ts'
import type { MemoryTier } from '../store/memory-tier.ts'
import type { Asking } from './answer.ts'
import { Coalescing } from './coalescing.ts'
import { Lookup } from './lookup.ts'
import { Refresher } from './refresh.ts'
import { RequestPath, upstreamConditions } from './request-path.ts'
import { ResponsePath } from './response-path.ts'
import { StoreCalls } from './store-calls.ts'
import type { Answer, Cached, CacheState, EngineLogger, EngineRequest, EngineSettings, UpstreamResponse } from './types.ts'
import type { UpstreamHeaders } from './upstream-headers.ts'
import { Writer } from './writer.ts'

export type { Answer, Cached, CacheState, EngineLogger, EngineRequest, EngineSettings, UpstreamResponse } from './types.ts'
export { upstreamHeaders, type UpstreamHeaders } from './upstream-headers.ts'

/** What the engine needs from outside: the store, a way upstream for background refreshes, a logger. */
export interface EngineDeps {
  store: CacheStore
  upstream: Pick<Dispatcher, 'request'>
  log: EngineLogger
}

/**
 * The cache engine (RFC 9111 runtime) without any framework: a request's path reads
 * `start` → `fast` | `lookupOrJoin` → (upstream) → `onResponse` | `onError`, each returning the
 * Answer to give the client. plugins/cache.ts is the Fastify glue.
 */
export class Engine {
  readonly store: CacheStore
  readonly memory: MemoryTier<Cached>
  readonly lookup: Lookup
  readonly writer: Writer
  readonly coalescing: Coalescing
  readonly refresher: Refresher
  readonly passes: HitForPass
  private readonly calls: StoreCalls
  private readonly before: RequestPath
  private readonly after: ResponsePath

  constructor (settings: EngineSettings, deps: EngineDeps) {
    const { store, log } = deps
    const freshness = settings.freshness
    const targets = targetList(settings.cacheControlField)
    // A lease outlives any upstream request it covers; a dead holder's lease expires with it.
    const leaseMs = Math.min(settings.upstreamTimeoutMs + 1000, 60_000)
    this.store = store
    this.calls = new StoreCalls(log)
    this.lookup = new Lookup(store, { freshness, targets, cacheControlField: settings.cacheControlField, memoryCacheBytes: settings.memoryCacheBytes }, this.calls, log)
    this.memory = this.lookup.memory
    this.writer = new Writer(store, this.lookup, this.calls, { freshness, cacheSetCookie: settings.cacheSetCookie, maxEntryBytes: settings.maxEntryBytes })
    this.coalescing = new Coalescing(store, this.lookup, this.calls, freshness, leaseMs)
    this.refresher = new Refresher(store, this.writer, deps.upstream, { targets, maxEntryBytes: settings.maxEntryBytes, leaseMs }, log)
    this.passes = new HitForPass(settings.hitForPassSeconds * 1000)
    this.before = new RequestPath({
      lookup: this.lookup,
      coalescing: this.coalescing,
      passes: this.passes,
      refresher: this.refresher,
      freshness,
      cacheControlField: settings.cacheControlField,
      changedElsewhere: () => store.changedElsewhere(),
      syncChanges: () => store.syncChanges()
    })
    this.after = new ResponsePath({ writer: this.writer, coalescing: this.coalescing, passes: this.passes, freshness, targets, maxEntryBytes: settings.maxEntryBytes })
  }

  /** The cache state of a request for `upstream` arriving now. */
  start (key: string): CacheState {
    return { key, storeKey: key, requestTime: Date.now() }
  }

  /** A fresh hit from this worker's memory tier, without a promise (GET and HEAD only). */
  fast (request: EngineRequest): Answer | undefined {
    return this.before.fast(request)
  }

  /** True when the URL is in hit-for-pass: straight upstream, with nothing to look up (GET and HEAD, after `fast`). */
  passing (request: EngineRequest): boolean {
    return this.before.passing(request)
  }

  /** An answer from the store or another request's fetch, or undefined: the request goes upstream. */
  lookupOrJoin (request: EngineRequest, onClientGone: (listener: () => void) => void): Promise<Answer | undefined> {
    return this.before.lookupOrJoin(request, onClientGone)
  }

  /** The conditional headers of the request going upstream (ours when revalidating, none when fetching to store). */
  upstreamConditions (method: string, state: CacheState | null, headers: IncomingHttpHeaders): IncomingHttpHeaders {
    return upstreamConditions(method, state, headers)
  }

  onResponse (request: EngineRequest, res: UpstreamResponse, headers: UpstreamHeaders): Answer | Promise<Answer> {
    return this.after.onResponse(request, res, headers)
  }

  onError (request: Asking, state: CacheState | null, error: Error): Answer {
    return this.after.onError(request, state, error)
  }

  /** Deletes an entry everywhere; resolves once every process will miss it (never rejects). */
  /** How many store calls failed in this process (metrics). */
  storeErrors (): number {
    return this.calls.errors
  }

  invalidate (key: string): Promise<void> {
    return this.writer.invalidate(key)
  }

  /** Waits for the store writes under way, then closes the store. */
  async close (): Promise<void> {
    await this.calls.settled()
    this.memory.clear()
    await this.store.close()
  }
}

export function createEngine (settings: EngineSettings, deps: EngineDeps): Engine {
  return new Engine(settings, deps)
}
