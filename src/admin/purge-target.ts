import { cacheKey } from '../cache/cache-key.ts'

/**
 * What a purge removes, as store-key prefixes: a URL's key is `GET <url>` and its Vary
 * variants' keys are `GET <url>\n...` (src/cache/cache-key.ts, src/cache/vary.ts).
 */
export interface PurgeTarget {
  /** Keys removed exactly. */
  keys: string[]
  /** Every key that starts with one of these goes too. */
  prefixes: string[]
}

export class PurgeRequestError extends Error {}

const KINDS = ['url', 'prefix', 'host', 'all'] as const

/** An absolute http(s) URL, normalised as the cache keys are (WHATWG parser, no fragment). */
function httpUrl (text: string, name: string): URL {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new PurgeRequestError(`${name} must be an absolute http:// or https:// URL, got ${JSON.stringify(text)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new PurgeRequestError(`${name} must be an http:// or https:// URL, got ${JSON.stringify(text)}`)
  if (url.username !== '' || url.password !== '') throw new PurgeRequestError(`${name} must not carry credentials`)
  url.hash = ''
  return url
}

/** The keys of one upstream URL: the URL's own entry (or Vary index) and all its variants. */
export function urlTarget (url: URL): PurgeTarget {
  const key = cacheKey(url)
  return { keys: [key], prefixes: [`${key}\n`] }
}

/**
 * Reads `DELETE /_proxy/cache?url=|prefix=|host=|all=1` (exactly one of them). `host` is
 * `name` or `name:port` and covers http and https; `prefix` is a URL prefix compared
 * after normalisation (`http://Example.com/a` covers `http://example.com/a/b` and `/ab`).
 */
export function purgeTarget (query: Record<string, unknown>): PurgeTarget {
  const given = KINDS.filter((kind) => query[kind] !== undefined)
  if (given.length !== 1) throw new PurgeRequestError('give exactly one of url=<full upstream URL>, prefix=<URL prefix>, host=<host[:port]> or all=1')
  const kind = given[0]
  const raw = query[kind]
  if (typeof raw !== 'string' || raw === '') throw new PurgeRequestError(`${kind} must be given once, not empty`)
  switch (kind) {
    case 'url':
      return urlTarget(httpUrl(raw, 'url'))
    case 'prefix': {
      const url = httpUrl(raw, 'prefix')
      // `new URL('http://a')` is `http://a/`; a prefix written with a path keeps it as written.
      return { keys: [], prefixes: [`GET ${url.href}`] }
    }
    case 'host': {
      if (/[/?#@\s]/.test(raw)) throw new PurgeRequestError(`host must be a host name or host:port, got ${JSON.stringify(raw)}`)
      const prefixes = ['http', 'https'].map((scheme) => `GET ${httpUrl(`${scheme}://${raw}/`, 'host').href}`)
      return { keys: [], prefixes }
    }
    case 'all':
      if (raw !== '1' && raw !== 'true') throw new PurgeRequestError('all must be 1')
      return { keys: [], prefixes: [''] }
  }
}

/**
 * How many stored responses a set of purged keys held: each Vary variant is one; a URL's
 * Vary index (its own key, when variants of it are among the keys) is not a response.
 */
export function responsesAmong (keys: Iterable<string>): number {
  const all = new Set(keys)
  const indexes = new Set<string>()
  for (const key of all) {
    const newline = key.indexOf('\n')
    if (newline !== -1 && all.has(key.slice(0, newline))) indexes.add(key.slice(0, newline))
  }
  return all.size - indexes.size
}

/** Query flags: `soft=1` (or the Soft-Purge / X-Purge-Soft request header set to 1 or true). */
export function softRequested (query: Record<string, unknown>, headers: Record<string, string | string[] | undefined>): boolean {
  const yes = (value: unknown): boolean => typeof value === 'string' && /^(1|true|yes)$/i.test(value.trim())
  return yes(query.soft) || yes(headers['soft-purge']) || yes(headers['x-purge-soft'])
}
