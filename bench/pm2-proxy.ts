/**
 * PM2 for the benchmarks: a private daemon (its own PM2_HOME, stopped afterwards by `pm2 kill`,
 * then by its pid), the built proxy under it, and one wrk run against it with the CPU of
 * chosen PIDs and of the whole machine per request.
 */
import { execFile, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { CONNECTIONS, machineTicks, processTicks, CLK_TCK } from './load-run.ts'
import { freePort, here, onCleanup, stopChild, track } from './processes.ts'
import { get, sleep } from './probe.ts'
import { parseWrk } from './wrk.ts'
import { workerEnv } from '../src/worker-env.ts'

const run = promisify(execFile)
const ROOT = path.join(here, '..')
const PM2 = path.join(ROOT, 'node_modules', '.bin', 'pm2')

export interface Pm2Daemon { pm2: (...args: string[]) => Promise<string>, stop: () => Promise<void> }

/**
 * A private PM2 daemon whose home is `home`, with the environment `npm start` gives the daemon
 * (the workers' malloc setting, src/worker-env.ts) and `env` over it. stop() deletes its apps
 * and kills it (by pid as a last resort); the bench's cleanup calls it on Ctrl-C too.
 */
export function pm2Daemon (home: string, extraEnv: Record<string, string> = {}): Pm2Daemon {
  mkdirSync(home, { recursive: true })
  const pm2 = async (...args: string[]): Promise<string> => {
    // This process's environment at the call: `pm2 start <script>` gives it to the app (bench/coalesce.ts).
    const env: NodeJS.ProcessEnv = { ...process.env, PM2_HOME: home, PM2_DISABLE_VERSION_CHECK: '1', ...workerEnv(), ...extraEnv }
    delete env.NODE_OPTIONS
    return (await run(PM2, args, { cwd: ROOT, env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 })).stdout
  }
  const stop = async (): Promise<void> => {
    forget()
    await pm2('delete', 'all').catch(() => {})
    await pm2('kill').catch(() => {})
    const pidFile = path.join(home, 'pm2.pid')
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8'))
      try { if (pid > 0) process.kill(pid, 'SIGKILL') } catch { /* gone */ }
    }
  }
  // Detached from this process: stopped by the bench's cleanup on Ctrl-C too.
  const forget = onCleanup(stop)
  return { pm2, stop }
}

export interface Pm2Proxy { port: number, workers: number[], stop: () => Promise<void> }

/**
 * The built proxy (ecosystem.config.cjs) as `workers` PM2 cluster workers under a private
 * daemon, with `env` over the bench's settings (LOG_LEVEL=warn, SQLite store in the PM2_HOME);
 * `stop()` kills that daemon and removes its home.
 */
export async function startPm2Proxy (workers = 2, extraEnv: Record<string, string> = {}): Promise<Pm2Proxy> {
  if (!existsSync(path.join(ROOT, 'dist', 'src', 'server.js'))) throw new Error('dist/src/server.js is missing: run npm run build')
  const home = mkdtempSync(path.join(os.tmpdir(), 'caching-proxy-bench-pm2-'))
  const name = `cpx-bench-${process.pid}-${path.basename(home)}`
  const port = await freePort()
  const daemon = pm2Daemon(home, {
    PM2_APP_NAME: name,
    WORKERS: String(workers),
    PORT: String(port),
    HOST: '127.0.0.1',
    CACHE_STORE: `sqlite://${path.join(home, 'cache.sqlite')}`,
    LOG_LEVEL: 'warn',
    LOG_PRETTY: 'false',
    ALLOW_PRIVATE_UPSTREAMS: 'true',
    UPSTREAM_PORTS: '*',
    ...extraEnv
  })
  const stop = async (): Promise<void> => {
    await daemon.stop()
    rmSync(home, { recursive: true, force: true })
  }
  try {
    await daemon.pm2('start', path.join(ROOT, 'ecosystem.config.cjs'))
    const deadline = Date.now() + 30_000
    let online: number[] = []
    while (Date.now() < deadline) {
      const list = JSON.parse(await daemon.pm2('jlist')) as Array<{ name: string, pid: number, pm2_env: { status: string } }>
      online = list.filter((p) => p.name === name && p.pm2_env.status === 'online' && p.pid > 0).map((p) => p.pid)
      if (online.length === workers) {
        try { await get(`http://127.0.0.1:${port}/`, 1000); return { port, workers: online, stop } } catch { /* not yet */ }
      }
      await sleep(200)
    }
    throw new Error(`PM2 did not bring up ${workers} workers in 30 s (${online.length} online)`)
  } catch (error) {
    await stop()
    throw error
  }
}

export interface PidsLoad {
  rps: number
  p99: number
  /** CPU of the given PIDs (summed) per request. */
  cpuUsPerRequest: number
  /** CPU of the whole machine per request: the client, PM2's daemon, everything. */
  machineUsPerRequest: number
  problems: number
  /** % of the machine busy during the run. */
  busy: number
}

/** One wrk run against `url`; the CPU of `pids` (summed) and of the machine per request. */
export async function loadPids (url: string, seconds: number, pids: number[]): Promise<PidsLoad> {
  const ticks = (): number => pids.reduce((sum, pid) => sum + (processTicks(pid) ?? NaN), 0)
  const before = ticks()
  const machineBefore = machineTicks()
  const child = track(spawn('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '--timeout', '10s', url], { stdio: ['ignore', 'pipe', 'pipe'] }))
  let out = ''
  child.stdout?.on('data', (chunk: Buffer) => { out += chunk.toString('utf8') })
  const limit = setTimeout(() => child.kill('SIGKILL'), seconds * 1000 + 20_000)
  try {
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
    if (code !== 0) throw new Error(`wrk ${url} exited with ${code}`)
    const after = ticks()
    const machineAfter = machineTicks()
    const f = parseWrk(out)
    const machine = machineBefore === null || machineAfter === null ? null : { busy: machineAfter.busy - machineBefore.busy, total: machineAfter.total - machineBefore.total }
    return {
      rps: f.rps,
      p99: f.p99,
      cpuUsPerRequest: (after - before) / CLK_TCK * 1e6 / f.requests,
      machineUsPerRequest: machine === null ? NaN : machine.busy / CLK_TCK * 1e6 / f.requests,
      problems: f.errors + f.timeouts + f.non2xx,
      busy: machine === null ? NaN : machine.busy / machine.total * 100
    }
  } finally {
    clearTimeout(limit)
    await stopChild(child)
  }
}
