import fp from 'fastify-plugin'
import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance } from 'fastify'
import { METHODS } from './proxy.ts'

/** Every error leaves as a short JSON body: { error, message, code?, upstream? }. */
async function errorsPlugin (fastify: FastifyInstance): Promise<void> {
  fastify.setErrorHandler((error: FastifyError & { upstream?: string, rule?: string }, request, reply) => {
    const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500
    if (status === 405) reply.header('allow', METHODS.join(', '))
    if (status === 500) request.log.error({ err: error }, 'unexpected error')
    reply.code(status).type('application/json; charset=utf-8').send({
      error: STATUS_CODES[status] ?? 'Error',
      message: status === 500 ? 'internal error' : error.message,
      code: error.code,
      upstream: error.upstream,
      rule: error.rule
    })
  })
  fastify.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: 'Not Found', message: `no route for ${request.method} ${request.url}` })
  })
}

export default fp(errorsPlugin, { name: 'errors', fastify: '5.x' })
