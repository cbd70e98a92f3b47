import fp from 'fastify-plugin'
import { isIP } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config/index.ts'
import { ClientForbidden, LoopDetected, MalformedRequest, MethodNotAllowed, UnsupportedVersion, UrlTooLong } from '../src/errors.ts'
import { METHODS } from './proxy.ts'
import { PROXY_NAME } from '../src/headers.ts'
import { basicVerifier, type Verifier } from '../src/proxy-auth.ts'
import { cidrList, normalizeHost, judgeAddress } from '../src/address-guard.ts'
import rateLimitPlugin from './rate-limit.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** The request came in forward-proxy form (`GET http://host/path`). */
    forwardStyle: boolean
  }
}

function isLoopback (host: string): boolean {
  const normalized = normalizeHost(host)
  if (normalized === 'localhost') return true
  const verdict = judgeAddress(normalized)
  return !verdict.allowed && verdict.rule === 'loopback'
}

// A Via member whose received-by is this proxy: the request already passed through it.
const OWN_VIA = new RegExp(`(^|,)\\s*[^\\s,]+\\s+${PROXY_NAME}(\\s|,|$)`, 'i')

/**
 * Who may use the proxy: the client address list (when listening beyond loopback),
 * loop detection, the URL length limit, Basic credentials and the per-client rate limit.
 */
async function accessPlugin (fastify: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts
  const clients = isLoopback(config.host) ? undefined : cidrList(config.allowClients)
  const verify = config.proxyAuth.length > 0 ? basicVerifier(config.proxyAuth) : undefined

  fastify.decorateRequest('forwardStyle', false)
  // The limit comes first, so neither cache hits nor password guesses escape it.
  await fastify.register(rateLimitPlugin, { config })
  /** The checks that need no I/O; an error, or undefined when the request may go on. */
  function refusal (request: FastifyRequest): Error | undefined {
    // Node also accepts a request line without a version (HTTP/0.9) and reads headers after it.
    const version = request.raw.httpVersion
    if (version === '0.9') return new MalformedRequest('a request line without an HTTP version')
    if (version !== '1.1' && version !== '1.0') return new UnsupportedVersion(version)
    // Refused before any body handling, for every route.
    if (!METHODS.includes(request.method)) return new MethodNotAllowed(request.method)
    if (clients !== undefined) {
      const address = normalizeHost(request.socket.remoteAddress ?? '')
      if (!clients.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4')) return new ClientForbidden(address)
    }
    if (Buffer.byteLength(request.originalUrl) > config.maxUrlBytes) return new UrlTooLong(config.maxUrlBytes)
    const via = request.headers.via
    if (via !== undefined && OWN_VIA.test(Array.isArray(via) ? via.join(',') : via)) {
      return new LoopDetected(`the request already passed through ${PROXY_NAME} (Via)`)
    }
    return undefined
  }

  /** Basic credentials: true when the request may go on, else it was answered 401/407. */
  async function authenticate (request: FastifyRequest, reply: FastifyReply, verify: Verifier): Promise<boolean> {
    // Forward-proxy clients answer Proxy-Authorization (407); path-style clients, Authorization (401).
    const header = request.forwardStyle ? 'proxy-authorization' : 'authorization'
    const user = await verify(request.headers[header] as string | undefined)
    if (user === undefined) {
      const status = request.forwardStyle ? 407 : 401
      reply.code(status)
        .header(status === 407 ? 'proxy-authenticate' : 'www-authenticate', `Basic realm="${PROXY_NAME}", charset="UTF-8"`)
        .send({ error: status === 407 ? 'Proxy Authentication Required' : 'Unauthorized', message: 'valid proxy credentials are required' })
      return false
    }
    // The proxy's credentials are never forwarded upstream.
    delete request.headers[header]
    delete request.raw.headers[header]
    return true
  }

  fastify.addHook('onRequest', (request, reply, done) => {
    request.forwardStyle = request.originalUrl !== request.url
    const refused = refusal(request)
    if (refused !== undefined) return done(refused)
    if (verify === undefined) return done()
    authenticate(request, reply, verify).then((allowed) => { if (allowed) done() }, done)
  })
}

export default fp(accessPlugin, { name: 'access', fastify: '5.x' })
