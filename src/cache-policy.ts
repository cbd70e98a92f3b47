import CachePolicy from 'http-cache-semantics'
import type { IncomingHttpHeaders } from 'node:http'
import type { StoredHeaders } from './entry.ts'
import { parseCacheControl } from './cache-control.ts'
import { varyNames } from './vary.ts'

export interface RequestLike {
  method: string
  url: string
  headers: IncomingHttpHeaders
}

export interface PolicyOptions {
  /** Store responses that carry Set-Cookie (off by default: a shared cache would hand one user's cookie to all). */
  cacheSetCookie: boolean
}

/**
 * Why a response may not be stored by this shared cache, or undefined when it may (RFC 9111 §3).
 * The RFC rules (no-store in request or response, private, Authorization, understood
 * status, explicit or default cacheability) are http-cache-semantics' `storable()`.
 */
export function notStorableReason (request: RequestLike, status: number, headers: StoredHeaders, options: PolicyOptions): string | undefined {
  if (status === 206) return 'partial'
  const policy = new CachePolicy(request, { status, headers }, { shared: true })
  if (!policy.storable()) return 'not-storable'
  if (varyNames(headers.vary) === '*') return 'vary-star'
  if (headers['set-cookie'] !== undefined && !options.cacheSetCookie) return 'set-cookie'
  return undefined
}

/**
 * The headers to store: without the fields a qualified `no-cache="a, b"` names, which must
 * not be reused without revalidation (RFC 9111 §5.2.2.4).
 */
export function headersToStore (headers: StoredHeaders): StoredHeaders {
  const noCache = parseCacheControl(headers['cache-control'])['no-cache']
  if (typeof noCache !== 'string') return headers
  const out = { ...headers }
  for (const name of noCache.split(',')) delete out[name.trim().toLowerCase()]
  return out
}

/** Whether a stored response may answer a request that carries Authorization (RFC 9111 §3.5). */
export function allowsAuthorized (headers: StoredHeaders): boolean {
  const cc = parseCacheControl(headers['cache-control'])
  return 'public' in cc || 's-maxage' in cc || 'must-revalidate' in cc
}

// RFC 9111 §3.2: fields a 304 must not change in the stored response.
const NOT_UPDATED = new Set(['content-length', 'content-encoding', 'transfer-encoding', 'content-range'])

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
