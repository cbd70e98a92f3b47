import { existsSync, readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { cidrList } from '../src/upstream/address-ranges.ts'
import { compileHostPatterns } from '../src/upstream/host-names.ts'

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
  maxCacheBytes: number
  heuristicMaxSeconds: number
  staleWhileRevalidateSeconds: number
  staleIfErrorSeconds: number
  /** How long past staleness an entry answers when the origin cannot be reached (refused, reset, timeout). */
  staleOnErrorSeconds: number
  cacheSetCookie: boolean
  /** How long a URL whose response could not be stored goes straight to the origin (hit-for-pass). */
  hitForPassSeconds: number
  /** This proxy's own targeted cache-control field (RFC 9213), consumed, never passed on. */
  cacheControlField: string
  allowPrivateUpstreams: boolean
  upstreamAllow: string[]
  upstreamDeny: string[]
  /** Upstream ports allowed, or '*' for any. */
  upstreamPorts: number[] | '*'
  /** Ports a CONNECT tunnel may open, or '*' for any. */
  connectPorts: number[] | '*'
  /** A CONNECT tunnel with no bytes either way for this long is closed. */
  connectIdleTimeoutMs: number
  /** CIDR ranges of clients served when HOST is not loopback. */
  allowClients: string[]
  /** user:password pairs or user:scrypt hashes that may use the proxy; empty = no authentication. */
  proxyAuth: string[]
  rateLimitPerMinute: number
  maxUrlBytes: number
  maxBodyBytes: number
  clientHeadersTimeoutMs: number
  clientRequestTimeoutMs: number
  keepAliveTimeoutMs: number
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

function fieldName (env: Env, name: string, fallback: string): string {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  // RFC 9110 §5.1: a field name is a token; Cache-Control itself cannot be a target.
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(raw) || /^(cache-control|cdn-cache-control)$/i.test(raw)) {
    throw new ConfigError(name, 'an HTTP field name (a token) other than Cache-Control and CDN-Cache-Control', raw)
  }
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

function list (env: Env, name: string, fallback: string): string[] {
  const raw = env[name] === undefined || env[name] === '' ? fallback : env[name] as string
  return raw.split(',').map((item) => item.trim()).filter((item) => item !== '')
}

function hostPatterns (env: Env, name: string): string[] {
  const patterns = list(env, name, '')
  try {
    compileHostPatterns(patterns)
  } catch (error) {
    throw new ConfigError(name, 'a comma-separated list of host names and *.suffix wildcards', env[name] ?? '')
  }
  return patterns
}

function ports (env: Env, name: string, fallback: string): number[] | '*' {
  const raw = env[name]
  if (raw?.trim() === '*') return '*'
  const values = list(env, name, fallback)
  if (values.length === 0 || !values.every((p) => /^\d{1,5}$/.test(p) && Number(p) >= 1 && Number(p) <= 65535)) {
    throw new ConfigError(name, 'a comma-separated list of ports (1-65535) or *', raw ?? '')
  }
  return values.map(Number)
}

function cidrs (env: Env): string[] {
  const values = list(env, 'ALLOW_CLIENTS', '127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7')
  try {
    cidrList(values)
  } catch {
    throw new ConfigError('ALLOW_CLIENTS', 'a comma-separated list of CIDR ranges such as 10.0.0.0/8', env.ALLOW_CLIENTS ?? '')
  }
  return values
}

function proxyAuth (env: Env): string[] {
  const entries: string[] = []
  if (env.PROXY_AUTH !== undefined && env.PROXY_AUTH !== '') {
    if (!/^[^:\s]+:.+$/.test(env.PROXY_AUTH)) throw new ConfigError('PROXY_AUTH', 'user:password', '<hidden>')
    entries.push(env.PROXY_AUTH)
  }
  const file = env.PROXY_AUTH_FILE
  if (file !== undefined && file !== '') {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      throw new ConfigError('PROXY_AUTH_FILE', 'a readable file of user:scrypt$... lines', file)
    }
    for (const line of text.split(/\r?\n/)) {
      const trimmed = line.trim()
      if (trimmed === '' || trimmed.startsWith('#')) continue
      if (!/^[^:\s]+:scrypt\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/.test(trimmed)) throw new ConfigError('PROXY_AUTH_FILE', 'lines of user:scrypt$<salt>$<hash> (npm run hash-password)', file)
      entries.push(trimmed)
    }
  }
  return entries
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
    memoryCacheBytes: integer(env, 'MEMORY_CACHE_BYTES', 64 * 1024 * 1024, 0),
    maxCacheBytes: integer(env, 'MAX_CACHE_BYTES', 1024 * 1024 * 1024, 1),
    heuristicMaxSeconds: integer(env, 'HEURISTIC_MAX_SECONDS', 86_400, 0),
    staleWhileRevalidateSeconds: integer(env, 'STALE_WHILE_REVALIDATE_SECONDS', 0, 0),
    staleIfErrorSeconds: integer(env, 'STALE_IF_ERROR_SECONDS', 0, 0),
    staleOnErrorSeconds: integer(env, 'STALE_ON_ERROR_SECONDS', 300, 0),
    cacheSetCookie: boolean(env, 'CACHE_SET_COOKIE', false),
    hitForPassSeconds: integer(env, 'HIT_FOR_PASS_SECONDS', 30, 0, 86_400),
    cacheControlField: fieldName(env, 'CACHE_CONTROL_FIELD', 'CachingProxy-Cache-Control'),
    allowPrivateUpstreams: boolean(env, 'ALLOW_PRIVATE_UPSTREAMS', false),
    upstreamAllow: hostPatterns(env, 'UPSTREAM_ALLOW'),
    upstreamDeny: hostPatterns(env, 'UPSTREAM_DENY'),
    upstreamPorts: ports(env, 'UPSTREAM_PORTS', '80,443,8080,8443'),
    connectPorts: ports(env, 'CONNECT_PORTS', '443'),
    connectIdleTimeoutMs: integer(env, 'CONNECT_IDLE_TIMEOUT_MS', 300_000, 1),
    allowClients: cidrs(env),
    proxyAuth: proxyAuth(env),
    rateLimitPerMinute: integer(env, 'RATE_LIMIT_PER_MINUTE', 0, 0),
    maxUrlBytes: integer(env, 'MAX_URL_BYTES', 8192, 64, 65536),
    maxBodyBytes: integer(env, 'MAX_BODY_BYTES', 10 * 1024 * 1024, 0),
    clientHeadersTimeoutMs: integer(env, 'CLIENT_HEADERS_TIMEOUT_MS', 10_000, 100),
    clientRequestTimeoutMs: integer(env, 'CLIENT_REQUEST_TIMEOUT_MS', 120_000, 100),
    keepAliveTimeoutMs: integer(env, 'KEEP_ALIVE_TIMEOUT_MS', 5000, 1)
  }
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
