/**
 * The one typed outcome of a proxied request: what the cache did. `Cache-Status` (RFC 9211),
 * `X-Cache` and the request log line are all derived from it (and metrics will be).
 */
export type OutcomeKind =
  | 'hit' // answered from the cache, fresh (also when collapsed into another request's fetch)
  | 'stale' // answered from the cache although stale (max-stale, stale-while-revalidate, stale-if-error)
  | 'revalidated' // the origin said 304 and the stored response answered
  | 'miss' // went to the origin as a cache miss
  | 'pass' // went to the origin without the cache (unsafe method, hit-for-pass)
  | 'error' // the origin could not be reached or answered unusably, and nothing stood in

/** RFC 9211 §2.2 `fwd` values this cache uses. */
export type Forward = 'miss' | 'vary-miss' | 'stale' | 'method' | 'bypass'

export interface CacheOutcome {
  kind: OutcomeKind
  /** The `hit` parameter: the response came from the cache without going forward. */
  hit?: boolean
  fwd?: Forward
  fwdStatus?: number
  stored?: boolean
  /** RFC 9211 §2.6: answered by another request's forward (request coalescing). */
  collapsed?: boolean
  detail?: string
  /** Seconds of freshness left (on hits). */
  ttl?: number
  /** Answered from this worker's memory tier without a store read (metrics only). */
  memory?: boolean
}

/** This cache's Cache-Status member parameters, e.g. `fwd=miss; fwd-status=200; stored`. */
export function cacheStatusParams (outcome: CacheOutcome): string {
  const params: string[] = []
  if (outcome.hit === true) params.push('hit')
  if (outcome.fwd !== undefined) params.push(`fwd=${outcome.fwd}`)
  if (outcome.fwdStatus !== undefined) params.push(`fwd-status=${outcome.fwdStatus}`)
  if (outcome.stored === true) params.push('stored')
  if (outcome.collapsed === true) params.push('collapsed')
  if (outcome.detail !== undefined) params.push(`detail=${outcome.detail}`)
  if (outcome.ttl !== undefined) params.push(`ttl=${outcome.ttl}`)
  return params.join('; ')
}

/** The de-facto `X-Cache` header: HIT when the body came from the cache. */
export function xCache (outcome: CacheOutcome): 'HIT' | 'MISS' {
  return outcome.kind === 'hit' || outcome.kind === 'stale' || outcome.kind === 'revalidated' ? 'HIT' : 'MISS'
}
