/**
 * Conditional requests answered from a stored response (RFC 9110 §13). Pure functions: no I/O, no clock.
 */
import { parseHttpDate } from './http-date.ts'

export type HeaderBag = Record<string, string | string[] | undefined>

export interface EntityTag {
  weak: boolean
  tag: string
}

/** True for etagc (RFC 9110 §8.8.3): %x21 / %x23-7E / obs-text (%x80-FF). */
function isEtagc (code: number): boolean {
  return code === 0x21 || (code >= 0x23 && code <= 0x7e) || (code >= 0x80 && code <= 0xff)
}

function isOws (code: number): boolean {
  return code === 0x20 || code === 0x09
}

/**
 * Reads one entity-tag (§8.8.3: [W/] DQUOTE *etagc DQUOTE) at `start`.
 * Returns the tag and the index just past its closing quote, or undefined if malformed.
 */
function readEntityTag (value: string, start: number): { etag: EntityTag, end: number } | undefined {
  let i = start
  let weak = false
  if (value.startsWith('W/', i)) { // the weak indicator is case-sensitive (§8.8.3)
    weak = true
    i += 2
  }
  if (value.charCodeAt(i) !== 0x22) return undefined
  const open = ++i
  while (i < value.length && value.charCodeAt(i) !== 0x22) {
    if (!isEtagc(value.charCodeAt(i))) return undefined
    i++
  }
  if (i >= value.length) return undefined // unterminated
  return { etag: { weak, tag: value.slice(open, i) }, end: i + 1 }
}

/**
 * Parses If-None-Match / If-Match (§13.1.1, §13.1.2): "*" or a list of entity-tags.
 * Commas are legal inside a quoted tag, so this scans rather than splits. A malformed member
 * is skipped up to the next comma outside quotes (§5.6.1 lists: recipients are tolerant).
 * "*" is only recognised as the whole field value; "*" inside a list is a malformed member.
 */
export function parseEtagList (value: string): EntityTag[] | '*' {
  if (value.trim() === '*') return '*'
  const tags: EntityTag[] = []
  let i = 0
  while (i < value.length) {
    const code = value.charCodeAt(i)
    if (isOws(code) || code === 0x2c) { i++; continue }
    const read = readEntityTag(value, i)
    if (read !== undefined) {
      let j = read.end
      while (j < value.length && isOws(value.charCodeAt(j))) j++
      if (j >= value.length || value.charCodeAt(j) === 0x2c) {
        tags.push(read.etag)
        i = j
        continue
      }
    }
    // Malformed member: skip to the next comma that is not inside quotes.
    let quoted = false
    while (i < value.length) {
      const c = value.charCodeAt(i)
      if (c === 0x22) quoted = !quoted
      else if (c === 0x2c && !quoted) break
      i++
    }
  }
  return tags
}

/** Parses a single ETag field value (§8.8.3); undefined when it is not exactly one entity-tag. */
export function parseEtag (value: string | undefined): EntityTag | undefined {
  if (value === undefined) return undefined
  const trimmed = value.trim()
  const read = readEntityTag(trimmed, 0)
  return read !== undefined && read.end === trimmed.length ? read.etag : undefined
}

/**
 * The one entity-tag comparison (§8.8.3.2): weak when the opaque-tags are identical; strong
 * when, in addition, neither tag is weak.
 */
export function tagsMatch (x: EntityTag | undefined, y: EntityTag | undefined, how: 'strong' | 'weak'): boolean {
  return x !== undefined && y !== undefined && x.tag === y.tag && (how === 'weak' || (!x.weak && !y.weak))
}

/** Strong comparison of two field values (§8.8.3.2). */
export function strongMatch (a: string | undefined, b: string | undefined): boolean {
  return tagsMatch(parseEtag(a), parseEtag(b), 'strong')
}

/** Weak comparison of two field values (§8.8.3.2). */
export function weakMatch (a: string | undefined, b: string | undefined): boolean {
  return tagsMatch(parseEtag(a), parseEtag(b), 'weak')
}

