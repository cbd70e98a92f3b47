import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ROOT, freePort, waitUntilServing } from './process.ts'
import { workerEnv } from '../../src/worker-env.ts'

const run = promisify(execFile)
const PM2 = join(ROOT, 'node_modules', '.bin', 'pm2')

/** One process of `pm2 jlist` (only the fields the tests read). */
export interface Pm2Process {
  name: string
  pm_id: number
  pid: number
  pm2_env: { status: string, exec_mode: string, restart_time: number, pm_out_log_path: string, pm_err_log_path: string }
}

export interface Pm2App {
  /** The private PM2_HOME (a temp dir, removed when the test ends); also holds the SQLite store. */
  home: string
  name: string
  port: number
  /** base URL of the proxy, without a trailing slash */
  url: string
  storeUri: string
  /** Runs the pm2 CLI against the private daemon. */
  pm2 (...args: string[]): Promise<string>
  /** This app's processes in `pm2 jlist`, ordered by pm_id. */
  workers (): Promise<Pm2Process[]>
}

/**
 * Starts ecosystem.config.cjs under a private PM2 daemon (PM2_HOME in a fresh temp dir,
 * never ~/.pm2) with a unique app name, a free port and a SQLite store in that dir, and
 * waits until it serves `GET /`. When the test ends: `pm2 delete` and `pm2 kill` on that
 * daemon (its pid from PM2_HOME/pm2.pid as a last resort), then the temp dir is removed.
 */
export async function startPm2App (t: { after: (fn: () => Promise<void> | void) => void, diagnostic: (message: string) => void }, extraEnv: Record<string, string> = {}): Promise<Pm2App> {
  const home = mkdtempSync(join(tmpdir(), 'cpx-pm2-faults-'))
  const name = `cpx-faults-${process.pid}-${Date.now()}`
  const storeUri = `sqlite://${join(home, 'cache.sqlite')}`
  let port: number
  try {
    port = await freePort()
  } catch (error) {
    rmSync(home, { recursive: true, force: true })
    throw error
  }
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
    UPSTREAM_PORTS: '*', // test origins listen on random ports
    ...workerEnv(), // as `npm start` gives the daemon it spawns (src/start.ts)
    ...extraEnv
  })

  async function pm2 (...args: string[]): Promise<string> {
    const { stdout } = await run(PM2, args, { cwd: ROOT, env, timeout: 90_000, maxBuffer: 16 * 1024 * 1024 })
    return stdout
  }
  async function workers (): Promise<Pm2Process[]> {
    const list = JSON.parse(await pm2('jlist')) as Pm2Process[]
    return list.filter((p) => p.name === name).sort((a, b) => a.pm_id - b.pm_id)
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

  const url = `http://127.0.0.1:${port}`
  await pm2('start', join(ROOT, 'ecosystem.config.cjs'))
  await waitUntilServing(`${url}/`, 60_000)
  return { home, name, port, url, storeUri, pm2, workers }
}

/**
 * How many lines of a PM2 log file are JSON request records written by process `pid` for
 * one of `urls` (any URL when undefined), logged between `from` and `to` (epoch ms) when given.
 */
export function requestsLoggedBy (logPath: string, pid: number, urls?: Set<string>, from = 0, to = Number.POSITIVE_INFINITY): number {
  let count = 0
  let text: string
  try {
    text = readFileSync(logPath, 'utf8')
  } catch {
    return 0
  }
  for (const line of text.split('\n')) {
    let record: { msg?: string, url?: string, pid?: number, time?: number }
    try { record = JSON.parse(line) } catch { continue }
    if (record.msg !== 'request' || record.pid !== pid) continue
    if (urls !== undefined && !urls.has(record.url ?? '')) continue
    const time = record.time ?? 0
    if (time >= from && time <= to) count++
  }
  return count
}
