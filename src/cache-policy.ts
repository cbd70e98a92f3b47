import CachePolicy from 'http-cache-semantics'
import type { IncomingHttpHeaders } from 'node:http'
import type { StoredHeaders } from './entry.ts'

export interface RequestLike {
  method: string
  url: string
  headers: IncomingHttpHeaders
}

export interface PolicyOptions {
  /** Store responses that carry Set-Cookie (off by default: a shared cache would hand one user's cookie to all). */
  cacheSetCookie: boolean
}

// RFC 9111 decisions come from http-cache-semantics in shared-cache mode.
const POLICY_OPTIONS = { shared: true, cacheHeuristic: 0.1, immutableMinTimeToLive: 24 * 3600 * 1000 }

export function createPolicy (request: RequestLike, status: number, headers: StoredHeaders): CachePolicy {
  return new CachePolicy(request, { status, headers }, POLICY_OPTIONS)
}

export function restorePolicy (object: CachePolicy.CachePolicyObject): CachePolicy {
  return CachePolicy.fromObject(object)
}

/** Why a response may not be stored, or undefined when it may (RFC 9111 §3). */
export function notStorableReason (policy: CachePolicy, status: number, headers: StoredHeaders, options: PolicyOptions): string | undefined {
  if (status === 206) return 'partial'
  if (!policy.storable()) return 'policy'
  if (headers['set-cookie'] !== undefined && !options.cacheSetCookie) return 'set-cookie'
  return undefined
}

/** Whole seconds the stored response has left to be fresh (never negative). */
export function remainingTtl (policy: CachePolicy): number {
  return Math.max(0, Math.floor(policy.timeToLive() / 1000))
}

/** The Age header value: current age in whole seconds (RFC 9111 §5.1). */
export function ageSeconds (policy: CachePolicy): string {
  return String(Math.max(0, Math.floor(policy.age())))
}
