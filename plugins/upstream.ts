import fp from 'fastify-plugin'
import { Agent, type Dispatcher } from 'undici'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../config/index.ts'
import { guardedConnector, type Resolver } from '../src/upstream/address-guard.ts'
import { parseUpstreamUrl, UpstreamUrlError } from '../src/upstream/upstream-url.ts'
import { compileUpstreamRules } from '../src/upstream/upstream-rules.ts'
import { InterimForwarding } from '../src/upstream/interim-responses.ts'
import { BadUpstreamUrl, LoopDetected, UpstreamForbidden } from '../src/errors.ts'

export const PROXY_ROUTE = '/*'

declare module 'fastify' {
  interface FastifyInstance {
    /** The one dispatcher every upstream request goes through (proxied requests and background refreshes). */
    upstreamAgent: Dispatcher
  }
  interface FastifyRequest {
    /** The upstream URL a proxied request names; null on the proxy's own routes. */
    upstream: URL | null
  }
}

export interface UpstreamOptions {
  config: Config
  /** Replace the upstream dispatcher (tests). */
  dispatcher?: Dispatcher
  /** Replace DNS resolution (tests: a name that resolves to a private address). */
  resolver?: Resolver
}

/**
 * Knows where requests go and whether they may: sets `request.upstream` from the path (a
 * malformed one is a 400), refuses forbidden upstreams (403) and the proxy itself (508),
 * and owns the upstream connection pool, whose connector judges every resolved address
 * it connects to, so DNS names that resolve to private addresses are refused too.
 */
async function upstreamPlugin (fastify: FastifyInstance, opts: UpstreamOptions): Promise<void> {
  const { config } = opts
  const base = opts.dispatcher ?? new Agent({
    headersTimeout: config.upstreamTimeoutMs,
    bodyTimeout: config.upstreamTimeoutMs,
    connect: guardedConnector({
      allowPrivate: config.allowPrivateUpstreams,
      resolver: opts.resolver,
      connect: { timeout: Math.min(config.upstreamTimeoutMs, 10_000) }
    })
  })
  // 1xx responses from the origin reach the client (src/upstream/interim-responses.ts).
  const agent = new InterimForwarding(base)
  const refusal = compileUpstreamRules({
    allowPrivate: config.allowPrivateUpstreams,
    allow: config.upstreamAllow,
    deny: config.upstreamDeny,
    ports: config.upstreamPorts,
    listenHost: config.host,
    listenPort: config.port
  })
  fastify.decorate('upstreamAgent', agent)
  if (opts.dispatcher === undefined) fastify.addHook('onClose', async () => { await base.close() })

  // Parsing and judging are pure: remember recent targets (bounded) so repeated hits skip both.
  const judged = new Map<string, { url: URL, error?: Error }>()
  function judge (target: string): { url: URL, error?: Error } {
    let verdict = judged.get(target)
    if (verdict === undefined) {
      const url = parseUpstreamUrl(target)
      const refused = refusal(url)
      verdict = refused === undefined
        ? { url }
        : { url, error: Object.assign(refused.status === 508 ? new LoopDetected(refused.message) : new UpstreamForbidden(refused.message), { rule: refused.rule, upstream: url.host }) }
      if (judged.size >= 10_000) judged.clear()
      judged.set(target, verdict)
    }
    return verdict
  }

  fastify.decorateRequest('upstream', null)
  fastify.addHook('onRequest', (request, _reply, done) => {
    if (request.routeOptions.url !== PROXY_ROUTE) return done()
    let verdict: { url: URL, error?: Error }
    try {
      verdict = judge(request.url)
    } catch (error) {
      return done(error instanceof UpstreamUrlError ? new BadUpstreamUrl(error.message) : error as Error)
    }
    if (verdict.error !== undefined) return done(verdict.error)
    request.upstream = verdict.url
    done()
  })
}

export default fp(upstreamPlugin, { name: 'upstream', fastify: '5.x' })
