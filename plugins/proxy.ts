import { METHODS as NODE_METHODS, type ServerResponse } from 'node:http'
import { Transform, pipeline } from 'node:stream'
import replyFrom from '@fastify/reply-from'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config/index.ts'
import { appendVia, upstreamRequestHeaders } from '../src/http/headers.ts'
import { upstreamHeaders } from '../src/engine/index.ts'
import { withoutOwnField } from '../src/cache/targeted-cache-control.ts'
import type { StoredHeaders } from '../src/cache/entry.ts'
import { BadUpstreamUrl, BodyTooLarge, upstreamError } from '../src/errors.ts'
import { withInterimTarget } from '../src/upstream/interim-responses.ts'
import { isBrowser } from '../src/browsing/path-browsing.ts'
import { PROXY_ROUTE } from './upstream.ts'

// Every method Node's HTTP parser accepts is forwarded (RFC 9110 §9.1: a proxy forwards
// methods it does not know), except CONNECT, which tunnels (plugins/connect.ts).
export const METHODS = NODE_METHODS.filter((method) => method !== 'CONNECT')
const BODYLESS = new Set(['GET', 'HEAD', 'TRACE'])

// RFC 9110 §9.3.8: a TRACE echo leaves out what may be secret.
const NOT_ECHOED = new Set(['authorization', 'proxy-authorization', 'cookie'])

/** Answers OPTIONS / TRACE here when Max-Forwards has reached 0 (RFC 9110 §7.6.2); true when it did. */
function answerMaxForwards (request: FastifyRequest, reply: FastifyReply): boolean {
  const raw = request.headers['max-forwards']
  if ((request.method !== 'OPTIONS' && request.method !== 'TRACE') || raw === undefined) return false
  const remaining = Number(raw)
  if (!Number.isInteger(remaining) || remaining < 0) return false
  if (remaining > 0) {
    request.headers['max-forwards'] = String(remaining - 1)
    return false
  }
  if (request.method === 'OPTIONS') {
    reply.code(200).header('allow', METHODS.join(', ')).header('content-length', 0).send()
  } else {
    const lines = [`TRACE ${request.url} HTTP/1.1`]
    for (let i = 0; i < request.raw.rawHeaders.length; i += 2) {
      if (!NOT_ECHOED.has(request.raw.rawHeaders[i].toLowerCase())) lines.push(`${request.raw.rawHeaders[i]}: ${request.raw.rawHeaders[i + 1]}`)
    }
    reply.code(200).type('message/http').send(lines.join('\r\n') + '\r\n\r\n')
  }
  return true
}

/**
 * Where the origin's 1xx responses go: the client, except a browser in path-prefix mode,
 * whose 103 `Link`s would need rewriting into proxy paths (they are dropped instead).
 */
function interimTarget (request: FastifyRequest, reply: FastifyReply): ServerResponse | undefined {
  return request.originalUrl.startsWith('/') && isBrowser(request.headers) ? undefined : reply.raw
}

/**
 * The wildcard route: forwards `/<host>/<path>` upstream through @fastify/reply-from and
 * hands every response (or failure) to the cache plugin.
 */
export default async function proxyPlugin (fastify: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts
  for (const method of METHODS) {
    if (!fastify.supportedMethods.includes(method)) fastify.addHttpMethod(method, { hasBody: !BODYLESS.has(method) })
  }
  await fastify.register(replyFrom, { undici: fastify.upstreamAgent as never, disableRequestLogging: true, disableCache: true })

  // Request bodies are streamed upstream untouched, whatever their type, up to MAX_BODY_BYTES.
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('*', (request, payload, done) => {
    const declared = Number(request.headers['content-length'])
    if (declared > config.maxBodyBytes) {
      done(new BodyTooLarge(config.maxBodyBytes), undefined)
      return
    }
    let seen = 0
    const limited = new Transform({
      transform (chunk: Buffer, _encoding, callback) {
        seen += chunk.length
        callback(seen > config.maxBodyBytes ? new BodyTooLarge(config.maxBodyBytes) : null, chunk)
      }
    })
    // pipeline() owns the errors: a body nobody reads (e.g. OPTIONS answered here) cannot crash the process.
    pipeline(payload, limited, () => {})
    done(null, limited)
  })

  fastify.route({
    method: METHODS,
    url: PROXY_ROUTE,
    handler (request, reply) {
      if (answerMaxForwards(request, reply)) return reply
      const upstream = request.upstream as URL
      // reply-from percent-decodes the source to look for traversal: give it the path only
      // (the query may be in any encoding) and refuse a path that does not decode.
      try {
        decodeURIComponent(upstream.pathname)
      } catch {
        throw new BadUpstreamUrl('malformed percent-encoding in the upstream path')
      }
      return reply.from(upstream.origin + upstream.pathname, {
        queryString: () => upstream.search.slice(1),
        timeout: config.upstreamTimeoutMs,
        retryDelay: () => null, // never replay a request on 503
        rewriteRequestHeaders: (request, headers) => withInterimTarget(fastify.cache.conditionalHeaders(request as never, upstreamRequestHeaders(headers)), interimTarget(request as never, reply)),
        // Normalised once, here, for the client and the cache (which refuses 502 what cannot be).
        rewriteHeaders: (headers, request) => {
          const normalized = upstreamHeaders(headers)
          if (request !== undefined) (request as FastifyRequest).upstreamHeaders = normalized
          const sent = normalized.headers ?? normalized.stripped as StoredHeaders
          return { ...withoutOwnField(sent, config.cacheControlField), via: appendVia(headers.via) }
        },
        onResponse: (request, reply, res) => {
          fastify.cache.onUpstreamResponse(request as never, reply as never, res as never)
        },
        onError: (reply, { error }) => {
          fastify.cache.onUpstreamError(reply.request as never, reply as never, upstreamError(error, upstream.host, config.upstreamTimeoutMs))
        }
      })
    }
  })
}
