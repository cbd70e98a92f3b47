import { pipeline, Transform, type Readable } from 'node:stream'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config/index.ts'
import { mergedText, ProxyMetrics } from '../src/admin/proxy-metrics.ts'
import { SnapshotDirectory } from '../src/admin/snapshots.ts'
import type { CacheOutcome } from '../src/cache/outcome.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Prometheus text of the whole proxy (every live worker sharing the store): GET /_proxy/metrics. */
    proxyMetrics: { render (): Promise<{ contentType: string, text: string }> }
    /**
     * Adds per-request bookkeeping for proxied requests: `fn` runs once the response is sent, for
     * every request with a cache outcome, from the metrics' one onResponse hook (a hook per
     * plugin costs a hook-runner step on every request).
     */
    onProxied (fn: ProxiedListener): void
    /** Counts one proxied request and runs the onProxied listeners (the onResponse hook's work; plugins/fast-hits.ts calls it for hits answered outside Fastify). */
    recordProxied (request: ProxiedRequest, reply: ProxiedReply, outcome: CacheOutcome): void
  }
  interface FastifyRequest {
    /** Body bytes sent and origin time of a proxied request, complete by onResponse (the request log reads it). */
    measured: Measured | null
  }
}

/** How often a worker publishes its snapshot for the others' scrapes. */
const PUBLISH_MS = 1000

// Refusals by rule: the errors' codes (src/errors.ts) and @fastify/rate-limit's 429.
const REFUSAL_RULES: Record<string, string> = {
  CPX_CLIENT_FORBIDDEN: 'client-list',
  CPX_CREDENTIALS_REQUIRED: 'auth',
  CPX_PROXY_CREDENTIALS_REQUIRED: 'auth',
  CPX_LOOP_DETECTED: 'loop',
  CPX_ADMIN_FORBIDDEN: 'admin',
  CPX_ADMIN_UNAUTHORIZED: 'admin',
  CPX_UNDER_PRESSURE: 'load-shedding'
}

export interface Measured { bytes: number, originSeconds?: number }
/** What the listeners may read of a proxied request and its reply (a hit answered outside Fastify has only these). */
export type ProxiedRequest = Pick<FastifyRequest, 'method' | 'upstream' | 'cacheState' | 'measured'>
export type ProxiedReply = Pick<FastifyReply, 'statusCode'>
export type ProxiedListener = (request: ProxiedRequest, reply: ProxiedReply, outcome: CacheOutcome) => void

/** Counts the body bytes of a streamed response of unknown length as they go out. */
function counting (stream: Readable, into: Measured): Transform {
  const counter = new Transform({
    transform (chunk: Buffer, _encoding, callback) {
      into.bytes += chunk.length
      callback(null, chunk)
    }
  })
  // pipeline(): a client gone or an origin failing ends both streams; the error reaches Fastify through `counter`.
  pipeline(stream, counter, () => {})
  return counter
}

function bodyless (request: FastifyRequest, reply: FastifyReply): boolean {
  return request.method === 'HEAD' || reply.statusCode === 204 || reply.statusCode === 304
}

/**
 * Prometheus metrics (src/admin/proxy-metrics.ts) from each proxied request's typed cache
 * outcome, read in onResponse as plugins/request-log.ts does; refusals from onError. With a
 * sqlite:// store every worker publishes its snapshot beside the store file each second, and
 * a scrape merges the live ones (src/admin/snapshots.ts). Served by plugins/admin.ts.
 */
async function metricsPlugin (fastify: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts
  const cache = fastify.cache
  const metrics = new ProxyMetrics({
    worker: String(process.pid),
    storeStats: () => cache.store.stats(),
    storeMaxBytes: config.maxCacheBytes,
    storeErrors: cache.storeErrors,
    storeSweeps: () => cache.store.sweepTotals(),
    memory: cache.memory
  })

  fastify.decorateRequest('measured', null)
  fastify.addHook('onSend', (request, reply, payload, done) => {
    const outcome = request.cacheOutcome
    if (outcome === null) return done(null, payload)
    const sample: Measured = { bytes: 0 }
    request.measured = sample
    // Until here the answer waited for the origin (its headers) on a miss, pass or revalidation.
    if (outcome.kind === 'miss' || outcome.kind === 'pass' || outcome.kind === 'revalidated') sample.originSeconds = reply.elapsedTime / 1000
    if (bodyless(request, reply) || payload === null || payload === undefined) return done(null, payload)
    if (typeof payload === 'string' || Buffer.isBuffer(payload)) {
      sample.bytes = Buffer.byteLength(payload)
      return done(null, payload)
    }
    const length = Number(reply.getHeader('content-length'))
    if (reply.getHeader('content-length') !== undefined && Number.isSafeInteger(length)) {
      sample.bytes = length
      return done(null, payload)
    }
    done(null, counting(payload as Readable, sample))
  })

  const listeners: ProxiedListener[] = []
  fastify.decorate('onProxied', (fn: ProxiedListener) => { listeners.push(fn) })
  function recordProxied (request: ProxiedRequest, reply: ProxiedReply, outcome: CacheOutcome): void {
    const sample = request.measured
    metrics.record({ method: request.method, outcome, bytes: sample?.bytes ?? 0, originSeconds: sample?.originSeconds })
    for (let i = 0; i < listeners.length; i++) listeners[i](request, reply, outcome)
  }
  fastify.decorate('recordProxied', recordProxied)
  fastify.addHook('onResponse', (request, reply, done) => {
    const outcome = request.cacheOutcome
    if (outcome !== null) recordProxied(request, reply, outcome)
    done()
  })

  fastify.addHook('onError', (_request, _reply, error, done) => {
    const { code, statusCode, rule } = error as { code?: string, statusCode?: number, rule?: string }
    const named = code === undefined ? undefined : REFUSAL_RULES[code]
    if (named !== undefined) metrics.refused(named)
    else if (code === 'CPX_UPSTREAM_FORBIDDEN') metrics.refused(`upstream-${rule ?? 'forbidden'}`)
    else if (statusCode === 429) metrics.refused('rate-limit')
    done()
  })

  const shared = SnapshotDirectory.forStore(config.cacheStore)
  const directory = shared === undefined ? undefined : new SnapshotDirectory(shared, String(process.pid))
  const publisher = directory?.publisher(async () => await metrics.snapshot(), (error) => { fastify.log.debug({ err: error }, 'could not publish the metrics snapshot') }, PUBLISH_MS)
  if (publisher !== undefined) fastify.addHook('onClose', publisher.close)

  fastify.decorate('proxyMetrics', {
    async render () {
      const own = await metrics.snapshot()
      if (directory === undefined) return await mergedText([own])
      publisher?.publish() // the others' scrapes see this worker as it is now
      return await mergedText([own, ...(await directory.fresh()) as typeof own[]])
    }
  })
}

export default fp(metricsPlugin, { name: 'metrics', fastify: '5.x', dependencies: ['cache'] })
