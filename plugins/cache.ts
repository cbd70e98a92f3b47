import type { IncomingHttpHeaders } from 'node:http'
import { Readable } from 'node:stream'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config/index.ts'
import { cacheKey } from '../src/cache/cache-key.ts'
import type { CacheOutcome } from '../src/cache/outcome.ts'
import { createEngine, upstreamHeaders, type Answer, type CacheState, type Engine, type EngineRequest, type EngineSettings, type UpstreamHeaders, type UpstreamResponse } from '../src/engine/index.ts'
import { openStore, type CacheStore } from '../src/store/index.ts'
import type { MemoryTier } from '../src/store/memory-tier.ts'
import { directHeaders } from '../src/engine/direct-answer.ts'
import { isBrowser } from '../src/browsing/path-browsing.ts'

export type { UpstreamResponse } from '../src/engine/index.ts'

export interface CacheApi {
  store: CacheStore
  /** The cache engine (src/engine/): lookups, the writer, invalidation, the memory tier. */
  engine: Engine
  /** Drops a key from this worker's memory tier and pending reads (purges, plugins/admin.ts). */
  forget: (key: string) => void
  /** This worker's memory tier, and how many store calls failed here (metrics, purges). */
  memory: MemoryTier<unknown>
  storeErrors: () => number
  /** Sets the conditional headers of a request about to go upstream: ours when revalidating, none when fetching to store. */
  conditionalHeaders (request: FastifyRequest, headers: IncomingHttpHeaders): IncomingHttpHeaders
  /** Answers the client from an upstream response, storing and sharing it when HTTP allows. */
  onUpstreamResponse (request: FastifyRequest, reply: FastifyReply, res: UpstreamResponse): void
  /** Answers the client when the upstream could not be reached (stale-if-error, or the error). */
  onUpstreamError (request: FastifyRequest, reply: FastifyReply, error: Error): void
  /** Calls `fn` after each plain memory-tier hit written directly (answerDirect; plugins/fast-hits.ts learns from them). */
  onDirectHit (fn: (request: FastifyRequest) => void): void
}

declare module 'fastify' {
  interface FastifyInstance {
    cache: CacheApi
  }
  interface FastifyRequest {
    cacheState: CacheState | null
    /** What the cache did for this request (see src/cache/outcome.ts); null off the proxy path. */
    cacheOutcome: CacheOutcome | null
    /** The upstream response's headers, normalised once (set by plugins/proxy.ts). */
    upstreamHeaders: UpstreamHeaders | null
  }
}

/** True when the client has gone: nothing more is sent to it. */
function gone (reply: FastifyReply): boolean {
  return reply.sent || reply.raw.destroyed || reply.raw.writableEnded
}

/** Gives the client an engine's answer (see Answer in src/engine/types.ts). */
function send (request: FastifyRequest, reply: FastifyReply, answer: Answer): void {
  request.cacheOutcome = answer.outcome
  if (answer.clear === true) for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name)
  for (const name of answer.remove ?? []) reply.removeHeader(name)
  if (answer.status !== undefined) reply.code(answer.status)
  if (answer.base !== undefined) reply.headers(answer.base)
  if (answer.headers !== undefined) reply.headers(answer.headers)
  reply.send(answer.error ?? answer.body)
}

/** Gives the client an answer that may come later; a client gone by then gets nothing (its upstream body is dropped). */
function sendWhenReady (request: FastifyRequest, reply: FastifyReply, answer: Answer | Promise<Answer>): void {
  if (!(answer instanceof Promise)) {
    send(request, reply, answer)
    return
  }
  answer.then((ready) => {
    if (!gone(reply)) {
      send(request, reply, ready)
    } else if (ready.body instanceof Readable) {
      ready.body.on('error', () => {})
      ready.body.destroy()
    }
  }).catch((error) => { if (!gone(reply)) reply.send(error) })
}

/**
 * Writes a plain memory-tier hit straight to the socket: one `writeHead` with the header list
 * laid out once per stored response (src/engine/direct-answer.ts), skipping Fastify's send,
 * its Content-Type parsing and the onSend hooks. The same bytes as `send()`; false (nothing
 * done) whenever that is not certain, and the request takes the normal path. onResponse hooks
 * still run (Fastify listens for 'finish' before the onRequest hooks).
 */
function answerDirect (request: FastifyRequest, reply: FastifyReply, answer: Answer, measured: boolean): boolean {
  // Browsers get their pages rewritten in onSend (plugins/path-browsing.ts); other onSend work
  // is the metrics' byte count, done here. Headers set before the cache (the rate limit's, a
  // draining worker's Connection: close) are left to Fastify to merge.
  if (isBrowser(request.headers)) return false
  if (Object.keys(reply.getHeaders()).length > 0) return false
  const head = request.method === 'HEAD'
  const pairs = directHeaders(answer, head)
  if (pairs === undefined) return false
  const res = reply.raw
  try {
    res.writeHead(answer.status as number, pairs)
  } catch {
    return false // Fastify's writeHead meets the same value and answers the error
  }
  request.cacheOutcome = answer.outcome
  if (measured) request.measured = { bytes: head ? 0 : (answer.body as Buffer).length }
  // Read back by onResponse hooks (the request log's `cache`); headers written above are not.
  reply.header('x-cache', answer.headers?.['x-cache'])
  reply.hijack()
  res.end(answer.body)
  return true
}

