import type { IncomingHttpHeaders } from 'node:http'
import { revalidationHeaders } from '../cache/cache-policy.ts'
import { evaluateReuse, requestDirectives, type FreshnessOptions } from '../cache/freshness.ts'
import type { HitForPass } from '../cache/hit-for-pass.ts'
import { withoutOwnField } from '../cache/targeted-cache-control.ts'
import { variantKey } from '../cache/vary.ts'
import { appendVia } from '../http/headers.ts'
import { NotCached } from '../errors.ts'
import { answerStored, canAnswer, outcomeHeaders, withRange } from './answer.ts'
import type { Coalescing } from './coalescing.ts'
import type { Found, Lookup } from './lookup.ts'
import type { Refresher } from './refresh.ts'
import { COALESCED, CONDITIONAL_HEADERS, errorDetail, type Answer, type CacheState, type EngineRequest, type Outcome } from './types.ts'

export interface RequestPathParts {
  lookup: Lookup
  coalescing: Coalescing
  passes: HitForPass
  refresher: Refresher
  freshness: FreshnessOptions
  cacheControlField: string
  /** Whether another process changed entries this one has not caught up with, and catching up. */
  changedElsewhere: () => boolean
  syncChanges: () => Promise<void>
}

/**
 * A request before it goes upstream: answered from the memory tier, the store or another
 * request's fetch, or left to go to the origin (undefined), leading a flight when it may.
 */
export class RequestPath {
  constructor (private readonly parts: RequestPathParts) {}

  /** A fresh hit from the memory tier, decided without a promise. */
  fast (request: EngineRequest): Answer | undefined {
    const hit = this.parts.lookup.memoryHit(request.state.key, request.headers)
    return hit === undefined || !canAnswer(request, hit) ? undefined : answerStored(request, hit, { kind: 'hit', hit: true, memory: true })
  }

  /**
   * True when the URL is in hit-for-pass: the request goes straight upstream, decided without a
   * promise, before catching up with other processes' changes (which only the store and memory
   * tier need): no store read, no lease, no flight.
   */
  passing (request: EngineRequest): boolean {
    if (!this.parts.passes.has(request.state.key)) return false
    request.state.pass = true
    return true
  }

  /** Answers from the store or from another request's fetch, or undefined: the request goes upstream. */
  async lookupOrJoin (request: EngineRequest, onClientGone: (listener: () => void) => void): Promise<Answer | undefined> {
    const { state, headers } = request
    const { lookup, coalescing } = this.parts
    if (this.parts.changedElsewhere()) await this.parts.syncChanges()
    if (this.parts.passes.has(state.key)) {
      state.pass = true
      return undefined
    }
    // Already being fetched in this worker: wait for it rather than ask the store.
    const early = headers.authorization === undefined && headers.range === undefined ? coalescing.join(state.key) : undefined
    // A flight that ended without a shareable answer (unstorable, failed, timed out) sends its
    // waiters to the origin on their own, never behind a new flight: waits must not chain.
    let alone = false
    if (early !== undefined) {
      const outcome = await early
      const answer = this.fromFlight(request, outcome)
      if (answer !== undefined) return answer
      alone = outcome.kind === 'alone'
    }
    const found = await lookup.find(state.key, headers)
    Object.assign(state, { storeKey: found.storeKey, varyMiss: found.varyMiss, epoch: found.epoch })
    const stored = this.fromStore(request, found)
    if (stored !== undefined) return stored
    if ('only-if-cached' in requestDirectives(headers)) {
      // RFC 9111 §5.2.1.7
      const outcome = { kind: 'error', fwd: 'miss', detail: 'only-if-cached' } as const
      return { outcome, headers: outcomeHeaders(outcome), error: new NotCached() }
    }
    // Authorized requests go on their own. A GET with a Range leads or joins like any other:
    // the whole response is fetched once, stored, and the range answered from it (as Varnish
    // does), so a media player's second `Range: bytes=0-` is a hit.
    if (alone || headers.authorization !== undefined || (headers.range !== undefined && request.method !== 'GET')) return undefined
    return await this.joinOrLead(request, onClientGone)
  }

