import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildApp, type AppOptions } from '../../src/app.ts'
import { loadConfig, type Config } from '../../config/index.ts'

/** A fresh temp directory, removed when the test ends. */
export function tempDir (t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'cpx-test-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/**
 * Config for tests: quiet logs, an in-memory store unless `env` says otherwise, and no load
 * shedding on event-loop delay (a test that blocks its own loop for a second would see 503s;
 * test/load-shedding.test.ts turns it on).
 */
export function testConfig (env: Record<string, string> = {}): Config {
  return loadConfig({ LOG_LEVEL: 'silent', CACHE_STORE: 'memory://', ALLOW_PRIVATE_UPSTREAMS: 'true', UPSTREAM_PORTS: '*', MAX_EVENT_LOOP_DELAY_MS: '0', ...env })
}

/** Builds the app with test config (and `options`, e.g. a log stream) and closes it when the test ends. */
export async function testApp (t: { after: (fn: () => Promise<void> | void) => void }, env: Record<string, string> = {}, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = await buildApp(testConfig(env), options)
  t.after(async () => { await app.close() })
  return app
}
