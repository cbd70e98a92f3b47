import type { TestContext } from 'node:test'
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import { tempDir } from './app.ts'
import { startOrigin, type Origin } from './origin.ts'
import { spawnProxy, type ProxyProcess } from './process.ts'
import { startRedis, type RedisServer } from './redis.ts'

/** Sends `method` with a small body on a fresh connection; resolves with the status. */
export function send (method: string, url: string, timeoutMs = 10_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const body = `written ${Date.now()}`
    const req = http.request(url, { method, agent: false, timeout: timeoutMs, headers: { connection: 'close', 'content-type': 'text/plain', 'content-length': String(body.length) } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer within ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end(body)
  })
}

/** The origin's version of each path: GET answers it cacheably (after `delayMs`), any other method bumps it. */
export function versionedOrigin (delayMs = 0): (req: IncomingMessage, res: ServerResponse) => void {
  const versions = new Map<string, number>()
  return (req, res) => {
    const path = req.url ?? '/'
    if (req.method !== 'GET') {
      versions.set(path, (versions.get(path) ?? 1) + 1)
      res.writeHead(201, { 'cache-control': 'no-store' }).end('ok')
      return
    }
    const version = versions.get(path) ?? 1
    setTimeout(() => {
      res.writeHead(200, { 'cache-control': 'public, max-age=600', 'content-type': 'text/plain' }).end(`${path} v${version}`)
    }, delayMs)
  }
}

export interface Fleet {
  redis: RedisServer
  origin: Origin
  /** Every proxy process, in start order; `a` and `b` are the first two. */
  all: ProxyProcess[]
  a: ProxyProcess
  b: ProxyProcess
}

/** A Redis, an origin answering `paths` (versioned), and `processes` proxy processes (separate ports) on that Redis. */
export async function startFleet (t: TestContext, paths: string[], env: Record<string, string> = {}, delayMs = 0, processes = 2): Promise<Fleet> {
  const redis = await startRedis(t)
  const handler = versionedOrigin(delayMs)
  const origin = await startOrigin(Object.fromEntries(paths.map((path) => [path, handler])))
  t.after(() => origin.close())
  const dir = tempDir(t)
  const nodeEnv = { CACHE_STORE: redis.url, LOG_LEVEL: 'warn', REDIS_TIMEOUT_MS: '1000', ...env }
  const all = await Promise.all(Array.from({ length: processes }, () => spawnProxy(t, nodeEnv, dir)))
  return { redis, origin, all, a: all[0], b: all[1] }
}
