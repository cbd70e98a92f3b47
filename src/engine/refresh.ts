import type { IncomingHttpHeaders } from 'node:http'
import type { Dispatcher } from 'undici'
import { mergeNotModified, revalidationHeaders } from '../cache/cache-policy.ts'
import type { StoredHeaders } from '../cache/entry.ts'
import { policyHeaders } from '../cache/targeted-cache-control.ts'
import { stripHopByHop, upstreamRequestHeaders } from '../http/headers.ts'
import { normalizeResponseHeaders } from '../http/response-headers.ts'
import type { CacheStore } from '../store/index.ts'
import { readWhole, type Writer } from './writer.ts'
import { CONDITIONAL_HEADERS, discard, ERROR_STATUSES, type Cached, type CacheState, type EngineLogger } from './types.ts'

type Upstream = Pick<Dispatcher, 'request'>

/**
 * Background revalidation (RFC 5861 stale-while-revalidate): the stale entry answers the
 * client while one conditional request, per key and across processes, refreshes it
 * through the same writer as a client miss.
 */
export class Refresher {
  private readonly refreshing = new Set<string>()

  constructor (
    private readonly store: CacheStore,
    private readonly writer: Writer,
    private readonly upstream: Upstream,
    private readonly settings: { targets: readonly string[], maxEntryBytes: number, leaseMs: number },
    private readonly log: EngineLogger
  ) {}

  /** Refreshes `cached` once per key; resolves when done (never rejects: failures are logged). */
  async refresh (state: CacheState, cached: Cached, requestHeaders: IncomingHttpHeaders): Promise<void> {
    const key = state.storeKey
    if (this.refreshing.has(key)) return
    this.refreshing.add(key)
    try {
      if (!(await this.store.acquireLease(key, this.settings.leaseMs))) return // another process is refreshing it
      try {
        await this.fetchAndStore(state, cached, requestHeaders)
      } finally {
        await this.store.releaseLease(key)
      }
    } catch (error) {
      this.log.warn({ err: error, url: cached.entry.url }, 'background revalidation failed')
    } finally {
      this.refreshing.delete(key)
    }
  }

  private async fetchAndStore (state: CacheState, cached: Cached, requestHeaders: IncomingHttpHeaders): Promise<void> {
    const url = new URL(cached.entry.url)
    const headers: IncomingHttpHeaders = { ...upstreamRequestHeaders(requestHeaders), host: url.host }
    for (const name of CONDITIONAL_HEADERS) delete headers[name]
    Object.assign(headers, revalidationHeaders(cached.entry.headers))
    const requestTime = Date.now()
    const res = await this.upstream.request({ origin: url.origin, path: url.pathname + url.search, method: 'GET', headers })
    const responseTime = Date.now()
    if (res.statusCode < 200 || res.statusCode > 599) {
      discard(res.body)
      throw new Error(`invalid status code ${res.statusCode}`)
    }
    let resHeaders: StoredHeaders
    try {
      // A cookie on a refresh was issued to nobody: it is never stored or passed on.
      const { 'set-cookie': _cookie, ...rest } = normalizeResponseHeaders(stripHopByHop(res.headers))
      resHeaders = rest
    } catch (error) {
      discard(res.body)
      throw error
    }
    if (res.statusCode === 304) {
      await res.body.dump()
      const entry = { ...cached.entry, headers: mergeNotModified(cached.entry.headers, resHeaders), requestTime, responseTime }
      await this.writer.save(state.key, state.storeKey, entry).written
      return
    }
    if (ERROR_STATUSES.has(res.statusCode)) {
      await res.body.dump()
      return // keep serving what we have
    }
    const policy = policyHeaders(resHeaders, this.settings.targets)
    const reason = this.writer.refusal({ method: 'GET', headers }, res.statusCode, resHeaders, policy, res.headers.connection)
    const whole = reason === undefined ? await readWhole(res.body, this.settings.maxEntryBytes) : undefined
    if (whole === undefined || whole === 'too-large') {
      if (reason !== undefined) await res.body.dump()
      await this.writer.invalidate(state.storeKey) // the origin no longer lets this be cached
      return
    }
    const pending = this.writer.begin({
      key: state.key, epoch: state.epoch, url: url.href, status: res.statusCode, headers: resHeaders, policy, requestHeaders, requestTime, responseTime
    })
    // A body cut short (shorter than its Content-Length) stores nothing: what we have stays.
    await pending.commit(whole)?.written
  }
}
