import * as is from './parsers.ts'
import type { Parser } from './parsers.ts'

/**
 * Every configuration variable, declared once: its name, the property it sets, its
 * default (written as the variable's text, and parsed like a given value), its parser
 * and a one-line doc. `Config` is derived from it; README's configuration table and
 * .env.example are checked against it (test/config-docs.test.ts).
 */
export interface Variable<K extends string, T> {
  name: string
  key: K
  default: string
  parse: Parser<T>
  doc: string
}

function variable<K extends string, T> (spec: Variable<K, T>): Variable<K, T> {
  return spec
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** What the server reads, in the order it is validated (the first invalid one is named). */
export const SCHEMA = [
  variable({ name: 'PORT', key: 'port', default: '8888', parse: is.integer(0, 65535), doc: 'TCP port to listen on' }),
  variable({ name: 'HOST', key: 'host', default: '127.0.0.1', parse: is.host, doc: 'address to listen on' }),
  variable({ name: 'CACHE_STORE', key: 'cacheStore', default: 'sqlite://./data/cache.sqlite', parse: is.storeUri, doc: 'where the cache lives: sqlite://<path>, memory:// or redis[s]://host[:port][/db]' }),
  variable({ name: 'REDIS_TIMEOUT_MS', key: 'redisTimeoutMs', default: '50', parse: is.integer(1, 60_000), doc: 'bound on each Redis command (CACHE_STORE=redis://); past it the request is served uncached' }),
  variable({ name: 'WORKERS', key: 'workers', default: 'max', parse: is.workers, doc: 'PM2 cluster instances, or max for one per core' }),
  variable({ name: 'LOG_LEVEL', key: 'logLevel', default: 'info', parse: is.oneOf(LOG_LEVELS), doc: 'pino log level' }),
  variable({ name: 'LOG_PRETTY', key: 'logPretty', default: 'false', parse: is.boolean, doc: 'human-readable logs through pino-pretty' }),
  variable({ name: 'UPSTREAM_TIMEOUT_MS', key: 'upstreamTimeoutMs', default: '30000', parse: is.integer(1), doc: 'upstream connect / headers / between-chunks timeout; then 504' }),
  variable({ name: 'MAX_ENTRY_BYTES', key: 'maxEntryBytes', default: '8388608', parse: is.integer(0), doc: 'largest body stored' }),
  variable({ name: 'MEMORY_CACHE_BYTES', key: 'memoryCacheBytes', default: '67108864', parse: is.integer(0), doc: 'per-worker memory tier in front of the store (0: off)' }),
  variable({ name: 'FAST_HITS', key: 'fastHits', default: 'true', parse: is.boolean, doc: 'answer repeated plain memory-tier hits before Fastify routes them (plugins/fast-hits.ts)' }),
  variable({ name: 'MAX_CACHE_BYTES', key: 'maxCacheBytes', default: '1073741824', parse: is.integer(1), doc: 'bound on the store\'s total size (LRU eviction)' }),
  variable({ name: 'HEURISTIC_MAX_SECONDS', key: 'heuristicMaxSeconds', default: '86400', parse: is.integer(0), doc: 'cap on heuristic freshness' }),
  variable({ name: 'STALE_WHILE_REVALIDATE_SECONDS', key: 'staleWhileRevalidateSeconds', default: '0', parse: is.integer(0), doc: 'stale-while-revalidate for origins that send none' }),
  variable({ name: 'STALE_IF_ERROR_SECONDS', key: 'staleIfErrorSeconds', default: '0', parse: is.integer(0), doc: 'stale-if-error for origins that send none' }),
  variable({ name: 'STALE_ON_ERROR_SECONDS', key: 'staleOnErrorSeconds', default: '300', parse: is.integer(0), doc: 'how long past staleness an entry answers when the origin cannot be reached' }),
  variable({ name: 'CACHE_SET_COOKIE', key: 'cacheSetCookie', default: 'false', parse: is.boolean, doc: 'store responses that carry Set-Cookie' }),
  variable({ name: 'HIT_FOR_PASS_SECONDS', key: 'hitForPassSeconds', default: '30', parse: is.integer(0, 86_400), doc: 'how long a URL whose response could not be stored goes straight to the origin' }),
  variable({ name: 'CACHE_CONTROL_FIELD', key: 'cacheControlField', default: 'CachingProxy-Cache-Control', parse: is.fieldName, doc: 'this proxy\'s own targeted cache-control field (RFC 9213), never passed on' }),
  variable({ name: 'ALLOW_PRIVATE_UPSTREAMS', key: 'allowPrivateUpstreams', default: 'false', parse: is.boolean, doc: 'allow upstreams in loopback / private / reserved ranges' }),
  variable({ name: 'UPSTREAM_ALLOW', key: 'upstreamAllow', default: '', parse: is.hostPatterns, doc: 'only these upstream hosts (empty: any)' }),
  variable({ name: 'UPSTREAM_DENY', key: 'upstreamDeny', default: '', parse: is.hostPatterns, doc: 'never these upstream hosts' }),
  variable({ name: 'UPSTREAM_PORTS', key: 'upstreamPorts', default: '80,443,8080,8443', parse: is.ports, doc: 'upstream ports allowed, or *' }),
  variable({ name: 'CONNECT_PORTS', key: 'connectPorts', default: '443', parse: is.ports, doc: 'ports a CONNECT tunnel may open, or *' }),
  variable({ name: 'CONNECT_IDLE_TIMEOUT_MS', key: 'connectIdleTimeoutMs', default: '300000', parse: is.integer(1), doc: 'a tunnel with no bytes either way for this long is closed' }),
  variable({ name: 'ALLOW_CLIENTS', key: 'allowClients', default: '127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7', parse: is.cidrs, doc: 'CIDR ranges of clients served when HOST is not loopback' }),
  // Both set `proxyAuth`: the pair from PROXY_AUTH, then the lines of PROXY_AUTH_FILE (empty: no authentication).
  variable({ name: 'PROXY_AUTH', key: 'proxyAuth', default: '', parse: is.userPassword, doc: 'user:password required as Basic credentials' }),
  variable({ name: 'PROXY_AUTH_FILE', key: 'proxyAuth', default: '', parse: is.scryptFile, doc: 'file of user:scrypt$salt$hash lines' }),
  variable({ name: 'ADMIN_TOKEN', key: 'adminToken', default: '', parse: is.bearerToken, doc: 'Bearer token the /_proxy/ admin endpoints and PURGE require (empty: none)' }),
  variable({ name: 'ADMIN_ALLOW', key: 'adminAllow', default: '', parse: is.cidrs, doc: 'CIDR ranges allowed to use the admin endpoints besides loopback' }),
  variable({ name: 'RATE_LIMIT_PER_MINUTE', key: 'rateLimitPerMinute', default: '0', parse: is.integer(0), doc: 'requests per minute per client address (0: no limit)' }),
  variable({ name: 'MAX_URL_BYTES', key: 'maxUrlBytes', default: '8192', parse: is.integer(64, 65536), doc: 'longest request target; 414 past it' }),
  variable({ name: 'MAX_BODY_BYTES', key: 'maxBodyBytes', default: '10485760', parse: is.integer(0), doc: 'largest request body forwarded; 413 past it' }),
  variable({ name: 'CLIENT_HEADERS_TIMEOUT_MS', key: 'clientHeadersTimeoutMs', default: '10000', parse: is.integer(100), doc: 'time a client has to send its headers' }),
  variable({ name: 'CLIENT_REQUEST_TIMEOUT_MS', key: 'clientRequestTimeoutMs', default: '120000', parse: is.integer(100), doc: 'time a client has to send its whole request' }),
  variable({ name: 'KEEP_ALIVE_TIMEOUT_MS', key: 'keepAliveTimeoutMs', default: '5000', parse: is.integer(1), doc: 'idle keep-alive connections are closed after this' }),
  // Load shedding (@fastify/under-pressure, plugins/load-shedding.ts): 503 past any of them; 0 = that check off.
  variable({ name: 'MAX_EVENT_LOOP_DELAY_MS', key: 'maxEventLoopDelayMs', default: '1000', parse: is.integer(0), doc: 'shed proxied requests (503) while the event loop lags more than this (0: off)' }),
  variable({ name: 'MAX_HEAP_USED_BYTES', key: 'maxHeapUsedBytes', default: '0', parse: is.integer(0), doc: 'shed proxied requests while the V8 heap in use exceeds this (0: off)' }),
  variable({ name: 'MAX_RSS_BYTES', key: 'maxRssBytes', default: '0', parse: is.integer(0), doc: 'shed proxied requests while the resident memory exceeds this (0: off)' }),
  variable({ name: 'SHED_RETRY_AFTER_SECONDS', key: 'shedRetryAfterSeconds', default: '10', parse: is.integer(1, 3600), doc: 'Retry-After of a shed request' })
] as const

/** What only the PM2 side reads (src/pm2-settings.ts for ecosystem.config.cjs, src/start.ts). */
export const PM2_SCHEMA = [
  variable({ name: 'PM2_APP_NAME', key: 'appName', default: 'caching-proxy', parse: is.text, doc: 'the PM2 app name' }),
  variable({ name: 'MAX_MEMORY_RESTART', key: 'maxMemoryRestart', default: '1G', parse: is.pm2Size, doc: 'PM2 restarts a worker whose memory grows past this' })
] as const

type AnyVariable = Variable<string, unknown>

/** The object a schema describes: each key with its parser's type (a key set twice gets the union). */
export type Settings<S extends readonly AnyVariable[]> = {
  [V in S[number] as V['key']]: V extends Variable<string, infer T> ? T : never
}

type Env = Record<string, string | undefined>

/**
 * Parses every variable of `schema` from `env` in order (unset or empty: the default).
 * A key set by two variables holds both lists, in schema order (PROXY_AUTH, PROXY_AUTH_FILE).
 */
export function resolve<S extends readonly AnyVariable[]> (schema: S, env: Env): Settings<S> {
  const settings: Record<string, unknown> = {}
  for (const { name, key, default: fallback, parse } of schema) {
    const raw = env[name]
    const value = parse(raw === undefined || raw === '' ? fallback : raw, name)
    const previous = settings[key]
    settings[key] = Array.isArray(previous) && Array.isArray(value) ? [...previous, ...value] : value
  }
  return settings as Settings<S>
}
