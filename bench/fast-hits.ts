/**
 * Fast hits (plugins/fast-hits.ts, issue #13): 1 KiB and 64 KiB memory-tier hits from the proxy
 * with FAST_HITS=true and with FAST_HITS=false, beside a bare Fastify serving the same bytes,
 * in interleaved rounds (the order rotates each round, so drift on a loaded machine touches all
 * three). Server CPU µs per request from /proc, req/s, and each one's ratio to bare Fastify.
 *   npm run build && node --import tsx bench/fast-hits.ts   (standalone; BENCH_ROUNDS, BENCH_SECONDS,
 *                                                            FAST_PATHS=/1k,/64k, FAST_LOG_LEVEL=warn)
 * or BENCH_ONLY=fast npm run bench. Loopback only; every process is stopped by PID (processes.ts).
 */
import type { ChildProcess } from 'node:child_process'
import path from 'node:path'
import { cleanup, forkServer, makeTmpDir, startProxy } from './processes.ts'
import { get } from './probe.ts'
import { fmt, median, table } from './stats.ts'
import { load, type Load } from './wrk.ts'

export interface FastHitsRow {
  path: string
  target: 'bare' | 'fast' | 'normal' | 'bare-hit'
  rps: number
  cpuUsPerRequest: number
  /** Median of the per-round ratios to bare Fastify: req/s (higher is better), bare µs / this µs (higher is cheaper). */
  rpsVsBare: number
  cpuVsBare: number
  /** Lowest and highest per-round bare µs / this µs: how noisy the rounds were. */
  cpuVsBareRange: [number, number]
  /** Median of the per-round FAST_HITS=false µs / this µs (the fast path's own gain on its row). */
  cpuVsOff: number
}

export interface FastHitsResult { rounds: number, seconds: number, logLevel: string, machineBusy: number, rows: FastHitsRow[] }

interface Running { name: FastHitsRow['target'], base: string, child: ChildProcess }

export async function benchFastHits (originPort: number, bare: { port: number, child: ChildProcess }, dir: string, rounds: number, seconds: number, paths = ['/1k', '/64k'], logLevel = 'warn'): Promise<FastHitsResult> {
  const targets: Running[] = [{ name: 'bare', base: `http://127.0.0.1:${bare.port}`, child: bare.child }]
  for (const [name, fast] of [['fast', 'true'], ['normal', 'false']] as const) {
    const proxy = await startProxy(dir, { FAST_HITS: fast, LOG_LEVEL: logLevel, CACHE_STORE: `sqlite://${path.join(dir, `fast-hits-${name}.sqlite`)}` })
    targets.push({ name, base: `http://127.0.0.1:${proxy.port}/127.0.0.1:${originPort}`, child: proxy.child })
  }
  // What no cache hit here can skip: bare Fastify plus the read-your-writes pread and the cache's headers.
  const floor = await forkServer('bare.ts', [], { BARE_AS_HIT: path.join(dir, 'bare-hit-word') })
  targets.push({ name: 'bare-hit', base: `http://127.0.0.1:${floor.port}`, child: floor.child })
  const rows: FastHitsRow[] = []
  const busy: number[] = []
  for (const p of paths) {
    for (const target of targets.slice(1, 3)) {
      // A miss, a hit (perhaps from the store), then memory-tier hits: the fast one has learned the URL.
      for (let i = 0; i < 4; i++) await get(target.base + p)
      const hit = await get(target.base + p)
      if (hit.status !== 200 || hit.headers['x-cache'] !== 'HIT') throw new Error(`${target.name} ${p}: ${hit.status} ${String(hit.headers['x-cache'])}, not a hit`)
    }
    for (const target of targets) await load(target.base + p, 1, target.child) // warm-up (JIT)
    const loads = new Map<Running, Load[]>(targets.map((t) => [t, []]))
    for (let round = 0; round < rounds; round++) {
      const order = targets.map((_t, i) => targets[(i + round) % targets.length])
      for (const target of order) {
        const result = await load(target.base + p, seconds, target.child)
        if (result.errors > 0 || result.non2xx > 0) throw new Error(`${target.name} ${p}: ${result.errors} errors, ${result.non2xx} non-2xx`)
        loads.get(target)?.push(result)
        if (result.machineBusy !== null) busy.push(result.machineBusy)
      }
    }
    const bareLoads = loads.get(targets[0]) as Load[]
    const offLoads = loads.get(targets[2]) as Load[]
    const cpu = (l: Load): number => l.cpuUsPerRequest ?? NaN
    for (const target of targets) {
      const mine = loads.get(target) as Load[]
      const vsBare = mine.map((l, i) => cpu(bareLoads[i]) / cpu(l))
      rows.push({
        path: p,
        target: target.name,
        rps: median(mine.map((l) => l.rps)),
        cpuUsPerRequest: median(mine.map((l) => l.cpuUsPerRequest ?? NaN)),
        rpsVsBare: median(mine.map((l, i) => l.rps / bareLoads[i].rps)),
        cpuVsBare: median(vsBare),
        cpuVsBareRange: [Math.min(...vsBare), Math.max(...vsBare)],
        cpuVsOff: median(mine.map((l, i) => cpu(offLoads[i]) / cpu(l)))
      })
    }
  }
  return { rounds, seconds, logLevel, machineBusy: median(busy), rows }
}

const LABELS: Record<FastHitsRow['target'], string> = {
  bare: 'bare Fastify',
  fast: 'proxy, fast hits',
  normal: 'proxy, FAST_HITS=false',
  'bare-hit': 'bare + pread + cache headers'
}

export function printFastHits (result: FastHitsResult): void {
  console.log(`\nfast hits (FAST_HITS=true / false) beside bare Fastify, LOG_LEVEL=${result.logLevel}, ${result.rounds} interleaved rounds x ${result.seconds} s, medians; machine ${fmt(result.machineBusy)}% busy`)
  console.log(table(['hit', 'server', 'req/s', 'CPU µs/req', 'req/s vs bare', 'bare µs / µs (rounds)', 'off µs / µs'], result.rows.map((r) => [
    r.path, LABELS[r.target],
    fmt(r.rps), fmt(r.cpuUsPerRequest, 1), fmt(r.rpsVsBare, 2),
    `${fmt(r.cpuVsBare, 2)} (${fmt(r.cpuVsBareRange[0], 2)}-${fmt(r.cpuVsBareRange[1], 2)})`, fmt(r.cpuVsOff, 2)
  ])))
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rounds = Math.min(10, Math.max(1, Number(process.env.BENCH_ROUNDS ?? 5)))
  const seconds = Math.min(10, Math.max(1, Number(process.env.BENCH_SECONDS ?? 3)))
  const run = async (): Promise<void> => {
    const dir = makeTmpDir()
    const origin = await forkServer('origin.ts')
    const bare = await forkServer('bare.ts')
    printFastHits(await benchFastHits(origin.port, bare, dir, rounds, seconds, (process.env.FAST_PATHS ?? '/1k,/64k').split(','), process.env.FAST_LOG_LEVEL ?? 'warn'))
  }
  run().then(async () => { await cleanup(); process.exit(0) }, async (error: unknown) => { console.error(error); await cleanup(); process.exit(1) })
}
