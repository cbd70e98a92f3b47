import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'

/** One log line per request: method, upstream URL, status, X-Cache and the typed cache outcome, time. */
async function requestLogPlugin (fastify: FastifyInstance): Promise<void> {
  // The level is fixed at start: below info, the hook is not even installed.
  if (!(fastify.log as unknown as { isLevelEnabled: (level: string) => boolean }).isLevelEnabled('info')) return
  fastify.addHook('onResponse', (request, reply, done) => {
    request.log.info({
      method: request.method,
      // A rejected target may carry credentials (`/user:pw@host/`): never log them.
      url: request.upstream?.href ?? request.url.replace(/^(\/(?:[a-z]+:\/\/?)?)[^/?#]*@/i, '$1<credentials>@'),
      status: reply.statusCode,
      cache: reply.getHeader('x-cache'),
      outcome: request.cacheOutcome?.kind,
      ms: Math.round(reply.elapsedTime * 10) / 10
    }, 'request')
    done()
  })
}

export default fp(requestLogPlugin, { name: 'request-log', fastify: '5.x' })
