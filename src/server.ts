import { buildApp } from './app.ts'
import { loadConfig, loadDotEnv, ConfigError, shutdownBudget } from '../config/index.ts'
import { drainConnections } from './drain.ts'
import { missingTunables, startEnviron } from './worker-env.ts'

/** Entry point: `node dist/src/server.js` (one process; PM2 runs several). */
async function main (): Promise<void> {
  loadDotEnv()
  let config
  try {
    config = loadConfig()
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`caching-proxy: invalid configuration: ${error.message}`)
      process.exit(78) // EX_CONFIG
    }
    throw error
  }
  const app = await buildApp(config)
  const environ = startEnviron()

  const budget = shutdownBudget(config)
  let closing = false
  const shutdown = (signal: string): void => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'shutting down: finishing in-flight requests')
    const force = setTimeout(() => process.exit(1), budget.exitMs)
    force.unref()
    drainConnections(app.server, budget.drainMs).then(async (drained) => {
      if (!drained) app.log.warn({ ms: budget.drainMs }, 'connections still open after the drain time; closing them')
      await app.close()
      // Under PM2's cluster primary a connection can be handed to this worker just as it
      // closes; exiting at once would leave that socket hanging (nodejs/node#3551).
      if (process.connected) await new Promise((resolve) => setTimeout(resolve, 300))
      process.exit(0)
    }).catch((error: unknown) => {
      app.log.error({ err: error }, 'error while shutting down')
      process.exit(1)
    })
  }
  process.on('SIGINT', () => shutdown('SIGINT'))
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  // PM2 sends this message instead of a signal on reload/stop in cluster mode.
  process.on('message', (message) => { if (message === 'shutdown') shutdown('shutdown') })

  await app.listen({ port: config.port, host: config.host })
  process.send?.('ready') // PM2 wait_ready: the worker takes traffic only from here
  const missing = environ === undefined ? [] : missingTunables(environ)
  if (missing.length > 0) {
    app.log.info({ missing }, 'started without the malloc setting npm start gives workers (GLIBC_TUNABLES): a large body streamed through costs ~5x the CPU; see README "Operations"')
  }
}

main().catch((error: unknown) => {
  console.error('caching-proxy failed to start:', error)
  process.exit(1)
})
