import { Transform, pipeline, type Readable } from 'node:stream'
import type { IncomingHttpHeaders } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type CachePolicy from 'http-cache-semantics'
import type { Config } from '../config/index.ts'
import { cacheKey } from '../src/cache-key.ts'
import { createPolicy, notStorableReason, restorePolicy, remainingTtl, ageSeconds } from '../src/cache-policy.ts'
import { decodeEntry, encodeEntry, type CacheEntry, type StoredHeaders } from '../src/entry.ts'
import { appendCacheStatus, stripHopByHop } from '../src/headers.ts'
import { MemoryTier } from '../src/memory-tier.ts'
import { openStore, type CacheStore } from '../src/store.ts'

/** A decoded entry with its policy, ready to answer requests. */
interface Cached {
  entry: CacheEntry
  policy: CachePolicy
}

export interface UpstreamResponse {
  statusCode: number
  headers: IncomingHttpHeaders
  stream: Readable
}

export interface CacheApi {
  store: CacheStore
  /** Takes over an upstream response for `request`: sets the cache headers and returns the body to send. */
  onUpstreamResponse (request: FastifyRequest, reply: FastifyReply, res: UpstreamResponse): Readable
}

declare module 'fastify' {
  interface FastifyInstance {
    cache: CacheApi
  }
  interface FastifyRequest {
    /** The upstream URL this request names, set by the upstream plugin on proxied routes. */
    upstream: URL | null
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])
const ERROR_LOG_INTERVAL_MS = 60_000

async function cachePlugin (fastify: FastifyInstance, opts: { config: Config, store?: CacheStore }): Promise<void> {
  const { config } = opts
  const store = opts.store ?? await openStore(config.cacheStore)
  const memory = new MemoryTier<Cached>(config.memoryCacheBytes)
  store.onRemoteChange((key) => memory.delete(key))

  let lastStoreErrorLog = 0
  function storeFailed (error: unknown, action: string): void {
    const now = Date.now()
    if (now - lastStoreErrorLog < ERROR_LOG_INTERVAL_MS) return
    lastStoreErrorLog = now
    fastify.log.error({ err: error, action }, 'cache store failed; serving uncached (logged at most once a minute)')
  }

  async function lookup (key: string): Promise<Cached | undefined> {
    const inMemory = memory.get(key)
    if (inMemory !== undefined) return inMemory
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
      const entry = decodeEntry(raw)
      cached = { entry, policy: restorePolicy(entry.policy) }
    } catch (error) {
      fastify.log.warn({ err: error, key }, 'deleting a cache entry that cannot be decoded')
      track(store.delete(key), 'delete')
      return undefined
    }
    memory.set(key, cached, raw.length)
    return cached
  }

  // Writes in flight, awaited before the store closes.
  const writes = new Set<Promise<void>>()
  function track (write: Promise<void>, action: string): void {
    const tracked = write.catch((error) => storeFailed(error, action)).finally(() => writes.delete(tracked))
    writes.add(tracked)
  }

  function save (key: string, entry: CacheEntry, policy: CachePolicy): void {
    const encoded = encodeEntry(entry)
    memory.set(key, { entry, policy }, encoded.length)
    track(store.set(key, encoded), 'set')
  }

  function invalidate (key: string): void {
    memory.delete(key)
    track(store.delete(key), 'delete')
  }

  function serveHit (request: FastifyRequest, reply: FastifyReply, cached: Cached): FastifyReply {
    const { entry, policy } = cached
    reply.code(entry.status)
    reply.headers(entry.headers)
    reply.header('age', ageSeconds(policy))
    reply.header('cache-status', appendCacheStatus(entry.headers['cache-status'], `hit; ttl=${remainingTtl(policy)}`))
    reply.header('x-cache', 'HIT')
    return reply.send(entry.body)
  }

  fastify.addHook('onRequest', async (request, reply) => {
    const url = request.upstream
    if (url === null || (request.method !== 'GET' && request.method !== 'HEAD')) return
    const cached = await lookup(cacheKey(url))
    if (cached === undefined) return
    // A HEAD is answered from the stored GET (RFC 9110 §9.3.2).
    if (cached.policy.satisfiesWithoutRevalidation({ method: 'GET', url: url.href, headers: request.headers })) {
      return serveHit(request, reply, cached)
    }
  })

  function onUpstreamResponse (request: FastifyRequest, reply: FastifyReply, res: UpstreamResponse): Readable {
    const url = request.upstream as URL
    const key = cacheKey(url)
    reply.header('x-cache', 'MISS')
    if (!SAFE_METHODS.has(request.method)) {
      // RFC 9111 §4.4: a successful unsafe request invalidates the stored response for its URL.
      if (res.statusCode >= 200 && res.statusCode < 400) invalidate(key)
      reply.header('cache-status', appendCacheStatus(res.headers['cache-status'], 'fwd=method'))
      return res.stream
    }
    if (request.method !== 'GET') {
      reply.header('cache-status', appendCacheStatus(res.headers['cache-status'], 'fwd=miss'))
      return res.stream
    }

    const headers = stripHopByHop(res.headers) as StoredHeaders
    const policy = createPolicy({ method: 'GET', url: url.href, headers: request.headers }, res.statusCode, headers)
    const declaredLength = headers['content-length'] === undefined ? undefined : Number(headers['content-length'])
    let reason = notStorableReason(policy, res.statusCode, headers, { cacheSetCookie: false })
    if (reason === undefined && declaredLength !== undefined && declaredLength > config.maxEntryBytes) reason = 'too-large'
    reply.header('cache-status', appendCacheStatus(res.headers['cache-status'], reason === undefined ? 'fwd=miss; stored' : `fwd=miss; detail=${reason}`))
    if (reason !== undefined) return res.stream

    const chunks: Buffer[] = []
    let size = 0
    let keep = true
    const tee = new Transform({
      transform (chunk: Buffer, _encoding, callback) {
        if (keep) {
          size += chunk.length
          if (size > config.maxEntryBytes) {
            keep = false
            chunks.length = 0
          } else {
            chunks.push(chunk)
          }
        }
        callback(null, chunk)
      },
      flush (callback) {
        // Only a body that arrived whole is stored; a cut-off stream never reaches flush.
        if (keep && (declaredLength === undefined || declaredLength === size)) {
          save(key, { url: url.href, status: res.statusCode, headers, policy: policy.toObject(), body: Buffer.concat(chunks, size) }, policy)
        }
        callback()
      }
    })
    pipeline(res.stream, tee, (error) => {
      if (error !== undefined && error !== null) request.log.warn({ err: error }, 'upstream body did not complete; nothing stored')
    })
    return tee
  }

  fastify.decorate('cache', { store, onUpstreamResponse })
  fastify.addHook('onClose', async () => {
    await Promise.all(writes)
    memory.clear()
    await store.close().catch((error) => fastify.log.warn({ err: error }, 'closing the cache store failed'))
  })
}

export default fp(cachePlugin, { name: 'cache', fastify: '5.x', dependencies: ['upstream'] })
