import type { IncomingHttpHeaders } from 'node:http'
import { PassThrough, Readable } from 'node:stream'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config/index.ts'
import { cacheKey } from '../src/cache/cache-key.ts'
import { allowsAuthorized, headersToStore, mergeNotModified, notStorableReason, revalidationHeaders, SAFE_METHODS } from '../src/cache/cache-policy.ts'
import { notModified, notModifiedHeaders } from '../src/http/conditional.ts'
import { decodeEntry, encodeEntry, type CacheEntry, type StoredHeaders } from '../src/cache/entry.ts'
import {
  evaluateReuse, freshness, remainingSeconds, currentAge, requestDirectives, staleIfErrorAllowed, staleOnErrorAllowed, uselessAt,
  type Freshness, type FreshnessOptions
} from '../src/cache/freshness.ts'
import { BodyBroadcast, Flights, within, type Flight, type FlightOutcome } from '../src/cache/flight.ts'
import { HitForPass } from '../src/cache/hit-for-pass.ts'
import { cacheStatusParams, xCache, type CacheOutcome, type Forward } from '../src/cache/outcome.ts'
import { normalizeResponseHeaders, single } from '../src/http/response-headers.ts'
import { sliceStream } from '../src/http/range-slice.ts'
import { policyHeaders, targetList, withoutOwnField } from '../src/cache/targeted-cache-control.ts'
import { NotCached, UpstreamUnreachable } from '../src/errors.ts'
import { appendCacheStatus, appendVia, stripHopByHop, upstreamRequestHeaders } from '../src/http/headers.ts'
import { MemoryTier } from '../src/store/memory-tier.ts'
import { evaluateRange } from '../src/http/range.ts'
import { openStore, type CacheStore } from '../src/store/index.ts'
import { variantKey, varyNames } from '../src/cache/vary.ts'

/** A decoded entry with what the reuse decisions need, computed once. */
interface Cached {
  entry: CacheEntry
  fresh: Freshness
  /** The headers every answer from this entry carries (stored headers + Via), built once. */
  headers: StoredHeaders
}

/** What waiters of a flight learn when the leader's response headers arrive. */
interface SharedHead {
  status: number
  headers: StoredHeaders
  vary: string[] | undefined
  storeKey: string
  epoch: number
}

type Outcome = FlightOutcome<SharedHead, Cached>

/** Per-request cache state, set in onRequest for proxied requests. */
interface CacheState {
  /** Key of the URL (holds the entry, or the Vary index of its variants). */
  key: string
  /** Key of the variant this request selects (the URL key when the response does not vary). */
  storeKey: string
  requestTime: number
  /** A stored response that needs revalidation; it may also stand in for an origin error. */
  stale?: Cached
  /** The URL has variants, but none for this request. */
  varyMiss?: boolean
  /** The stamp of the URL's Vary index, when it has one (see src/cache/vary.ts). */
  epoch?: number
  /** The flight this request leads, and whether it holds the cross-process lease. */
  flight?: Flight<SharedHead, Cached>
  lease?: boolean
  /** The URL is in hit-for-pass: straight to the origin, no flight, no lease. */
  pass?: boolean
}

export interface UpstreamResponse {
  statusCode: number
  headers: IncomingHttpHeaders
  stream: Readable
}

export interface CacheApi {
  store: CacheStore
  /** Sets the conditional headers of a request about to go upstream: ours when revalidating, none when fetching to store. */
  conditionalHeaders (request: FastifyRequest, headers: IncomingHttpHeaders): IncomingHttpHeaders
  /** Answers the client from an upstream response, storing and sharing it when HTTP allows. */
  onUpstreamResponse (request: FastifyRequest, reply: FastifyReply, res: UpstreamResponse): void
  /** Answers the client when the upstream could not be reached (stale-if-error, or the error). */
  onUpstreamError (request: FastifyRequest, reply: FastifyReply, error: Error): void
  /** Drops a key from this worker's memory tier and pending reads (purges, plugins/admin.ts). */
  forget (key: string): void
  /** This worker's memory tier, and how many store calls failed here (metrics, purges). */
  memory: MemoryTier<unknown>
  storeErrors: () => number
}

declare module 'fastify' {
  interface FastifyInstance {
    cache: CacheApi
  }
  interface FastifyRequest {
    cacheState: CacheState | null
    /** What the cache did for this request (see src/cache/outcome.ts); null off the proxy path. */
    cacheOutcome: CacheOutcome | null
  }
}