/** Case-insensitive header lookup (Node lower-cases incoming names; stored names may vary). */
function raw (headers: HeaderBag, name: string): string | string[] | undefined {
  if (headers[name] !== undefined) return headers[name]
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() === name) return headers[key]
  }
  return undefined
}

/** Header value with several field lines combined with ", " (§5.3). */
function header (headers: HeaderBag, name: string): string | undefined {
  const value = raw(headers, name)
  return Array.isArray(value) ? value.join(', ') : value
}

/** A header that is absent or empty counts as absent. */
function present (value: string | undefined): value is string {
  return value !== undefined && value.trim() !== ''
}

/**
 * Single-member date header (§13.1.3, §13.1.4: ignore if more than one member); several field
 * lines mean several members. Returns the timestamp or undefined when it must be ignored.
 */
function singleDate (headers: HeaderBag, name: string): number | undefined {
  const value = raw(headers, name)
  if (Array.isArray(value)) return value.length === 1 ? parseHttpDate(value[0]) : undefined
  return parseHttpDate(value)
}

/**
 * Whether a conditional request should be answered 304 Not Modified from the stored response,
 * following the precedence of §13.2.2.
 *
 * - Only GET/HEAD: for other methods a false If-None-Match means 412, never 304 (§13.1.2).
 * - Only a stored 200: a 304 stands in for the 200 the request would otherwise get (§15.4.5);
 *   other statuses (206, 3xx, 4xx) are not revalidated this way, which is the common approach.
 * - If-Match / If-Unmodified-Since that fail (steps 1–2) call for 412, not 304: returns false
 *   so the caller can forward or answer as it sees fit.
 * - If-None-Match uses weak comparison (§13.1.2); "*" matches any current representation.
 * - If-Modified-Since only when If-None-Match is absent (§13.1.3), against Last-Modified or else
 *   Date (RFC 9111 §4.3.2); invalid or multi-member dates are ignored.
 */
export function notModified (
  request: { method: string, headers: HeaderBag },
  stored: { status: number, headers: HeaderBag }
): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false // methods are case-sensitive (§9.1)
  if (stored.status !== 200) return false
  const storedEtag = parseEtag(header(stored.headers, 'etag'))
  const lastModified = singleDate(stored.headers, 'last-modified')

  // Step 1: If-Match, strong comparison (§13.1.1).
  const ifMatch = header(request.headers, 'if-match')
  if (present(ifMatch)) {
    const list = parseEtagList(ifMatch)
    if (list !== '*' && !list.some((tag) => tagsMatch(tag, storedEtag, 'strong'))) return false
  } else {
    // Step 2: If-Unmodified-Since, only without If-Match (§13.1.4); invalid dates ignored.
    const since = singleDate(request.headers, 'if-unmodified-since')
    if (since !== undefined && (lastModified === undefined || lastModified > since)) return false
  }

  // Step 3: If-None-Match, weak comparison (§13.1.2).
  const ifNoneMatch = header(request.headers, 'if-none-match')
  if (present(ifNoneMatch)) {
    const list = parseEtagList(ifNoneMatch)
    if (list === '*') return true
    return list.some((tag) => tagsMatch(tag, storedEtag, 'weak'))
  }

  // Step 4: If-Modified-Since (§13.1.3), only when If-None-Match is absent.
  const since = singleDate(request.headers, 'if-modified-since')
  if (since === undefined) return false
  const modified = lastModified ?? singleDate(stored.headers, 'date')
  return modified !== undefined && modified <= since
}

/** Fields a 304 must carry if the 200 would have (§15.4.5), plus Last-Modified. */
const NOT_MODIFIED_FIELDS = new Set(['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'last-modified'])

/** The subset of stored headers for a 304 response (§15.4.5), as a new object with lower-case names. */
export function notModifiedHeaders (storedHeaders: HeaderBag): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const [key, value] of Object.entries(storedHeaders)) {
    const name = key.toLowerCase()
    if (value === undefined || !NOT_MODIFIED_FIELDS.has(name)) continue
    out[name] = Array.isArray(value) ? [...value] : value
  }
  return out
}
