import { existsSync } from 'node:fs'
import { SCHEMA, PM2_SCHEMA, resolve, type Settings } from './schema.ts'

export { ConfigError } from './parsers.ts'

/** The one validated configuration object: one property per variable of config/schema.ts. */
export type Config = Settings<typeof SCHEMA>

/** What only PM2 reads (app name, memory restart), validated like the rest. */
export type Pm2Config = Settings<typeof PM2_SCHEMA>

type Env = Record<string, string | undefined>

/** Builds the one validated configuration object from the environment. */
export function loadConfig (env: Env = process.env): Config {
  return resolve(SCHEMA, env)
}

/** The PM2-only variables (src/pm2-settings.ts, src/start.ts). */
export function loadPm2Config (env: Env = process.env): Pm2Config {
  return resolve(PM2_SCHEMA, env)
}

/** Reads `.env` (when present) into process.env without overriding what is already set. */
export function loadDotEnv (path = '.env'): void {
  if (existsSync(path)) process.loadEnvFile(path)
}

/**
 * How long a worker may take to stop (src/server.ts): keep-alive connections drain for
 * up to `drainMs` (at least one keep-alive timeout, so an idle socket is closed by its
 * own timeout and not under a client that is just reusing it), then the store is closed
 * and the process exits by `exitMs` at the latest. PM2's kill_timeout is set above it.
 */
export function shutdownBudget (config: Pick<Config, 'keepAliveTimeoutMs'>): { drainMs: number, exitMs: number, killTimeoutMs: number } {
  const drainMs = Math.max(10_000, config.keepAliveTimeoutMs + 1000)
  return { drainMs, exitMs: drainMs + 2000, killTimeoutMs: drainMs + 4000 }
}
