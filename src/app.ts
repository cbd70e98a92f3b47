import Fastify, { LogController, type FastifyInstance } from 'fastify'
import type { Dispatcher } from 'undici'
import type { Config } from '../config/index.ts'
import type { Resolver } from './upstream/address-guard.ts'
import { siteOfHost } from './browsing/site-origin.ts'
import { lazyChildLoggerFactory } from './lazy-logger.ts'
import { stdoutSink } from './log-sink.ts'
import errorsPlugin from '../plugins/errors.ts'
import requestLogPlugin from '../plugins/request-log.ts'
import accessPlugin from '../plugins/access.ts'
import pathBrowsingPlugin from '../plugins/path-browsing.ts'
import upstreamPlugin from '../plugins/upstream.ts'
import cachePlugin from '../plugins/cache.ts'
import proxyPlugin from '../plugins/proxy.ts'
import usagePlugin from '../plugins/usage.ts'
import connectPlugin from '../plugins/connect.ts'
import pacPlugin from '../plugins/pac.ts'
import metricsPlugin from '../plugins/metrics.ts'
import adminPlugin from '../plugins/admin.ts'
import explainPlugin from '../plugins/explain.ts'
import dashboardPlugin from '../plugins/dashboard.ts'
import fastHitsPlugin from '../plugins/fast-hits.ts'
import loadSheddingPlugin, { type LoadSheddingOptions } from '../plugins/load-shedding.ts'

export interface AppOptions {
  /** Replace the upstream dispatcher (tests). */
  dispatcher?: Dispatcher
  /** Replace DNS resolution for upstream connections (tests). */
  resolver?: Resolver
  /** Write the JSON log lines here instead of stdout (tests; ignored with LOG_PRETTY). */
  logStream?: { write: (line: string) => void }
  /** An extra pressure check for load shedding (tests inject pressure with it). */
  pressureCheck?: LoadSheddingOptions['check']
  /** false: plain memory-tier hits go through reply.send like every answer (tests compare both paths). */
  directHits?: boolean
  /** false: no fast hits before Fastify's routing, whatever FAST_HITS says (tests compare both paths). */
  fastHits?: boolean
}

/** Builds the proxy without listening, so tests can `inject()` into it. */
export async function buildApp (config: Config, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: {
      level: config.logLevel,
      redact: ['req.headers.authorization', 'req.headers["proxy-authorization"]'],
      ...(config.logPretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } } : {}),
      // One write per event-loop turn for all its lines (src/log-sink.ts).
      ...(config.logPretty ? {} : { stream: options.logStream ?? stdoutSink() })
    },
    logController: new LogController({ disableRequestLogging: true }), // plugins/request-log.ts writes one line instead
    childLoggerFactory: lazyChildLoggerFactory, // no pino child per request until it writes a line
    // Slow clients are cut off: headers within CLIENT_HEADERS_TIMEOUT_MS (slowloris), the
    // whole request within CLIENT_REQUEST_TIMEOUT_MS, idle keep-alive sockets closed.
    http: {
      headersTimeout: config.clientHeadersTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, config.clientHeadersTimeoutMs)
    } as never,
    requestTimeout: config.clientRequestTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    bodyLimit: config.maxBodyBytes,
    // Forward-proxy requests (`GET http://host/path`) take the same route as `/http://host/path`,
    // and so do requests to a per-site origin (`Host: host.localhost`, src/browsing/site-origin.ts).
    rewriteUrl: (req) => {
      const url = req.url ?? '/'
      if (!url.startsWith('/')) return `/${url}`
      const site = siteOfHost(req.headers.host)
      return site === undefined ? url : site + url
    },
    return503OnClosing: false,
    forceCloseConnections: 'idle'
  })
  await app.register(errorsPlugin)
  await app.register(requestLogPlugin)
  await app.register(accessPlugin, { config })
  await app.register(pathBrowsingPlugin, { config })
  await app.register(upstreamPlugin, { config, dispatcher: options.dispatcher, resolver: options.resolver })
  await app.register(cachePlugin, { config, directHits: options.directHits })
  // After the cache: hits were answered in its onRequest hook before this one sheds anything.
  await app.register(loadSheddingPlugin, { config, check: options.pressureCheck })
  await app.register(proxyPlugin, { config })
  await app.register(usagePlugin)
  await app.register(connectPlugin, { config, resolver: options.resolver })
  await app.register(pacPlugin, { config })
  // Last: their hooks see the cache outcome and the judged upstream URL (PURGE).
  await app.register(metricsPlugin, { config })
  await app.register(adminPlugin, { config })
  await app.register(explainPlugin, { config })
  await app.register(dashboardPlugin, { config })
  // After every plugin whose per-request work it repeats or leaves out (see its comment).
  await app.register(fastHitsPlugin, { config, enabled: options.fastHits !== false && options.directHits !== false })
  return app
}
