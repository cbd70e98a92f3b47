import type { IncomingHttpHeaders } from 'node:http'
import type { StoredHeaders } from './entry.ts'
import { parseCacheControl, type Directives } from './cache-control.ts'
import { varyNames } from './vary.ts'
import { parseContentRange } from '../http/range.ts'

export interface RequestLike {
  method: string
  headers: IncomingHttpHeaders
}

export interface PolicyOptions {
  /** Store responses that carry Set-Cookie (off by default: a shared cache would hand one user's cookie to all). */
  cacheSetCookie: boolean
}

// RFC 9110 §9.2.1 (and the WebDAV/QUERY specs): safe methods. Every other method, known or
// not, invalidates the target URI on success (RFC 9111 §4.4).
export const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND', 'REPORT', 'SEARCH', 'QUERY'])

// RFC 9110 §15.1: status codes that are heuristically cacheable.
export const HEURISTIC_STATUSES = new Set([200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501])
// Final statuses whose semantics this cache implements (for must-understand, RFC 9111 §5.2.2.3).
const UNDERSTOOD_STATUSES = new Set([200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501])

/**
 * Why a response may not be stored by this shared cache, or undefined when it may
 * (RFC 9111 §3). Written here rather than taken from http-cache-semantics, which reads
 * directive names case-sensitively, throws on a header that arrived as an array and
 * accepts only a fixed list of statuses.
 */
export function notStorableReason (request: RequestLike, status: number, headers: StoredHeaders, options: PolicyOptions): string | undefined {
  if (request.method !== 'GET') return 'method'
  // §5.2.1.5: no-store in the request forbids storing its response.
  if ('no-store' in parseCacheControl(request.headers['cache-control'])) return 'request-no-store'
  if (status < 200 || status > 599) return 'status'
  // §3.3: a partial response is storable when it carries one satisfied range of a known length.
  if (status === 206 && !storablePart(headers)) return 'partial'
  if (status === 304) return 'not-modified'
  const cc = parseCacheControl(headers['cache-control'])
  if ('must-understand' in cc) {
    // §5.2.2.3: must-understand overrides no-store for a status the cache understands.
    if (!UNDERSTOOD_STATUSES.has(status)) return 'must-understand'
  } else if ('no-store' in cc) {
    return 'no-store'
  }
  if ('private' in cc) return 'private'
  // §3.5: a response to a request with Authorization only when the response allows it.
  if (request.headers.authorization !== undefined && !allowsAuthorizedDirectives(cc)) return 'authorization'
  if (!hasExplicitFreshness(cc, headers) && !HEURISTIC_STATUSES.has(status)) return 'no-freshness'
  if (varyNames(headers.vary) === '*') return 'vary-star'
  if (headers['set-cookie'] !== undefined && !options.cacheSetCookie) return 'set-cookie'
  return undefined
}

/** A 206 whose Content-Range is one satisfied range of a known length, and whose declared length matches it. */
function storablePart (headers: StoredHeaders): boolean {
  const part = parseContentRange(headers['content-range'])
  const declared = headers['content-length']
  return part !== undefined && (declared === undefined || Number(declared) === part.end - part.start + 1)
}

/** §3: Expires, max-age, s-maxage or public make a response of any final status storable. */
function hasExplicitFreshness (cc: Directives, headers: StoredHeaders): boolean {
  return headers.expires !== undefined || 'max-age' in cc || 's-maxage' in cc || 'public' in cc
}

export function allowsAuthorizedDirectives (cc: Directives): boolean {
  return 'public' in cc || 's-maxage' in cc || 'must-revalidate' in cc
}

/**
 * The headers to store: without the fields a qualified `no-cache="a, b"` names, which must
 * not be reused without revalidation (RFC 9111 §5.2.2.4). `policy` is what the cache decides
 * by (a targeted field may stand for Cache-Control, see targeted-cache-control.ts).
 */
export function headersToStore (headers: StoredHeaders, policy: StoredHeaders = headers): StoredHeaders {
  const noCache = parseCacheControl(policy['cache-control'])['no-cache']
  if (typeof noCache !== 'string') return headers
  const out = { ...headers }
  for (const name of noCache.split(',')) delete out[name.trim().toLowerCase()]
  return out
}

// RFC 9111 §3.2: fields a 304 must not change in the stored response. Set-Cookie is the
// answer to one client's request: a shared cache never takes it from a 304 (it goes to
// that client only, see the cache plugin).
const NOT_UPDATED = new Set(['content-length', 'content-encoding', 'transfer-encoding', 'content-range', 'set-cookie'])

/** The stored headers refreshed by a 304 (RFC 9111 §4.3.4). */
export function mergeNotModified (stored: StoredHeaders, fresh: StoredHeaders): StoredHeaders {
  const out = { ...stored }
  for (const [name, value] of Object.entries(fresh)) {
    if (!NOT_UPDATED.has(name)) out[name] = value
  }
  return out
}

/** The conditional headers that revalidate a stored response (RFC 9111 §4.3.1). */
export function revalidationHeaders (stored: StoredHeaders): Record<string, string> {
  const out: Record<string, string> = {}
  const etag = stored.etag
  if (etag !== undefined) out['if-none-match'] = String(etag)
  const lastModified = stored['last-modified']
  if (lastModified !== undefined) out['if-modified-since'] = String(lastModified)
  return out
}
