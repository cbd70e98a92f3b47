import fp from 'fastify-plugin'
import { isIP, type Socket } from 'node:net'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../config/index.ts'
import { cidrList } from '../src/upstream/address-ranges.ts'
import { normalizeHost } from '../src/upstream/host-names.ts'
import { guardedLookup, type Resolver } from '../src/upstream/address-guard.ts'
import { parseConnectTarget, rawResponse, TUNNEL_ESTABLISHED, type ConnectTarget } from '../src/upstream/connect-target.ts'
import { compileUpstreamRules } from '../src/upstream/upstream-rules.ts'
import { upstreamError } from '../src/errors.ts'
import { basicVerifier } from '../src/access/proxy-auth.ts'
import { PROXY_NAME } from '../src/http/headers.ts'
import { dial, splice, type Tunnel } from '../src/upstream/tunnel.ts'
import { WindowCounter } from '../src/access/window-counter.ts'
import { isLoopback } from './access.ts'

export interface ConnectOptions {
  config: Config
  /** Replace DNS resolution (tests). */
  resolver?: Resolver
}

/** A refusal answered on the raw socket, with the headers it needs. */
class Refused extends Error {
  constructor (readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message)
  }
}

// How long a refused client has to read the answer before its socket is destroyed.
const REFUSAL_LINGER_MS = 2000

/**
 * CONNECT tunnels (forward proxy, HTTPS): `CONNECT host:port` opens a TCP connection to
 * the upstream and pipes bytes both ways; nothing is read, changed or cached. The same
 * checks as plain requests apply (client list, rate limit, credentials, upstream rules,
 * resolved-address guard), plus CONNECT_PORTS. Refusals are short answers on the socket.
 */
async function connectPlugin (fastify: FastifyInstance, opts: ConnectOptions): Promise<void> {
  const { config } = opts
  const clients = isLoopback(config.host) ? undefined : cidrList(config.allowClients)
  const verify = config.proxyAuth.length > 0 ? basicVerifier(config.proxyAuth) : undefined
  const limit = config.rateLimitPerMinute > 0 ? new WindowCounter(60_000) : undefined
  const rules = compileUpstreamRules({
    allowPrivate: config.allowPrivateUpstreams,
    allow: config.upstreamAllow,
    deny: config.upstreamDeny,
    ports: config.connectPorts,
    portsVariable: 'CONNECT_PORTS',
    listenHost: config.host,
    listenPort: config.port
  })
  const lookup = guardedLookup({ allowPrivate: config.allowPrivateUpstreams, resolver: opts.resolver })
  const connectTimeoutMs = Math.min(config.upstreamTimeoutMs, 10_000)
  const sockets = new Set<Duplex>()
  const tunnels = new Set<Tunnel>()
  let closing = false

  /** The checks before dialling, in the order of plugins/access.ts; resolves to the target. */
  async function admit (req: IncomingMessage, client: string): Promise<ConnectTarget> {
    if (closing) throw new Refused(503, 'the proxy is shutting down')
    if (limit !== undefined && limit.hit(client) > config.rateLimitPerMinute) {
      throw new Refused(429, `rate limit exceeded, retry in ${Math.ceil(limit.resetInMs() / 1000)} seconds`, { 'Retry-After': String(Math.ceil(limit.resetInMs() / 1000)) })
    }
    if (clients !== undefined && !clients.check(client, isIP(client) === 6 ? 'ipv6' : 'ipv4')) {
      throw new Refused(403, `client ${client} is not allowed to use this proxy (ALLOW_CLIENTS)`)
    }
    if (verify !== undefined && (await verify(req.headers['proxy-authorization'])) === undefined) {
      throw new Refused(407, 'valid proxy credentials are required', { 'Proxy-Authenticate': `Basic realm="${PROXY_NAME}", charset="UTF-8"` })
    }
    let target: ConnectTarget
    try {
      target = parseConnectTarget(req.url ?? '')
    } catch (error) {
      throw new Refused(400, (error as Error).message)
    }
    const refusal = rules(target.url)
    if (refusal !== undefined) throw new Refused(refusal.status, refusal.message)
    return target
  }

  function refuse (socket: Duplex, error: Refused): void {
    // Read and drop what the client already sent (a TLS ClientHello): closing with unread
    // bytes would reset the connection before the client reads the answer.
    socket.resume()
    socket.end(rawResponse(error.status, error.message, error.headers))
    setTimeout(() => socket.destroy(), closing ? 0 : REFUSAL_LINGER_MS).unref()
  }

  async function handle (req: IncomingMessage, socket: Duplex, head: Buffer, log: (fields: Record<string, unknown>) => void): Promise<void> {
    const client = normalizeHost((socket as Socket).remoteAddress ?? '')
    const target = await admit(req, client)
    let upstream: Socket
    try {
      upstream = await dial({ host: target.host, port: target.port, lookup, timeoutMs: connectTimeoutMs })
    } catch (error) {
      const mapped = upstreamError(error, target.authority, connectTimeoutMs) as Error & { statusCode: number }
      throw new Refused(mapped.statusCode, mapped.message)
    }
    if (socket.destroyed || closing) {
      upstream.destroy()
      if (!socket.destroyed) throw new Refused(503, 'the proxy is shutting down')
      log({ target: target.authority, status: 499, reason: 'client gone' })
      return
    }
    const started = Date.now()
    socket.write(TUNNEL_ESTABLISHED)
    const tunnel = splice(socket, upstream, head, config.connectIdleTimeoutMs, (stats) => {
      tunnels.delete(tunnel)
      log({ target: target.authority, status: 200, ...stats, ms: Date.now() - started })
    })
    tunnels.add(tunnel)
  }

  fastify.server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Node hands the socket over without any error listener: without this one, a client
    // reset (ECONNRESET) would be an uncaught exception that ends the process.
    socket.on('error', () => {})
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    const begun = Date.now()
    const client = (socket as Socket).remoteAddress
    const log = (fields: Record<string, unknown>): void => {
      const message = fields.status === 200 ? 'tunnel closed' : 'tunnel refused'
      fastify.log.info({ tunnel: { client, ...fields, ms: fields.ms ?? Date.now() - begun } }, message)
    }
    handle(req, socket, head, log).catch((error: unknown) => {
      const refused = error instanceof Refused ? error : new Refused(500, 'internal error')
      if (!(error instanceof Refused)) fastify.log.error({ err: error }, 'unexpected CONNECT error')
      // A malformed target may carry credentials (`user:pw@host:443`): never log them.
      const target = (req.url ?? '').slice(0, 300).replace(/^[^@]*@/, '<credentials>@')
      log({ target, status: refused.status, reason: refused.message })
      if (!socket.destroyed) refuse(socket, refused)
    })
  })

  // Before the server closes (it waits for every socket), end the tunnels and refusals.
  fastify.addHook('preClose', (done) => {
    closing = true
    for (const tunnel of tunnels) tunnel.destroy('closed')
    for (const socket of sockets) socket.destroy()
    done()
  })
}

export default fp(connectPlugin, { name: 'connect', fastify: '5.x' })
