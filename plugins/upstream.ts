import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { parseUpstreamUrl, UpstreamUrlError } from '../src/upstream-url.ts'
import { BadUpstreamUrl } from '../src/errors.ts'

export const PROXY_ROUTE = '/*'

/** Sets `request.upstream` to the URL a proxied request names; a malformed one is a 400. */
async function upstreamPlugin (fastify: FastifyInstance): Promise<void> {
  fastify.decorateRequest('upstream', null)
  fastify.addHook('onRequest', async (request) => {
    if (request.routeOptions.url !== PROXY_ROUTE) return
    try {
      request.upstream = parseUpstreamUrl(request.url)
    } catch (error) {
      if (error instanceof UpstreamUrlError) throw new BadUpstreamUrl(error.message)
      throw error
    }
  })
}

export default fp(upstreamPlugin, { name: 'upstream', fastify: '5.x' })
