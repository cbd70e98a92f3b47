import type { CacheEntry } from '../cache/entry.ts'
import { currentAge, evaluateReuse, freshness, hasValidators, remainingSeconds, type FreshnessOptions } from '../cache/freshness.ts'
import { parseCacheControl, type Directives } from '../cache/cache-control.ts'
import { policyHeaders } from '../cache/targeted-cache-control.ts'
import { cacheStatusParams } from '../cache/outcome.ts'
import type { Decision } from './recent-decisions.ts'

/** One stored response of a URL, as /_proxy/explain shows it. */
export interface ExplainedVariant {
  /** The request header values that select this variant (empty when the response does not vary). */
  selectedBy: Record<string, string>
  status: number
  /** Body bytes, and bytes of the whole stored value. */
  bodyBytes: number
  storedBytes: number
  /** Whether this worker's memory tier holds it too. */
  inMemory: boolean
  storedAt: string
  ageSeconds: number
  lifetimeSeconds: number
  freshnessLeftSeconds: number
  /** Reuse for a plain request now: fresh, stale-while-revalidate, or revalidate (RFC 9111 §4.2). */
  reuse: string
  /** Where the lifetime came from (RFC 9111 §4.2.1 order). */
  lifetimeFrom: 's-maxage' | 'max-age' | 'expires' | 'heuristic' | 'none'
  /** The directives the cache decides by (a targeted field when the origin sent one, RFC 9213). */
  directives: Directives
  decidedBy: string
  validators: { etag?: string, lastModified?: string }
  /** A stored part (206): the Content-Range it holds (RFC 9111 §3.3). */
  contentRange?: string
}

export interface Explanation {
  url: string
  key: string
  stored: boolean
  vary?: string[]
  variants: ExplainedVariant[]
  last?: {
    time: string
    method: string
    status: number
    outcome: string
    /**
     * Whether the origin's response was stored (misses, passes; true after a 304 refreshed the
     * entry); absent when the answer came from the cache or was an error.
     */
    stored?: boolean
    /** Why the response was not stored (the outcome's detail), in words. */
    reason?: string
    detail?: string
    cacheStatus: string
  }
}

/** The reasons of src/cache/cache-policy.ts and the cache plugin, in words, with the RFC that decides. */
const REASONS: Record<string, string> = {
  method: 'the method is not GET: only GET responses are stored here',
  head: 'a HEAD response has no body to store',
  'request-no-store': 'the request said Cache-Control: no-store (RFC 9111 §5.2.1.5)',
  status: 'the status code is not a final one',
  partial: 'a 206 part without a usable Content-Range, or fetched while the URL is in hit-for-pass, is not stored',
  'not-modified': 'a 304 to the client\'s own condition is not stored',
  'must-understand': 'must-understand with a status this cache does not implement (RFC 9111 §5.2.2.3)',
  'no-store': 'the response said Cache-Control: no-store (RFC 9111 §5.2.2.5)',
  private: 'the response said Cache-Control: private: only a browser cache may store it (RFC 9111 §5.2.2.7)',
  authorization: 'the request had Authorization and the response did not allow a shared cache to store it (RFC 9111 §3.5)',
  'no-freshness': 'no explicit freshness and a status that is not heuristically cacheable (RFC 9111 §3, RFC 9110 §15.1)',
  'vary-star': 'Vary: * can never be matched (RFC 9110 §12.5.5)',
  'set-cookie': 'the response sets a cookie (CACHE_SET_COOKIE=false)',
  'too-large': 'the body is larger than MAX_ENTRY_BYTES',
  unframed: 'the body had no Content-Length and ended with the connection: a cut could not be told from the end'
}

function notStoredReason (fwd: string | undefined, detail: string | undefined): string {
  if (detail !== undefined) return REASONS[detail] ?? detail
  if (fwd === 'method') return REASONS.method
  return 'storable by its headers, but no whole body was stored: no Content-Length and larger than MAX_ENTRY_BYTES or cut short, or evicted or purged since'
}

function lifetimeFrom (cc: Directives, headers: CacheEntry['headers'], lifetime: number): ExplainedVariant['lifetimeFrom'] {
  if ('s-maxage' in cc) return 's-maxage'
  if ('max-age' in cc) return 'max-age'
  if (headers.expires !== undefined) return 'expires'
  return lifetime > 0 ? 'heuristic' : 'none'
}

