/**
 * Cache keys. GET and HEAD share the key of the GET: a HEAD is answered from the stored
 * GET (RFC 9110 §9.3.2). The URL is already normalized by the WHATWG parser (scheme and
 * host lower-cased, default port dropped, dot segments resolved, fragment removed).
 */
export function cacheKey (url: URL): string {
  return `GET ${url.href}`
}
