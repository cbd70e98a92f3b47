import type { CacheEntry } from '../cache/entry.ts'
import { currentAge, freshness, uselessAt, type FreshnessOptions } from '../cache/freshness.ts'
import { policyHeaders } from '../cache/targeted-cache-control.ts'

/**
 * A soft purge: the entry becomes stale now, as if its freshness lifetime had just run out,
 * so stale-while-revalidate and stale-if-error still apply to it and the next request
 * revalidates it (conditionally, when it has validators). Undefined when it is stale already.
 *
 * Only the recorded request time moves: RFC 9111 §4.2.3 adds the response delay
 * (response_time - request_time) to the age, so a request sent `lifetime - age` seconds
 * earlier gives an age of exactly the lifetime. Date and Age stay the origin's, and the next
 * revalidation or refresh records its own times again.
 */
export function softPurged (entry: CacheEntry, targets: readonly string[], options: FreshnessOptions, now = Date.now()): { entry: CacheEntry, expiresAt: number | undefined } | undefined {
  const headers = policyHeaders(entry.headers, targets)
  const before = freshness(entry.status, headers, entry, options)
  if (currentAge(before, now) >= before.lifetime) return undefined
  // RFC 9111 §4.2.3: corrected_age_value = age_value + response_delay; choose the delay that
  // makes it (and so corrected_initial_age, which was below it) lifetime - resident time.
  const ageText = [entry.headers.age].flat()[0]?.trim() ?? ''
  const ageValue = /^\d+$/.test(ageText) ? Number(ageText) : 0
  const resident = Math.max(0, now - entry.responseTime) / 1000
  // One extra millisecond: `age < lifetime` must be false at once.
  const delayMs = Math.ceil(Math.max(0, before.lifetime - resident - ageValue) * 1000) + 1
  const softened = { ...entry, requestTime: entry.responseTime - delayMs }
  return { entry: softened, expiresAt: uselessAt(freshness(entry.status, headers, softened, options), entry.headers, options) }
}
