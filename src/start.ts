import { spawnSync } from 'node:child_process'
import http from 'node:http'
import net, { isIP } from 'node:net'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { loadConfig, loadPm2Config, loadDotEnv, ConfigError, type Config } from '../config/index.ts'
import { workerEnv } from './worker-env.ts'

/**
 * `npm start`: validates the configuration with the server's own validator (environment
 * over ./.env) before anything reaches PM2, runs `pm2 start ecosystem.config.cjs` (which
 * resolves the same configuration), waits until the proxy answers, then says where it is.
 * Exits 78 (EX_CONFIG) naming the variable when the configuration is invalid; exits 1,
 * leaving no PM2 app behind, when the port is taken by another program or the proxy
 * does not answer.
 */
const START_TIMEOUT_MS = 20_000

async function main (): Promise<number> {
  // PM2 gets the environment without .env merged in: the workers read .env themselves,
  // so an edited .env takes effect on `pm2 reload`, and the environment still wins.
  // Plus the workers' GLIBC_TUNABLES (src/worker-env.ts): PM2's cluster workers start with
  // the daemon's own environment, and the daemon takes it from the command that spawns it.
  const env = { ...process.env, ...workerEnv(process.env) }
  loadDotEnv()
  let config: Config
  let name: string
  try {
    config = loadConfig()
    name = loadPm2Config().appName
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    console.error(`caching-proxy: invalid configuration: ${error.message}`)
    return 78
  }
  const bin = createRequire(import.meta.url).resolve('pm2/bin/pm2')
  const pm2 = (...args: string[]): number => spawnSync(process.execPath, [bin, ...args], { stdio: 'inherit', env }).status ?? 1
  // Another program on the port would answer the check below in the proxy's stead,
  // while the workers fail to listen and PM2 restarts them forever.
  if (config.port !== 0 && !await portFree(config.host, config.port)) {
    const list = spawnSync(process.execPath, [bin, 'jlist'], { env, encoding: 'utf8' })
    // The JSON is the last line (a daemon started just now prints a banner first).
    const ours = list.status === 0 && (JSON.parse(list.stdout.trim().split('\n').at(-1) ?? '[]') as Array<{ name: string }>).some((p) => p.name === name)
    if (!ours) {
      console.error(`caching-proxy: ${config.host}:${config.port} is already in use by another program (PORT, HOST)`)
      return 1
    }
  }
  const code = pm2('start', join(process.cwd(), 'ecosystem.config.cjs'), '--update-env')
  if (code !== 0) {
    console.error(`caching-proxy: pm2 start failed (exit ${code})`)
    return code
  }
  const url = `http://${probeHost(config.host)}:${config.port}/`
  if (!await answers(url, START_TIMEOUT_MS)) {
    console.error(`caching-proxy: no answer on ${url} within ${START_TIMEOUT_MS / 1000} s; see \`npx pm2 logs ${name}\`. Stopping it.`)
    pm2('delete', name)
    return 1
  }
  const shown = `http://${isIP(config.host) === 6 ? `[${config.host}]` : config.host}:${config.port}/`
  console.log(`caching-proxy is listening on ${shown} with ${config.workers} worker${config.workers === 1 ? '' : 's'} ` +
    `(try: curl localhost:${config.port}/example.com). Logs: npx pm2 logs ${name}. ` +
    `Stop: ${name === 'caching-proxy' ? 'npm stop' : `npx pm2 delete ${name}`}`)
  return 0
}

/** The address to reach a server listening on `host` from this machine. */
function probeHost (host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1'
  if (host === '::') return '[::1]'
  return isIP(host) === 6 ? `[${host}]` : host
}

/** True when nothing listens on host:port (binding it works). */
function portFree (host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code !== 'EADDRINUSE'))
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)))
  })
}

/** True once `url` gives any HTTP answer (a 401 or 403 still means it listens). */
async function answers (url: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.get(url, { agent: false, timeout: 2000 }, (res) => { res.resume(); resolve(true) })
      req.on('timeout', () => req.destroy())
      req.on('error', () => resolve(false))
    })
    if (ok) return true
    await sleep(200)
  }
  return false
}

main().then((code) => { process.exitCode = code }, (error: unknown) => {
  console.error('caching-proxy: start failed:', error)
  process.exitCode = 1
})
