import { existsSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { chromium, type Browser } from 'playwright-core'
import { buildApp } from '../../src/app.ts'
import { testConfig } from './app.ts'
import { startTestSite, type Route, type TestSite } from './test-site.ts'

export const CHROMIUM = '/usr/bin/chromium'
/** A skip reason for node:test when Debian's chromium is missing (.ci/run installs it). */
export const SKIP_WITHOUT_CHROMIUM = !existsSync(CHROMIUM) && 'no /usr/bin/chromium (.ci/run installs it)'

interface After { after: (fn: () => Promise<void> | void) => void }

/** Headless Debian chromium that does not phone home, closed when the test ends. */
export async function launchChromium (t: After, args: string[] = []): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 20_000,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-pings', ...args]
  })
  t.after(async () => { await browser.close() })
  return browser
}

/** The two-origin test site and a proxy (allowed to reach only it) listening on 127.0.0.1, both stopped when the test ends. */
export async function siteBehindProxy (t: After, extra: Record<string, Route> = {}): Promise<{ site: TestSite, port: number, proxy: string }> {
  const site = await startTestSite(extra)
  t.after(() => site.close())
  const app = await buildApp(testConfig({ UPSTREAM_ALLOW: '127.0.0.1,127.0.0.2' }))
  t.after(async () => {
    // Hooks run in the order they were added: the browser (launched later) may still hold connections.
    app.server.closeAllConnections()
    await app.close()
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  return { site, port, proxy: `http://localhost:${port}` }
}
