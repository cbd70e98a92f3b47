import { PassThrough, type Readable } from 'node:stream'
import { mergeNotModified, SAFE_METHODS } from '../cache/cache-policy.ts'
import type { StoredHeaders } from '../cache/entry.ts'
import { BodyBroadcast, within } from '../cache/flight.ts'
import { staleIfErrorAllowed, staleOnErrorAllowed, type FreshnessOptions } from '../cache/freshness.ts'
import type { HitForPass } from '../cache/hit-for-pass.ts'
import type { CacheOutcome, Forward } from '../cache/outcome.ts'
import { policyHeaders } from '../cache/targeted-cache-control.ts'
import { parseCacheControl } from '../cache/cache-control.ts'
import { UpstreamUnreachable } from '../errors.ts'
import { notModified, notModifiedHeaders } from '../http/conditional.ts'
import { answerStored, outcomeHeaders, withRange, type Asking } from './answer.ts'
import type { Coalescing } from './coalescing.ts'
import { invalidateAfterUnsafe } from './invalidate.ts'
import type { Writer } from './writer.ts'
import {
  ALONE, discard, ERROR_STATUSES, errorDetail, WRITE_HOLD_MS,
  type Answer, type Cached, type CacheState, type EngineRequest, type UpstreamResponse
} from './types.ts'
import type { UpstreamHeaders } from './upstream-headers.ts'

// Reasons that belong to one client's request, not to the URL: no hit-for-pass.
const CLIENT_REASONS = new Set(['head', 'request-no-store', 'authorization', 'method', 'partial'])

export interface ResponsePathParts {
  writer: Writer
  coalescing: Coalescing
  passes: HitForPass
  freshness: FreshnessOptions
  targets: readonly string[]
  maxEntryBytes: number
}

/**
 * A request after the origin answered (or could not be reached): the answer for the client,
 * the response stored and shared with the flight's waiters when HTTP allows.
 */
export class ResponsePath {
  constructor (private readonly parts: ResponsePathParts) {}

  /** The answer to an upstream response; `upstream` is its headers, normalised once (upstream-headers.ts). */
  onResponse (request: EngineRequest, res: UpstreamResponse, upstream: UpstreamHeaders): Answer | Promise<Answer> {
    const { state } = request
    const status = res.statusCode
    const invalid = status < 100 || status > 599 ? `invalid status code ${status}` : upstream.error?.message
    if (invalid !== undefined || upstream.headers === undefined) {
      discard(res.stream)
      const code = status < 100 || status > 599 ? 'invalid-status' : 'invalid-headers'
      return this.onError(request, state, Object.assign(new UpstreamUnreachable(request.upstream.host, invalid ?? ''), { upstreamCode: code }))
    }
    const headers = upstream.headers
    if (request.method !== 'GET' && request.method !== 'HEAD') return this.unsafe(request, res, headers)
    const stale = state.stale
    if (stale !== undefined && status === 304) return this.revalidated(request, stale, headers, res.stream)
    if (stale !== undefined && ERROR_STATUSES.has(status) && staleIfErrorAllowed(stale.fresh, request.headers, this.parts.freshness)) {
      discard(res.stream)
      this.parts.coalescing.settle(state, { kind: 'entry', entry: stale })
      return { ...answerStored(request, stale, { kind: 'stale', fwd: 'stale', fwdStatus: status }), clear: true }
    }
    const policy = policyHeaders(headers, this.parts.targets)
    const reason = this.parts.writer.refusal(request, status, headers, policy, res.headers.connection)
    if (reason !== undefined) return this.notStored(request, status, headers, res.stream, reason)
    // A URL in hit-for-pass (too large, say) has its ranges fetched as they are: a part of it
    // neither ends the pass nor takes store space it could not be answered from meanwhile.
    if (status === 206 && state.pass === true) return this.notStored(request, status, headers, res.stream, 'partial')
    return this.stored(request, status, headers, policy, res.stream)
  }

  /** The answer when the origin could not be reached: a stale entry that may stand in, or the error. */
  onError (request: Asking, state: CacheState | null, error: Error): Answer {
    // Only an origin that could not be reached may be stood in for; a refusal (403, 413) is ours.
    const unreachable = [502, 503, 504].includes((error as { statusCode?: number }).statusCode ?? 0)
    if (state?.stale !== undefined && unreachable && staleOnErrorAllowed(state.stale.fresh, request.headers, this.parts.freshness)) {
      this.parts.coalescing.settle(state, { kind: 'entry', entry: state.stale })
      return { ...answerStored(request, state.stale, { kind: 'stale', fwd: 'stale', detail: errorDetail(error) }), clear: true }
    }
    // Waiters for the same URL get this error at once rather than each waiting out the origin again.
    if (state !== null) this.parts.coalescing.settle(state, { kind: 'failed', error })
    const outcome: CacheOutcome = { kind: 'error', fwd: state?.stale !== undefined ? 'stale' : 'miss', detail: errorDetail(error) }
    return { outcome, clear: true, headers: outcomeHeaders(outcome), error }
  }