  /** Answers from what was found in the store when HTTP allows; notes a stale entry to revalidate. */
  private fromStore (request: EngineRequest, found: Found): Answer | undefined {
    const { cached } = found
    // RFC 9111 §3.5: a request with Authorization reuses only responses that allow it.
    if (cached === undefined || (request.headers.authorization !== undefined && !cached.allowsAuthorized)) return undefined
    const reuse = evaluateReuse(cached.fresh, request.headers, this.parts.freshness)
    // RFC 9111 §3.3-3.4: a stored part answers only ranges inside it, while fresh; otherwise the
    // request is a miss (never a revalidation, whose 304 would make the part a whole answer).
    if (cached.entry.status === 206) return reuse === 'fresh' && canAnswer(request, cached) ? answerStored(request, cached, { kind: 'hit', hit: true }) : undefined
    if (reuse === 'fresh') return answerStored(request, cached, { kind: 'hit', hit: true })
    if (reuse === 'stale') return answerStored(request, cached, { kind: 'stale', hit: true, detail: 'stale' })
    if (reuse === 'stale-while-revalidate') {
      this.parts.refresher.refresh(request.state, cached, request.headers)
      return answerStored(request, cached, { kind: 'stale', hit: true, fwd: 'stale' })
    }
    request.state.stale = cached
    return undefined
  }

  /** Waits for this worker's flight for the variant, or leads one (or waits for another process's). */
  private async joinOrLead (request: EngineRequest, onClientGone: (listener: () => void) => void): Promise<Answer | undefined> {
    const { state, headers } = request
    const joined = this.parts.coalescing.join(state.storeKey)
    if (joined !== undefined) {
      const outcome = await joined
      const answer = this.fromFlight(request, outcome)
      if (answer !== undefined || outcome.kind !== 'look-again') return answer
      // Another process stored a response for this URL: this request's own variant may be among it.
      const again = await this.parts.lookup.find(state.key, headers, true)
      if (again.cached !== undefined && canAnswer(request, again.cached) && evaluateReuse(again.cached.fresh, headers, this.parts.freshness) === 'fresh') return answerStored(request, again.cached, COALESCED())
      return undefined
    }
    if (request.method === 'HEAD') return undefined // a HEAD response has no body to share or store
    const remote = await this.parts.coalescing.lead(state, headers, onClientGone)
    return remote === undefined || !canAnswer(request, remote) ? undefined : answerStored(request, remote, COALESCED())
  }

  /** Answers a waiter from its flight's outcome; undefined when it must go to the origin on its own. */
  fromFlight (request: EngineRequest, outcome: Outcome): Answer | undefined {
    if (outcome.kind === 'entry') return canAnswer(request, outcome.entry) ? answerStored(request, outcome.entry, COALESCED()) : undefined
    if (outcome.kind === 'failed') {
      const failed = { kind: 'error', fwd: 'miss', collapsed: true, detail: errorDetail(outcome.error) } as const
      return { outcome: failed, headers: outcomeHeaders(failed), error: outcome.error }
    }
    if (outcome.kind !== 'response') return undefined
    const { head } = outcome
    if (head.status === 206) return undefined // a part fetched for another range: this one asks alone
    if (head.vary !== undefined && variantKey(request.state.key, head.vary, request.headers, head.epoch) !== head.storeKey) return undefined
    const body = outcome.body.subscribe()
    if (body === undefined) return undefined
    const coalesced = { ...COALESCED(), fwdStatus: head.status }
    const headers = {
      ...withoutOwnField(head.headers, this.parts.cacheControlField),
      via: appendVia(head.headers.via),
      ...outcomeHeaders(coalesced, head.headers['cache-status'])
    }
    return withRange(request, { outcome: coalesced, status: head.status, headers }, body, 'drain', head.headers)
  }
}

/**
 * The conditional headers of a request about to go upstream: ours when revalidating, none
 * when fetching to store (the client's own conditions are answered here from the response).
 */
export function upstreamConditions (method: string, state: CacheState | null, headers: IncomingHttpHeaders): IncomingHttpHeaders {
  if (state === null || (method !== 'GET' && method !== 'HEAD')) return headers
  if (state.flight !== undefined || state.stale !== undefined) {
    for (const name of CONDITIONAL_HEADERS) delete headers[name]
  }
  if (state.stale !== undefined) Object.assign(headers, revalidationHeaders(state.stale.entry.headers))
  return headers
}
