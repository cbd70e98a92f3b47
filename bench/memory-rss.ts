/**
 * Memory tier RSS (issue #13): one worker with MEMORY_CACHE_BYTES = 64 MiB and a SQLite store
 * is filled with distinct 1 KiB cacheable responses (the origin's /fill/<n>), then its resident
 * set (VmRSS from /proc) is read, with the tier's own count (/_proxy/stats, loopback). Target:
 * RSS <= bound + 100 MB at 100k entries. Bounded: BENCH_RSS_ENTRIES (default 100,000) requests
 * or FILL_BUDGET_MS, whichever ends first.
 *
 *   node --import tsx bench/memory-rss.ts [dist A] [dist B]   one build after the other
 */
import { readFileSync } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { cleanup, forkServer, here, makeTmpDir, startBuild, stopChild } from './processes.ts'
import { get, sleep } from './probe.ts'
import { fmt } from './stats.ts'

const BOUND = Number(process.env.BENCH_RSS_BOUND ?? 64 * 2 ** 20)
const CONCURRENCY = 16
const FILL_BUDGET_MS = 240_000

export interface RssResult {
  name: string
  requests: number
  seconds: number
  rssStartMB: number
  rssEndMB: number
  tierEntries: number
  tierMB: number
  boundMB: number
}

function rssMB (pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return match === null ? NaN : Number(match[1]) / 1024
}

/** Sends `count` distinct requests, CONCURRENCY at a time on keep-alive connections; how many were answered 200. */
async function fill (base: string, count: number, deadline: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY })
  let next = 0
  let ok = 0
  const one = async (url: string): Promise<void> => await new Promise((resolve) => {
    const req = http.get(url, { agent, timeout: 10_000 }, (res) => {
      if (res.statusCode === 200) ok++
      res.resume()
      res.on('end', () => resolve())
      res.on('error', () => resolve())
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve())
  })
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < count && Date.now() < deadline) await one(`${base}/fill/rss-${next++}`)
  }))
  agent.destroy()
  return ok
}

export async function benchMemoryRss (tmpDir: string, originPort: number, dists: Record<string, string>, entries: number): Promise<RssResult[]> {
  const results: RssResult[] = []
  for (const [name, dist] of Object.entries(dists)) {
    const worker = await startBuild(dist, tmpDir, `rss-${name}`, { MEMORY_CACHE_BYTES: String(BOUND) })
    try {
      const pid = worker.child.pid as number
      const rssStartMB = rssMB(pid)
      const started = Date.now()
      const requests = await fill(`http://127.0.0.1:${worker.port}/127.0.0.1:${originPort}`, entries, started + FILL_BUDGET_MS)
      const seconds = (Date.now() - started) / 1000
      await sleep(1000)
      const stats = JSON.parse((await get(`http://127.0.0.1:${worker.port}/_proxy/stats`)).body.toString('utf8')) as { workers?: Array<{ memoryTier?: { entries: number, bytes: number } }> }
      const tier = stats.workers?.[0]?.memoryTier ?? { entries: NaN, bytes: NaN }
      results.push({ name, requests, seconds, rssStartMB, rssEndMB: rssMB(pid), tierEntries: tier.entries, tierMB: tier.bytes / 2 ** 20, boundMB: BOUND / 2 ** 20 })
    } finally {
      await stopChild(worker.child)
    }
  }
  return results
}

const limitMiB = (r: RssResult): number => r.boundMB + 100e6 / 2 ** 20

export function printMemoryRss (results: RssResult[]): void {
  console.log(`\nmemory tier RSS: one worker, MEMORY_CACHE_BYTES = ${fmt(BOUND / 2 ** 20)} MiB, distinct 1 KiB cacheable responses (target: RSS <= bound + 100 MB)`)
  for (const r of results) {
    console.log(`  ${r.name.padEnd(10)} ${r.requests} stored in ${fmt(r.seconds)} s: RSS ${fmt(r.rssStartMB)} -> ${fmt(r.rssEndMB)}` +
      ` MiB (limit bound + 100 MB = ${fmt(limitMiB(r), 1)} MiB: ${r.rssEndMB <= limitMiB(r) ? 'met' : 'NOT met'}); tier ${r.tierEntries} entries counted as ${fmt(r.tierMB, 1)} MiB`)
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.join(here, 'memory-rss.ts')) {
  const dists = process.argv.slice(2)
  const named = dists.length === 0 ? { current: path.join(here, '..', 'dist') } : Object.fromEntries(dists.map((d, i) => [String.fromCharCode(65 + i), d]))
  const main = async (): Promise<void> => {
    const tmpDir = makeTmpDir()
    const origin = await forkServer('origin.ts')
    printMemoryRss(await benchMemoryRss(tmpDir, origin.port, named, Number(process.env.BENCH_RSS_ENTRIES ?? 100_000)))
  }
  main().then(async () => { await cleanup(); process.exit(0) }, async (error: unknown) => { console.error(error); await cleanup(); process.exit(1) })
}
