import fp from 'fastify-plugin'
import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { METHODS } from './proxy.ts'
import { errorPage, prefersHtml, type ErrorBody } from '../src/error-page.ts'
import { upstreamStreamError } from '../src/errors.ts'
import { appendCacheStatus } from '../src/http/headers.ts'

/** Sends an error body: a small HTML page to browsers (Accept prefers text/html), JSON otherwise. */
function sendError (request: FastifyRequest, reply: FastifyReply, status: number, body: ErrorBody): FastifyReply {
  reply.code(status).header('vary', 'Accept')
  if (prefersHtml(request.headers.accept)) return reply.type('text/html; charset=utf-8').send(errorPage(status, body))
  return reply.type('application/json; charset=utf-8').send(body)
}

/** Every error leaves as a short body: { error, message, code?, upstream?, rule? } or the same as an HTML page. */
async function errorsPlugin (fastify: FastifyInstance): Promise<void> {
  fastify.setErrorHandler((raw: FastifyError & { upstream?: string, rule?: string }, request, reply) => {
    const failed = raw.statusCode === undefined && request.upstream !== null ? upstreamStreamError(raw, request.upstream.host) : undefined
    const error = (failed ?? raw) as FastifyError & { upstream?: string, rule?: string, upstreamCode?: string }
    if (failed !== undefined) {
      // The response never started: none of the origin's headers, nor what the cache said about storing it, hold.
      for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name)
      reply.header('x-cache', 'MISS').header('cache-status', appendCacheStatus(undefined, `fwd=miss; detail=${error.upstreamCode ?? 'error'}`))
    }
    const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500
    if (status === 405) reply.header('allow', METHODS.join(', '))
    if (status === 500) request.log.error({ err: error }, 'unexpected error')
    return sendError(request, reply, status, {
      error: STATUS_CODES[status] ?? 'Error',
      message: status === 500 ? 'internal error' : error.message,
      code: error.code,
      upstream: error.upstream,
      rule: error.rule
    })
  })
  fastify.setNotFoundHandler((request, reply) => {
    return sendError(request, reply, 404, { error: 'Not Found', message: `no route for ${request.method} ${request.url}` })
  })
}

export default fp(errorsPlugin, { name: 'errors', fastify: '5.x' })
