import { loadConfig, loadPm2Config, loadDotEnv, ConfigError, shutdownBudget } from '../config/index.ts'

/**
 * `node dist/src/pm2-settings.js`: prints, as JSON, what ecosystem.config.cjs needs from
 * the configuration, resolved by the same validator as the server (environment over
 * ./.env of the current directory), so PM2 and the workers can never disagree. An
 * invalid configuration exits 78 (EX_CONFIG) with the variable named on stderr.
 */
loadDotEnv()
try {
  const config = loadConfig()
  const pm2 = loadPm2Config()
  const settings = {
    name: pm2.appName,
    workers: config.workers,
    killTimeoutMs: shutdownBudget(config).killTimeoutMs,
    maxMemoryRestart: pm2.maxMemoryRestart
  }
  process.stdout.write(`${JSON.stringify(settings)}\n`)
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  process.stderr.write(`caching-proxy: invalid configuration: ${error.message}\n`)
  process.exitCode = 78
}
