import { existsSync } from 'node:fs'
import { availableParallelism } from 'node:os'

export interface Config {
  port: number
  host: string
  cacheStore: string
  workers: number
  logLevel: string
  logPretty: boolean
  upstreamTimeoutMs: number
  maxEntryBytes: number
  memoryCacheBytes: number
}

type Env = Record<string, string | undefined>

export class ConfigError extends Error {
  constructor (variable: string, expected: string, given: string) {
    super(`${variable}: expected ${expected}, got ${JSON.stringify(given)}`)
    this.name = 'ConfigError'
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

function integer (env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(name, `an integer between ${min} and ${max}`, raw)
  }
  return value
}

function boolean (env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (/^(1|true|yes|on)$/i.test(raw)) return true
  if (/^(0|false|no|off)$/i.test(raw)) return false
  throw new ConfigError(name, 'true or false', raw)
}

function oneOf (env: Env, name: string, fallback: string, allowed: string[]): string {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (!allowed.includes(raw)) throw new ConfigError(name, `one of ${allowed.join(', ')}`, raw)
  return raw
}

function storeUri (env: Env): string {
  const raw = env.CACHE_STORE
  if (raw === undefined || raw === '') return 'sqlite://./data/cache.sqlite'
  if (raw === 'memory://' || /^sqlite:\/\/.+/.test(raw)) return raw
  throw new ConfigError('CACHE_STORE', 'sqlite://<path> or memory://', raw)
}

function workers (env: Env): number {
  const raw = env.WORKERS
  if (raw === 'max' || raw === undefined || raw === '') return availableParallelism()
  return integer(env, 'WORKERS', 1, 1, 1024)
}

function host (env: Env): string {
  const raw = env.HOST
  if (raw === undefined || raw === '') return '127.0.0.1'
  if (/[\s/]/.test(raw)) throw new ConfigError('HOST', 'an IP address or hostname to listen on', raw)
  return raw
}

/** Builds the one validated configuration object from the environment. */
export function loadConfig (env: Env = process.env): Config {
  return {
    port: integer(env, 'PORT', 8888, 0, 65535),
    host: host(env),
    cacheStore: storeUri(env),
    workers: workers(env),
    logLevel: oneOf(env, 'LOG_LEVEL', 'info', LOG_LEVELS),
    logPretty: boolean(env, 'LOG_PRETTY', false),
    upstreamTimeoutMs: integer(env, 'UPSTREAM_TIMEOUT_MS', 30_000, 1),
    maxEntryBytes: integer(env, 'MAX_ENTRY_BYTES', 8 * 1024 * 1024, 0),
    memoryCacheBytes: integer(env, 'MEMORY_CACHE_BYTES', 64 * 1024 * 1024, 0)
  }
}

/** Reads `.env` (when present) into process.env without overriding what is already set. */
export function loadDotEnv (path = '.env'): void {
  if (existsSync(path)) process.loadEnvFile(path)
}
