/**
 * The store backends side by side (issue #12): 1 KiB hits through one proxy process on the
 * embedded SQLite store and on Redis (a redis-server this script starts on a free loopback
 * port and stops by PID), each with the per-worker memory tier on (hits from memory) and
 * off (MEMORY_CACHE_BYTES=0: every hit reads the store). Same origin, same load generator,
 * interleaved rounds; medians. Part of `npm run bench`; skipped when redis-server is missing.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { autocannon, type LoadResult } from './load-run.ts'
import { get, sleep } from './probe.ts'
import { freePort, startProxy, stopChild, track } from './processes.ts'
import { fmt, median, table } from './stats.ts'

const REDIS_SERVER = '/usr/bin/redis-server'

interface Row { name: string, rps: number, p99: number, errors: number }

async function startRedis (): Promise<{ url: string, stop: () => Promise<void> }> {
  const port = await freePort()
  const child = track(spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' }))
  for (let i = 0; i < 200; i++) {
    if (await answersPing(port)) return { url: `redis://127.0.0.1:${port}`, stop: async () => { await stopChild(child) } }
    await sleep(25)
  }
  await stopChild(child)
  throw new Error(`redis-server on port ${port} did not answer`)
}

async function answersPing (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    const done = (ok: boolean): void => { socket.destroy(); resolve(ok) }
    socket.setTimeout(500, () => done(false))
    socket.on('error', () => done(false))
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (data) => done(data.toString().startsWith('+PONG')))
  })
}

/** Runs the comparison against `originPort`; prints a table and returns its rows. */
export async function benchStores (tmpDir: string, originPort: number, rounds: number, seconds: number): Promise<Row[]> {
  if (!existsSync(REDIS_SERVER)) {
    console.log(`\nstore backends: skipped (${REDIS_SERVER} missing: apt-get install redis-server)`)
    return []
  }
  const redis = await startRedis()
  try {
    const variants: Array<{ name: string, env: Record<string, string> }> = [
      { name: 'sqlite, memory tier', env: { CACHE_STORE: `sqlite://${path.join(tmpDir, 'stores-a.sqlite')}` } },
      { name: 'sqlite, store reads', env: { CACHE_STORE: `sqlite://${path.join(tmpDir, 'stores-b.sqlite')}`, MEMORY_CACHE_BYTES: '0' } },
      { name: 'redis, memory tier', env: { CACHE_STORE: `${redis.url}/1` } },
      { name: 'redis, store reads', env: { CACHE_STORE: `${redis.url}/2`, MEMORY_CACHE_BYTES: '0' } }
    ]
    const proxies = []
    for (const variant of variants) {
      const proxy = await startProxy(tmpDir, variant.env)
      const url = `http://127.0.0.1:${proxy.port}/127.0.0.1:${originPort}/1k`
      await get(url)
      const second = await get(url)
      if (String(second.headers['x-cache']) !== 'HIT') throw new Error(`${variant.name}: second request was ${String(second.headers['x-cache'])}, not a HIT`)
      proxies.push({ ...variant, proxy, url })
    }
    const results = new Map<string, LoadResult[]>(variants.map((v) => [v.name, []]))
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? proxies : [...proxies].reverse()
      for (const p of order) results.get(p.name)?.push(await autocannon(p.url, seconds, p.proxy.child))
    }
    for (const p of proxies) await stopChild(p.proxy.child)
    const rows = variants.map((v) => {
      const runs = results.get(v.name) ?? []
      return { name: v.name, rps: median(runs.map((r) => r.rps)), p99: median(runs.map((r) => r.p99)), errors: runs.reduce((n, r) => n + r.errors + r.non2xx + r.timeouts, 0) }
    })
    const base = rows[0].rps
    console.log(`\nstore backends: 1 KiB hits, one process (medians of ${rounds} round(s) x ${seconds} s; ratio to sqlite + memory tier)`)
    console.log(table(['store', 'req/s', 'ratio', 'p99 ms', 'errors'], rows.map((r) => [r.name, fmt(r.rps), fmt(r.rps / base, 2), fmt(r.p99), String(r.errors)])))
    return rows
  } finally {
    await redis.stop()
  }
}
