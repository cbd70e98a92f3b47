import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'

/** The worker: its pid, as in the metrics' `worker` label. */
const WORKER = process.pid

/**
 * One log line per request: method, upstream URL, status, X-Cache and the typed cache
 * outcome (with its detail: why not stored, the error code), the origin's time to headers,
 * body bytes sent, the worker, and the total time. README "Log fields" lists them.
 */
async function requestLogPlugin (fastify: FastifyInstance): Promise<void> {
  // The level is fixed at start: below info, the hook is not even installed.
  if (!(fastify.log as unknown as { isLevelEnabled: (level: string) => boolean }).isLevelEnabled('info')) return
  // Through the root logger with the request id as a field: the same line as a request's own
  // logger writes (its only binding is `reqId`), without building that pino child per request.
  const log = fastify.log
  fastify.addHook('onResponse', (request, reply, done) => {
    const outcome = request.cacheOutcome
    const measured = request.measured // plugins/metrics.ts, complete once the response is
    log.info({
      reqId: request.id,
      method: request.method,
      // A rejected target may carry credentials (`/user:pw@host/`): never log them.
      url: request.upstream?.href ?? request.url.replace(/^(\/(?:[a-z]+:\/\/?)?)[^/?#]*@/i, '$1<credentials>@'),
      status: reply.statusCode,
      cache: reply.getHeader('x-cache'),
      outcome: outcome?.kind,
      detail: outcome?.detail,
      upstreamMs: measured?.originSeconds === undefined ? undefined : Math.round(measured.originSeconds * 10000) / 10,
      bytes: measured?.bytes,
      worker: WORKER,
      ms: Math.round(reply.elapsedTime * 10) / 10
    }, 'request')
    done()
  })
}

export default fp(requestLogPlugin, { name: 'request-log', fastify: '5.x' })
