import type { IncomingHttpHeaders } from 'node:http'
import { parseCacheControl, seconds, type Directives } from './cache-control.ts'
import type { StoredHeaders } from './entry.ts'
import { HEURISTIC_STATUSES } from './cache-policy.ts'
import { parseHttpDate } from '../http/http-date.ts'

/**
 * Freshness and reuse decisions for a stored response (RFC 9111 §4); storability is in
 * cache-policy.ts. Every header read here was normalised by src/http/response-headers.ts.
 */
export interface FreshnessOptions {
  heuristicMaxSeconds: number
  staleWhileRevalidateSeconds: number
  staleIfErrorSeconds: number
  /** How long past staleness an entry may answer when the origin cannot be reached at all (RFC 9111 §4.2.4). */
  staleOnErrorSeconds: number
}

function header (headers: StoredHeaders, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}

export function responseDirectives (headers: StoredHeaders): Directives {
  return parseCacheControl(headers['cache-control'])
}

/** Request directives; `Pragma: no-cache` counts as `no-cache` when no Cache-Control is sent (RFC 9111 §5.4). */
export function requestDirectives (headers: IncomingHttpHeaders): Directives {
  if (headers['cache-control'] === undefined) {
    return /(^|,)\s*no-cache\s*(,|$)/i.test(headers.pragma ?? '') ? { 'no-cache': true } : {}
  }
  return parseCacheControl(headers['cache-control'])
}

/** Freshness lifetime in seconds (RFC 9111 §4.2.1): s-maxage, then max-age, then Expires, then a heuristic. */
export function freshnessLifetime (status: number, headers: StoredHeaders, dateMs: number, options: FreshnessOptions): number {
  const cc = responseDirectives(headers)
  const sMaxAge = seconds(cc, 's-maxage')
  if (sMaxAge !== undefined) return sMaxAge
  const maxAge = seconds(cc, 'max-age')
  if (maxAge !== undefined) return maxAge
  if ('max-age' in cc || 's-maxage' in cc) return 0 // present but invalid: stale
  const expires = header(headers, 'expires')
  if (expires !== undefined) {
    const at = parseHttpDate(expires)
    // RFC 9111 §5.3: an invalid Expires (e.g. "0") means already expired.
    return at === undefined ? 0 : Math.max(0, (at - dateMs) / 1000)
  }
  const lastModified = header(headers, 'last-modified')
  // RFC 9111 §4.2.2: for heuristically cacheable statuses, and for any status marked public.
  if (lastModified !== undefined && (HEURISTIC_STATUSES.has(status) || 'public' in cc) && !('no-cache' in cc)) {
    const modified = parseHttpDate(lastModified)
    if (modified !== undefined && dateMs > modified) {
      return Math.min(((dateMs - modified) / 1000) * 0.1, options.heuristicMaxSeconds)
    }
  }
  return 0
}

export type Reuse =
  | 'fresh' // serve from cache
  | 'stale' // serve from cache although stale: the client allows it (max-stale)
  | 'stale-while-revalidate' // serve the stale entry now, refresh it in the background
  | 'revalidate' // ask the origin first (conditionally when the entry has validators)

/** What the reuse decisions need of a stored response, computed once per entry. */
export interface Freshness {
  /** Response Cache-Control directives. */
  cc: Directives
  /** Freshness lifetime, seconds. */
  lifetime: number
  /** corrected_initial_age of RFC 9111 §4.2.3, seconds. */
  initialAge: number
  /** When the response was received, epoch ms. */
  responseTime: number
}

export interface Timing {
  /** When the request was sent upstream, epoch ms. */
  requestTime: number
  /** When the response headers arrived, epoch ms. */
  responseTime: number
}

export function freshness (status: number, headers: StoredHeaders, timing: Timing, options: FreshnessOptions): Freshness {
  // RFC 9111 §4.2.3: current age from Age, Date and the time the response took.
  const dateMs = parseHttpDate(header(headers, 'date')) ?? timing.responseTime
  // RFC 9111 §5.1: Age is delta-seconds; anything else is ignored. A list (`7200, 0`) is
  // invalid; like several lines (response-headers.ts keeps the first), its first member counts.
  const ageText = header(headers, 'age')?.split(',')[0].trim() ?? ''
  const ageValue = /^\d+$/.test(ageText) ? Number(ageText) : 0
  const apparentAge = Math.max(0, (timing.responseTime - dateMs) / 1000)
  const correctedAge = (Number.isFinite(ageValue) && ageValue > 0 ? ageValue : 0) + (timing.responseTime - timing.requestTime) / 1000
  return {
    cc: responseDirectives(headers),
    lifetime: freshnessLifetime(status, headers, dateMs, options),
    initialAge: Math.max(apparentAge, correctedAge),
    responseTime: timing.responseTime
  }
}

