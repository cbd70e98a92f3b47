import type { IncomingHttpHeaders } from 'node:http'
import { isBrowser } from '../browsing/path-browsing.ts'

/**
 * Memory-tier hits answered before Fastify routes the request (plugins/fast-hits.ts): the pure
 * part. Only a request target the normal path has already answered as a plain memory-tier hit
 * is ever fast, and only when nothing in the request could make the normal path answer it any
 * other way; anything else, or anything uncertain, goes to Fastify untouched.
 */

/** What the normal path decided for one raw request target (routing, rewriteUrl, upstream rules). */
export interface Learned {
  upstream: URL
  /** The cache key (src/cache/cache-key.ts) the normal path looked up. */
  key: string
}

/**
 * Request fields the normal path decides by, beyond the target: validators and Range (304, 206,
 * RFC 9110 §13, §14), credentials (RFC 9111 §3.5; the proxy's own are refused by the plugin's
 * switch), the client's cache directives (RFC 9111 §5.2.1, §5.4), a body, a Referer (path
 * browsing's redirects), Via (loop detection) and Fetch Metadata (a browser's page rewriting).
 */
const NORMAL_PATH_FIELDS = [
  'if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range', 'range',
  'authorization', 'proxy-authorization', 'cache-control', 'pragma',
  'content-length', 'transfer-encoding', 'referer', 'via', 'sec-fetch-dest'
]

/** The proxy's own routes (plugins/admin.ts ADMIN_PREFIX): never a proxied target. */
const ADMIN = '/_proxy'

/** The memo's key: method, Host and the request target exactly as received. */
export function targetOf (method: string, host: string | undefined, url: string): string {
  return `${method} ${host ?? ''} ${url}`
}

/** True when nothing but the target decides how the normal path answers this request (see above). */
export function plainRequest (method: string, httpVersion: string, url: string, headers: IncomingHttpHeaders): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false
  if (httpVersion !== '1.1' && httpVersion !== '1.0') return false
  if (url.startsWith(ADMIN)) return false
  for (let i = 0; i < NORMAL_PATH_FIELDS.length; i++) {
    if (headers[NORMAL_PATH_FIELDS[i]] !== undefined) return false
  }
  return !isBrowser(headers)
}

/**
 * Request targets the normal path answered as plain memory-tier hits, bounded: past `max`
 * targets it starts again from empty (the next hit of each target takes the normal path once).
 */
export class FastMemo {
  private readonly byTarget = new Map<string, Learned>()
  private readonly byKey = new Map<string, string[]>()

  constructor (private readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`FastMemo: max must be a positive integer, got ${max}`)
  }

  get size (): number {
    return this.byTarget.size
  }

  get (target: string): Learned | undefined {
    return this.byTarget.get(target)
  }

  learn (target: string, learned: Learned): void {
    const known = this.byTarget.get(target)
    if (known !== undefined && known.key === learned.key && known.upstream.href === learned.upstream.href) return
    if (known !== undefined) this.drop(target)
    if (this.byTarget.size >= this.max) this.clear()
    this.byTarget.set(target, learned)
    const targets = this.byKey.get(learned.key)
    if (targets === undefined) this.byKey.set(learned.key, [target])
    else targets.push(target)
  }

  /** Forgets one target (its hit is gone or was not plain). */
  drop (target: string): void {
    const learned = this.byTarget.get(target)
    if (learned === undefined) return
    this.byTarget.delete(target)
    const targets = this.byKey.get(learned.key) ?? []
    const left = targets.filter((one) => one !== target)
    if (left.length === 0) this.byKey.delete(learned.key)
    else this.byKey.set(learned.key, left)
  }

  /** Forgets every target of a cache key (purged, changed elsewhere); a variant's key names its URL's first. */
  forget (key: string): void {
    const newline = key.indexOf('\n')
    const urlKey = newline === -1 ? key : key.slice(0, newline)
    for (const target of this.byKey.get(urlKey) ?? []) this.byTarget.delete(target)
    this.byKey.delete(urlKey)
  }

  clear (): void {
    this.byTarget.clear()
    this.byKey.clear()
  }
}
