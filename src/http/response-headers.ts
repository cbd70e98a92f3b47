import type { IncomingHttpHeaders } from 'node:http'
import type { StoredHeaders } from '../cache/entry.ts'

/**
 * The one place where an origin's response header values are made safe for the policy code.
 * undici hands a repeated field as an array, an empty one as '' and leaves odd values alone:
 * everything the cache reads comes out of here as a single string (or, for Set-Cookie, an
 * array), so no decision can trip over a shape it did not expect.
 */

// Fields whose value is a comma-separated list (RFC 9110 §5.3): repeated lines are joined.
const LIST_FIELDS = new Set(['cache-control', 'pragma', 'vary', 'warning', 'via', 'cache-status', 'connection', 'link', 'allow',
  'content-encoding', 'content-language', 'accept-ranges', 'access-control-allow-headers', 'access-control-expose-headers', 'access-control-allow-methods'])

// Singleton fields with no safe way to pick between two different values: dropped.
const DROP_WHEN_CONFLICTING = new Set(['etag', 'last-modified'])

export class InvalidResponseHeaders extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'InvalidResponseHeaders'
  }
}

function distinct (values: string[]): string[] {
  return [...new Set(values.map((value) => value.trim()))]
}

/**
 * Returns a copy with every value a string (Set-Cookie: an array of strings). Repeated list
 * fields are joined; a repeated `Expires` with different values is kept joined, which no date
 * parser accepts, so it counts as already expired (RFC 9111 §5.3); `Age` keeps its first value
 * (RFC 9111 §5.1); conflicting `ETag`/`Last-Modified` are dropped; other singletons keep the
 * first value. Two different `Content-Length`s cannot frame a body: that throws (a 502).
 */
export function normalizeResponseHeaders (headers: IncomingHttpHeaders): StoredHeaders {
  const out: StoredHeaders = {}
  for (const name of Object.keys(headers)) {
    const raw = headers[name]
    if (raw === undefined) continue
    if (name === 'set-cookie') {
      out[name] = (Array.isArray(raw) ? raw : [String(raw)]).map(String)
      continue
    }
    if (!Array.isArray(raw)) {
      out[name] = String(raw)
      continue
    }
    const values = raw.map(String)
    if (values.length === 0) continue
    if (LIST_FIELDS.has(name) || name.startsWith('x-')) {
      out[name] = values.filter((value) => value.trim() !== '').join(', ')
      continue
    }
    const unique = distinct(values)
    if (unique.length === 1) {
      out[name] = unique[0]
    } else if (name === 'content-length') {
      throw new InvalidResponseHeaders(`the upstream sent conflicting Content-Length values (${unique.slice(0, 3).join(', ')})`)
    } else if (name === 'expires') {
      out[name] = values.join(', ')
    } else if (!DROP_WHEN_CONFLICTING.has(name)) {
      out[name] = values[0]
    }
  }
  return out
}

/** The first value of a header as a string, whatever shape it came in. */
export function single (value: string | string[] | number | undefined): string | undefined {
  if (value === undefined) return undefined
  return Array.isArray(value) ? (value[0] === undefined ? undefined : String(value[0])) : String(value)
}
