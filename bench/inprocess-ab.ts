/**
 * Fine-grained A/B of proxy builds (issue #13 levers): the builds run in this one process on
 * real sockets, with the origin in a child process, and are loaded in alternating batches of
 * requests; this process's CPU time per request is compared. The client's share is the same
 * for every build, so differences are the builds'. Short batches interleave finely: on a busy
 * machine, contention hits every build alike, which 3 s wrk rounds could not resolve.
 *
 *   node --import tsx bench/inprocess-ab.ts <dist>[@level] [<dist>[@level] ...] [--path /nostore]
 *   (a dist: a build of this project, e.g. `npx tsc -p tsconfig.build.json --outDir /tmp/x/a`,
 *   next to a node_modules and package.json; `passthrough` is bench/passthrough.ts's app)
 * BENCH_BATCHES (default 30) x BENCH_BATCH (default 1000) requests per build, 32 at a time.
 */
import { closeSync, openSync, writeSync } from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import replyFrom from '@fastify/reply-from'
import Fastify, { type FastifyInstance } from 'fastify'
import { Pool } from 'undici'
import { cleanup, forkServer, makeTmpDir } from './processes.ts'
import { fmt, median } from './stats.ts'

const CONCURRENCY = 32

async function passthroughApp (originPort: number): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, keepAliveTimeout: 60_000 })
  await app.register(replyFrom, { base: `http://127.0.0.1:${originPort}` })
  app.all('/*', (request, reply) => { reply.from(request.url) })
  return app
}

async function proxyApp (dist: string, level: string, sink: { write: (line: string) => void }, store: string): Promise<FastifyInstance> {
  const root = path.resolve(dist)
  const { buildApp } = await import(pathToFileURL(path.join(root, 'src', 'app.js')).href) as typeof import('../src/app.ts')
  const { loadConfig } = await import(pathToFileURL(path.join(root, 'config', 'index.js')).href) as typeof import('../config/index.ts')
  const config = loadConfig({ CACHE_STORE: `sqlite://${store}`, ALLOW_PRIVATE_UPSTREAMS: 'true', UPSTREAM_PORTS: '*', LOG_LEVEL: level, MAX_EVENT_LOOP_DELAY_MS: '0' })
  return await buildApp(config, { logStream: sink })
}

/** `count` requests, CONCURRENCY at a time, each body read to the end; throws on a wrong answer. */
export async function batch (pool: Pool, url: string, count: number): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++
      const res = await pool.request({ path: url, method: 'GET', headersTimeout: 10_000, bodyTimeout: 10_000 })
      const body = await res.body.arrayBuffer()
      if (res.statusCode !== 200 || body.byteLength !== 1024) throw new Error(`${url}: ${res.statusCode}, ${body.byteLength} bytes`)
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
}

export interface Loaded { name: string, pool: Pool, url: string }

/**
 * This process's CPU µs per request for each target, one value per batch: a warm-up batch each
 * (JIT, connections, the cache entry), then `batches` rounds of one batch per target, the
 * order rotated every round.
 */
export async function interleaved (targets: Loaded[], batches: number, size: number): Promise<Map<string, number[]>> {
  for (const t of targets) await batch(t.pool, t.url, size)
  const perRequest = new Map(targets.map((t) => [t.name, [] as number[]]))
  for (let round = 0; round < batches; round++) {
    const order = targets.map((_, i) => targets[(i + round) % targets.length])
    for (const t of order) {
      const start = process.cpuUsage()
      await batch(t.pool, t.url, size)
      const used = process.cpuUsage(start)
      perRequest.get(t.name)?.push((used.user + used.system) / size)
    }
  }
  return perRequest
}

async function main (): Promise<void> {
  const args = process.argv.slice(2)
  const at = args.indexOf('--path')
  const p = at === -1 ? '/nostore' : args.splice(at, 2)[1]
  const batches = Number(process.env.BENCH_BATCHES ?? 30)
  const size = Number(process.env.BENCH_BATCH ?? 1000)
  if (args.length === 0 || !(batches >= 1 && batches <= 200) || !(size >= 10 && size <= 20_000)) {
    throw new Error('usage: bench/inprocess-ab.ts <dist>[@level] ... [--path /nostore] (BENCH_BATCHES 1-200, BENCH_BATCH 10-20000)')
  }
  const origin = await forkServer('origin.ts')
  const dir = makeTmpDir()
  const devNull = openSync('/dev/null', 'w')
  const sink = { write (line: string) { writeSync(devNull, line) } }
  const builds: Array<{ name: string, app: FastifyInstance, pool: Pool, url: string }> = []
  try {
    for (const spec of args) {
      const [dist, level = 'warn'] = spec.split('@')
      const app = dist === 'passthrough' ? await passthroughApp(origin.port) : await proxyApp(dist, level, sink, path.join(dir, `${builds.length}.sqlite`))
      await app.listen({ port: 0, host: '127.0.0.1' })
      const port = (app.server.address() as { port: number }).port
      const url = dist === 'passthrough' ? p : `/127.0.0.1:${origin.port}${p}`
      builds.push({ name: spec.includes('/') ? `${path.basename(dist)}${spec.slice(dist.length)}` : spec, app, pool: new Pool(`http://127.0.0.1:${port}`, { connections: CONCURRENCY }), url })
    }
    const perRequest = await interleaved(builds, batches, size)
    const first = perRequest.get(builds[0].name) as number[]
    for (const b of builds) {
      const mine = perRequest.get(b.name) as number[]
      console.log(`${b.name.padEnd(16)} ${fmt(median(mine), 1)} µs CPU per request (client + proxy, median of ${batches} batches of ${size}); ` +
        `− ${builds[0].name}: ${fmt(median(mine.map((v, i) => v - first[i])), 1)} µs (median of paired batches)`)
    }
  } finally {
    for (const b of builds) { await b.pool.close(); await b.app.close() }
    closeSync(devNull)
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(async () => { await cleanup(); process.exit(0) }, async (e: unknown) => { console.error(e); await cleanup(); process.exit(1) })
}
