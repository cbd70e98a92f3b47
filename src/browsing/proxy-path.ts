/**
 * Maps upstream URLs to the path-prefix form this proxy serves them under, the inverse of
 * src/upstream/upstream-url.ts:
 *   http://example.com/a?b      <-> /example.com/a?b
 *   http://127.0.0.1:8080/a     <-> /127.0.0.1:8080/a
 *   https://example.com/a       <-> /https://example.com/a
 * The default port of each scheme is left out, as URL does.
 */
import { parseUpstreamUrl } from '../upstream/upstream-url.ts'

/** The proxy prefix of an upstream origin: `/host[:port]` for http, `/https://host[:port]` for https. */
export function proxyPrefix (url: URL): string {
  return url.protocol === 'https:' ? `/https://${url.host}` : `/${url.host}`
}

/** The proxy path of an absolute http(s) URL (fragment kept: it never leaves the browser). */
export function proxyPathOf (url: URL): string {
  return proxyPrefix(url) + url.pathname + url.search + url.hash
}

/** How an absolute upstream URL is written for the browser; undefined keeps the reference. */
export type UrlMap = (url: URL) => string | undefined

/**
 * Resolves `reference` (as written in a page, a CSS file or a header) against the upstream
 * `base` and returns its proxy path (or what `map` makes of it); undefined when it must stay
 * as written: empty, fragment-only, not http(s) (data:, blob:, javascript:, mailto:...) or unparsable.
 */
export function toProxyPath (reference: string, base: URL, map: UrlMap = proxyPathOf): string | undefined {
  const trimmed = reference.trim()
  if (trimmed === '' || trimmed.startsWith('#')) return undefined
  let url: URL
  try {
    url = new URL(trimmed, base)
  } catch {
    return undefined
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined
  return map(url)
}

/** The upstream URL named by a proxy path, or undefined when the path names none. */
export function upstreamOf (path: string): URL | undefined {
  try {
    return parseUpstreamUrl(path)
  } catch {
    return undefined
  }
}