  /** RFC 9111 §4.4: passed on; the client hears back only once no process can serve the old entry. */
  private unsafe (request: EngineRequest, res: UpstreamResponse, headers: StoredHeaders): Promise<Answer> {
    const status = res.statusCode
    const outcome: CacheOutcome = { kind: 'pass', fwd: 'method' }
    const invalidated = !SAFE_METHODS.has(request.method) && status >= 200 && status < 400
      ? invalidateAfterUnsafe(request.upstream, headers, (key) => this.parts.writer.invalidate(key))
      : Promise.resolve()
    const policy = policyHeaders(headers, this.parts.targets)
    const reusable = reusablePost(request, status, headers, policy) && this.parts.writer.refusal(request, status, headers, policy, res.headers.connection) === undefined
    return within(invalidated, WRITE_HOLD_MS, undefined).then(() => reusable
      ? this.storedPost(request, status, headers, policy, res.stream)
      : { outcome, headers: outcomeHeaders(outcome, headers['cache-status']), body: res.stream })
  }

  /**
   * A POST response that may answer later GETs, stored once the old entry is gone; as for a GET
   * miss, the client gets the last byte only once the write is confirmed (BodyBroadcast).
   */
  private storedPost (request: EngineRequest, status: number, headers: StoredHeaders, policy: StoredHeaders, stream: Readable): Answer {
    const { state } = request
    this.parts.passes.delete(state.key)
    const outcome: CacheOutcome = { kind: 'pass', fwd: 'method', fwdStatus: status, ...(headers['content-length'] === undefined ? {} : { stored: true }) }
    const pending = this.parts.writer.begin({
      key: state.key, url: request.upstream.href, status, headers, policy, requestHeaders: request.headers, requestTime: state.requestTime, responseTime: Date.now()
    })
    const body = new BodyBroadcast(stream, this.parts.maxEntryBytes, (whole) => pending.commit(whole)?.written, WRITE_HOLD_MS)
    const mine = body.subscribe() as Readable
    body.start()
    return { outcome, headers: outcomeHeaders(outcome, headers['cache-status']), body: mine }
  }

  /** RFC 9111 §4.3.4: the 304 refreshes the stored response, which answers the client. */
  private async revalidated (request: EngineRequest, stale: Cached, headers: StoredHeaders, body: Readable): Promise<Answer> {
    const { state } = request
    body.resume()
    const entry = { ...stale.entry, headers: mergeNotModified(stale.entry.headers, headers), requestTime: state.requestTime, responseTime: Date.now() }
    const { cached, written } = this.parts.writer.save(state.key, state.storeKey, entry)
    this.parts.coalescing.settle(state, { kind: 'entry', entry: cached }, written)
    // A Set-Cookie on the 304 was meant for this client alone.
    const personal = headers['set-cookie'] === undefined ? undefined : { 'set-cookie': headers['set-cookie'] }
    await within(written, WRITE_HOLD_MS, undefined)
    return { ...answerStored(request, cached, { kind: 'revalidated', fwd: 'stale', fwdStatus: 304 }, personal), clear: true }
  }

  private forward (state: CacheState): { kind: 'pass' | 'miss', fwd: Forward } {
    const fwd: Forward = state.stale !== undefined ? 'stale' : state.pass === true ? 'bypass' : state.varyMiss === true ? 'vary-miss' : 'miss'
    return { kind: state.pass === true ? 'pass' : 'miss', fwd }
  }

  /** A response this cache does not store: passed on (the client's range sliced from it when it was taken off). */
  private notStored (request: EngineRequest, status: number, headers: StoredHeaders, body: Readable, reason: string): Answer {
    const { state } = request
    // The client's Range was taken off this request when it leads a flight or revalidates.
    const rangeTaken = state.flight !== undefined || state.stale !== undefined
    if (!CLIENT_REASONS.has(reason)) this.parts.passes.add(state.key)
    this.parts.coalescing.settle(state, ALONE)
    const outcome: CacheOutcome = { ...this.forward(state), fwdStatus: status, detail: reason }
    const told = outcomeHeaders(outcome, headers['cache-status'])
    // An unframed body: the client judges the end as we do.
    if (reason === 'unframed') told.connection = 'close'
    if (!rangeTaken) return { outcome, headers: told, body }
    return withRange(request, { outcome, status, headers: told }, body, 'drop', headers)
  }

