import { test } from 'node:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { spawnProxy } from '../helpers/process.ts'
import { startEnviron, workerEnv } from '../../src/worker-env.ts'

// A worker started without the malloc setting `npm start` gives (src/worker-env.ts: e.g. under
// a PM2 daemon that was already running) says so once, at the default log level.
const NOTICE = /started without the malloc setting/

async function outputOf (t: Parameters<typeof spawnProxy>[0] & { after: (fn: () => void) => void }, tunables: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'cpx-malloc-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const proxy = await spawnProxy(t, { GLIBC_TUNABLES: tunables, CACHE_STORE: 'memory://', LOG_PRETTY: 'false' }, dir)
  // The line is written right after listen(); give it a bounded moment to arrive.
  for (let i = 0; i < 20 && !NOTICE.test(proxy.output()); i++) await sleep(50)
  return proxy.output()
}

// Only where there is something to say: Linux with glibc.
const glibc = startEnviron() !== undefined

test('a worker started without the malloc trim threshold logs it once, naming the setting', { timeout: 30_000, skip: glibc ? false : 'not Linux with glibc' }, async (t) => {
  const output = await outputOf(t, '')
  const lines = output.split('\n').filter((line) => NOTICE.test(line))
  t.assert.equal(lines.length, 1, output)
  t.assert.match(lines[0], /"missing":\["glibc\.malloc\.trim_threshold"\]/)
  t.assert.match(lines[0], /"level":30/, 'info, not a warning')
})

test('a worker started as npm start starts it says nothing about it', { timeout: 30_000 }, async (t) => {
  const output = await outputOf(t, workerEnv({}).GLIBC_TUNABLES)
  t.assert.doesNotMatch(output, NOTICE)
})
