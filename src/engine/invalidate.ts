import type { StoredHeaders } from '../cache/entry.ts'
import { cacheKey } from '../cache/cache-key.ts'

/**
 * RFC 9111 §4.4: a successful unsafe request invalidates its URL and the same-origin URLs in
 * its response's Location and Content-Location. Resolves once every deletion is confirmed.
 */
export function invalidateAfterUnsafe (url: URL, headers: StoredHeaders, invalidate: (key: string) => Promise<void>): Promise<unknown> {
  const done = [invalidate(cacheKey(url))]
  for (const name of ['location', 'content-location']) {
    const value = headers[name]
    if (typeof value !== 'string') continue
    try {
      const target = new URL(value, url)
      if (target.origin === url.origin) done.push(invalidate(cacheKey(target)))
    } catch {}
  }
  return Promise.all(done)
}
