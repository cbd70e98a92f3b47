import { test } from 'node:test'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig, loadPm2Config, ConfigError } from '../../config/index.ts'

test('defaults are safe and documented', (t) => {
  const config = loadConfig({ WORKERS: '2' })
  t.assert.equal(config.port, 8888)
  t.assert.equal(config.host, '127.0.0.1')
  t.assert.equal(config.cacheStore, 'sqlite://./data/cache.sqlite')
  t.assert.equal(config.upstreamTimeoutMs, 30000)
  t.assert.equal(config.maxEntryBytes, 8 * 1024 * 1024)
  t.assert.equal(config.workers, 2)
  t.assert.deepEqual(config.connectPorts, [443])
  t.assert.equal(config.connectIdleTimeoutMs, 300_000)
  t.assert.equal(loadConfig({ CONNECT_PORTS: '*' }).connectPorts, '*')
  t.assert.deepEqual(loadConfig({ CONNECT_PORTS: '443, 8443' }).connectPorts, [443, 8443])
})

test('invalid values name the variable', (t) => {
  const bad: Array<Record<string, string>> = [
    { PORT: 'eighty' }, { PORT: '70000' }, { CACHE_STORE: 'redis:/nope' }, { CACHE_STORE: 'redis://' }, { CACHE_STORE: 'redis://h/db' }, { CACHE_STORE: 'rediss://h:99999' }, { REDIS_TIMEOUT_MS: '0' }, { LOG_LEVEL: 'loud' },
    { UPSTREAM_TIMEOUT_MS: '0' }, { MAX_ENTRY_BYTES: '-1' }, { WORKERS: '0' }, { HOST: 'a b' }, { LOG_PRETTY: 'maybe' },
    { CONNECT_PORTS: '443,x' }, { CONNECT_PORTS: '0' }, { CONNECT_IDLE_TIMEOUT_MS: '0' }, { CONNECT_IDLE_TIMEOUT_MS: '5m' },
    { UPSTREAM_ALLOW: 'a b' }, { ALLOW_CLIENTS: '10.0.0.0/33' }, { CACHE_CONTROL_FIELD: 'Cache-Control' }, { MAX_URL_BYTES: '10' }, { PROXY_AUTH: 'nocolon' },
    { ADMIN_TOKEN: 'with space' }, { ADMIN_TOKEN: 'a=b' }, { ADMIN_ALLOW: '10.0.0.0/40' }
  ]
  for (const env of bad) {
    const name = Object.keys(env)[0]
    t.assert.throws(() => loadConfig(env), (error: Error) => error instanceof ConfigError && error.message.startsWith(name), name)
  }
})

test('error messages say what was expected and what was given (the secret of PROXY_AUTH hidden)', (t) => {
  t.assert.throws(() => loadConfig({ PORT: 'eighty' }), { name: 'ConfigError', message: 'PORT: expected an integer between 0 and 65535, got "eighty"' })
  t.assert.throws(() => loadConfig({ UPSTREAM_PORTS: '80, x' }), { message: 'UPSTREAM_PORTS: expected a comma-separated list of ports (1-65535) or *, got "80, x"' })
  t.assert.throws(() => loadConfig({ PROXY_AUTH: 'nocolon-s3cret' }), { message: 'PROXY_AUTH: expected user:password, got "<hidden>"' })
  t.assert.throws(() => loadConfig({ ADMIN_TOKEN: 's3cret token' }), { message: 'ADMIN_TOKEN: expected a token of letters, digits and -._~+/ (RFC 6750), or empty, got "<hidden>"' })
  t.assert.equal(loadConfig({ ADMIN_TOKEN: 'abc-DEF_0.9~+/==' }).adminToken, 'abc-DEF_0.9~+/==')
  // Validated in declaration order: the first invalid variable is the one named.
  t.assert.throws(() => loadConfig({ LOG_LEVEL: 'loud', PORT: 'x' }), { message: /^PORT:/ })
})

test('PROXY_AUTH and PROXY_AUTH_FILE together: the pair, then the file\'s lines', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cpx-config-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'users')
  writeFileSync(file, '# users\nbob:scrypt$c2FsdA==$aGFzaA==\n\n')
  t.assert.deepEqual(loadConfig({ PROXY_AUTH: 'alice:pw', PROXY_AUTH_FILE: file }).proxyAuth, ['alice:pw', 'bob:scrypt$c2FsdA==$aGFzaA=='])
  t.assert.deepEqual(loadConfig({}).proxyAuth, [])
  t.assert.throws(() => loadConfig({ PROXY_AUTH_FILE: join(dir, 'missing') }), { message: /^PROXY_AUTH_FILE: expected a readable file/ })
})

test('PM2-only variables: defaults, and an invalid MAX_MEMORY_RESTART is named', (t) => {
  t.assert.deepEqual(loadPm2Config({}), { appName: 'caching-proxy', maxMemoryRestart: '1G' })
  t.assert.deepEqual(loadPm2Config({ PM2_APP_NAME: 'cpx-2', MAX_MEMORY_RESTART: '512M' }), { appName: 'cpx-2', maxMemoryRestart: '512M' })
  t.assert.throws(() => loadPm2Config({ MAX_MEMORY_RESTART: '1GB' }), { message: 'MAX_MEMORY_RESTART: expected a size such as 1G, 512M or 300000K, got "1GB"' })
})

test('CACHE_STORE takes redis:// and rediss:// URIs; an invalid one is refused without echoing its password', (t) => {
  for (const uri of ['redis://127.0.0.1:6379', 'redis://cache.internal', 'redis://user:pw@cache:6380/2', 'rediss://:pw@cache.example.com:6380/0']) {
    t.assert.equal(loadConfig({ CACHE_STORE: uri }).cacheStore, uri)
  }
  t.assert.equal(loadConfig({}).redisTimeoutMs, 50)
  t.assert.equal(loadConfig({ REDIS_TIMEOUT_MS: '200' }).redisTimeoutMs, 200)
  t.assert.throws(() => loadConfig({ CACHE_STORE: 'redis://u:s3cret@h/x' }), (error: Error) => /^CACHE_STORE: expected .*redis/.test(error.message) && !error.message.includes('s3cret'))
})
