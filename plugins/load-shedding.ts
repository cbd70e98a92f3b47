import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import underPressure from '@fastify/under-pressure'
import createError from '@fastify/error'
import type { Config } from '../config/index.ts'
import { ADMIN_PREFIX } from './admin.ts'

export const UnderPressure = createError<[string]>('CPX_UNDER_PRESSURE', 'the proxy is overloaded (%s); try again later', 503)

export interface LoadSheddingState {
  underPressure: boolean
  /** Which threshold is passed, in words (absent when none). */
  reason?: string
  /** Current readings (event-loop delay ms, heap and RSS bytes). */
  readings: { eventLoopDelayMs: number | null, heapUsedBytes: number, rssBytes: number }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Whether the process sheds load now, and why (admin health/ready report it). */
    loadShedding: { state (): LoadSheddingState }
  }
}

export interface LoadSheddingOptions {
  config: Config
  /** An extra health check polled every `intervalMs`; false = under pressure (tests inject pressure with it). */
  check?: { healthy: () => boolean | Promise<boolean>, intervalMs: number }
}

/**
 * Load shedding with @fastify/under-pressure: past MAX_EVENT_LOOP_DELAY_MS, MAX_HEAP_USED_BYTES
 * or MAX_RSS_BYTES (sampled each second), proxied requests are answered 503 + Retry-After with
 * CPX_UNDER_PRESSURE before the process falls over. Registered after the cache plugin: its
 * onRequest hook has already answered hits (the memory tier's without a promise) by the time
 * this one runs, so hits keep being served. /_proxy/ routes are never shed: ready reports it.
 */
async function loadSheddingPlugin (fastify: FastifyInstance, opts: LoadSheddingOptions): Promise<void> {
  const { config, check } = opts
  const retryAfter = config.shedRetryAfterSeconds
  await fastify.register(underPressure, {
    maxEventLoopDelay: config.maxEventLoopDelayMs,
    maxHeapUsedBytes: config.maxHeapUsedBytes,
    maxRssBytes: config.maxRssBytes,
    retryAfter,
    ...(check === undefined ? {} : { healthCheck: async () => await check.healthy(), healthCheckInterval: check.intervalMs }),
    pressureHandler: (request, reply, type, value) => {
      // Probes and operators still get through (ready reports the pressure).
      if (request.url.startsWith(ADMIN_PREFIX) || request.url === ADMIN_PREFIX.slice(0, -1)) return
      reply.header('retry-after', retryAfter)
      // A rejection reaches our error handler: JSON or HTML like every error, with its code.
      return Promise.reject(new UnderPressure(value === undefined || !Number.isFinite(value) ? type : `${type} ${Math.round(value)}`))
    }
  })

  function state (): LoadSheddingState {
    const usage = fastify.memoryUsage()
    // Infinity: no timer ran during the whole sample (the loop was blocked throughout); JSON has no Infinity.
    const delay = Number.isFinite(usage.eventLoopDelay) ? Math.round(usage.eventLoopDelay) : null
    const readings = { eventLoopDelayMs: delay, heapUsedBytes: usage.heapUsed, rssBytes: usage.rssBytes }
    if (!fastify.isUnderPressure()) return { underPressure: false, readings }
    let reason = 'the health check failed'
    if (config.maxEventLoopDelayMs > 0 && usage.eventLoopDelay > config.maxEventLoopDelayMs) reason = `event loop delay ${delay === null ? 'over the whole 1 s sample' : `${delay} ms`} > MAX_EVENT_LOOP_DELAY_MS ${config.maxEventLoopDelayMs}`
    else if (config.maxHeapUsedBytes > 0 && usage.heapUsed > config.maxHeapUsedBytes) reason = `heap used ${usage.heapUsed} B > MAX_HEAP_USED_BYTES ${config.maxHeapUsedBytes}`
    else if (config.maxRssBytes > 0 && usage.rssBytes > config.maxRssBytes) reason = `RSS ${usage.rssBytes} B > MAX_RSS_BYTES ${config.maxRssBytes}`
    return { underPressure: true, reason, readings }
  }
  fastify.decorate('loadShedding', { state })
}

export default fp(loadSheddingPlugin, { name: 'load-shedding', fastify: '5.x', dependencies: ['cache'] })