const ERROR_STATUSES = new Set([500, 502, 503, 504])
const ALONE = { kind: 'alone' } as const
// RFC 9211 §2.6: a request answered by another one's forward is a collapsed miss (X-Cache says HIT).
const COALESCED = (): CacheOutcome => ({ kind: 'hit', fwd: 'miss', collapsed: true })
// Reasons that belong to one client's request, not to the URL: no hit-for-pass.
const CLIENT_REASONS = new Set(['head', 'request-no-store', 'authorization', 'method', 'partial'])
const CONDITIONAL_HEADERS = ['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range', 'range']
const ERROR_LOG_INTERVAL_MS = 60_000
const REMOTE_POLL_MS = 10
/** Longest a client's response waits for the store to confirm a write or a delete. */
const WRITE_HOLD_MS = 2000

async function cachePlugin (fastify: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts
  const options: FreshnessOptions = {
    heuristicMaxSeconds: config.heuristicMaxSeconds,
    staleWhileRevalidateSeconds: config.staleWhileRevalidateSeconds,
    staleIfErrorSeconds: config.staleIfErrorSeconds,
    staleOnErrorSeconds: config.staleOnErrorSeconds
  }
  // A lease outlives any upstream request it covers; a dead holder's lease expires with it.
  const leaseMs = Math.min(config.upstreamTimeoutMs + 1000, 60_000)
  const store = await openStore(config.cacheStore, { maxBytes: config.maxCacheBytes, commandTimeoutMs: config.redisTimeoutMs, log: fastify.log })
  const memory = new MemoryTier<Cached>(config.memoryCacheBytes)
  const flights = new Flights<SharedHead, Cached>()
  const refreshing = new Set<string>()
  const passes = new HitForPass(config.hitForPassSeconds * 1000)
  const targets = targetList(config.cacheControlField)
  // Bumped whenever an entry changes under this process: a store read started before a
  // change must not put what it read into the memory tier.
  let changeEpoch = 0
  // Resolved (and replaced) on each change another process announces: wakes waitForRemote at once.
  let wake = { changed: Promise.resolve(), notify: () => {} }
  const nextWake = (): void => { let notify = (): void => {}; wake = { changed: new Promise<void>((resolve) => { notify = resolve }), notify } }
  nextWake()
  function forget (key: string): void {
    changeEpoch++
    wake.notify()
    nextWake()
    memory.delete(key)
    reads.delete(key)
  }
  store.onRemoteChange(forget)

  let lastStoreErrorLog = 0
  let storeErrors = 0
  function storeFailed (error: unknown, action: string): void {
    storeErrors++
    const now = Date.now()
    if (now - lastStoreErrorLog < ERROR_LOG_INTERVAL_MS) return
    lastStoreErrorLog = now
    fastify.log.error({ err: error, action }, 'cache store failed; serving uncached (logged at most once a minute)')
  }

  // Writes in flight, awaited before the store closes.
  const writes = new Set<Promise<void>>()
  function track (write: Promise<void>, action: string): Promise<void> {
    const tracked: Promise<void> = write.catch((error) => storeFailed(error, action)).finally(() => writes.delete(tracked))
    writes.add(tracked)
    return tracked
  }

  function prepare (entry: CacheEntry): Cached {
    return {
      entry,
      fresh: freshness(entry.status, policyHeaders(entry.headers, targets), entry, options),
      headers: { ...withoutOwnField(entry.headers, config.cacheControlField), via: appendVia(entry.headers.via) }
    }
  }

  // Store reads under way, by key: concurrent misses for one key share a single read.
  const reads = new Map<string, Promise<Cached | undefined>>()

  async function lookup (key: string, skipMemory = false): Promise<Cached | undefined> {
    if (!skipMemory) {
      const inMemory = memory.get(key)
      if (inMemory !== undefined) {
        store.touch(key)
        return inMemory
      }
    }
    let read = reads.get(key)
    if (read === undefined) {
      read = readStore(key).finally(() => reads.delete(key))
      reads.set(key, read)
    }
    return await read
  }

  async function readStore (key: string): Promise<Cached | undefined> {
    const epoch = changeEpoch
    let raw: Buffer | undefined
    try {
      raw = await store.get(key)
    } catch (error) {
      storeFailed(error, 'get')
      return undefined
    }
    if (raw === undefined) return undefined
    let cached: Cached
    try {
      cached = prepare(decodeEntry(raw))
    } catch (error) {
      fastify.log.warn({ err: error, key }, 'deleting a cache entry that cannot be decoded')
      track(store.delete(key), 'delete')
      return undefined
    }
    if (epoch === changeEpoch) memory.set(key, cached, raw.length)
    return cached
  }

  /** Finds the stored response for a request, following the URL's Vary index to its variant. */
  async function find (key: string, headers: IncomingHttpHeaders, skipMemory = false): Promise<{ cached?: Cached, storeKey: string, varyMiss?: boolean, epoch?: number }> {
    const found = await lookup(key, skipMemory)
    if (found?.entry.vary === undefined) return { cached: found, storeKey: key }
    const epoch = found.entry.responseTime
    const storeKey = variantKey(key, found.entry.vary, headers, epoch)
    const cached = await lookup(storeKey, skipMemory)
    return { cached, storeKey, varyMiss: cached === undefined, epoch }
  }

  function put (key: string, cached: Cached, size: number, encoded: Buffer, expiresAt: number | undefined): Promise<void> {
    memory.set(key, cached, size)
    return track(store.set(key, encoded, { expiresAt }), 'set')
  }

  /** Stores a response (and the Vary index of its URL when it varies). Resolves when written. */
  function save (key: string, storeKey: string, entry: CacheEntry, epoch = entry.responseTime): { cached: Cached, written: Promise<void> } {
    const cached = prepare(entry)
    const writes: Array<Promise<void>> = []
    if (entry.vary !== undefined && storeKey !== key) {
      const index: CacheEntry = { url: entry.url, status: 0, headers: {}, requestTime: epoch, responseTime: epoch, vary: entry.vary, body: Buffer.alloc(0) }
      const encodedIndex = encodeEntry(index)
      writes.push(put(key, prepare(index), encodedIndex.length, encodedIndex, undefined))
    }
    const encoded = encodeEntry({ ...entry, vary: undefined })
    writes.push(put(storeKey, cached, encoded.length, encoded, uselessAt(cached.fresh, entry.headers, options)))
    return { cached, written: Promise.all(writes).then(() => {}) }
  }

  /** Deletes an entry; resolves once every process will miss it (never rejects). */
  function invalidate (key: string): Promise<void> {
    forget(key)
    return track(store.delete(key), 'delete')
  }

  /** Ends this request's flight (waiters get `outcome`) and releases its lease once `after` settles. */
  function settle (state: CacheState, outcome: Outcome, after: Promise<void> = Promise.resolve()): void {
    if (state.flight !== undefined) flights.finish(state.storeKey, state.flight, outcome)
    state.flight = undefined
    if (state.lease === true) {
      state.lease = false
      after.then(() => track(store.releaseLease(state.storeKey), 'lease'))
    }
  }

  /** Records the request's outcome and puts it on the reply (Cache-Status after any upstream members, X-Cache). */
  function tell (request: FastifyRequest, reply: FastifyReply, outcome: CacheOutcome, upstream?: string | string[]): void {
    request.cacheOutcome = outcome
    reply.header('cache-status', appendCacheStatus(upstream, cacheStatusParams(outcome)))
    reply.header('x-cache', xCache(outcome))
  }

  /** Answers from a stored response: 304 for a matching conditional, 206/416 for a range, else the whole response. */
  function serveStored (request: FastifyRequest, reply: FastifyReply, cached: Cached, outcome: CacheOutcome, personal?: StoredHeaders): FastifyReply {
    const { entry, fresh } = cached
    const headers = request.headers
    if (outcome.hit === true) outcome.ttl = remainingSeconds(fresh)
    request.cacheOutcome = outcome
    const common: StoredHeaders = {
      ...personal,
      age: String(Math.floor(currentAge(fresh))),
      'cache-status': appendCacheStatus(entry.headers['cache-status'], cacheStatusParams(outcome)),
      'x-cache': xCache(outcome)
    }
    if (personal?.['set-cookie'] !== undefined) reply.removeHeader('set-cookie')
    const stored = personal?.['set-cookie'] === undefined ? cached.headers : withoutSetCookie(cached.headers)
    if (headers['if-none-match'] === undefined && headers['if-modified-since'] === undefined && headers.range === undefined) {
      return reply.code(entry.status).headers(stored).headers(common).send(entry.body)
    }
    reply.removeHeader('content-length')
    if (notModified(request, entry)) {
      return reply.code(304).headers(notModifiedHeaders(stored)).headers(common).send()
    }
    reply.code(entry.status).headers(stored).headers(common)
    if (headers.range !== undefined && entry.status === 200 && request.method === 'GET') {
      const range = evaluateRange(String(headers.range), headers['if-range'] as string | undefined, entry.body.length, {
        etag: entry.headers.etag as string | undefined,
        lastModified: entry.headers['last-modified'] as string | undefined,
        date: entry.headers.date as string | undefined
      })
      if (range.kind === 'partial') {
        return reply.code(206).header('content-range', range.contentRange).header('content-length', range.end - range.start + 1)
          .send(entry.body.subarray(range.start, range.end + 1))
      }
      if (range.kind === 'unsatisfiable') {
        reply.removeHeader('content-length')
        return reply.code(416).header('content-range', range.contentRange).send()
      }
    }
    return reply.send(entry.body)
  }

  function withoutSetCookie (headers: StoredHeaders): StoredHeaders {
    const { 'set-cookie': _cookie, ...rest } = headers
    return rest
  }

  /** Forgets the headers an upstream response put on the reply, before it is answered from a stored one. */
  function clearHeaders (reply: FastifyReply): void {
    for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name)
  }

  function answered (_reply: FastifyReply): true {
    return true
  }

  /** Serves a waiter from its flight's outcome; false when it must go to the origin on its own. */
  function serveOutcome (request: FastifyRequest, reply: FastifyReply, state: CacheState, outcome: Outcome): boolean {
    if (outcome.kind === 'entry') {
      serveStored(request, reply, outcome.entry, COALESCED())
      return true
    }
    if (outcome.kind === 'failed') {
      const detail = (outcome.error as { upstreamCode?: string }).upstreamCode ?? 'error'
      tell(request, reply, { kind: 'error', fwd: 'miss', collapsed: true, detail })
      reply.send(outcome.error)
      return true
    }
    if (outcome.kind !== 'response') return false
    const { head } = outcome
    if (head.vary !== undefined && variantKey(state.key, head.vary, request.headers, head.epoch) !== head.storeKey) return false
    const body = outcome.body.subscribe()
    if (body === undefined) return false
    reply.code(head.status).headers(withoutOwnField(head.headers, config.cacheControlField))
    reply.header('via', appendVia(head.headers.via))
    tell(request, reply, { ...COALESCED(), fwdStatus: head.status }, head.headers['cache-status'])
    if (!sendRanged(request, reply, head.status, head.headers, body, 'drain')) reply.send(body)
    return true
  }

  /**
   * Answers a Range request from a whole response while it streams (RFC 9110 §14): 206 with
   * the slice, or 416. False when it cannot (not a 200, no Content-Length, no usable range):
   * the whole 200 is then a valid answer too. After the slice the rest of `body` is read on
   * (`drain`: it is being stored) or dropped (`drop`).
   */
  function sendRanged (request: FastifyRequest, reply: FastifyReply, status: number, headers: StoredHeaders, body: Readable, rest: 'drain' | 'drop'): boolean {
    const raw = request.headers.range
    const length = Number(headers['content-length'])
    if (raw === undefined || request.method !== 'GET' || status !== 200 || headers['content-length'] === undefined || !Number.isSafeInteger(length)) return false
    const range = evaluateRange(String(raw), request.headers['if-range'] as string | undefined, length, {
      etag: single(headers.etag), lastModified: single(headers['last-modified']), date: single(headers.date)
    })
    if (range.kind === 'full') return false
    const enough = rest === 'drain' ? () => { body.resume() } : () => { discard(body) }
    reply.removeHeader('content-length')
    if (range.kind === 'unsatisfiable') {
      enough()
      reply.code(416).header('content-range', range.contentRange).send()
      return true
    }
    reply.code(206).header('content-range', range.contentRange).header('content-length', range.end - range.start + 1)
      .send(sliceStream(body, range.start, range.end, enough))
    return true
  }

  /** Polls the shared store while another process fetches the key; the entry, or undefined when it gave up. */
  async function waitForRemote (state: CacheState, headers: IncomingHttpHeaders): Promise<Cached | undefined> {
    const deadline = Date.now() + leaseMs
    const stored = async (): Promise<Cached | undefined> => {
      const found = await find(state.key, headers, true)
      return found.cached !== undefined && found.cached.entry.responseTime >= state.requestTime - 1000 &&
        evaluateReuse(found.cached.fresh, headers, options) === 'fresh'
        ? found.cached
        : undefined
    }
    for (let round = 0; Date.now() < deadline; round++) {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([new Promise((resolve) => { timer = setTimeout(resolve, REMOTE_POLL_MS) }), wake.changed])
      clearTimeout(timer)
      const found = await stored()
      if (found !== undefined) return found
      // The holder may have stored and let go since the look above: one more look decides.
      if (round % 5 === 4 && !(await store.hasLease(state.storeKey).catch(() => false))) return await stored()
    }
    return undefined
  }

  /** Refreshes a stale entry without a client waiting for it (stale-while-revalidate), once per key. */
  async function refreshInBackground (state: CacheState, cached: Cached, request: FastifyRequest): Promise<void> {
    const key = state.storeKey
    if (refreshing.has(key)) return
    refreshing.add(key)
    try {
      if (!(await store.acquireLease(key, leaseMs))) return // another process is refreshing it
      try {
        const url = new URL(cached.entry.url)
        const headers: IncomingHttpHeaders = { ...upstreamRequestHeaders(request.headers), host: url.host }
        for (const name of CONDITIONAL_HEADERS) delete headers[name]
        Object.assign(headers, revalidationHeaders(cached.entry.headers))
        const requestTime = Date.now()
        const res = await fastify.upstreamAgent.request({ origin: url.origin, path: url.pathname + url.search, method: 'GET', headers })
        const responseTime = Date.now()
        // A cookie on a refresh was issued to nobody: it is never stored or passed on.
        if (res.statusCode < 200 || res.statusCode > 599) {
          discard(res.body)
          throw new Error(`invalid status code ${res.statusCode}`)
        }
        let resHeaders: StoredHeaders
        try {
          const { 'set-cookie': _cookie, ...rest } = normalizeResponseHeaders(stripHopByHop(res.headers))
          resHeaders = rest
        } catch (error) {
          discard(res.body)
          throw error
        }
        if (res.statusCode === 304) {
          await res.body.dump()
          await save(state.key, key, { ...cached.entry, headers: mergeNotModified(cached.entry.headers, resHeaders), requestTime, responseTime }).written
          return
        }
        if (ERROR_STATUSES.has(res.statusCode)) {
          await res.body.dump()
          return // keep serving what we have
        }
        const policy = policyHeaders(resHeaders, targets)
        const reason = notStorableReason({ method: 'GET', headers }, res.statusCode, policy, { cacheSetCookie: config.cacheSetCookie })
        const chunks: Buffer[] = []
        let size = 0
        if (reason === undefined) {
          for await (const chunk of res.body) {
            size += (chunk as Buffer).length
            if (size > config.maxEntryBytes) break // leaving the loop destroys the body
            chunks.push(chunk as Buffer)
          }
        } else {
          await res.body.dump()
        }
        const vary = varyNames(resHeaders.vary)
        const declared = resHeaders['content-length']
        if (reason === undefined && declared !== undefined && Number(declared) !== size) return // cut short: keep what we have
        if (reason !== undefined || size > config.maxEntryBytes || vary === '*') {
          invalidate(key) // the origin no longer lets this be cached
          return
        }
        const epoch = state.epoch ?? responseTime
        const storeKey = vary === undefined ? state.key : variantKey(state.key, vary, request.headers, epoch)
        await save(state.key, storeKey, { url: url.href, status: res.statusCode, headers: headersToStore(resHeaders, policy), requestTime, responseTime, vary, body: Buffer.concat(chunks, size) }, epoch).written
      } finally {
        await store.releaseLease(key)
      }
    } catch (error) {
      request.log.warn({ err: error, url: cached.entry.url }, 'background revalidation failed')
    } finally {
      refreshing.delete(key)
    }
  }

  fastify.decorateRequest('cacheState', null)
  fastify.decorateRequest('cacheOutcome', null)

  /** The fast path: a fresh, plain hit from this worker's memory tier, answered without a promise. */
  function memoryHit (key: string, headers: IncomingHttpHeaders): Cached | undefined {
    // Another process changed entries since this one last looked: not before catching up.
    if (headers.authorization !== undefined || store.changedElsewhere()) return undefined
    let cached = memory.get(key)
    if (cached?.entry.vary !== undefined) {
      const variant = variantKey(key, cached.entry.vary, headers, cached.entry.responseTime)
      cached = memory.get(variant)
      if (cached !== undefined) store.touch(variant)
    } else if (cached !== undefined) {
      store.touch(key)
    }
    return cached !== undefined && evaluateReuse(cached.fresh, headers, options) === 'fresh' ? cached : undefined
  }

  fastify.addHook('onRequest', (request, reply, done) => {
    const url = request.upstream
    if (url === null) return done()
    const key = cacheKey(url)
    const state: CacheState = { key, storeKey: key, requestTime: Date.now() }
    request.cacheState = state
    if (request.method !== 'GET' && request.method !== 'HEAD') return done()
    const hit = memoryHit(key, request.headers)
    if (hit !== undefined) {
      serveStored(request, reply, hit, { kind: 'hit', hit: true, memory: true })
      return
    }
    lookupOrJoin(request, reply, state).then((answered) => { if (!answered) done() }, done)
  })

  /** Answers from the store or from another request's fetch (true), or leaves the request to the proxy route (false). */
  async function lookupOrJoin (request: FastifyRequest, reply: FastifyReply, state: CacheState): Promise<boolean> {
    const key = state.key
    const headers = request.headers
    if (store.changedElsewhere()) await store.syncChanges()
    if (passes.has(key)) {
      state.pass = true
      return false
    }
    // Already being fetched in this worker: wait for it rather than ask the store.
    const early = headers.authorization === undefined && headers.range === undefined ? flights.get(key) : undefined
    // A flight that ended without a shareable answer (unstorable, failed, timed out) sends its
    // waiters to the origin on their own, never behind a new flight: waits must not chain.
    let alone = false
    if (early !== undefined) {
      const outcome = await within(early.outcome, leaseMs, ALONE)
      if (serveOutcome(request, reply, state, outcome)) return true
      alone = outcome.kind === 'alone'
    }
    const found = await find(key, headers)
    state.storeKey = found.storeKey
    state.varyMiss = found.varyMiss
    state.epoch = found.epoch
    const authorized = headers.authorization !== undefined
    // RFC 9111 §3.5: a request with Authorization reuses only responses that allow it.
    if (found.cached !== undefined && (!authorized || allowsAuthorized(policyHeaders(found.cached.entry.headers, targets)))) {
      const reuse = evaluateReuse(found.cached.fresh, headers, options)
      if (reuse === 'fresh') return answered(serveStored(request, reply, found.cached, { kind: 'hit', hit: true }))
      if (reuse === 'stale') return answered(serveStored(request, reply, found.cached, { kind: 'stale', hit: true, detail: 'stale' }))
      if (reuse === 'stale-while-revalidate') {
        refreshInBackground(state, found.cached, request)
        return answered(serveStored(request, reply, found.cached, { kind: 'stale', hit: true, fwd: 'stale' }))
      }
      state.stale = found.cached
    }
    if ('only-if-cached' in requestDirectives(headers)) {
      // RFC 9111 §5.2.1.7
      tell(request, reply, { kind: 'error', fwd: 'miss', detail: 'only-if-cached' })
      return answered(reply.send(new NotCached()))
    }
    // Authorized requests go on their own. A GET with a Range leads or joins like any other:
    // the whole response is fetched once, stored, and the range answered from it (as Varnish
    // does), so a media player's second `Range: bytes=0-` is a hit.
    if (alone || authorized || (headers.range !== undefined && request.method !== 'GET')) return false

    const flight = flights.get(state.storeKey)
    if (flight !== undefined) {
      const outcome = await within(flight.outcome, leaseMs, ALONE)
      if (serveOutcome(request, reply, state, outcome)) return true
      if (outcome.kind !== 'look-again') return false
      // Another process stored a response for this URL: this request's own variant may be among it.
      const again = await find(key, headers, true)
      if (again.cached !== undefined && evaluateReuse(again.cached.fresh, headers, options) === 'fresh') return answered(serveStored(request, reply, again.cached, COALESCED()))
      return false
    }
    if (request.method === 'HEAD') return false // a HEAD response has no body to share or store
    // The flight is this request's from now on. Whatever happens to the request (answered,
    // failed, or its client gone before the origin answered, when reply-from calls nothing
    // back), the flight ends with it.
    const mine = flights.start(state.storeKey)
    state.flight = mine
    reply.raw.once('close', () => { if (state.flight !== undefined && !state.flight.settled) settle(state, ALONE) })
    let leased: boolean
    try {
      leased = await store.acquireLease(state.storeKey, leaseMs)
    } catch (error) {
      storeFailed(error, 'lease')
      return false // a broken store: lead in this process only
    }
    if (leased) {
      state.lease = true
      // The client left while the lease was being taken: give it back at once.
      if (mine.settled) settle(state, ALONE)
      return false
    }
    // Another process is fetching this key: wait for it to store the response.
    const remote = await waitForRemote(state, headers)
    state.flight = undefined
    // Waiters here may want other variants than the one found for this request: they look for their own.
    flights.finish(state.storeKey, mine, remote === undefined ? ALONE : { kind: 'look-again' })
    if (remote !== undefined) return answered(serveStored(request, reply, remote, COALESCED()))
    return false
  }

  function conditionalHeaders (request: FastifyRequest, headers: IncomingHttpHeaders): IncomingHttpHeaders {
    const state = request.cacheState
    if (state === null || (request.method !== 'GET' && request.method !== 'HEAD')) return headers
    // A request that will be stored asks for the whole response; the client's own
    // conditions are answered here from it.
    if (state.flight !== undefined || state.stale !== undefined) {
      for (const name of CONDITIONAL_HEADERS) delete headers[name]
    }
    if (state.stale !== undefined) Object.assign(headers, revalidationHeaders(state.stale.entry.headers))
    return headers
  }

  /** True when the client has gone: nothing more is sent to it. */
  function gone (reply: FastifyReply): boolean {
    return reply.sent || reply.raw.destroyed || reply.raw.writableEnded
  }

  /** Drops an upstream body nobody will read (undici's destroy emits an error: never uncaught). */
  function discard (stream: Readable): void {
    stream.on('error', () => {})
    stream.destroy()
  }

  function onUpstreamResponse (request: FastifyRequest, reply: FastifyReply, res: UpstreamResponse): void {
    const state = request.cacheState as CacheState
    const url = request.upstream as URL
    const status = res.statusCode
    // reply-from has already answered 502 for a status Fastify refuses, and calls this anyway.
    if (reply.sent || status < 100 || status > 599) {
      discard(res.stream)
      if (!reply.sent) onUpstreamError(request, reply, Object.assign(new UpstreamUnreachable(url.host, `invalid status code ${status}`), { upstreamCode: 'invalid-status' }))
      return
    }
    let headers: StoredHeaders
    try {
      headers = normalizeResponseHeaders(stripHopByHop(res.headers))
    } catch (error) {
      discard(res.stream)
      onUpstreamError(request, reply, Object.assign(new UpstreamUnreachable(url.host, (error as Error).message), { upstreamCode: 'invalid-headers' }))
      return
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      tell(request, reply, { kind: 'pass', fwd: 'method' }, headers['cache-status'])
      // RFC 9111 §4.4; the client hears back only once no process can serve the old entry.
      const invalidated = !SAFE_METHODS.has(request.method) && status >= 200 && status < 400 ? invalidateAfterUnsafe(url, headers) : Promise.resolve()
      within(invalidated, WRITE_HOLD_MS, undefined).then(() => {
        if (gone(reply)) discard(res.stream)
        else reply.send(res.stream)
      })
      return
    }
    const stale = state.stale
    if (stale !== undefined && status === 304) {
      // RFC 9111 §4.3.4: the 304 refreshes the stored response, which answers the client;
      // a Set-Cookie on it was meant for this client alone.
      res.stream.resume()
      const { cached, written } = save(state.key, state.storeKey, { ...stale.entry, headers: mergeNotModified(stale.entry.headers, headers), requestTime: state.requestTime, responseTime: Date.now() })
      settle(state, { kind: 'entry', entry: cached }, written)
      const personal = headers['set-cookie'] === undefined ? undefined : { 'set-cookie': headers['set-cookie'] }
      within(written, WRITE_HOLD_MS, undefined).then(() => {
        if (gone(reply)) return
        clearHeaders(reply)
        serveStored(request, reply, cached, { kind: 'revalidated', fwd: 'stale', fwdStatus: 304 }, personal)
      })
      return
    }
    if (stale !== undefined && ERROR_STATUSES.has(status) && staleIfErrorAllowed(stale.fresh, request.headers, options)) {
      discard(res.stream)
      settle(state, { kind: 'entry', entry: stale })
      clearHeaders(reply)
      serveStored(request, reply, stale, { kind: 'stale', fwd: 'stale', fwdStatus: status })
      return
    }
    const fwd: Forward = stale !== undefined ? 'stale' : state.pass === true ? 'bypass' : state.varyMiss === true ? 'vary-miss' : 'miss'
    const kind = state.pass === true ? 'pass' : 'miss'
    const declared = headers['content-length'] === undefined ? undefined : Number(headers['content-length'])
    const policy = policyHeaders(headers, targets)
    let reason = request.method === 'HEAD'
      ? 'head'
      : notStorableReason({ method: 'GET', headers: request.headers }, status, policy, { cacheSetCookie: config.cacheSetCookie })
    if (reason === undefined && declared !== undefined && declared > config.maxEntryBytes) reason = 'too-large'
    // A body delimited only by the connection closing cannot be told from one cut off by a reset.
    if (reason === undefined && declared === undefined && /close/i.test(String(res.headers.connection ?? ''))) reason = 'unframed'
    // The client's Range was taken off this request when it leads a flight or revalidates.
    const rangeTaken = state.flight !== undefined || stale !== undefined
    if (reason !== undefined) {
      if (!CLIENT_REASONS.has(reason)) passes.add(state.key)
      settle(state, { kind: 'alone' })
      if (reason === 'unframed') reply.header('connection', 'close') // the client judges the end as we do
      tell(request, reply, { kind, fwd, fwdStatus: status, detail: reason }, headers['cache-status'])
      if (!rangeTaken || !sendRanged(request, reply, status, headers, res.stream, 'drop')) reply.send(res.stream)
      return
    }
    passes.delete(state.key)
    const vary = varyNames(headers.vary) as string[] | undefined
    const responseTime = Date.now()
    const epoch = state.epoch ?? responseTime
    const storeKey = vary === undefined ? state.key : variantKey(state.key, vary, request.headers, epoch)
    const storedHeaders = headersToStore(headers, policy)
    const body = new BodyBroadcast(res.stream, config.maxEntryBytes, (whole) => {
      if (whole === undefined || (declared !== undefined && whole.length !== declared)) {
        settle(state, { kind: 'alone' })
        return undefined
      }
      const { cached, written } = save(state.key, storeKey, { url: url.href, status, headers: storedHeaders, requestTime: state.requestTime, responseTime, vary, body: whole }, epoch)
      settle(state, { kind: 'entry', entry: cached }, written)
      return written
    }, WRITE_HOLD_MS)
    state.flight?.resolve({ kind: 'response', head: { status, headers: storedHeaders, vary, storeKey, epoch }, body })
    tell(request, reply, { kind, fwd, fwdStatus: status, stored: true }, headers['cache-status'])
    const mine = body.subscribe() as Readable
    body.start()
    if (notModified(request, { status, headers })) {
      mine.resume() // the body is still read and stored; this client needs none of it
      reply.removeHeader('content-length')
      reply.code(304).headers(notModifiedHeaders(headers)).send()
      return
    }
    if (request.headers.range !== undefined && headers['content-length'] === undefined && request.method === 'GET' && status === 200) {
      sendRangedWhenComplete(request, reply, headers, mine)
      return
    }
    if (!sendRanged(request, reply, status, headers, mine, 'drain')) reply.send(mine)
  }

  /** A Range request for a body of unknown length: read it whole (up to MAX_ENTRY_BYTES), then slice. */
  function sendRangedWhenComplete (request: FastifyRequest, reply: FastifyReply, headers: StoredHeaders, body: Readable): void {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk)
      size += chunk.length
      if (size <= config.maxEntryBytes) return
      // Too large to hold: the whole 200 is a valid answer to a Range request as well.
      body.off('data', onData)
      body.pause()
      const whole = new PassThrough()
      for (const held of chunks) whole.write(held)
      reply.send(body.pipe(whole))
    }
    body.on('data', onData)
    body.once('error', (error) => { if (!reply.sent) reply.send(error) })
    body.once('end', () => {
      if (size > config.maxEntryBytes || reply.sent) return
      const whole = Buffer.concat(chunks, size)
      const withLength = { ...headers, 'content-length': String(size) }
      if (!sendRanged(request, reply, 200, withLength, Readable.from([whole]), 'drop')) reply.header('content-length', size).send(whole)
    })
  }

  /** RFC 9111 §4.4: a successful unsafe request invalidates its URL and same-origin Location/Content-Location. */
  function invalidateAfterUnsafe (url: URL, headers: StoredHeaders): Promise<unknown> {
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

  function onUpstreamError (request: FastifyRequest, reply: FastifyReply, error: Error): void {
    const state = request.cacheState
    if (reply.sent) return
    // Only an origin that could not be reached may be stood in for; a refusal (403, 413) is ours.
    const unreachable = [502, 503, 504].includes((error as { statusCode?: number }).statusCode ?? 0)
    if (state?.stale !== undefined && unreachable && staleOnErrorAllowed(state.stale.fresh, request.headers, options)) {
      settle(state, { kind: 'entry', entry: state.stale })
      const code = (error as { upstreamCode?: string }).upstreamCode ?? 'error'
      clearHeaders(reply)
      serveStored(request, reply, state.stale, { kind: 'stale', fwd: 'stale', detail: code })
      return
    }
    // Waiters for the same URL get this error at once rather than each waiting out the origin again.
    if (state !== null) settle(state, { kind: 'failed', error })
    clearHeaders(reply)
    tell(request, reply, { kind: 'error', fwd: state?.stale !== undefined ? 'stale' : 'miss', detail: (error as { upstreamCode?: string }).upstreamCode ?? 'error' })
    reply.send(error)
  }

  fastify.decorate('cache', { store, conditionalHeaders, onUpstreamResponse, onUpstreamError, forget, memory, storeErrors: () => storeErrors })
  fastify.addHook('onClose', async () => {
    await Promise.all(writes)
    memory.clear()
    await store.close().catch((error) => fastify.log.warn({ err: error }, 'closing the cache store failed'))
  })
}

export default fp(cachePlugin, { name: 'cache', fastify: '5.x', dependencies: ['upstream'] })
