import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../config/index.ts'
import { ADMIN_PREFIX } from './admin.ts'
import { LiveStats, mergeStats, type Stats, type WorkerStats } from '../src/admin/live-stats.ts'
import { SnapshotDirectory } from '../src/admin/snapshots.ts'
import { DASHBOARD_PAGE } from '../src/admin/dashboard-page.ts'

/** How often a worker publishes its stats for the others' dashboards. */
const PUBLISH_MS = 1000
const STORE_TIMEOUT_MS = 2000

/** A rejected target may carry credentials (`/user:pw@host/`): never show them. */
function shown (url: string): string {
  return url.replace(/^(\/(?:[a-z]+:\/\/?)?)[^/?#]*@/i, '$1<credentials>@')
}

/**
 * The live dashboard: GET /_proxy/ (one static page, src/admin/dashboard-page.ts) polls
 * GET /_proxy/stats, this worker's LiveStats merged with the other workers' (published each
 * second beside the store file, as the metrics are). Both admin-guarded.
 */
async function dashboardPlugin (fastify: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts
  const cache = fastify.cache
  const worker = String(process.pid)
  const live = new LiveStats(worker)

  fastify.onProxied((request, reply, outcome) => {
    if (request.upstream !== null) live.record(request.upstream.href, reply.statusCode, outcome, request.measured?.bytes ?? 0)
  })
  fastify.addHook('onError', (request, _reply, error, done) => {
    // Errors of proxied requests are recorded with their outcome; the rest are refusals (or bad requests).
    if (request.cacheOutcome === null && !(error.code === 'CPX_NOT_FOUND' && request.url.startsWith(ADMIN_PREFIX))) {
      live.problem({ time: Date.now(), kind: 'refusal', status: error.statusCode ?? 500, code: error.code ?? 'error', url: request.upstream?.href ?? shown(request.url) })
    }
    done()
  })

  function own (): WorkerStats {
    const pressure = fastify.hasDecorator('loadShedding') ? fastify.loadShedding.state().underPressure : false
    return live.snapshot({ memoryTier: { entries: cache.memory.size, bytes: cache.memory.totalBytes }, underPressure: pressure })
  }

  const shared = SnapshotDirectory.forStore(config.cacheStore)?.replace(/-metrics$/, '-stats')
  const directory = shared === undefined ? undefined : new SnapshotDirectory(shared, worker)
  const publisher = directory?.publisher(own, (error) => { fastify.log.debug({ err: error }, 'could not publish the dashboard stats') }, PUBLISH_MS)
  if (publisher !== undefined) fastify.addHook('onClose', publisher.close)

  async function storeStats (): Promise<Stats['store']> {
    let timer: NodeJS.Timeout | undefined
    try {
      const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`the store did not answer within ${STORE_TIMEOUT_MS} ms`)), STORE_TIMEOUT_MS) })
      const { entries, bytes } = await Promise.race([cache.store.stats(), late])
      return { entries, bytes, maxBytes: config.maxCacheBytes, fill: bytes / config.maxCacheBytes }
    } catch (error) {
      return { error: (error as Error).message, maxBytes: config.maxCacheBytes }
    } finally {
      clearTimeout(timer)
    }
  }

  const guarded = { config: { public: true }, onRequest: fastify.adminProtect }
  fastify.get(`${ADMIN_PREFIX}stats`, guarded, async (_request, reply) => {
    publisher?.publish() // the others' answers see this worker as it is now
    const others = directory === undefined ? [] : await directory.fresh() as WorkerStats[]
    const stats = mergeStats([own(), ...others], await storeStats())
    return reply.header('cache-control', 'no-store').send(stats)
  })
  fastify.get(ADMIN_PREFIX, guarded, async (_request, reply) => {
    return reply.header('cache-control', 'no-store').type('text/html; charset=utf-8').send(DASHBOARD_PAGE)
  })
}

export default fp(dashboardPlugin, { name: 'dashboard', fastify: '5.x', dependencies: ['cache', 'admin', 'metrics'] })
