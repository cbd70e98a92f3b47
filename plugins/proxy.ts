import replyFrom from '@fastify/reply-from'
import { Agent, type Dispatcher } from 'undici'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../config/index.ts'
import { appendVia, stripHopByHop } from '../src/headers.ts'
import { upstreamError } from '../src/errors.ts'
import { PROXY_ROUTE } from './upstream.ts'

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']

/** The wildcard route: forwards `/<host>/<path>` upstream through @fastify/reply-from. */
export default async function proxyPlugin (fastify: FastifyInstance, opts: { config: Config, dispatcher?: Dispatcher }): Promise<void> {
  const { config } = opts
  const dispatcher = opts.dispatcher ?? new Agent({
    headersTimeout: config.upstreamTimeoutMs,
    bodyTimeout: config.upstreamTimeoutMs,
    connectTimeout: Math.min(config.upstreamTimeoutMs, 10_000)
  })
  if (opts.dispatcher === undefined) fastify.addHook('onClose', async () => { await dispatcher.close() })

  await fastify.register(replyFrom, { undici: dispatcher as never, disableRequestLogging: true, disableCache: true })

  // Request bodies are streamed upstream untouched, whatever their type.
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('*', (_request, payload, done) => { done(null, payload) })

  fastify.route({
    method: METHODS,
    url: PROXY_ROUTE,
    handler (request, reply) {
      const upstream = request.upstream as URL
      return reply.from(upstream.href, {
        timeout: config.upstreamTimeoutMs,
        retryDelay: () => null, // never replay a request on 503
        rewriteRequestHeaders: (_request, headers) => ({ ...stripHopByHop(headers), via: appendVia(headers.via) }),
        rewriteHeaders: (headers) => ({ ...stripHopByHop(headers), via: appendVia(headers.via) }),
        onResponse: (request, reply, res) => {
          reply.send(fastify.cache.onUpstreamResponse(request as never, reply as never, res as never))
        },
        onError: (reply, { error }) => {
          reply.send(upstreamError(error, upstream.host, config.upstreamTimeoutMs))
        }
      })
    }
  })
}
