import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'

/** One log line per request: method, upstream URL, status, cache outcome, time. */
async function requestLogPlugin (fastify: FastifyInstance): Promise<void> {
  fastify.addHook('onResponse', async (request, reply) => {
    request.log.info({
      method: request.method,
      // A rejected target may carry credentials (`/user:pw@host/`): never log them.
      url: request.upstream?.href ?? request.url.replace(/^(\/(?:[a-z]+:\/\/?)?)[^/?#]*@/i, '$1<credentials>@'),
      status: reply.statusCode,
      cache: reply.getHeader('x-cache'),
      ms: Math.round(reply.elapsedTime * 10) / 10
    }, 'request')
  })
}

export default fp(requestLogPlugin, { name: 'request-log', fastify: '5.x' })
