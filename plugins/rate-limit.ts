import fp from 'fastify-plugin'
import rateLimit, { type FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../config/index.ts'
import { SqliteRateLimitStore } from '../src/access/rate-limit-store.ts'

const REPORT_EVERY_MS = 60_000

/**
 * RATE_LIMIT_PER_MINUTE per client address, for the whole proxy: with a sqlite:// store
 * the counts live in a table of that file, shared by every worker; with memory:// each
 * process counts on its own. A store failure lets requests through (logged once a minute).
 * The hook is added where this plugin is registered, so it runs before later hooks.
 */
async function rateLimitPlugin (fastify: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts
  if (config.rateLimitPerMinute <= 0) return
  let store: SqliteRateLimitStore | undefined
  if (config.cacheStore.startsWith('sqlite://')) {
    let reported = 0
    store = new SqliteRateLimitStore(config.cacheStore.slice('sqlite://'.length), {
      onError: (error) => {
        if (Date.now() - reported < REPORT_EVERY_MS) return
        reported = Date.now()
        fastify.log.warn({ err: error }, 'rate-limit store failed: requests are let through uncounted')
      }
    })
    const shared = store
    fastify.addHook('onClose', async () => { await shared.close() })
  }
  await fastify.register(rateLimit, {
    global: false,
    max: config.rateLimitPerMinute,
    timeWindow: 60_000,
    skipOnError: true, // fail open
    // Admin requests (plugins/admin.ts) are not proxy traffic: probes and scrapes must not eat the clients' budget.
    allowList: (request) => request.url.startsWith('/_proxy/') || request.url === '/_proxy' || request.method === 'PURGE',
    // @fastify/rate-limit constructs the store itself: hand it the one already made.
    ...(store !== undefined ? { store: function SharedStore () { return store } as unknown as FastifyRateLimitStoreCtor } : {})
  })
  fastify.addHook('onRequest', fastify.rateLimit())
}

export default fp(rateLimitPlugin, { name: 'rate-limit', fastify: '5.x' })
