import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import type { StoredHeaders } from '../cache/entry.ts'
import { currentAge, remainingSeconds } from '../cache/freshness.ts'
import { cacheStatusParams, xCache, type CacheOutcome } from '../cache/outcome.ts'
import { notModified, notModifiedHeaders } from '../http/conditional.ts'
import { appendCacheStatus } from '../http/headers.ts'
import { evaluateRange, evaluateStoredPartial, parseContentRange } from '../http/range.ts'
import { sliceStream } from '../http/range-slice.ts'
import { single } from '../http/response-headers.ts'
import { discard, type Answer, type Cached } from './types.ts'

/** The request fields an answer depends on. */
export interface Asking {
  method: string
  headers: IncomingHttpHeaders
}

/** The Cache-Status (after any upstream members) and X-Cache headers of an outcome. */
export function outcomeHeaders (outcome: CacheOutcome, upstream?: string | string[]): StoredHeaders {
  return { 'cache-status': appendCacheStatus(upstream, cacheStatusParams(outcome)), 'x-cache': xCache(outcome) }
}

/**
 * Answers a Range request from a whole 200 (RFC 9110 §14): 206 with the slice, or 416;
 * undefined when the whole response is the answer (no Range, not a GET or a 200, an
 * unknown length, a range to ignore). A Buffer body is sliced at once; a stream is sliced
 * while it flows, and after the slice the rest is read on (`drain`: it is being stored) or
 * dropped (`drop`). The answer's headers go over the full response's.
 */
export function answerRange (request: Asking, status: number, headers: StoredHeaders, body: Buffer | Readable, rest: 'drain' | 'drop' = 'drop'): Omit<Answer, 'outcome'> | undefined {
  const raw = request.headers.range
  const length = Buffer.isBuffer(body) ? body.length : Number(headers['content-length'])
  if (raw === undefined || request.method !== 'GET' || status !== 200) return undefined
  if ((!Buffer.isBuffer(body) && headers['content-length'] === undefined) || !Number.isSafeInteger(length)) return undefined
  const range = evaluateRange(String(raw), single(request.headers['if-range']), length, {
    etag: single(headers.etag), lastModified: single(headers['last-modified']), date: single(headers.date)
  })
  if (range.kind === 'full') return undefined
  const enough = Buffer.isBuffer(body) ? () => {} : rest === 'drain' ? () => { body.resume() } : () => { discard(body) }
  if (range.kind === 'unsatisfiable') {
    enough()
    return { remove: ['content-length'], status: 416, headers: { 'content-range': range.contentRange } }
  }
  const slice = Buffer.isBuffer(body) ? body.subarray(range.start, range.end + 1) : sliceStream(body, range.start, range.end, enough)
  return {
    remove: ['content-length'],
    status: 206,
    headers: { 'content-range': range.contentRange, 'content-length': String(range.end - range.start + 1) },
    body: slice
  }
}

/**
 * `base` answered as a range when the request asks for one (see answerRange); the range is
 * judged by `judgedBy`, the full response's headers (by default the ones `base` sets).
 */
export function withRange (request: Asking, base: Answer & { status: number, headers: StoredHeaders }, body: Buffer | Readable, rest: 'drain' | 'drop', judgedBy = base.headers): Answer {
  const ranged = answerRange(request, base.status, judgedBy, body, rest)
  if (ranged === undefined) return { ...base, body }
  const headers = { ...base.headers, ...ranged.headers }
  if (ranged.status === 416) delete headers['content-length']
  return { ...base, ...ranged, remove: [...(base.remove ?? []), ...(ranged.remove ?? [])], headers }
}

function withoutSetCookie (headers: StoredHeaders): StoredHeaders {
  const { 'set-cookie': _cookie, ...rest } = headers
  return rest
}

/** The range of a stored 206 a request asks for, and where the stored part starts; undefined when none fits. */
function storedPart (request: Asking, cached: Cached): { start: number, end: number, contentRange: string, offset: number } | undefined {
  const { headers } = cached.entry
  // Validators are compared with a whole representation; a part never answers a conditional request.
  if (request.method !== 'GET' || request.headers['if-none-match'] !== undefined || request.headers['if-modified-since'] !== undefined) return undefined
  const part = parseContentRange(headers['content-range'])
  if (part === undefined) return undefined
  const range = evaluateStoredPartial(single(request.headers.range), single(request.headers['if-range']), part, {
    etag: single(headers.etag), lastModified: single(headers['last-modified']), date: single(headers.date)
  })
  return range.kind === 'partial' ? { ...range, offset: part.start } : undefined
}

/**
 * Whether a stored response may answer this request at all: a stored 206 answers only a GET
 * whose one range lies inside it (RFC 9111 §3.3); anything else goes on as a miss.
 */
export function canAnswer (request: Asking, cached: Cached): boolean {
  return cached.entry.status !== 206 || storedPart(request, cached) !== undefined
}

/**
 * Answers from a stored response: 304 for a matching conditional, 206/416 for a range, else
 * the whole response. `personal` headers (a Set-Cookie from a 304) go to this client only.
 */
export function answerStored (request: Asking, cached: Cached, outcome: CacheOutcome, personal?: StoredHeaders): Answer {
  const { entry, fresh } = cached
  if (outcome.hit === true) outcome.ttl = remainingSeconds(fresh)
  const common: StoredHeaders = {
    ...personal,
    age: String(Math.floor(currentAge(fresh))),
    ...outcomeHeaders(outcome, entry.headers['cache-status'])
  }
  const cookie = personal?.['set-cookie'] !== undefined
  const remove = cookie ? ['set-cookie'] : []
  const stored = cookie ? withoutSetCookie(cached.headers) : cached.headers
  const part = entry.status === 206 ? storedPart(request, cached) : undefined
  if (part !== undefined) {
    // RFC 9111 §3.3: only the requested bytes of the stored part, never the whole part.
    const length = String(part.end - part.start + 1)
    const body = entry.body.subarray(part.start - part.offset, part.end - part.offset + 1)
    return { outcome, remove: [...remove, 'content-length'], status: 206, headers: { ...stored, ...common, 'content-range': part.contentRange, 'content-length': length }, body }
  }
  const headers = request.headers
  if (headers['if-none-match'] === undefined && headers['if-modified-since'] === undefined && headers.range === undefined) {
    return { outcome, remove, status: entry.status, base: stored, headers: common, body: entry.body }
  }
  remove.push('content-length')
  if (notModified(request, entry)) {
    return { outcome, remove, status: 304, headers: { ...notModifiedHeaders(stored), ...common } }
  }
  return withRange(request, { outcome, remove, status: entry.status, headers: { ...stored, ...common } }, entry.body, 'drop')
}
