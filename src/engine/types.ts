import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import type { CacheEntry, StoredHeaders } from '../cache/entry.ts'
import type { Freshness, FreshnessOptions } from '../cache/freshness.ts'
import type { Flight, FlightOutcome } from '../cache/flight.ts'
import type { CacheOutcome } from '../cache/outcome.ts'

/** A decoded entry with what the reuse decisions need, computed once. */
export interface Cached {
  entry: CacheEntry
  fresh: Freshness
  /** The headers every answer from this entry carries (stored headers + Via), built once. */
  headers: StoredHeaders
  /** RFC 9111 §3.5: whether it may answer a request with Authorization (from `fresh.cc`). */
  allowsAuthorized: boolean
}

/** What waiters of a flight learn when the leader's response headers arrive. */
export interface SharedHead {
  status: number
  headers: StoredHeaders
  vary: string[] | undefined
  storeKey: string
  epoch: number
}

export type Outcome = FlightOutcome<SharedHead, Cached>

/** Per-request cache state, created when a proxied request arrives. */
export interface CacheState {
  /** Key of the URL (holds the entry, or the Vary index of its variants). */
  key: string
  /** Key of the variant this request selects (the URL key when the response does not vary). */
  storeKey: string
  requestTime: number
  /** A stored response that needs revalidation; it may also stand in for an origin error. */
  stale?: Cached
  /** The URL has variants, but none for this request. */
  varyMiss?: boolean
  /** The stamp of the URL's Vary index, when it has one (see src/cache/vary.ts). */
  epoch?: number
  /** The flight this request leads, and whether it holds the cross-process lease. */
  flight?: Flight<SharedHead, Cached>
  lease?: boolean
  /** The URL is in hit-for-pass: straight to the origin, no flight, no lease. */
  pass?: boolean
}

/** A request as the engine sees it: plain values, no framework. */
export interface EngineRequest {
  method: string
  headers: IncomingHttpHeaders
  upstream: URL
  state: CacheState
}

export interface UpstreamResponse {
  statusCode: number
  headers: IncomingHttpHeaders
  stream: Readable
}

/**
 * What to do to the client's reply, in this order: forget every header already set (`clear`),
 * remove the `remove` ones, set `status`, `base` and `headers`, send `error`, else `body`.
 */
export interface Answer {
  outcome: CacheOutcome
  clear?: boolean
  remove?: string[]
  status?: number
  /**
   * Headers set before `headers` (a stored response's own, shared by every answer from it).
   * Kept apart rather than spread into one object: merging them on every hit cost ~5 µs
   * (the merged object goes to dictionary mode and Fastify's reply.headers() walks it slowly).
   */
  base?: StoredHeaders
  headers?: StoredHeaders
  body?: Buffer | Readable
  error?: Error
}

/** The part of a pino logger the engine uses. */
export interface EngineLogger {
  warn (details: object, message: string): void
  error (details: object, message: string): void
}

/** The configuration the engine reads (a subset of config/index.ts). */
export interface EngineSettings {
  freshness: FreshnessOptions
  cacheControlField: string
  cacheSetCookie: boolean
  maxEntryBytes: number
  memoryCacheBytes: number
  hitForPassSeconds: number
  upstreamTimeoutMs: number
}

export const ERROR_STATUSES = new Set([500, 502, 503, 504])
export const ALONE = { kind: 'alone' } as const
// RFC 9211 §2.6: a request answered by another one's forward is a collapsed miss (X-Cache says HIT).
export const COALESCED = (): CacheOutcome => ({ kind: 'hit', fwd: 'miss', collapsed: true })
/** Request headers that make a conditional or partial request; taken off a request that will be stored. */
export const CONDITIONAL_HEADERS = ['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range', 'range']
/** Longest a client's response waits for the store to confirm a write or a delete. */
export const WRITE_HOLD_MS = 2000

/** The `upstreamCode` an upstream error carries (src/errors.ts), or 'error'. */
export function errorDetail (error: Error): string {
  return (error as { upstreamCode?: string }).upstreamCode ?? 'error'
}

/** Drops an upstream body nobody will read (undici's destroy emits an error: never uncaught). */
export function discard (stream: Readable): void {
  stream.on('error', () => {})
  stream.destroy()
}