function engineRequest (request: FastifyRequest, state: CacheState): EngineRequest {
  return { method: request.method, headers: request.headers, upstream: request.upstream as URL, state }
}

function engineSettings (config: Config): EngineSettings {
  return {
    freshness: {
      heuristicMaxSeconds: config.heuristicMaxSeconds,
      staleWhileRevalidateSeconds: config.staleWhileRevalidateSeconds,
      staleIfErrorSeconds: config.staleIfErrorSeconds,
      staleOnErrorSeconds: config.staleOnErrorSeconds
    },
    cacheControlField: config.cacheControlField,
    cacheSetCookie: config.cacheSetCookie,
    maxEntryBytes: config.maxEntryBytes,
    memoryCacheBytes: config.memoryCacheBytes,
    hitForPassSeconds: config.hitForPassSeconds,
    upstreamTimeoutMs: config.upstreamTimeoutMs
  }
}

export interface CacheOptions {
  config: Config
  /** Write plain memory-tier hits directly (answerDirect); false: through reply.send like every answer (tests compare both). */
  directHits?: boolean
}

/** The cache as Fastify hooks and decorators: the engine (src/engine/) does the work. */
async function cachePlugin (fastify: FastifyInstance, opts: CacheOptions): Promise<void> {
  const { config } = opts
  const direct = opts.directHits !== false
  // plugins/metrics.ts counts the bytes of each answer in onSend, which a direct answer skips.
  let measured = false
  fastify.addHook('onReady', async () => { measured = fastify.hasRequestDecorator('measured') })
  const store = await openStore(config.cacheStore, { maxBytes: config.maxCacheBytes, commandTimeoutMs: config.redisTimeoutMs, log: fastify.log })
  const engine = createEngine(engineSettings(config), { store, upstream: fastify.upstreamAgent, log: fastify.log })

  const directListeners: Array<(request: FastifyRequest) => void> = []

  fastify.decorateRequest('cacheState', null)
  fastify.decorateRequest('cacheOutcome', null)
  fastify.decorateRequest('upstreamHeaders', null)

  fastify.addHook('onRequest', (request, reply, done) => {
    const url = request.upstream
    if (url === null) return done()
    const state = engine.start(cacheKey(url))
    request.cacheState = state
    if (request.method !== 'GET' && request.method !== 'HEAD') return done()
    const asked = engineRequest(request, state)
    const hit = engine.fast(asked)
    if (hit !== undefined) {
      if (direct && answerDirect(request, reply, hit, measured)) {
        for (let i = 0; i < directListeners.length; i++) directListeners[i](request)
      } else {
        send(request, reply, hit)
      }
      return
    }
    if (engine.passing(asked)) return done()
    const onClientGone = (listener: () => void): void => { reply.raw.once('close', listener) }
    engine.lookupOrJoin(asked, onClientGone).then((answer) => {
      if (answer === undefined) return done()
      try {
        send(request, reply, answer)
      } catch (error) {
        done(error as Error)
      }
    }, done)
  })

  function onUpstreamResponse (request: FastifyRequest, reply: FastifyReply, res: UpstreamResponse): void {
    // reply-from has already answered 502 for a status Fastify refuses, and calls this anyway.
    if (reply.sent) {
      res.stream.on('error', () => {})
      res.stream.destroy()
      return
    }
    const headers = request.upstreamHeaders ?? upstreamHeaders(res.headers)
    sendWhenReady(request, reply, engine.onResponse(engineRequest(request, request.cacheState as CacheState), res, headers))
  }

  function onUpstreamError (request: FastifyRequest, reply: FastifyReply, error: Error): void {
    if (reply.sent) return
    send(request, reply, engine.onError(request, request.cacheState, error))
  }

  function conditionalHeaders (request: FastifyRequest, headers: IncomingHttpHeaders): IncomingHttpHeaders {
    return engine.upstreamConditions(request.method, request.cacheState, headers)
  }

  fastify.decorate('cache', {
    store,
    engine,
    conditionalHeaders,
    onUpstreamResponse,
    onUpstreamError,
    onDirectHit: (fn: (request: FastifyRequest) => void) => { directListeners.push(fn) },
    forget: (key: string) => engine.lookup.forget(key),
    memory: engine.memory,
    storeErrors: () => engine.storeErrors()
  })
  fastify.addHook('onClose', async () => {
    await engine.close().catch((error) => fastify.log.warn({ err: error }, 'closing the cache store failed'))
  })
}

export default fp(cachePlugin, { name: 'cache', fastify: '5.x', dependencies: ['upstream'] })
