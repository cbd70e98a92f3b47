import { spawn, type ChildProcess } from 'node:child_process'
import http, { type IncomingHttpHeaders } from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { cacheKey } from '../../src/cache/cache-key.ts'
import { openStore } from '../../src/store/index.ts'
import { startOrigin, type Origin, type OriginHandler } from './origin.ts'

/** The repository root (the directory holding package.json). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** The compiled server entry point (`npm run build` makes it). */
export const SERVER_JS = fileURLToPath(new URL('../../dist/src/server.js', import.meta.url))

export interface Reply {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/**
 * One GET on a fresh connection (no keep-alive agent), so that in cluster mode every
 * request is a new connection that the primary may hand to any worker.
 */
export function get (url: string, timeoutMs = 15_000, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { connection: 'close', ...headers }, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)))
    req.on('error', reject)
  })
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort (): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/**
 * Polls `GET url` until it answers 200, for at most `timeoutMs`. `alive` is checked
 * between attempts so a process that died is reported at once instead of at the deadline.
 */
export async function waitUntilServing (url: string, timeoutMs: number, alive: () => string | undefined = () => undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = 'no attempt'
  for (let attempt = 0; attempt < 1000 && Date.now() < deadline; attempt++) {
    const dead = alive()
    if (dead !== undefined) throw new Error(dead)
    try {
      const reply = await get(url, 2000)
      if (reply.status === 200) return
      last = `status ${reply.status}`
    } catch (error) {
      last = (error as Error).message
    }
    await sleep(100)
  }
  throw new Error(`${url} did not serve within ${timeoutMs} ms (last: ${last})`)
}

/** Runs `fn` over `items` with at most `limit` calls in flight; results keep the input order. */
export async function mapLimit<T, R> (items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  async function worker (): Promise<void> {
    while (next < items.length) {
      const index = next++
      results[index] = await fn(items[index], index)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}

export interface ProxyProcess {
  port: number
  /** base URL of the proxy, without a trailing slash */
  url: string
  child: ChildProcess
  /** Everything the process wrote to stdout and stderr so far. */
  output (): string
  stop (): Promise<void>
}

/**
 * Spawns `node dist/src/server.js` with `env` added to the environment and waits until it
 * serves `GET /`. The process is killed (SIGTERM, then SIGKILL) when the test ends.
 */
export async function spawnProxy (t: { after: (fn: () => Promise<void> | void) => void }, env: Record<string, string>, cwd: string): Promise<ProxyProcess> {
  const port = await freePort()
  const child = spawn(process.execPath, [SERVER_JS], {
    cwd, // a temp dir: a developer's ./.env must not leak into the test
    env: { ...process.env, NODE_ENV: 'production', LOG_LEVEL: 'info', ALLOW_PRIVATE_UPSTREAMS: 'true', UPSTREAM_PORTS: '*', ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
  child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))

  async function stop (): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const done = await Promise.race([exited.then(() => true), sleep(12_000, undefined, { ref: false }).then(() => false)])
    if (!done) {
      child.kill('SIGKILL')
      await exited
    }
  }
  t.after(stop)

  const url = `http://127.0.0.1:${port}`
  await waitUntilServing(`${url}/`, 20_000, () => {
    if (child.exitCode !== null || child.signalCode !== null) {
      return `proxy on port ${port} exited (${child.exitCode ?? child.signalCode}) before serving:\n${output}`
    }
    return undefined
  })
  return { port, url, child, output: () => output, stop }
}

/**
 * Waits (bounded) until the shared SQLite file holds an entry for every upstream URL: the
 * proxy writes to the store after it has answered, so another process can only see the
 * entry a moment later.
 */
export async function waitUntilStored (storeUri: string, urls: string[], timeoutMs = 15_000): Promise<void> {
  const store = await openStore(storeUri)
  try {
    const deadline = Date.now() + timeoutMs
    let missing = urls
    for (let round = 0; round < 500 && Date.now() < deadline; round++) {
      const found = await Promise.all(missing.map(async (url) => (await store.get(cacheKey(new URL(url)))) !== undefined))
      missing = missing.filter((_url, i) => !found[i])
      if (missing.length === 0) return
      await sleep(50)
    }
    throw new Error(`${missing.length} entries never reached the shared store, e.g. ${missing[0]}`)
  } finally {
    await store.close()
  }
}

// A cacheable answer that names the path and counts the origin's hits, so a body served
// from the cache is recognisably the first one.
function cacheable (): OriginHandler {
  let served = 0
  return (req, res) => {
    served++
    res.setHeader('cache-control', 'public, max-age=300')
    res.setHeader('content-type', 'text/plain')
    res.end(`${req.url} #${served}`)
  }
}

/** An origin whose `paths` answer cacheably (public, max-age=300), closed when the test ends. */
export async function cacheableOrigin (t: { after: (fn: () => Promise<void>) => void }, paths: string[]): Promise<Origin> {
  const routes: Record<string, OriginHandler> = {}
  for (const path of paths) routes[path] = cacheable()
  const server = await startOrigin(routes)
  t.after(() => server.close())
  return server
}