  /** A storable response: streamed to the client and the flight's waiters while it is stored. */
  private stored (request: EngineRequest, status: number, headers: StoredHeaders, policy: StoredHeaders, stream: Readable): Answer | Promise<Answer> {
    const { state, upstream } = request
    const { coalescing } = this.parts
    // RFC 9211 §2.7: `stored` goes out with the headers, so only when storing is decided by then: a
    // declared length within MAX_ENTRY_BYTES (refusal), and the write confirmed before the last byte
    // (BodyBroadcast). A chunked body may still outgrow the limit or be cut short: not said.
    const outcome: CacheOutcome = { ...this.forward(state), fwdStatus: status, ...(headers['content-length'] === undefined ? {} : { stored: true }) }
    this.parts.passes.delete(state.key)
    const pending = this.parts.writer.begin({
      key: state.key, epoch: state.epoch, url: upstream.href, status, headers, policy, requestHeaders: request.headers, requestTime: state.requestTime, responseTime: Date.now()
    })
    const body = new BodyBroadcast(stream, this.parts.maxEntryBytes, (whole) => {
      const saved = pending.commit(whole, state.lease === true ? state.storeKey : undefined)
      if (saved?.leaseReleased === true) state.lease = false // released by the write itself
      coalescing.settle(state, saved === undefined ? ALONE : { kind: 'entry', entry: saved.cached }, saved?.written)
      return saved?.written
    }, WRITE_HOLD_MS)
    state.flight?.resolve({ kind: 'response', head: { status, headers: pending.storedHeaders, vary: pending.vary, storeKey: pending.storeKey, epoch: pending.epoch }, body })
    const told = outcomeHeaders(outcome, headers['cache-status'])
    const mine = body.subscribe() as Readable
    body.start()
    if (notModified(request, { status, headers })) {
      mine.resume() // the body is still read and stored; this client needs none of it
      return { outcome, remove: ['content-length'], status: 304, headers: { ...told, ...notModifiedHeaders(headers) } }
    }
    if (request.headers.range !== undefined && headers['content-length'] === undefined && request.method === 'GET' && status === 200) {
      return this.rangeWhenComplete(request, outcome, told, headers, mine)
    }
    return withRange(request, { outcome, status, headers: told }, mine, 'drain', headers)
  }

  /** A Range request for a body of unknown length: read it whole (up to MAX_ENTRY_BYTES), then slice. */
  private rangeWhenComplete (request: Asking, outcome: CacheOutcome, told: StoredHeaders, headers: StoredHeaders, body: Readable): Promise<Answer> {
    const max = this.parts.maxEntryBytes
    return new Promise((resolve) => {
      const chunks: Buffer[] = []
      let size = 0
      const onData = (chunk: Buffer): void => {
        chunks.push(chunk)
        size += chunk.length
        if (size <= max) return
        // Too large to hold: the whole 200 is a valid answer to a Range request as well.
        body.off('data', onData)
        body.pause()
        const whole = new PassThrough()
        for (const held of chunks) whole.write(held)
        resolve({ outcome, headers: told, body: body.pipe(whole) })
      }
      body.on('data', onData)
      body.once('error', (error) => resolve({ outcome, headers: told, error }))
      body.once('end', () => {
        if (size > max) return
        const length = String(size)
        const base = { outcome, status: 200, headers: { ...told, 'content-length': length } }
        resolve(withRange(request, base, Buffer.concat(chunks, size), 'drop', { ...headers, 'content-length': length }))
      })
    })
  }
}

/**
 * RFC 9110 §9.3.3, RFC 9111 §4: a POST response with explicit freshness (max-age, s-maxage or
 * Expires) and a Content-Location naming the request's own URL may answer later GETs of it.
 */
function reusablePost (request: EngineRequest, status: number, headers: StoredHeaders, policy: StoredHeaders): boolean {
  if (request.method !== 'POST' || status < 200 || status > 299 || typeof headers['content-location'] !== 'string') return false
  const cc = parseCacheControl(policy['cache-control'])
  if (!('max-age' in cc) && !('s-maxage' in cc) && policy.expires === undefined) return false
  try {
    return new URL(headers['content-location'], request.upstream).href === request.upstream.href
  } catch {
    return false
  }
}