/** current_age (RFC 9111 §4.2.3), seconds. */
export function currentAge (f: Freshness, now = Date.now()): number {
  return f.initialAge + Math.max(0, now - f.responseTime) / 1000
}

/**
 * Whether a stale response may be served without revalidation (RFC 9111 §4.2.4): never with
 * no-cache, must-revalidate or proxy-revalidate; s-maxage carries proxy-revalidate semantics
 * (§5.2.2.10) unless the origin itself granted the stale use with a stale-* directive.
 */
function mayServeStale (cc: Directives, grant: 'stale-while-revalidate' | 'stale-if-error' | undefined): boolean {
  if ('must-revalidate' in cc || 'proxy-revalidate' in cc || 'no-cache' in cc) return false
  return !('s-maxage' in cc) || (grant !== undefined && grant in cc)
}

/** How a stored response may be reused for a request (RFC 9111 §4.2, §5.2.1). */
export function evaluateReuse (f: Freshness, requestHeaders: IncomingHttpHeaders, options: FreshnessOptions, now = Date.now()): Reuse {
  const age = currentAge(f, now)
  // RFC 9111 §5.2.2.4: unqualified no-cache always needs validation.
  if (f.cc['no-cache'] === true) return 'revalidate'
  const plain = requestHeaders['cache-control'] === undefined && requestHeaders.pragma === undefined
  const req = plain ? {} : requestDirectives(requestHeaders)
  if ('no-cache' in req) return 'revalidate'
  const reqMaxAge = seconds(req, 'max-age')
  if (reqMaxAge !== undefined && age > reqMaxAge) return 'revalidate'
  const minFresh = seconds(req, 'min-fresh')
  if (minFresh !== undefined && f.lifetime - age < minFresh) return 'revalidate'
  if (age < f.lifetime) return 'fresh'
  if ('max-stale' in req && mayServeStale(f.cc, undefined)) {
    const maxStale = seconds(req, 'max-stale')
    if (req['max-stale'] === true || (maxStale !== undefined && age - f.lifetime <= maxStale)) return 'stale'
  }
  const swr = seconds(f.cc, 'stale-while-revalidate') ?? options.staleWhileRevalidateSeconds
  if (age - f.lifetime < swr && mayServeStale(f.cc, 'stale-while-revalidate')) return 'stale-while-revalidate'
  return 'revalidate'
}

/** Whether a stale response may stand in for an origin error (RFC 5861 §4). */
export function staleIfErrorAllowed (f: Freshness, requestHeaders: IncomingHttpHeaders, options: FreshnessOptions, now = Date.now()): boolean {
  if (!mayServeStale(f.cc, 'stale-if-error')) return false
  const window = Math.max(
    seconds(f.cc, 'stale-if-error') ?? options.staleIfErrorSeconds,
    seconds(requestDirectives(requestHeaders), 'stale-if-error') ?? 0
  )
  return currentAge(f, now) - f.lifetime < window
}

/**
 * Whether a stale response may answer when the origin could not be reached at all (refused,
 * reset, timed out): RFC 9111 §4.2.4 allows it to a disconnected cache unless the response
 * forbids it; bounded by the larger of stale-if-error and STALE_ON_ERROR_SECONDS.
 */
export function staleOnErrorAllowed (f: Freshness, requestHeaders: IncomingHttpHeaders, options: FreshnessOptions, now = Date.now()): boolean {
  if (staleIfErrorAllowed(f, requestHeaders, options, now)) return true
  if (!mayServeStale(f.cc, undefined)) return false
  return currentAge(f, now) - f.lifetime < options.staleOnErrorSeconds
}

/** Seconds of freshness left (never negative). */
export function remainingSeconds (f: Freshness, now = Date.now()): number {
  return Math.max(0, Math.floor(f.lifetime - currentAge(f, now)))
}

export function hasValidators (headers: StoredHeaders): boolean {
  return headers.etag !== undefined || headers['last-modified'] !== undefined
}

/**
 * Epoch ms after which the entry is of no use, or undefined when it has validators and so
 * stays useful (it can be revalidated cheaply) until evicted.
 */
export function uselessAt (f: Freshness, headers: StoredHeaders, options: FreshnessOptions): number | undefined {
  if (hasValidators(headers)) return undefined
  const windows = Math.max(
    seconds(f.cc, 'stale-while-revalidate') ?? options.staleWhileRevalidateSeconds,
    seconds(f.cc, 'stale-if-error') ?? options.staleIfErrorSeconds,
    options.staleOnErrorSeconds
  )
  return f.responseTime + (f.lifetime - f.initialAge + windows) * 1000
}