function describe (from: ExplainedVariant['lifetimeFrom'], lifetime: number, cc: Directives, headers: CacheEntry['headers']): string {
  const parts: string[] = []
  if (from === 'heuristic') parts.push(`heuristic lifetime ${Math.round(lifetime)} s: 10% of the time since Last-Modified (RFC 9111 §4.2.2)`)
  else if (from === 'none') parts.push('no freshness lifetime: every reuse is revalidated')
  else parts.push(`${from} gives a lifetime of ${Math.round(lifetime)} s (RFC 9111 §4.2.1)`)
  if (cc['no-cache'] === true) parts.push('no-cache: revalidated before every reuse (RFC 9111 §5.2.2.4)')
  if ('must-revalidate' in cc || 'proxy-revalidate' in cc) parts.push('never served stale (must-revalidate / proxy-revalidate)')
  if (headers.vary !== undefined) parts.push(`varies on ${String(headers.vary)}`)
  return parts.join('; ')
}

/** The request header values a variant key was built from (src/cache/vary.ts: `name: value` lines). */
function selectedBy (key: string, base: string): Record<string, string> {
  if (key === base) return {}
  const out: Record<string, string> = {}
  for (const line of key.slice(base.length).split('\n').slice(2)) {
    const at = line.indexOf(': ')
    out[line.slice(0, at)] = line.slice(at + 2) === '\u0000' ? '(absent)' : line.slice(at + 2)
  }
  return out
}

export interface ExplainInput {
  url: string
  key: string
  /** The URL's stored values: its own key (an entry or a Vary index) and its variants, decoded. */
  stored: Array<{ key: string, entry: CacheEntry, bytes: number, inMemory: boolean }>
  last: Decision | undefined
  targets: readonly string[]
  options: FreshnessOptions
  now?: number
}

/** What is stored for a URL and why (freshness from src/cache/freshness.ts, never recomputed here). */
export function explain (input: ExplainInput): Explanation {
  const now = input.now ?? Date.now()
  const own = input.stored.find((item) => item.key === input.key)
  const vary = own?.entry.vary
  const variants: ExplainedVariant[] = []
  for (const { key, entry, bytes, inMemory } of input.stored) {
    if (entry.vary !== undefined && key === input.key) continue // the Vary index itself
    // Only the variants under the index's current stamp are reachable (src/cache/vary.ts).
    if (key !== input.key && (vary === undefined || !key.startsWith(`${input.key}\nvary@${own?.entry.responseTime ?? ''}\n`))) continue
    const policy = policyHeaders(entry.headers, input.targets)
    const fresh = freshness(entry.status, policy, entry, input.options)
    const cc = parseCacheControl(policy['cache-control'])
    const from = lifetimeFrom(cc, policy, fresh.lifetime)
    variants.push({
      selectedBy: selectedBy(key, input.key),
      status: entry.status,
      bodyBytes: entry.body.length,
      storedBytes: bytes,
      inMemory,
      storedAt: new Date(entry.responseTime).toISOString(),
      ageSeconds: Math.floor(currentAge(fresh, now)),
      lifetimeSeconds: Math.round(fresh.lifetime),
      freshnessLeftSeconds: remainingSeconds(fresh, now),
      reuse: evaluateReuse(fresh, {}, input.options, now),
      lifetimeFrom: from,
      directives: cc,
      decidedBy: describe(from, fresh.lifetime, cc, entry.headers),
      validators: hasValidators(entry.headers)
        ? { etag: entry.headers.etag as string | undefined, lastModified: entry.headers['last-modified'] as string | undefined }
        : {},
      ...(entry.status === 206 ? { contentRange: String(entry.headers['content-range']) } : {})
    })
  }
  const explanation: Explanation = { url: input.url, key: input.key, stored: variants.length > 0, ...(vary === undefined ? {} : { vary }), variants }
  const last = input.last
  if (last !== undefined) {
    const { outcome } = last
    const detail = outcome.detail
    const forwarded = outcome.kind === 'miss' || outcome.kind === 'pass'
    // `stored` is said only when decided at header time (RFC 9211 §2.7): a chunked body that the
    // headers allowed was stored if it arrived whole within MAX_ENTRY_BYTES; the store tells.
    const stored = outcome.stored === true || (forwarded && detail === undefined && outcome.fwd !== 'method' && variants.length > 0)
    const notStored = forwarded && !stored
    explanation.last = {
      time: new Date(last.time).toISOString(),
      method: last.method,
      status: last.status,
      outcome: outcome.kind,
      ...(forwarded ? { stored } : outcome.kind === 'revalidated' ? { stored: true } : {}),
      ...(notStored ? { reason: notStoredReason(outcome.fwd, detail) } : {}),
      ...(detail === undefined ? {} : { detail }),
      cacheStatus: cacheStatusParams(outcome)
    }
  }
  return explanation
}
