import { test } from 'node:test'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { ROOT, cacheableOrigin, freePort, get, mapLimit, waitUntilServing, waitUntilStored, type Reply } from './helpers/process.ts'

const run = promisify(execFile)
const PM2 = join(ROOT, 'node_modules', '.bin', 'pm2')

interface Pm2Process {
  name: string
  pm_id: number
  pid: number
  pm2_env: { status: string, exec_mode: string, restart_time: number, pm_out_log_path: string }
}

test('PM2 cluster: two workers share the port and the cache, and a reload drops no request', { timeout: 240_000 }, async (t) => {
  // A private daemon: PM2_HOME is a fresh temp dir, never ~/.pm2.
  const home = mkdtempSync(join(tmpdir(), 'cpx-pm2-'))
  const name = `cpx-test-${process.pid}-${Date.now()}`
  const port = await freePort()
  const storeUri = `sqlite://${join(home, 'cache.sqlite')}`
  const env: NodeJS.ProcessEnv = { ...process.env }
  delete env.NODE_TEST_CONTEXT // set by the test runner; the workers must not see it
  delete env.NODE_OPTIONS
  Object.assign(env, {
    PM2_HOME: home,
    PM2_DISABLE_VERSION_CHECK: '1',
    PM2_APP_NAME: name,
    WORKERS: '2',
    PORT: String(port),
    HOST: '127.0.0.1',
    CACHE_STORE: storeUri,
    LOG_LEVEL: 'info',
    ALLOW_PRIVATE_UPSTREAMS: 'true',
    UPSTREAM_PORTS: '*' // the test origin listens on a random port
  })

  async function pm2 (...args: string[]): Promise<string> {
    const { stdout } = await run(PM2, args, { cwd: ROOT, env, timeout: 90_000, maxBuffer: 16 * 1024 * 1024 })
    return stdout
  }
  async function workers (): Promise<Pm2Process[]> {
    const list = JSON.parse(await pm2('jlist')) as Pm2Process[]
    return list.filter((p) => p.name === name)
  }

  t.after(async () => {
    await pm2('delete', name).catch((error: Error) => t.diagnostic(`pm2 delete: ${error.message}`))
    await pm2('kill').catch((error: Error) => t.diagnostic(`pm2 kill: ${error.message}`))
    // Should `pm2 kill` have failed, stop the private daemon by its own pid.
    const pidFile = join(home, 'pm2.pid')
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8'))
      try { if (pid > 0) process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
    }
    rmSync(home, { recursive: true, force: true })
  })

  const paths = Array.from({ length: 40 }, (_v, i) => `/pm2/${i}`)
  const origin = await cacheableOrigin(t, [...paths, '/reload'])
  const proxy = `http://127.0.0.1:${port}`

  await pm2('start', join(ROOT, 'ecosystem.config.cjs'))
  await waitUntilServing(`${proxy}/`, 30_000)

  await t.test('both workers are online and serve requests', async (t) => {
    const list = await workers()
    t.assert.equal(list.length, 2, 'two instances')
    t.assert.deepEqual(list.map((p) => p.pm2_env.status), ['online', 'online'])
    t.assert.deepEqual(list.map((p) => p.pm2_env.exec_mode), ['cluster_mode', 'cluster_mode'])
    const pids = list.map((p) => p.pid)
    t.assert.equal(new Set(pids).size, 2, 'two distinct processes')

    // 40 requests, each on a new connection, for 40 distinct upstream URLs.
    const first = await mapLimit(paths, 4, (path) => get(`${proxy}/${origin.host}${path}`))
    t.assert.deepEqual(first.map((r) => r.status), paths.map(() => 200))
    t.assert.deepEqual(first.map((r) => r.headers['x-cache']), paths.map(() => 'MISS'))
    t.assert.deepEqual(first.map((r) => r.body), paths.map((path) => `${path} #1`))
    t.assert.deepEqual(paths.map((path) => origin.hits(path)), paths.map(() => 1))

    // Which worker answered is visible in each worker's own PM2 log: one JSON line per
    // request with the worker's pid. Both workers must have answered some of the 40.
    const upstreams = new Set(paths.map((path) => `http://${origin.host}${path}`))
    const servedBy = new Map<number, number>()
    const deadline = Date.now() + 15_000
    for (let round = 0; round < 300 && Date.now() < deadline; round++) {
      servedBy.clear()
      for (const p of list) {
        const lines = readFileSync(p.pm2_env.pm_out_log_path, 'utf8').split('\n')
        for (const line of lines) {
          let record: { msg?: string, url?: string, pid?: number }
          try { record = JSON.parse(line) } catch { continue }
          if (record.msg === 'request' && upstreams.has(record.url ?? '') && record.pid === p.pid) {
            servedBy.set(p.pid, (servedBy.get(p.pid) ?? 0) + 1)
          }
        }
      }
      if ([...servedBy.values()].reduce((a, b) => a + b, 0) >= paths.length) break
      await sleep(50) // PM2 writes the logs asynchronously
    }
    t.diagnostic(`requests per worker pid: ${JSON.stringify(Object.fromEntries(servedBy))}`)
    t.assert.equal([...servedBy.values()].reduce((a, b) => a + b, 0), paths.length, 'every request is in one worker log')
    t.assert.deepEqual([...servedBy.keys()].sort(), [...pids].sort(), 'both workers answered')

    // The workers share one store: the same 40 URLs are now hits whichever worker answers.
    await waitUntilStored(storeUri, [...upstreams])
    const second = await mapLimit(paths, 4, (path) => get(`${proxy}/${origin.host}${path}`))
    t.assert.deepEqual(second.map((r) => r.status), paths.map(() => 200))
    t.assert.deepEqual(second.map((r) => r.headers['x-cache']), paths.map(() => 'HIT'))
    t.assert.deepEqual(second.map((r) => r.body), paths.map((path) => `${path} #1`))
    t.assert.deepEqual(paths.map((path) => origin.hits(path)), paths.map(() => 1))
  })

  await t.test('pm2 reload under load fails no request', async (t) => {
    const before = await workers()
    const oldPids = before.map((p) => p.pid)

    // Two clients, each request on a new connection, until the reload is over
    // (bounded: 4,000 requests or 120 s).
    const state = { reloading: true }
    const results: Array<Reply | Error> = []
    const deadline = Date.now() + 120_000
    async function client (): Promise<void> {
      while ((state.reloading || results.length < 20) && results.length < 4000 && Date.now() < deadline) {
        const i = results.length
        // Mostly cached answers, some that go to the origin through the proxy.
        const path = i % 4 === 0 ? `/reload?n=${i}` : paths[i % paths.length]
        results.push(await get(`${proxy}/${origin.host}${path}`, 30_000).catch((error: Error) => error))
      }
    }
    const load = Promise.all([client(), client()])
    await sleep(300)
    const started = Date.now()
    try {
      await pm2('reload', name)
    } finally {
      state.reloading = false
    }
    const reloadMs = Date.now() - started
    await load
    t.diagnostic(`reload took ${reloadMs} ms; ${results.length} requests during the run`)

    const failures = results.flatMap((r, i) => r instanceof Error ? [`#${i}: ${r.message}`] : r.status === 200 ? [] : [`#${i}: status ${r.status} ${r.body.slice(0, 120)}`])
    t.assert.deepEqual(failures, [])
    t.assert.equal(results.length >= 20, true, 'the load ran')

    const after = await workers()
    t.assert.deepEqual(after.map((p) => p.pm2_env.status), ['online', 'online'])
    t.assert.equal(after.filter((p) => oldPids.includes(p.pid)).length, 0, 'both workers were replaced')
    const again = await get(`${proxy}/${origin.host}${paths[0]}`)
    t.assert.equal(again.status, 200)
    t.assert.equal(again.headers['x-cache'], 'HIT', 'the new workers serve from the shared store')
    t.assert.equal(origin.hits(paths[0]), 1)
  })
})
