import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import createError from '@fastify/error'
import type { Config } from '../config/index.ts'
import { METHODS } from './proxy.ts'
import { adminGuard } from '../src/admin/admin-guard.ts'
import { forgetPurged, purge, softPurge, type PurgeContext } from '../src/admin/purge.ts'
import { purgeTarget, PurgeRequestError, softRequested, urlTarget, type PurgeTarget } from '../src/admin/purge-target.ts'
import { targetList } from '../src/cache/targeted-cache-control.ts'
import { cidrList } from '../src/upstream/address-ranges.ts'

export const ADMIN_PREFIX = '/_proxy/'

declare module 'fastify' {
  interface FastifyInstance {
    /** The admin guard as an onRequest hook, for admin routes of other plugins (explain, dashboard). */
    adminProtect: (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void) => void
  }
}

const AdminForbidden = createError<[string]>('CPX_ADMIN_FORBIDDEN', '%s', 403)
const AdminUnauthorized = createError<[string]>('CPX_ADMIN_UNAUTHORIZED', '%s', 401)
const BadPurge = createError<[string]>('CPX_BAD_PURGE', '%s', 400)
const StoreUnavailable = createError<[string]>('CPX_STORE_UNAVAILABLE', 'the cache store failed: %s', 503)
const AdminNotFound = createError<[string]>('CPX_NOT_FOUND', '%s', 404)

/** How long /_proxy/ready waits for the store before calling it unreachable. */
const READY_TIMEOUT_MS = 2000

function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms) })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

/**
 * The operator's endpoints under /_proxy/ (an underscore cannot start a host name, so no
 * proxied URL is taken): health and ready for probes, metrics, and purges (`PURGE
 * /<host>/<path>` and `DELETE /_proxy/cache?...`). None is forwarded, cached, counted as
 * a request of the proxy or rate-limited as proxy traffic; everything but health and
 * ready needs a loopback (or ADMIN_ALLOW) client and, when ADMIN_TOKEN is set, the token.
 */
async function adminPlugin (fastify: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts
  const cache = fastify.cache
  const guard = adminGuard({ token: config.adminToken, allow: config.adminAllow.length === 0 ? undefined : cidrList(config.adminAllow) })
  const context: PurgeContext = {
    store: cache.store,
    forget: cache.forget,
    memoryKeys: function * () { for (const [key] of cache.memory.entries()) yield key },
    targets: targetList(config.cacheControlField),
    options: {
      heuristicMaxSeconds: config.heuristicMaxSeconds,
      staleWhileRevalidateSeconds: config.staleWhileRevalidateSeconds,
      staleIfErrorSeconds: config.staleIfErrorSeconds,
      staleOnErrorSeconds: config.staleOnErrorSeconds
    }
  }

  // Purges by other workers: their prefixes reach what only this worker's memory tier holds.
  cache.store.onRemoteChange((key) => { forgetPurged(context, key) })

  function protect (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void {
    const refused = guard(request.socket.remoteAddress, request.headers.authorization)
    if (refused === undefined) return done()
    if (refused.status === 401) reply.header('www-authenticate', 'Bearer realm="caching-proxy admin"')
    done(refused.status === 401 ? new AdminUnauthorized(refused.message) : new AdminForbidden(refused.message))
  }

  fastify.decorate('adminProtect', protect)

  /** Purges and answers `{ purged, soft }` once every worker will miss (or revalidate) the entries. */
  async function answerPurge (request: FastifyRequest, reply: FastifyReply, target: PurgeTarget, query: Record<string, unknown>): Promise<FastifyReply> {
    const soft = softRequested(query, request.headers)
    let purged: number
    try {
      purged = soft ? await softPurge(context, target) : await purge(context, target)
    } catch (error) {
      throw new StoreUnavailable((error as Error).message)
    }
    request.log.info({ purged, soft }, 'purge')
    return reply.code(200).header('cache-control', 'no-store').send({ purged, soft })
  }

  // `/_proxy/...` routes: none of them is a proxied request. Health and ready need no
  // credentials (probes have none); the others go through the admin guard.
  const open = { public: true }
  fastify.get(`${ADMIN_PREFIX}health`, { config: open }, async (_request, reply) => {
    // Alive even while shedding load (a restart would not help); ready says so to balancers.
    const pressure = fastify.hasDecorator('loadShedding') ? fastify.loadShedding.state() : undefined
    return reply.header('cache-control', 'no-store').send({ status: 'ok', pid: process.pid, uptime: Math.round(process.uptime()), ...(pressure === undefined ? {} : { underPressure: pressure.underPressure }) })
  })
  fastify.get(`${ADMIN_PREFIX}ready`, { config: open }, async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    const pressure = fastify.hasDecorator('loadShedding') ? fastify.loadShedding.state() : undefined
    if (pressure?.underPressure === true) return reply.code(503).send({ status: 'under-pressure', reason: pressure.reason, readings: pressure.readings })
    const status = cache.store.status() // e.g. Redis reconnecting, or its notifications down
    if (!status.ok) return reply.code(503).send({ status: 'degraded', reason: status.reason })
    try {
      await within(cache.store.stats(), READY_TIMEOUT_MS, 'the cache store')
      return reply.send({ status: 'ready' })
    } catch (error) {
      // Still serving, uncached: a balancer should prefer other instances (README "Operating it").
      return reply.code(503).send({ status: 'degraded', reason: (error as Error).message })
    }
  })
  fastify.get(`${ADMIN_PREFIX}metrics`, { config: open, onRequest: protect }, async (_request, reply) => {
    const { contentType, text } = await fastify.proxyMetrics.render()
    return reply.header('cache-control', 'no-store').type(contentType).send(text)
  })
  fastify.delete(`${ADMIN_PREFIX}cache`, { config: open, onRequest: protect }, async (request, reply) => {
    let target: PurgeTarget
    try {
      target = purgeTarget(request.query as Record<string, unknown>)
    } catch (error) {
      if (error instanceof PurgeRequestError) throw new BadPurge(error.message)
      throw error
    }
    return await answerPurge(request, reply, target, request.query as Record<string, unknown>)
  })
  for (const url of [`${ADMIN_PREFIX}*`, ADMIN_PREFIX.slice(0, -1)]) {
    fastify.route({
      method: METHODS,
      url,
      config: open,
      onRequest: protect,
      handler: async (request) => { throw new AdminNotFound(`no admin endpoint ${request.method} ${request.url.split('?')[0]}`) }
    })
  }

  // `PURGE /<host>/<path>` (Varnish and Squid's convention; absolute-form in forward-proxy
  // mode): answered here, never forwarded. The upstream plugin has judged the URL by now.
  fastify.addHook('onRequest', (request, reply, done) => {
    if (request.method !== 'PURGE' || request.upstream === null) return done()
    protect(request, reply, (error) => {
      if (error !== undefined) return done(error)
      // The query is the purged URL's own: soft purge is asked for by header here.
      answerPurge(request, reply, urlTarget(request.upstream as URL), {}).catch((error: Error) => reply.send(error))
    })
  })
}

export default fp(adminPlugin, { name: 'admin', fastify: '5.x', dependencies: ['cache', 'metrics'] })
