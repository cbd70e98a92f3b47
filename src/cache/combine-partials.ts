/**
 * Combining partial responses (RFC 9111 §3.4). Pure: no I/O, no clock.
 */
import { parseHttpDate } from '../http/http-date.ts'
import { parseContentRange, type StoredPart } from '../http/range.ts'
import { mergeNotModified } from './cache-policy.ts'
import type { StoredHeaders } from './entry.ts'

/** A response as stored (or about to be): status, headers and its whole body. */
export interface StoredResponse {
  status: number
  headers: StoredHeaders
  body: Buffer
}

/**
 * The response to store when a new 206 (`incoming`) arrives for a key that holds `stored`, or
 * undefined when they do not combine (the new part then simply replaces what was stored).
 *
 * They combine when both carry the same strong validator (§3.4; RFC 9110 §8.8.3.2 strong
 * comparison, or a strong Last-Modified, §8.8.2.2, when neither has an ETag), describe the same
 * complete length, and their ranges overlap or touch. A stored complete 200 counts as the part
 * 0..N-1. The result holds the union of both ranges, the new response's bytes winning where they
 * overlap; it is a complete 200 once the union covers the whole representation. Its headers are
 * the stored ones updated by the new response as for a 304 (§3.4 → §3.2), with Content-Length
 * and Content-Range made to describe the combined body.
 */
export function combinePartials (stored: StoredResponse, incoming: StoredResponse): StoredResponse | undefined {
  if (incoming.status !== 206) return undefined
  const fresh = partOf(incoming)
  const old = partOf(stored)
  if (fresh === undefined || old === undefined || fresh.complete !== old.complete) return undefined
  if (!sameStrongValidator(stored.headers, incoming.headers)) return undefined
  if (fresh.start > old.end + 1 || old.start > fresh.end + 1) return undefined // neither overlapping nor touching
  const start = Math.min(old.start, fresh.start)
  const end = Math.max(old.end, fresh.end)
  const body = Buffer.alloc(end - start + 1)
  stored.body.copy(body, old.start - start)
  incoming.body.copy(body, fresh.start - start) // the newest bytes win where they overlap
  const headers = mergeNotModified(stored.headers, incoming.headers)
  headers['content-length'] = String(body.length)
  if (start === 0 && end === fresh.complete - 1) {
    delete headers['content-range']
    return { status: 200, headers, body }
  }
  headers['content-range'] = `bytes ${start}-${end}/${fresh.complete}` // RFC 9110 §14.4
  return { status: 206, headers, body }
}

/** The bytes a response holds: a 206's Content-Range (checked against its body), or all of a 200. */
function partOf (response: StoredResponse): StoredPart | undefined {
  if (response.status === 200) {
    if (response.headers['content-range'] !== undefined || response.body.length === 0) return undefined
    return { start: 0, end: response.body.length - 1, complete: response.body.length }
  }
  if (response.status !== 206) return undefined
  const part = parseContentRange(response.headers['content-range'])
  return part !== undefined && response.body.length === part.end - part.start + 1 ? part : undefined
}

/**
 * §3.4: both responses carry the same strong validator. An ETag on either side decides alone
 * (strong comparison: neither weak, same opaque tag); without ETags, identical Last-Modified
 * dates that are strong on both sides (at least one second before their Date, RFC 9110 §8.8.2.2).
 */
function sameStrongValidator (a: StoredHeaders, b: StoredHeaders): boolean {
  const [etagA, etagB] = [single(a.etag), single(b.etag)]
  if (etagA !== undefined || etagB !== undefined) {
    return etagA !== undefined && etagA === etagB && !etagA.startsWith('W/') && /^"[^"]*"$/.test(etagA)
  }
  const [modifiedA, modifiedB] = [parseHttpDate(single(a['last-modified'])), parseHttpDate(single(b['last-modified']))]
  if (modifiedA === undefined || modifiedA !== modifiedB) return false
  return strongDate(modifiedA, single(a.date)) && strongDate(modifiedB, single(b.date))
}

function strongDate (modified: number, date: string | undefined): boolean {
  const sent = parseHttpDate(date)
  return sent !== undefined && sent - modified >= 1000
}

function single (value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value.trim() : undefined
}
