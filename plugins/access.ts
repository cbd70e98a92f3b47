import fp from 'fastify-plugin'
import { isIP } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config/index.ts'
import { ClientForbidden, CredentialsRequired, ProxyCredentialsRequired, LoopDetected, MalformedRequest, MethodNotAllowed, UnsupportedVersion, UrlTooLong } from '../src/errors.ts'
import { METHODS } from './proxy.ts'
import { PROXY_NAME } from '../src/http/headers.ts'
import { basicVerifier, type Verifier } from '../src/access/proxy-auth.ts'
import { cidrList, judgeAddress } from '../src/upstream/address-ranges.ts'
import { normalizeHost } from '../src/upstream/host-names.ts'
import rateLimitPlugin from './rate-limit.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** No credentials needed (PROXY_AUTH): the client list, rate limit and limits still apply. */
    public?: boolean
  }
  interface FastifyRequest {
    /** The request came in forward-proxy form (`GET http://host/path`). */
    forwardStyle: boolean
  }
}

/** The host is a loopback address or localhost (then ALLOW_CLIENTS is not needed). */
export function isLoopback (host: string): boolean {
  const normalized = normalizeHost(host)
  if (normalized === 'localhost') return true
  const verdict = judgeAddress(normalized)
  return !verdict.allowed && verdict.rule === 'loopback'
}

/**
 * The client address list as a check (undefined when every client may come: listening on loopback).
 * Shared with plugins/fast-hits.ts, which must refuse exactly the clients this plugin refuses.
 */
export function clientCheck (config: Config): ((remote: string | undefined) => string | undefined) | undefined {
  if (isLoopback(config.host)) return undefined
  const clients = cidrList(config.allowClients)
  /** The refused (normalised) address, or undefined when the client may come. */
  return (remote) => {
    const address = normalizeHost(remote ?? '')
    return clients.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4') ? undefined : address
  }
}

// A Via member whose received-by is this proxy: the request already passed through it.
const OWN_VIA = new RegExp(`(^|,)\\s*[^\\s,]+\\s+${PROXY_NAME}(\\s|,|$)`, 'i')

/**
 * Who may use the proxy: the client address list (when listening beyond loopback),
 * loop detection, the URL length limit, Basic credentials and the per-client rate limit.
 */
async function accessPlugin (fastify: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts
  const refusedClient = clientCheck(config)
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
    const refusedAddress = refusedClient?.(request.socket.remoteAddress)
    if (refusedAddress !== undefined) return new ClientForbidden(refusedAddress)
    if (Buffer.byteLength(request.originalUrl) > config.maxUrlBytes) return new UrlTooLong(config.maxUrlBytes)
    const via = request.headers.via
    if (via !== undefined && OWN_VIA.test(Array.isArray(via) ? via.join(',') : via)) {
      return new LoopDetected(`the request already passed through ${PROXY_NAME} (Via)`)
    }
    return undefined
  }

  /** Basic credentials: resolves when the request may go on, else rejects with a 401/407 error. */
  async function authenticate (request: FastifyRequest, reply: FastifyReply, verify: Verifier): Promise<void> {
    // Forward-proxy clients answer Proxy-Authorization (407); path-style clients, Authorization (401).
    const header = request.forwardStyle ? 'proxy-authorization' : 'authorization'
    const user = await verify(request.headers[header] as string | undefined)
    if (user === undefined) {
      // The error handler writes the body (HTML for browsers, JSON otherwise).
      reply.header(request.forwardStyle ? 'proxy-authenticate' : 'www-authenticate', `Basic realm="${PROXY_NAME}", charset="UTF-8"`)
      throw request.forwardStyle ? new ProxyCredentialsRequired() : new CredentialsRequired()
    }
    // The proxy's credentials are never forwarded upstream.
    delete request.headers[header]
    delete request.raw.headers[header]
  }

  fastify.addHook('onRequest', (request, reply, done) => {
    request.forwardStyle = request.originalUrl !== request.url
    const refused = refusal(request)
    if (refused !== undefined) return done(refused)
    // Routes marked public (the PAC file, /_proxy/) need no credentials: a browser fetches them without
    // any. PURGE is an admin request: plugins/admin.ts checks its own credentials.
    if (verify === undefined || request.routeOptions.config.public === true || request.method === 'PURGE') return done()
    authenticate(request, reply, verify).then(() => done(), done)
  })
}

export default fp(accessPlugin, { name: 'access', fastify: '5.x' })
