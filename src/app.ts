import Fastify, { LogController, type FastifyInstance } from 'fastify'
import type { Dispatcher } from 'undici'
import type { Config } from '../config/index.ts'
import errorsPlugin from '../plugins/errors.ts'
import requestLogPlugin from '../plugins/request-log.ts'
import upstreamPlugin from '../plugins/upstream.ts'
import cachePlugin from '../plugins/cache.ts'
import proxyPlugin from '../plugins/proxy.ts'
import usagePlugin from '../plugins/usage.ts'

export interface AppOptions {
  /** Replace the upstream dispatcher (tests). */
  dispatcher?: Dispatcher
}

/** Builds the proxy without listening, so tests can `inject()` into it. */
export async function buildApp (config: Config, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: {
      level: config.logLevel,
      ...(config.logPretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } } : {})
    },
    logController: new LogController({ disableRequestLogging: true }), // plugins/request-log.ts writes one line instead
    return503OnClosing: false,
    forceCloseConnections: 'idle'
  })
  await app.register(errorsPlugin)
  await app.register(requestLogPlugin)
  await app.register(upstreamPlugin)
  await app.register(cachePlugin, { config })
  await app.register(proxyPlugin, { config, dispatcher: options.dispatcher })
  await app.register(usagePlugin)
  return app
}
