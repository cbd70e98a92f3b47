import { loadConfig, loadDotEnv, ConfigError, shutdownBudget } from '../config/index.ts'

/**
 * `node dist/src/pm2-settings.js`: prints, as JSON, what ecosystem.config.cjs needs from
 * the configuration, resolved by the same validator as the server (environment over
 * ./.env of the current directory), so PM2 and the workers can never disagree. An
 * invalid configuration exits 78 (EX_CONFIG) with the variable named on stderr.
 */
loadDotEnv()
try {
  const config = loadConfig()
  const settings = {
    name: process.env.PM2_APP_NAME !== undefined && process.env.PM2_APP_NAME !== '' ? process.env.PM2_APP_NAME : 'caching-proxy',
    workers: config.workers,
    killTimeoutMs: shutdownBudget(config).killTimeoutMs,
    maxMemoryRestart: process.env.MAX_MEMORY_RESTART !== undefined && process.env.MAX_MEMORY_RESTART !== '' ? process.env.MAX_MEMORY_RESTART : '1G'
  }
  process.stdout.write(`${JSON.stringify(settings)}\n`)
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  process.stderr.write(`caching-proxy: invalid configuration: ${error.message}\n`)
  process.exitCode = 78
}
