import { test } from 'node:test'
import { loadConfig, ConfigError } from '../config/index.ts'

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
    { PORT: 'eighty' }, { PORT: '70000' }, { CACHE_STORE: 'redis://x' }, { LOG_LEVEL: 'loud' },
    { UPSTREAM_TIMEOUT_MS: '0' }, { MAX_ENTRY_BYTES: '-1' }, { WORKERS: '0' }, { HOST: 'a b' }, { LOG_PRETTY: 'maybe' },
    { CONNECT_PORTS: '443,x' }, { CONNECT_PORTS: '0' }, { CONNECT_IDLE_TIMEOUT_MS: '0' }, { CONNECT_IDLE_TIMEOUT_MS: '5m' }
  ]
  for (const env of bad) {
    const name = Object.keys(env)[0]
    t.assert.throws(() => loadConfig(env), (error: Error) => error instanceof ConfigError && error.message.startsWith(name), name)
  }
})
